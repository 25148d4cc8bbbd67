from zoneinfo import available_timezones

import phonenumbers
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms.fields.choices import SelectChoice
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from models.accounts import ROLES


def region_choices():
    return [SelectChoice("", "None (numbers must start with +)")] + [SelectChoice(r, r) for r in sorted(phonenumbers.SUPPORTED_REGIONS)]


def timezone_choices():
    return [SelectChoice(tz, tz) for tz in sorted(available_timezones()) if "/" in tz or tz == "UTC"]


class SettingsForm(FlaskForm):
    name = StringField("Workspace name", validators=[DataRequired(), Length(max=200)])
    default_phone_region = SelectField("Default phone region", choices=[], validators=[Optional()],
                                       description="ISO 3166 code used to read phone numbers that have no "
                                                   "country code (for example GB or US).")
    timezone = SelectField("Time zone", choices=[], validators=[DataRequired()],
                           description="Daily syncs and dates are shown in this time zone.")
    submit = SubmitField("Save settings")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_phone_region.choices = region_choices()
        self.timezone.choices = timezone_choices()

    def validate_default_phone_region(self, field):
        if field.data and field.data not in phonenumbers.SUPPORTED_REGIONS:
            raise ValidationError("Choose a region phonenumbers supports (an ISO code such as GB).")

    def validate_timezone(self, field):
        if field.data not in available_timezones():
            raise ValidationError("Choose a time zone from the list.")


ROLE_CHOICES = [SelectChoice(r, r.capitalize()) for r in ROLES]


class MemberAccessForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)
    manage_integrations = BooleanField("Manage integrations (connect, reconnect, disconnect orgs)")
    manage_imports = BooleanField("Manage participant imports (create and run import plans)")
    submit = SubmitField("Save")


class AddMemberForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    password = PasswordField("First password (only for a new account)", validators=[Optional(), Length(min=8, max=200)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="researcher")
    manage_integrations = BooleanField("Manage integrations")
    manage_imports = BooleanField("Manage participant imports")
    submit = SubmitField("Add member")


class SwitchWorkspaceForm(FlaskForm):
    workspace_id = StringField(validators=[DataRequired()])
    next = HiddenField()


class SuppressionAddForm(FlaskForm):
    email = StringField("Email", validators=[Optional(), Length(max=320)])
    phone = StringField("Phone", validators=[Optional(), Length(max=60)])
    reason = StringField("Reason", validators=[Optional(), Length(max=300)])
    submit = SubmitField("Add to the list")

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        if ok and not (self.email.data or "").strip() and not (self.phone.data or "").strip():
            self.email.errors.append("Give an email address or a phone number.")
            return False
        return ok


class SuppressionUploadForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired(), FileAllowed(["csv", "txt"], "Upload a .csv file.")])
    submit = SubmitField("Upload")


class ConfirmForm(FlaskForm):
    submit = SubmitField("Remove")

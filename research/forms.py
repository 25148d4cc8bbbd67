from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice
from wtforms import BooleanField, DateField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from models.research import ACTIVITY_KINDS, STUDY_STATUSES

KIND_LABELS = {"survey": "Survey", "diary": "Diary", "interview": "Interview", "task": "Task"}


class StudyForm(FlaskForm):
    name = StringField("Study name", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=5000)])
    status = SelectField("Status", choices=[SelectChoice(s, s.capitalize()) for s in STUDY_STATUSES], default="open")
    recurring = BooleanField("Recurring study (keeps recruiting from synced records)")
    closes_on = DateField("Closes on", validators=[Optional()])
    submit = SubmitField("Save study")

    def validate_closes_on(self, field):
        """An open study that closed in the past would take nobody: say so instead of saving it.
        (A day of slack for time zones: the workspace's day may still be yesterday in UTC.)"""
        from datetime import date, timedelta

        from wtforms.validators import ValidationError
        if field.data and self.status.data == "open" and field.data < date.today() - timedelta(days=1):
            raise ValidationError("An open study cannot close in the past: choose a later date, or set it to closed.")


class ActivityForm(FlaskForm):
    name = StringField("Activity name", validators=[DataRequired(), Length(max=200)])
    kind = SelectField("Kind", choices=[SelectChoice(k, KIND_LABELS[k]) for k in ACTIVITY_KINDS], default="survey")
    description = TextAreaField("Description", validators=[Optional(), Length(max=5000)])
    due_on = DateField("Due on", validators=[Optional()])
    submit = SubmitField("Save activity")


class CommunityForm(FlaskForm):
    name = StringField("Community name", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=5000)])
    submit = SubmitField("Save community")


class AddParticipantsForm(FlaskForm):
    """Only carries the CSRF token: the checked ids and the filters come from request.form."""

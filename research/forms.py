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

from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from services.templates_merge import has_line_break


def one_line(form, field):
    """A subject is an email header: a CR or LF in it could add headers (header injection)."""
    if has_line_break(field.data):
        raise ValidationError("Write the subject on one line: it contains a line break (CR, LF or another "
                              "line separator), "
                              "which an email subject cannot hold.")


class MessageTemplateForm(FlaskForm):
    subject = StringField("Subject", validators=[DataRequired(), Length(max=300), one_line])
    body_text = TextAreaField("Plain-text message", validators=[DataRequired(), Length(max=20000)])
    body_html = TextAreaField("HTML message (optional)", validators=[Optional(), Length(max=50000)])
    submit = SubmitField("Save message")


class ResetForm(FlaskForm):
    submit = SubmitField("Use the default wording")

from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class MessageTemplateForm(FlaskForm):
    subject = StringField("Subject", validators=[DataRequired(), Length(max=300)])
    body_text = TextAreaField("Plain-text message", validators=[DataRequired(), Length(max=20000)])
    body_html = TextAreaField("HTML message (optional)", validators=[Optional(), Length(max=50000)])
    submit = SubmitField("Save message")


class ResetForm(FlaskForm):
    submit = SubmitField("Use the default wording")

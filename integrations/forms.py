import dataclasses

from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from services import connections

ENVIRONMENT_CHOICES = [SelectChoice("production", "Production (login.salesforce.com)"),
                       SelectChoice("sandbox", "Sandbox (test.salesforce.com)"),
                       SelectChoice("mydomain", "My Domain (your own login address)")]


class ConnectForm(FlaskForm):
    """What Connect asks before sending the person to Salesforce (handled by the connect flow)."""

    name = StringField("Connection name", default="Production", validators=[DataRequired(), Length(max=100)],
                       description="To tell orgs apart, e.g. “Production” or “UAT sandbox”.")
    environment = SelectField("Salesforce environment", choices=ENVIRONMENT_CHOICES, default="production")
    my_domain = StringField("My Domain login address", validators=[Optional(), Length(max=300)],
                            description="Only for My Domain, e.g. https://acme.my.salesforce.com")
    submit = SubmitField("Connect")


def label_environments(form):
    """Label a Connect form's environment choices with the login hosts this deployment uses."""
    labels, note = connections.environment_labels()
    form.environment.choices = [dataclasses.replace(choice, label=labels.get(choice.value, choice.label))
                                for choice in form.environment.choices]
    form.environment.description = note or ""
    return form

"""Forms of step 1 (Connect) and of the connect page."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

ENVIRONMENT_CHOICES = [SelectChoice("production", "Production (login.salesforce.com)"),
                       SelectChoice("sandbox", "Sandbox (test.salesforce.com)"),
                       SelectChoice("mydomain", "My Domain URL")]


class ConnectForm(FlaskForm):
    name = StringField("Connection name", default="Production",
                       validators=[DataRequired(message="Give the connection a name."), Length(max=100)],
                       description="To tell orgs apart, e.g. “Production” or “UAT sandbox”.")
    environment = SelectField("Salesforce environment", choices=ENVIRONMENT_CHOICES, default="production")
    my_domain = StringField("My Domain URL", validators=[Optional(), Length(max=300)],
                            description="Only for My Domain, e.g. https://yourcompany.my.salesforce.com")
    next = HiddenField()  # "wizard" to come back to the wizard after connecting


class ChooseConnectionForm(FlaskForm):
    connection = HiddenField(validators=[DataRequired(message="Choose a connected Salesforce org.")])

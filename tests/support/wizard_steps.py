"""Fixtures for the wizard's steps 4-6 and "Add participants" from Salesforce: a signed-in person
who manages imports, a connection holding a running emulator's tokens, and a plan that has
reached a given step.

    from tests.support.wizard_steps import *   # noqa: F401,F403 (fixtures: sf, wiz)
"""
from __future__ import annotations

import re

import pytest

from core.extensions import db
from emulator.testing import EmulatorServer
from models import ImportPlan, SalesforceConnection
from tests.support.web import csrf_token, make_world, sign_in

ADMIN = "admin@acme.example"
MAPPING = {
    "fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"],
               "phone": ["Phone", "MobilePhone"], "company": ["Account.Name"], "segment": ["Persona__c"],
               "consent": ["Consent_Status__c"], "external_id": ["Id"]},
    "country": ["MailingCountry"], "attributes": [],
    "consent_rule": {"path": "Consent_Status__c", "opted_in": ["Opted In"], "opted_out": ["Opted Out"],
                     "opt_out_flags": ["HasOptedOutOfEmail"]},
}


@pytest.fixture
def sf(app):
    server = EmulatorServer().start()
    app.config.update(SALESFORCE_CLIENT_ID=server.client_id, SALESFORCE_CLIENT_SECRET=server.client_secret,
                      SALESFORCE_CA_FILE=server.ca_file, SALESFORCE_BACKOFF=(0.0,))
    yield server
    server.stop()


class Wizard:
    """One workspace, its emulator-backed connection, a plan, and a signed-in test client."""

    def __init__(self, app, server: EmulatorServer):
        from core.crypto import cipher
        self.app, self.sf = app, server
        self.world = make_world("Wiz")
        self.workspace = self.world["workspace"]
        self.ids = self.world["ids"]
        token = server.token_for(ADMIN)
        conn = db.session.get(SalesforceConnection, self.ids["connection"])
        conn.login_url, conn.instance_url = server.url, token["instance_url"]
        conn.org_id = server.users[ADMIN]["org_id"]
        conn.access_token_enc = cipher().encrypt(token["access_token"])
        conn.refresh_token_enc = cipher().encrypt(token.get("refresh_token"))
        db.session.commit()
        self.connection = conn
        self.user = self.world["users"]["researcher + manage_imports"]
        self.client = app.test_client()
        sign_in(self.client, self.user, self.workspace.id)
        self.token = csrf_token(self.client)

    @property
    def org_id(self) -> str:
        return self.connection.org_id

    def plan(self, step="filters", mapping=None, filters=None, object_name="Contact", **values) -> ImportPlan:
        plan = ImportPlan(workspace_id=self.workspace.id, connection_id=self.connection.id, name="Wizard plan",
                          object_name=object_name, mapping=mapping or MAPPING, filters=filters or {},
                          excluded_record_ids=[], reminder_days=[], wizard_step=step,
                          status=values.pop("status", "draft"), **values)
        db.session.add(plan)
        db.session.commit()
        return plan

    def create(self, obj: str, fields: dict, record_id: str | None = None) -> str:
        if record_id:
            return self.sf.state.store.insert("production", obj, fields, record_id=record_id, validate=False)
        return self.sf.create(obj, fields)

    def post(self, url: str, data=None, htmx: bool = False, **kw):
        items = list(data.items(multi=True)) if hasattr(data, "items") and hasattr(data, "getlist") else \
            list((data or {}).items())
        body = [("csrf_token", self.token)]
        for key, value in items:
            if isinstance(value, (list, tuple)):
                body += [(key, v) for v in value]
            else:
                body.append((key, value))
        headers = kw.pop("headers", {})
        if htmx:
            headers["HX-Request"] = "true"
        from werkzeug.datastructures import MultiDict
        return self.client.post(url, data=MultiDict(body), headers=headers, **kw)

    def get(self, url: str, htmx: bool = False, **kw):
        headers = kw.pop("headers", {})
        if htmx:
            headers["HX-Request"] = "true"
        return self.client.get(url, headers=headers, **kw)


@pytest.fixture
def wiz(app, sf):
    return Wizard(app, sf)


def filter_form(rows, op="AND", groups=None, action="save") -> dict:
    """A posted filters form: rows are (field, operator, value[, group])."""
    data = {"op": op, "action": action}
    for n, row in enumerate(rows):
        field, operator, value = row[:3]
        data[f"rows-{n}-field"] = field
        data[f"rows-{n}-operator"] = operator
        data[f"rows-{n}-group"] = str(row[3]) if len(row) > 3 else "0"
        if isinstance(value, (list, tuple)):
            data[f"rows-{n}-values"] = list(value)
        elif value is not None:
            data[f"rows-{n}-value"] = value
    for k, gop in (groups or {}).items():
        data[f"groups-{k}-op"] = gop
    return data


def text_of(response) -> str:
    return response.get_data(as_text=True)


def soql_shown(html: str, element_id: str) -> str | None:
    import html as h
    m = re.search(rf'id="{element_id}">([^<]*)<', html)
    return h.unescape(m.group(1)) if m else None


__all__ = ["sf", "wiz", "Wizard", "filter_form", "text_of", "soql_shown", "MAPPING", "ADMIN"]

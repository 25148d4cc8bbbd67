"""SOQL injection through every filter input of the wizard (step 4): values of every operator, and
the field name and operator tampered in crafted POSTs. Each answer is an escaped literal in the
exact SOQL shown and sent to Salesforce, or an error on that row with nothing sent; never a
changed query structure."""
from __future__ import annotations

import pytest

from tests.support.wizard_steps import *  # noqa: F401,F403
from tests.support.wizard_steps import filter_form, soql_shown, text_of

# (field, operator, value) -> the exact WHERE clause, or None for "refused on the row, nothing sent".
ESCAPED = [
    (("LastName", "equals", "x' OR LastName != null OR LastName = 'y"),
     r"LastName = 'x\' OR LastName != null OR LastName = \'y'"),
    (("LastName", "not_equals", "x\\' OR Id != null --"), r"LastName != 'x\\\' OR Id != null --'"),
    (("LastName", "contains", "%' OR Id != null OR LastName LIKE '%"),
     r"LastName LIKE '%\%\' OR Id != null OR LastName LIKE \'\%%'"),
    (("LastName", "starts_with", "_') OR (Id != null"), r"LastName LIKE '\_\') OR (Id != null%'"),
    (("Email", "equals", "a@b.example'\nOR Id != null"), "Email = 'a@b.example\\'\\nOR Id != null'"),
    (("MailingCountry", "equals", "Côte d'Ivoire"), r"MailingCountry = 'Côte d\'Ivoire'"),
    (("Persona__c", "includes", "Designer') OR Id != null OR Persona__c INCLUDES ('x"),
     r"Persona__c INCLUDES ('Designer\') OR Id != null OR Persona__c INCLUDES (\'x')"),
    (("Persona__c", "excludes", "Designer')) OR (Id != null"), r"Persona__c EXCLUDES ('Designer\')) OR (Id != null')"),
    (("LastName", "is_empty", "x' OR Id != null OR Name = 'y"), "LastName = null"),
    (("LastName", "is_not_empty", "') OR Id != null"), "LastName != null"),
]
REFUSED = [
    ("LastName = 'x' OR Id", "equals", "x"),            # a field name carrying a condition
    ("Account.Name) OR (Id", "equals", "x"),
    ("Id != null OR LastName", "is_empty", ""),
    ("LastName", "= 'x' OR Id !=", "y"),                # an operator carrying a condition
    ("LastName", "equals' OR '1'='1", "y"),
    ("CreatedDate", "before", "2024-01-01 OR Id != null"),
    ("CreatedDate", "after", "2024-01-01T00:00:00Z) OR (Id != null"),
    ("CreatedDate", "last_n_days", "5 OR Id != null"),
    ("Id", "in_campaign", "701' OR Id != null OR Id = '"),
]


@pytest.fixture
def sent(monkeypatch):
    from salesforce.client import SalesforceClient
    calls: list[str] = []
    real = SalesforceClient.count
    monkeypatch.setattr(SalesforceClient, "count", lambda self, soql: calls.append(soql) or real(self, soql))
    return calls


def test_values_become_escaped_literals_in_the_exact_soql_sent(wiz, sent):
    plan = wiz.plan()
    for row, where in ESCAPED:
        sent.clear()
        response = wiz.post(f"/wizard/plans/{plan.id}/filters/count", filter_form([row]), htmx=True)
        html = text_of(response)
        assert response.status_code == 200, (row, html[:500])
        assert soql_shown(html, "soql-where") == where, row
        assert sent == [f"SELECT COUNT() FROM Contact WHERE {where}"], row
        assert soql_shown(html, "match-count") == "0", row  # a real answer from the emulator's SOQL parser


def test_tampered_fields_operators_and_values_are_row_errors_and_nothing_is_sent(wiz, sent):
    from core.extensions import db
    from models import ImportPlan
    plan = wiz.plan()
    for row in REFUSED:
        response = wiz.post(f"/wizard/plans/{plan.id}/filters/count", filter_form([row]), htmx=True)
        html = text_of(response)
        assert "Fix the highlighted rule; no query is sent to Salesforce until then." in html, (row, html[:800])
        saved = wiz.post(f"/wizard/plans/{plan.id}/filters", filter_form([row]))
        assert saved.status_code == 422 and 'id="rows-0-error"' in text_of(saved), row
        assert sent == [], row
        db.session.expire_all()
        assert db.session.get(ImportPlan, plan.id).filters == {}, row

"""Steps 1-3 in a real browser: connect through the emulator's real login and consent pages
(the browser trusts the emulator's CA from an NSS database, it never ignores certificate
errors), pick Contact, accept the suggested mapping, and reach the filters step. Then the same
steps with JavaScript off, as plain form posts."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.extensions import db
from models import ImportPlan, SalesforceConnection
from services import accounts
from tests.app.wizard_support import emulator, use_emulator

pytestmark = pytest.mark.browser

PASSWORD = "connect-admin-pass-1"
ADMIN = "connie@terapage.example"


@pytest.fixture(scope="module")
def emu():
    with emulator() as server:
        server.create("Contact", {"FirstName": "Lena", "LastName": "Okafor", "Email": "lena@example.org"})
        yield server


@pytest.fixture
def signed_up(app, emu, monkeypatch):
    use_emulator(app, emu, monkeypatch)
    ws = accounts.create_workspace("Acme Research")
    admin = accounts.create_user(ADMIN, "Connie Admin", PASSWORD)
    accounts.add_member(admin, ws, "admin")
    db.session.commit()
    return ws


def _sign_in(page, base):
    page.goto(f"{base}/login")
    page.fill("input[name=email]", ADMIN)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".account-name")).to_contain_text("Connie Admin")


def _connect(page, base, emu):
    page.goto(f"{base}/admin/configuration/integrations/salesforce")
    page.click("a.button:has-text('Connect')")
    expect(page).to_have_url(re.compile(r"/integrations/salesforce/connect$"))
    page.fill("input[name=name]", "Production")
    page.select_option("select[name=environment]", "mydomain")
    page.fill("input[name=my_domain]", emu.url)
    page.click("#connect-form button[type=submit], form button:has-text('Connect')")
    # Salesforce's (the emulator's) real pages, over HTTPS validated against the emulator's CA.
    expect(page.locator("#login_form")).to_be_visible()
    assert page.url.startswith(emu.url + "/")
    page.fill("#username", "admin@acme.example")
    page.fill("#password", emu.users["admin@acme.example"]["password"])
    page.click("#Login")
    expect(page.locator("#consent_form")).to_be_visible()
    page.click("#oaapprove")


def _to_mapping(page, base, emu):
    _sign_in(page, base)
    _connect(page, base, emu)
    expect(page).to_have_url(re.compile(r"/admin/configuration/integrations/salesforce$"))
    expect(page.locator("body")).to_contain_text("Connected Acme Research (00D5g0000000001EAA)")
    page.goto(f"{base}/wizard/new")
    expect(page.locator('[data-step="connect"]')).to_have_attribute("data-state", "current")
    page.click("button:has-text('Use Production')")
    expect(page).to_have_url(re.compile(r"/wizard/plans/\d+/object$"))
    expect(page.locator('tr[data-object="Contact"] td.count')).to_have_text("1")
    page.check('input[name=object_name][value="Contact"]')
    page.click("button:has-text('Continue to mapping')")
    expect(page).to_have_url(re.compile(r"/wizard/plans/\d+/mapping$"))
    expect(page.locator("#f-company")).to_have_value("Account.Name")
    expect(page.locator("#f-phone_fallback")).to_have_value("MobilePhone")


def _walk(page, base, emu):
    _to_mapping(page, base, emu)
    page.click("button:has-text('Save and continue to filters')")
    expect(page).to_have_url(re.compile(r"/wizard/plans/\d+/filters$"))
    expect(page.locator('[data-step="mapping"]')).to_have_attribute("data-state", "done")
    expect(page.locator('[data-step="filters"]')).to_have_attribute("data-state", "current")


def test_connect_pick_contact_map_and_reach_filters(app, emu, signed_up, live_server, trusting_browser):
    context = trusting_browser(emu).new_context()  # no ignore_https_errors: the CA is trusted
    page = context.new_page()
    _walk(page, live_server.url, emu)
    # htmx did the step changes: back returns to the mapping step, reload keeps the step.
    page.go_back()
    expect(page).to_have_url(re.compile(r"/wizard/plans/\d+/mapping$"))
    page.reload()
    expect(page.locator("#f-email")).to_have_value("Email")
    context.close()
    db.session.expire_all()
    conn = db.session.scalar(db.select(SalesforceConnection))
    plan = db.session.scalar(db.select(ImportPlan))
    assert conn.org_id == "00D5g0000000001EAA" and conn.status == "connected"
    assert plan.object_name == "Contact" and plan.mapping["fields"]["company"] == ["Account.Name"]
    assert plan.wizard_step == "filters"


def test_the_same_steps_with_javascript_off(app, emu, signed_up, live_server, trusting_browser):
    context = trusting_browser(emu).new_context(java_script_enabled=False)
    page = context.new_page()
    _walk(page, live_server.url, emu)
    context.close()
    db.session.expire_all()
    assert db.session.scalar(db.select(ImportPlan)).wizard_step == "filters"


def test_another_consent_field_is_offered_its_own_values(app, emu, signed_up, live_server, trusting_browser):
    """Changing the consent field re-renders its values at once (htmx): a free-text field asks
    for typed values, and the picklist's ticked values are gone from the form and the plan."""
    context = trusting_browser(emu).new_context()
    page = context.new_page()
    _to_mapping(page, live_server.url, emu)
    expect(page.get_by_label("Opted In means opted in")).to_be_checked()  # suggested
    with page.expect_response(re.compile(r"/mapping$")):
        page.locator("#f-consent").select_option("Title")
    expect(page.locator("#f-consent")).to_have_value("Title")
    expect(page.get_by_label("Opted In means opted in")).to_have_count(0)
    page.locator("#f-consent_in").fill("Yes\nSure")
    page.locator("#f-consent_out").fill("No")
    page.click("button:has-text('Save and continue to filters')")
    expect(page).to_have_url(re.compile(r"/wizard/plans/\d+/filters$"))
    context.close()
    db.session.expire_all()
    rule = db.session.scalar(db.select(ImportPlan)).mapping["consent_rule"]
    assert (rule["path"], rule["opted_in"], rule["opted_out"]) == ("Title", ["Yes", "Sure"], ["No"])

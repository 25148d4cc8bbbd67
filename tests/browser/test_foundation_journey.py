"""The foundation, walked in a real browser: sign in, Workspace Administration → Configuration →
Integrations, a study with an activity, participants from the pool, and a researcher refused."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.extensions import db
from models import Participant
from services import accounts

pytestmark = pytest.mark.browser

ADMIN_PASSWORD = "admin-password-1"
RESEARCHER_PASSWORD = "researcher-password-1"


@pytest.fixture
def demo(app):
    workspace = accounts.create_workspace("Acme Research")
    admin = accounts.create_user("admin@acme.example", "Ada Admin", ADMIN_PASSWORD)
    researcher = accounts.create_user("res@acme.example", "Rae Researcher", RESEARCHER_PASSWORD)
    accounts.add_member(admin, workspace, "admin")
    accounts.add_member(researcher, workspace, "researcher")
    for first, last, segment in (("Olivia", "Pool", "B2B"), ("Oscar", "Pool", "B2B"), ("Nina", "Other", "Consumer")):
        email = f"{first.lower()}@people.example"
        db.session.add(Participant(workspace_id=workspace.id, first_name=first, last_name=last, email=email,
                                   email_key=email, segments=[segment], consent_status="opted_in"))
    db.session.commit()
    return workspace


def _sign_in(page, base, email, password):
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".account-name")).to_be_visible()


def test_foundation_journey(live_server, demo, page):
    base = live_server.url
    csp_errors = []
    page.on("console", lambda msg: csp_errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text else None)

    _sign_in(page, base, "admin@acme.example", ADMIN_PASSWORD)
    expect(page.locator("#current-workspace")).to_have_text("Acme Research")

    # Workspace Administration → Configuration → Integrations: Salesforce with Connect.
    page.get_by_role("link", name="Workspace Administration").click()
    page.get_by_role("link", name=re.compile("^Configuration")).click()
    page.get_by_role("link", name=re.compile("^Integrations")).click()
    salesforce = page.locator("#integration-salesforce")
    expect(salesforce).to_contain_text("Salesforce")
    expect(salesforce).to_contain_text("Not connected")
    expect(salesforce.get_by_role("link", name="Connect", exact=True)).to_be_visible()

    # A study with an activity.
    page.get_by_role("link", name="Studies", exact=True).click()
    page.get_by_role("link", name="New study").click()
    page.get_by_label("Study name").fill("Checkout research")
    page.get_by_role("button", name="Create study").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Checkout research")
    page.get_by_role("link", name="New activity").click()
    page.get_by_label("Activity name").fill("First-week diary")
    page.get_by_label("Kind").select_option("diary")
    page.get_by_role("button", name="Create activity").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("First-week diary")

    # Add participants from the pool: live search (htmx swaps only the results), tick, add.
    page.get_by_role("link", name="Add participants").click()
    expect(page.locator(".tabs [aria-current=page]")).to_have_text("Participant pool")
    expect(page.locator("#pool-count")).to_have_text("3 participants in the pool match")
    page.get_by_label("Search").fill("pool")
    expect(page.locator("#pool-count")).to_have_text("2 participants in the pool match")
    expect(page).to_have_url(re.compile(r"q=pool"))
    page.get_by_label("Select Olivia Pool").check()
    page.get_by_label("Select Oscar Pool").check()
    page.get_by_role("button", name="Add selected").click()
    expect(page.locator(".flash")).to_contain_text("2 participants added to “First-week diary”")
    members = page.locator("#members-table")
    expect(members).to_contain_text("Olivia Pool")
    expect(members).to_contain_text("Oscar Pool")
    expect(members).not_to_contain_text("Nina")
    # Adding again changes nothing.
    page.get_by_role("link", name="Add participants").click()
    page.get_by_label("Select Olivia Pool").check()
    page.get_by_role("button", name="Add selected").click()
    expect(page.locator(".flash")).to_contain_text("0 participants added to “First-week diary”; 1 was already there")
    # The study has them too.
    page.get_by_role("link", name="Checkout research").click()
    expect(page.locator("#members-table")).to_contain_text("Olivia Pool")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Terapage")).to_be_visible()

    # A researcher without permissions sees status read-only and gets 403 on the connect page.
    _sign_in(page, base, "res@acme.example", RESEARCHER_PASSWORD)
    page.goto(f"{base}/admin/configuration/integrations/")
    expect(page.locator("#integration-salesforce")).to_contain_text("Not connected")
    expect(page.locator("#integration-salesforce").get_by_role("link", name="Connect", exact=True)).to_have_count(0)
    response = page.goto(f"{base}/admin/configuration/integrations/salesforce/connect")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("You do not have permission to open this page")

    assert not csp_errors, csp_errors

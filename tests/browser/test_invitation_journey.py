"""An auto-invite followed in a real browser: a researcher words the study's invitation (live
preview), a sync against the emulator invites two people, the messages arrive at a real SMTP
server, one person opens her link and accepts (and is then in the study), the other unsubscribes
and the next sync never invites him again."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from core.extensions import db
from models import Invitation, Participant, Study, SyncRun
from services import accounts, plans, runs
from tests.integration.sync_support import drain, make_connection, make_plan, org, put, rconn, stamp

pytestmark = [pytest.mark.browser, pytest.mark.redis]
__all__ = ["org", "rconn"]

PASSWORD = "researcher-password-1"
MAPPING = {
    "fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"], "external_id": ["Id"]},
    "consent_rule": {"path": "Consent_Status__c", "opted_in": ["Granted"], "opted_out": ["Withdrawn"]},
}


def _text(message) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def _confirm(plan, user, study):
    plan.target_study_id = study.id
    plan.consent_confirmed_at = datetime.now(timezone.utc)
    plan.consent_confirmed_by_id = user.id
    plan.consent_confirmation_text = "I confirm the selected contacts can be invited to this study."
    plan.consent_fingerprint = plans.consent_fingerprint(plan)
    db.session.commit()


def _sync(app, rconn, plan) -> SyncRun:
    run = runs.request_run(plan)
    drain(app, rconn, ("sync",))
    drain(app, rconn, ("mail",))
    db.session.commit()
    return db.session.get(SyncRun, run.id)


def test_invitation_journey(app, live_server, page, browser, rconn, org, smtp_server, monkeypatch):
    base = live_server.url
    for key, value in {"PUBLIC_BASE_URL": base, "MAIL_SMTP_HOST": smtp_server.host,
                       "MAIL_SMTP_PORT": smtp_server.port}.items():
        monkeypatch.setitem(app.config, key, value)
    csp_errors = []
    page.on("console", lambda msg: csp_errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text else None)

    workspace = accounts.create_workspace("Acme Research")
    researcher = accounts.create_user("rae@acme.example", "Rae Researcher", PASSWORD)
    accounts.add_member(researcher, workspace, "researcher")
    study = Study(workspace_id=workspace.id, name="Checkout study", status="open", created_by_id=researcher.id,
                  description="A 30-minute call about paying online.")
    db.session.add(study)
    db.session.commit()
    plan = make_plan(workspace, make_connection(org, workspace), mapping=MAPPING, action="invite_study",
                     reminder_days=[3, 7], created_by_id=researcher.id)
    _confirm(plan, researcher, study)

    # The researcher words the invitation, watching the preview.
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill("rae@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{base}/studies/{study.id}")
    page.get_by_role("link", name="Messages & invitations").click()
    expect(page.locator("#template-state")).to_contain_text("Showing the default wording")
    page.get_by_label("Subject").fill("{{first_name}}, help us improve {{study_name}}")
    expect(page.locator("#preview-subject")).to_have_text("Alex, help us improve Checkout study")  # no one yet
    page.get_by_role("button", name="Save message").click()
    expect(page.locator("#template-state")).to_contain_text("has its own invitation message")

    # The sync invites Ann and Ugo (Nell withdrew consent in Salesforce); the mail arrives.
    put(org, "Contact", {"FirstName": "Ann", "LastName": "Able", "Email": "ann@example.org",
                         "Consent_Status__c": "Granted", "SystemModstamp": stamp(1)})
    put(org, "Contact", {"FirstName": "Ugo", "LastName": "Out", "Email": "ugo@example.org",
                         "Consent_Status__c": "Granted", "SystemModstamp": stamp(2)})
    put(org, "Contact", {"FirstName": "Nell", "LastName": "No", "Email": "nell@example.org",
                         "Consent_Status__c": "Withdrawn", "SystemModstamp": stamp(3)})
    run = _sync(app, rconn, plan)
    assert (run.status, run.invited) == ("succeeded", 2)
    received = {e.rcpt_tos[0]: m for e, m in zip(smtp_server.envelopes, smtp_server.messages)}
    assert sorted(received) == ["ann@example.org", "ugo@example.org"]
    assert received["ann@example.org"]["Subject"] == "Ann, help us improve Checkout study"
    ann_link = re.search(re.escape(base) + r"/invite/\S+", _text(received["ann@example.org"])).group(0)
    ugo_unsub = re.search(re.escape(base) + r"/unsubscribe/\S+", _text(received["ugo@example.org"])).group(0)

    # Ann, with no account, opens her link and accepts.
    participant_context = browser.new_context()
    ann = participant_context.new_page()
    ann.goto(ann_link)
    expect(ann.locator("#target-name")).to_have_text("Checkout study")
    expect(ann.locator("#target-description")).to_have_text("A 30-minute call about paying online.")
    expect(ann.locator("body")).not_to_contain_text("Acme Research")
    expect(ann.locator("nav")).to_have_count(0)
    ann.get_by_role("button", name="Accept").click()
    expect(ann.locator("#accepted")).to_contain_text("you have joined this study")

    # The researcher sees her in the study, and the invitation accepted with its consent evidence.
    page.goto(f"{base}/studies/{study.id}")
    expect(page.locator("#members-table")).to_contain_text("Ann Able")
    page.get_by_role("link", name="Messages & invitations").click()
    row = page.locator("#invitations-table tr", has_text="Ann Able")
    expect(row).to_contain_text("accepted")
    row.get_by_role("link", name="Ann Able").click()
    expect(page.locator("#invitation-status")).to_have_text("accepted")
    expect(page.locator("#consent-evidence")).to_contain_text("Granted")
    expect(page.locator("#consent-evidence")).to_contain_text("I confirm the selected contacts can be invited")

    # Ugo unsubscribes; a tampered link says only that it is invalid.
    ugo = participant_context.new_page()
    ugo.goto(ugo_unsub)
    ugo.get_by_role("button", name="Unsubscribe").click()
    expect(ugo.locator("#unsubscribed")).to_be_visible()
    bad = ugo.goto(ann_link[:-3] + "xyz")
    assert bad.status == 404
    expect(ugo.locator("h1")).to_have_text("This link is invalid or has expired")
    participant_context.close()

    # The next sync, for a new study, reads Ugo (still "Granted" in Salesforce) and a new person.
    second_study = Study(workspace_id=workspace.id, name="Returns study", status="open")
    db.session.add(second_study)
    db.session.commit()
    _confirm(plan, researcher, second_study)
    put(org, "Contact", {"FirstName": "Ugo", "LastName": "Out", "Email": "UGO@example.org",
                         "Consent_Status__c": "Granted", "SystemModstamp": stamp(10)})
    put(org, "Contact", {"FirstName": "Bea", "LastName": "New", "Email": "bea@example.org",
                         "Consent_Status__c": "Granted", "SystemModstamp": stamp(11)})
    second = _sync(app, rconn, plan)
    assert second.status == "succeeded"
    later = [e.rcpt_tos[0] for e in smtp_server.envelopes[2:]]
    assert "ugo@example.org" not in later and "bea@example.org" in later
    ugo_row = db.session.scalar(select(Participant).where(Participant.email_key == "ugo@example.org"))
    assert db.session.scalars(select(Invitation.status).where(Invitation.participant_id == ugo_row.id)).all() == [
        "withdrawn"]
    page.goto(f"{base}/studies/{second_study.id}/messages/invitation")
    expect(page.locator("#invitations-table")).to_contain_text("Bea New")
    expect(page.locator("#invitations-table")).not_to_contain_text("Ugo")
    assert csp_errors == []

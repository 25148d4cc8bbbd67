"""Operations in a real browser: the connection status page and the reconnect path against the
emulator (same org accepted, another org refused), a live run polled to its end (advanced by
the test, and a real sync through RQ and the emulator), pause and resume, the lookup and the
CSV export."""
from __future__ import annotations

import csv
import io
import re
import time
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from core.extensions import db
from models import ImportPlan, RunOutcome, SalesforceConnection, SyncRun
from models.types import utcnow
from services import accounts, notifications
from tests.app.wizard_support import emulator, seed_connection, use_emulator
from tests.integration.sync_support import drain, make_connection, make_plan, org, rconn, stamp  # noqa: F401

pytestmark = pytest.mark.browser

PASSWORD = "operations-pass-1"


@pytest.fixture
def people(app):
    workspace = accounts.create_workspace("Acme Research")
    admin = accounts.create_user("admin@terapage.example", "Ada Admin", PASSWORD)
    researcher = accounts.create_user("res@terapage.example", "Rae Researcher", PASSWORD)
    accounts.add_member(admin, workspace, "admin")
    accounts.add_member(researcher, workspace, "researcher")
    return workspace


def sign_in(page, base, email):
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".account-name")).to_be_visible()


def plan_for(workspace, connection=None, **values):
    values.setdefault("status", "active")
    plan = ImportPlan(workspace_id=workspace.id, connection_id=connection.id if connection else None,
                      name=values.pop("name", "UK contacts"), object_name="Contact", schedule=values.pop("schedule", "hourly"),
                      **values)
    db.session.add(plan)
    db.session.commit()
    return plan


def salesforce_login(page, username, password):
    """On the emulator's pages: log in (unless it remembers us) and allow access."""
    expect(page.locator("#login_form, #consent_form")).to_be_visible()
    if page.locator("#login_form").count():
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log In").click()
    page.get_by_role("button", name="Allow").click()


# --- connection status and reconnect ------------------------------------------------------------

@pytest.fixture(scope="module")
def emu():
    with emulator() as server:
        yield server


def test_status_page_and_reconnect_same_org_accepted_other_org_refused(app, live_server, people, emu,
                                                                         trusting_browser, monkeypatch):
    # The emulator serves HTTPS with its own CA; this browser trusts it to visit its login pages.
    browser = trusting_browser(emu)
    use_emulator(app, emu, monkeypatch)
    conn = seed_connection(people, emu)
    conn.api_used, conn.api_max = 300, 15000
    conn.status, conn.status_reason = "needs_reconnect", "Salesforce no longer accepts this connection's authorization."
    cursor = utcnow() - timedelta(days=2)
    plan = plan_for(people, conn, status="held", cursor_at=cursor, cursor_fingerprint="v1",
                    next_run_at=utcnow() + timedelta(minutes=30))
    db.session.commit()
    notifications.notify_connection_status(conn)
    base = live_server.url

    # A researcher reads the status, without Reconnect or Disconnect.
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base, "res@terapage.example")
    expect(page.locator("#incident-banner")).to_contain_text("needs to be reconnected")
    page.goto(f"{base}/operations/connections/{conn.id}")
    facts = page.locator("#connection-facts")
    expect(facts).to_contain_text(conn.org_id)
    expect(facts).to_contain_text("Acme Research")
    expect(facts).to_contain_text("admin@acme.example")
    expect(facts).to_contain_text(conn.instance_url)
    expect(page.locator("#connection-status")).to_have_text("Needs reconnect")
    expect(page.locator("#api-usage")).to_contain_text("300 of 15,000 (2.0%)")
    expect(page.locator("#last-sync")).to_have_text("never")
    expect(page.get_by_role("button", name="Reconnect")).to_have_count(0)
    expect(page.get_by_role("button", name="Disconnect")).to_have_count(0)
    context.close()

    # An admin reconnects, but signs in to the UAT sandbox: refused, nothing changes.
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base, "admin@terapage.example")
    page.goto(f"{base}/operations/connections/{conn.id}")
    page.get_by_role("button", name="Reconnect").click()
    salesforce_login(page, "admin@acme-uat.example", emu.users["admin@acme-uat.example"]["password"])
    expect(page.locator("body")).to_contain_text("You signed in to a different Salesforce org")
    expect(page.locator("body")).to_contain_text("Nothing was changed")
    db.session.expire_all()
    assert db.session.get(SalesforceConnection, conn.id).status == "needs_reconnect"
    context.close()

    # Again, signing in to the same org: accepted, the plan resumes with its cursor.
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base, "admin@terapage.example")
    page.goto(f"{base}/operations/connections/{conn.id}")
    page.get_by_role("button", name="Reconnect").click()
    salesforce_login(page, "admin@acme.example", emu.users["admin@acme.example"]["password"])
    expect(page.locator(".flash-success")).to_contain_text(f"Reconnected Acme Research ({conn.org_id})")
    notifications.sweep()  # the periodic incident sweep closes the recovered connection's incident
    page.goto(f"{base}/operations/connections/{conn.id}")
    expect(page.locator("#connection-status")).to_have_text("Connected")
    expect(page.locator("#incident-banner")).to_have_count(0)
    expect(page.locator("#org-id")).to_have_text(conn.org_id)
    expect(page.locator("#next-sync")).not_to_have_text("none scheduled")
    db.session.expire_all()
    plan = db.session.get(ImportPlan, plan.id)
    assert plan.status == "active" and plan.cursor_at == cursor and plan.cursor_fingerprint == "v1"
    context.close()


# --- a live run ----------------------------------------------------------------------------------------

def add_outcomes(run, start, n, outcome="imported"):
    for seq in range(start, start + n):
        db.session.add(RunOutcome(workspace_id=run.workspace_id, run_id=run.id, seq=seq, record_id=f"003{seq:012d}AAA",
                                  outcome=outcome, email=f"p{seq}@example.org", email_key=f"p{seq}@example.org",
                                  reason="No valid email or phone number." if outcome == "skipped" else None))
    run.fetched += n
    setattr(run, outcome, getattr(run, outcome) + n)
    run.heartbeat_at = utcnow()
    db.session.commit()


def test_a_live_run_updates_while_running_and_stops_polling_at_its_end(live_server, people, page):
    plan = plan_for(people)
    run = SyncRun(workspace_id=people.id, plan_id=plan.id, status="running", trigger="manual", started_at=utcnow(),
                  estimate_total=6, fetched=0)
    db.session.add(run)
    db.session.commit()
    tails = []
    page.on("request", lambda request: tails.append(time.monotonic()) if "/tail?" in request.url else None)
    sign_in(page, live_server.url, "res@terapage.example")
    page.goto(f"{live_server.url}/operations/runs/{run.id}")
    expect(page.locator("#run-progress-text")).to_have_text("0 of 6 records processed (0%)")

    add_outcomes(run, 1, 2)
    add_outcomes(run, 3, 1, "skipped")
    expect(page.locator("#live-rows tr")).to_have_count(3)
    expect(page.locator("#run-progress-text")).to_have_text("3 of 6 records processed (50%)")
    expect(page.locator("#run-progress")).to_have_attribute("value", "3")
    expect(page.locator("#live-rows")).to_contain_text("No valid email or phone number.")

    add_outcomes(run, 4, 3)
    run.status, run.finished_at = "succeeded", utcnow()
    db.session.commit()
    expect(page.locator("#run-status")).to_have_text("Succeeded")
    expect(page.locator("#run-progress-text")).to_have_text("6 of 6 records processed (100%)")
    # The full outcome table loads itself on the run-finished event and replaces the live log,
    # so a finished run shows each outcome once.
    expect(page.locator("#outcome-table tbody tr")).to_have_count(6)
    expect(page.locator("#live-log")).to_have_count(0)
    expect(page.locator("#run-live")).not_to_have_attribute("hx-trigger", re.compile("."))
    ended = len(tails)
    page.wait_for_timeout(2500)
    assert len(tails) == ended  # polling stopped


def test_a_real_sync_polled_to_its_end_then_filtered_and_exported(app, live_server, people, page, rconn, org):
    from services import runs
    ids = [org.create("Contact", {"FirstName": f"P{i}", "LastName": "Lee", "Email": f"p{i}@example.org",
                                  "SystemModstamp": stamp(i)}) for i in range(4)]
    nobody = org.create("Contact", {"LastName": "Nobody", "SystemModstamp": stamp(9)})
    plan = make_plan(people, make_connection(org, people), name="Real contacts")
    run = runs.request_run(plan, trigger="manual")
    sign_in(page, live_server.url, "admin@terapage.example")
    page.goto(f"{live_server.url}/operations/runs/{run.id}")
    expect(page.locator("#run-status")).to_have_text("Queued")
    expect(page.locator("#run-live")).to_have_attribute("hx-trigger", "every 1s")

    drain(app, rconn)  # a worker takes the job: the page follows it to the end

    expect(page.locator("#run-status")).to_have_text("Succeeded")
    expect(page.locator("#outcome-table tbody tr")).to_have_count(5)
    expect(page.locator("#run-counters [data-counter=imported]")).to_have_text("4")
    expect(page.locator("#run-counters [data-counter=skipped]")).to_have_text("1")

    page.get_by_label("Outcome").select_option("skipped")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#outcome-table tbody tr")).to_have_count(1)
    expect(page.locator("#outcome-table")).to_contain_text(nobody)
    expect(page).to_have_url(re.compile("outcome=skipped"))

    page.get_by_label("Outcome").select_option("")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#outcome-table tbody tr")).to_have_count(5)
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename == f"run-{run.id}-outcomes.csv"
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert [(r["record_id"], r["outcome"]) for r in rows] == [(i, "imported") for i in ids] + [(nobody, "skipped")]
    assert rows[-1]["reason"] == "No valid email or phone number."


# --- pause, resume, lookup ------------------------------------------------------------------------------

def test_pause_and_resume_a_plan(live_server, people, page):
    plan = plan_for(people, next_run_at=utcnow() + timedelta(minutes=20))
    sign_in(page, live_server.url, "admin@terapage.example")
    page.get_by_role("link", name="Imports").click()
    row = page.locator(f"#plan-{plan.id}")
    expect(row.locator(".plan-status")).to_have_text("Active")
    row.get_by_role("button", name="Pause").click()
    expect(row.locator(".plan-status")).to_have_text("Paused")
    expect(row).to_contain_text("Paused: no scheduled run starts until you resume it.")
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).status == "paused"
    row.get_by_role("button", name="Resume").click()
    expect(row.locator(".plan-status")).to_have_text("Active")
    expect(row.get_by_role("button", name="Pause")).to_be_visible()
    db.session.expire_all()
    resumed = db.session.get(ImportPlan, plan.id)
    assert resumed.status == "active" and resumed.next_run_at > utcnow()


def test_lookup_explains_a_decision_and_a_miss(live_server, people, page):
    plan = plan_for(people, filters={"op": "AND", "items": [
        {"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"}]})
    run = SyncRun(workspace_id=people.id, plan_id=plan.id, status="succeeded", started_at=utcnow(),
                  finished_at=utcnow(), fetched=1, skipped=1)
    db.session.add(run)
    db.session.flush()
    db.session.add(RunOutcome(workspace_id=people.id, run_id=run.id, seq=1, record_id="003000000000123AAA",
                              outcome="skipped", email="Kim@Example.org", email_key="kim@example.org",
                              detail={"flags": [{"code": "invalid_phone", "field": "phone", "raw": "123",
                                                 "reason": "The phone number is too short."}]},
                              reason="Opted out in Salesforce (HasOptedOutOfEmail)"))
    db.session.commit()
    sign_in(page, live_server.url, "res@terapage.example")
    page.goto(f"{live_server.url}/operations/lookup")
    page.get_by_label("Email, phone or Salesforce ID").fill("kim@EXAMPLE.org")
    page.get_by_role("button", name="Search").click()
    decisions = page.locator("#lookup-decisions tbody tr")
    expect(decisions).to_have_count(1)
    expect(decisions).to_contain_text("Skipped")
    expect(decisions).to_contain_text("Opted out in Salesforce (HasOptedOutOfEmail)")
    expect(decisions).to_contain_text("The phone number is too short.")  # the flag, once, in its own words
    expect(decisions).not_to_contain_text("phone: The phone number")
    expect(page).to_have_url(re.compile(r"q=kim"))

    page.get_by_label("Email, phone or Salesforce ID").fill("someone.else@example.org")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#lookup-not-found")).to_contain_text("the record does not match the plan's filters")
    expect(page.locator("#lookup-not-found")).to_contain_text("MailingCountry equals United Kingdom")

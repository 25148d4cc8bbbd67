"""The whole setup wizard in a real browser (issue 4, "Done when"), against the emulator loaded
with the coral-cloud plan's large variant and against the generated demo org:

an admin goes Workspace Administration → Configuration → Integrations → Salesforce → Connect,
signs in on the emulator's real login and consent pages (the browser trusts the emulator's CA),
picks Contact, accepts the suggested mapping (Company and the phone fallback set as offered),
filters on a country, previews the rows with their verdicts, chooses Sync daily + Import to
participant pool, saves, runs it now, watches the run finish (a worker drains the queue, as the
operations tests do) and finds exactly the imported people in the pool. Then a plan that invites
to a study (the save is refused until the consent confirmation is ticked; then who and when
show), and an Import only plan whose staged records are approved into the pool.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.extensions import db
from models import ImportPlan, Participant, Study, SyncRun
from services import accounts
from tests.app.wizard_support import emulator, seed_connection, use_emulator
from tests.conftest import shared_path
from tests.integration.sync_support import drain, rconn  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.redis]

PASSWORD = "wizard-admin-pass-1"
ADMIN = "ada@terapage.example"
SF_USER = "admin@acme.example"


@pytest.fixture
def workspace(app):
    ws = accounts.create_workspace("Acme Research")
    admin = accounts.create_user(ADMIN, "Ada Admin", PASSWORD)
    accounts.add_member(admin, ws, "admin")
    db.session.add(Study(workspace_id=ws.id, name="Checkout study", status="open", created_by_id=admin.id))
    db.session.commit()
    return ws


def _wire(app, emu, monkeypatch):
    """The app talks to this emulator: the connected app and its CA, as the demo configures it."""
    use_emulator(app, emu, monkeypatch)
    for key, value in {"SALESFORCE_CLIENT_ID": emu.client_id, "SALESFORCE_CLIENT_SECRET": emu.client_secret,
                       "SALESFORCE_CA_FILE": emu.ca_file, "SALESFORCE_BACKOFF": (0.0,)}.items():
        monkeypatch.setitem(app.config, key, value)


def _count(emu, where: str) -> int:
    """A SOQL COUNT() through the emulator's REST API."""
    return emu.salesforce(SF_USER).query(f"SELECT COUNT() FROM Contact WHERE {where}")["totalSize"]


def _pool_count(page, base, status="active") -> int:
    page.goto(f"{base}/participants/" + ("" if status == "active" else f"?status={status}"))
    return int(re.match(r"(\d+)", page.locator("#pool-count").inner_text()).group(1))


# --- the steps ---------------------------------------------------------------------------------------

def sign_in(page, base):
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".account-name")).to_be_visible()


def connect_through_salesforce(page, emu):
    page.get_by_role("link", name="Workspace Administration").click()
    page.get_by_role("link", name=re.compile("^Configuration")).click()
    page.get_by_role("link", name=re.compile("^Integrations")).click()
    page.locator("#integration-salesforce").get_by_role("link", name="Salesforce").click()
    page.get_by_role("link", name="Connect", exact=True).click()
    page.get_by_label("Connection name").fill("Production")
    page.get_by_label("Salesforce environment").select_option("mydomain")
    page.get_by_label("My Domain URL").fill(emu.url)
    page.get_by_role("button", name="Connect").click()
    # The emulator's own pages, over HTTPS validated against its CA.
    expect(page).to_have_url(re.compile("^" + re.escape(emu.url)))
    expect(page.locator("#login_form")).to_be_visible()
    page.get_by_label("Username").fill(SF_USER)
    page.get_by_label("Password").fill(emu.users[SF_USER]["password"])
    page.get_by_role("button", name="Log In").click()
    page.get_by_role("button", name="Allow").click()
    org_id = emu.users[SF_USER]["org_id"]
    expect(page.locator(".flash-success")).to_contain_text(f"({org_id}) as “Production”")
    expect(page.locator("#connections")).to_contain_text(org_id)


def wizard_to_schedule(page, *, country_op: str, country: str | None, expected: int, field: str = "MailingCountry"):
    """From the Salesforce page through steps 1–5, filtering on ``field`` (the country by default);
    returns the plan id."""
    page.get_by_role("link", name="Set up an import").click()
    page.get_by_role("button", name="Use Production").click()
    # 2. Object
    expect(page.locator("#step-heading")).to_contain_text("Choose the Salesforce object")
    page.locator("#object-rows tr[data-object=Contact]").get_by_role("radio").check()
    page.get_by_role("button", name="Continue to mapping").click()
    # 3. Mapping: the suggested defaults, plus Company and the phone fallback as offered.
    expect(page.locator("#step-heading")).to_contain_text("Map Salesforce fields")
    plan_id = int(re.search(r"/wizard/plans/(\d+)/", page.url).group(1))
    expect(page.locator("#f-email")).to_have_value("Email")
    expect(page.locator("#f-first_name")).to_have_value("FirstName")
    page.locator("#f-company").select_option("Account.Name")
    page.locator("#f-phone_fallback").select_option("MobilePhone")
    expect(page.locator("#f-country")).to_have_value("MailingCountry")
    # The wizard suggests the consent field but leaves its meaning to the person: say it.
    expect(page.locator("#f-consent")).to_have_value("Consent_Status__c")
    for value in ("Opted In", "Granted"):
        page.get_by_label(f"{value} means opted in").check()
    for value in ("Opted Out", "Withdrawn"):
        page.get_by_label(f"{value} means opted out").check()
    page.get_by_role("button", name="Save and continue to filters").click()
    # 4. Filters: the country (a live count of the matching records).
    expect(page.locator("#step-heading")).to_contain_text("Add filters and preview matched records")
    if not page.locator("#f-rows-0-field").count():
        page.get_by_role("button", name="Add a rule", exact=True).click()
    with page.expect_response(re.compile(r"/filters$")):  # a field change re-renders the rows
        page.locator("#f-rows-0-field").select_option(field)
    if page.locator("#f-rows-0-operator").input_value() != country_op:
        with page.expect_response(re.compile(r"/filters$")):
            page.locator("#f-rows-0-operator").select_option(country_op)
    if country is not None:
        with page.expect_response(re.compile(r"/filters/count$")):  # the debounced live count
            page.locator("#f-rows-0-value").fill(country)
    expect(page.locator("#match-count")).to_have_text(f"{expected:,}")
    expect(page.locator("#soql-where")).to_contain_text(field)
    page.get_by_role("button", name="Save filters and preview").click()
    # 5. Preview: rows with verdicts.
    expect(page.locator("#step-heading")).to_contain_text("Preview matched records")
    rows = page.locator("#preview-table tbody tr")
    expect(rows.first).to_be_visible()
    shown = rows.count()
    assert 0 < shown <= expected
    expect(page.locator("#preview-form .count")).to_have_text(
        f"Showing the first {shown} matching {'record' if shown == 1 else 'records'}.")
    assert all(v.strip() for v in rows.locator(".verdict").all_inner_texts())
    return plan_id


def run_now_and_finish(app, rconn, page, base, plan_name) -> SyncRun:  # noqa: F811
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
    row = page.locator("#plans tr", has_text=plan_name)
    row.get_by_role("button", name="Run now").click()
    expect(page.locator("#run-status")).to_have_text(re.compile("Queued|Running"))
    drain(app, rconn, ("sync",))
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=20000)
    db.session.expire_all()
    return db.session.scalars(db.select(SyncRun).order_by(SyncRun.id.desc())).first()


def choose_action(page, label):
    """The action radio re-renders the step (target and consent fields follow) when it changes."""
    radio = page.get_by_role("radio", name=label, exact=True)
    if not radio.is_checked():
        with page.expect_response(re.compile(r"/schedule$")):
            radio.check()
    expect(page.get_by_role("radio", name=label, exact=True)).to_be_checked()


# --- the journeys -------------------------------------------------------------------------------------

ORGS = {  # org -> how it is loaded, the first plan's country, the Import only plan's filter
    "coral-cloud-large": ({"data": [("fixtures", "sfdx-data", "coral-cloud", "data-plan-large.json")]},
                          "United States", ("MailingState", "equals", "New York")),
    "generated-demo-org": ({"generate": 600, "seed": 7}, "France", ("MailingCountry", "equals", "United Kingdom")),
}


@pytest.fixture(scope="module", params=list(ORGS))
def sf_org(request):
    """The emulator loaded once per module with each org; the journeys only read from it."""
    load, country, other = ORGS[request.param]
    if "data" in load:
        load = {"data": [shared_path(*parts) for parts in load["data"]]}
    server = emulator(**load).start()
    yield server, country, other
    server.stop()


def test_connect_and_import_to_the_pool_with_sync_daily(app, live_server, workspace, trusting_browser, rconn,  # noqa: F811
                                                         monkeypatch, sf_org):
    emu, country, _ = sf_org
    _wire(app, emu, monkeypatch)
    base = live_server.url
    page = trusting_browser(emu).new_context().new_page()
    sign_in(page, base)
    connect_through_salesforce(page, emu)

    matching = _count(emu, f"MailingCountry = '{country}'")
    assert matching > 0
    plan_id = wizard_to_schedule(page, country_op="equals", country=country, expected=matching)
    drain(app, rconn, ("default",))  # the preview totals job
    expect(page.locator("#t-total")).to_have_text(str(matching), timeout=15000)
    # the totals are the run's counters, in its words: read them all to compare after the run
    predicted = {key: int(page.locator(f"#t-{key}").inner_text())
                 for key in ("imported", "updated", "unchanged", "excluded", "skipped", "failed", "invited")}
    assert sum(v for k, v in predicted.items() if k != "invited") == matching
    page.get_by_role("button", name="Continue to schedule and action").click()
    expect(page.locator("#step-heading")).to_contain_text("Import, sync, and invite participants")
    page.get_by_label("Name of this import").fill(f"{country} contacts")
    page.get_by_role("radio", name="Sync daily").check()
    page.get_by_label("Daily at").fill("06:30")
    choose_action(page, "Import to participant pool")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("it is active")
    plan = db.session.get(ImportPlan, plan_id)
    db.session.refresh(plan)
    assert (plan.status, plan.schedule, plan.daily_time, plan.action) == ("active", "daily", "06:30", "pool")

    run = run_now_and_finish(app, rconn, page, base, f"{country} contacts")
    # Every matching record read once; the imported ones are exactly the preview's, and the pool's.
    assert run.plan_id == plan_id and run.fetched == matching
    assert run.imported + run.skipped + run.excluded == matching
    assert run.imported > 0
    assert {key: getattr(run, key) or 0 for key in predicted} == predicted
    expect(page.locator("#run-counters [data-counter=imported]")).to_have_text(str(run.imported))
    assert _pool_count(page, base) == run.imported
    assert db.session.scalar(db.select(db.func.count()).select_from(Participant)
                             .where(Participant.status == "active")) == run.imported


def test_invite_to_study_asks_consent_and_import_only_stages_for_approval(app, live_server, workspace,  # noqa: F811
                                                                           trusting_browser, rconn, monkeypatch,
                                                                           sf_org):
    emu, country, (field, operator, value) = sf_org
    _wire(app, emu, monkeypatch)
    seed_connection(workspace, emu, SF_USER)  # connected as in the test above, without its pages
    base = live_server.url
    page = trusting_browser(emu).new_context().new_page()
    sign_in(page, base)

    # Invite to study: refused until the consent confirmation is ticked; then who and when show.
    page.goto(f"{base}/admin/configuration/integrations/salesforce")
    wizard_to_schedule(page, country_op="equals", country=country,
                       expected=_count(emu, f"MailingCountry = '{country}'"))
    page.get_by_role("button", name="Continue to schedule and action").click()
    page.get_by_label("Name of this import").fill("Invite to checkout study")
    choose_action(page, "Invite to study")
    expect(page.locator("#consent-confirmation")).to_contain_text("Consent safeguard")
    page.get_by_label("Study (for Invite to study)").select_option(label="Checkout study")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#confirm_consent-error")).to_have_text("Confirm the consent statement before enabling auto-invite.")
    # A refused save persists nothing (not even the name): the plan is the workspace's newest, still a draft.
    db.session.expire_all()
    refused = db.session.scalar(db.select(ImportPlan).where(ImportPlan.workspace_id == workspace.id)
                                .order_by(ImportPlan.id.desc()))
    assert (refused.status, refused.consent_confirmed_at) == ("draft", None)  # the step kept, not activated
    assert refused.name != "Invite to checkout study"
    page.get_by_role("checkbox", name=re.compile("I confirm that the selected contacts can be invited")).check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("it is active")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
    page.locator("#plans tr", has_text="Invite to checkout study").get_by_role("link", name="Edit").click()
    page.goto(page.url.rsplit("/", 1)[0] + "/schedule")
    confirmed = page.locator("#consent-confirmed")
    expect(confirmed).to_contain_text(re.compile(r"Confirmed by Ada Admin on \d{2} \w{3} \d{4} \d{2}:\d{2} UTC"))
    expect(confirmed).to_contain_text("I confirm that the selected contacts can be invited")
    db.session.expire_all()
    invite = db.session.scalar(db.select(ImportPlan).where(ImportPlan.name == "Invite to checkout study"))
    assert (invite.status, invite.action, invite.target_study_id is not None) == ("active", "invite_study", True)
    assert invite.consent_confirmed_by_id is not None and invite.consent_confirmed_at is not None

    # Import only: the run stages the records; approving them brings exactly that many to the pool.
    matching = _count(emu, f"{field} = '{value}'")
    page.goto(f"{base}/admin/configuration/integrations/salesforce")
    wizard_to_schedule(page, field=field, country_op=operator, country=value, expected=matching)
    page.get_by_role("button", name="Continue to schedule and action").click()
    page.get_by_label("Name of this import").fill("Review first")
    choose_action(page, "Import only")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("it is active")
    before = _pool_count(page, base)
    run = run_now_and_finish(app, rconn, page, base, "Review first")
    assert run.fetched == matching and run.imported > 0
    assert _pool_count(page, base) == before  # staged: not in the pool yet
    staged = _pool_count(page, base, "staged")
    assert staged == run.imported
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
    page.locator("#plans tr", has_text="Review first").get_by_role("link", name="Edit").click()
    page.goto(page.url.rsplit("/", 1)[0] + "/schedule")
    page.get_by_role("link", name="Review staged records").click()
    expect(page.locator("#staged-table tbody tr")).to_have_count(staged)
    page.get_by_role("button", name=f"Approve all {staged}").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Approved {staged} staged participants")
    assert _pool_count(page, base) == before + staged
    assert _pool_count(page, base, "staged") == 0

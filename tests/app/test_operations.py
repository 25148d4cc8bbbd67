"""Operations pages and services: connection status, plans (pause, resume, delete), runs with the
live tail, keyset pages of outcomes, the streamed CSV, a participant's runs and the lookup."""
from __future__ import annotations

import csv
import io
import re
import types
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from core.extensions import db
from models import AuditEvent, ImportPlan, Participant, ParticipantSource, RunOutcome, SyncRun, Workspace
from models.types import utcnow
from services import operations as ops
from tests.support.web import make_world, post, sign_in


@pytest.fixture
def world(app):
    return make_world("Alpha")


def as_(client, world, column="admin"):
    sign_in(client, world["users"][column], world["workspace_id"])
    return client


def add_run(world, status="succeeded", outcomes=(), **values):
    now = utcnow()
    values.setdefault("started_at", now - timedelta(seconds=30))
    if status not in ("queued", "running"):
        values.setdefault("finished_at", now)
    run = SyncRun(workspace_id=world["workspace_id"], plan_id=world["ids"]["plan"], status=status, **values)
    db.session.add(run)
    db.session.flush()
    for seq, row in enumerate(outcomes, start=1):
        db.session.add(RunOutcome(workspace_id=world["workspace_id"], run_id=run.id, seq=seq, object_name="Contact",
                                  **row))
    db.session.commit()
    return run


def rid(n: int) -> str:
    """A valid 18-character Contact ID."""
    from sync.ids import to_18
    return to_18(f"003{n:012d}")


# --- connection status ---------------------------------------------------------------------------

def test_connection_status_page_shows_the_org_and_sync_facts(client, world):
    from models import SalesforceConnection
    conn = db.session.get(SalesforceConnection, world["ids"]["connection"])
    conn.org_name, conn.environment, conn.instance_url = "Acme Ltd", "production", "https://acme.my.salesforce.com"
    conn.sf_display_name, conn.api_used, conn.api_max = "Ops Admin", 1500, 15000
    conn.last_token_check_at = utcnow().replace(year=2026, month=1, day=2, hour=3, minute=4)
    plan = db.session.get(ImportPlan, world["ids"]["plan"])
    plan.status, plan.next_run_at = "active", utcnow().replace(year=2030, month=5, day=6, hour=7, minute=8)
    db.session.commit()
    db.session.get(SyncRun, world["ids"]["run"]).status = "failed"
    plan.last_success_at = utcnow().replace(year=2026, month=1, day=1, hour=0, minute=0)
    db.session.commit()
    run = add_run(world, finished_at=utcnow().replace(year=2026, month=2, day=3, hour=4, minute=5))
    assert run.status == "succeeded"

    html = as_(client, world, "researcher").get(f"/operations/connections/{conn.id}").get_data(as_text=True)
    assert "00D000000000001EAA" in html and "Acme Ltd" in html and "https://acme.my.salesforce.com" in html
    assert "Ops Admin" in html and "ops@alpha.example" in html
    assert "1,500 of 15,000 (10.0%)" in html
    assert "2030-05-06 07:08 UTC" in html            # next scheduled sync
    assert "2026-02-03 04:05 UTC" in html            # last successful sync (the later of run and plan)
    assert "2026-01-02 03:04 UTC" in html            # last token check
    assert "Reconnect" not in html and "Disconnect" not in html  # researchers read only

    html = as_(app_client(client), world, "researcher + manage_integrations").get(
        f"/operations/connections/{conn.id}").get_data(as_text=True)
    assert f'action="/integrations/salesforce/{conn.id}/reconnect"' in html
    assert f'action="/integrations/salesforce/{conn.id}/disconnect"' in html


def app_client(client):
    return client.application.test_client()


def test_another_workspaces_connection_and_run_answer_404(client, world):
    other = make_world("Beta")
    as_(client, world)
    assert client.get(f"/operations/connections/{other['ids']['connection']}").status_code == 404
    assert client.get(f"/operations/runs/{other['ids']['run']}").status_code == 404
    assert client.get(f"/operations/runs/{other['ids']['run']}/tail?after=0").status_code == 404
    assert client.get(f"/operations/runs/{other['ids']['run']}/outcomes.csv").status_code == 404


# --- plans ------------------------------------------------------------------------------------------

def test_plans_list_shows_object_schedule_next_run_and_last_run_status(client, world):
    plan = db.session.get(ImportPlan, world["ids"]["plan"])
    plan.status, plan.schedule, plan.daily_time = "active", "daily", "07:30"
    plan.next_run_at = utcnow().replace(year=2031, month=1, day=1, hour=6, minute=30)
    db.session.commit()
    failed = add_run(world, status="failed", reason="Salesforce said no")
    html = as_(client, world, "researcher").get("/operations/").get_data(as_text=True)
    row = re.search(rf'<tr id="plan-{plan.id}".*?</tr>', html, re.S).group(0)
    assert "Alpha contacts" in row and "Contact" in row and "daily at 07:30" in row
    assert "2031-01-01 06:30" in row
    assert f'/operations/runs/{failed.id}' in row and "badge-failed" in row
    assert "Pause" not in row  # no manage_imports


def test_pause_and_resume_through_htmx_swap_the_row(client, world):
    plan = db.session.get(ImportPlan, world["ids"]["plan"])
    plan.status, plan.schedule = "active", "hourly"
    db.session.commit()
    as_(client, world, "researcher + manage_imports")
    response = post(client, f"/operations/plans/{plan.id}/pause", headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith(f'<tr id="plan-{plan.id}"') and ">Paused<" in body and ">Resume<" in body
    assert db.session.get(ImportPlan, plan.id).status == "paused"

    before = utcnow()
    response = post(client, f"/operations/plans/{plan.id}/resume", headers={"HX-Request": "true"})
    db.session.expire_all()
    plan = db.session.get(ImportPlan, plan.id)
    assert plan.status == "active" and plan.status_reason is None
    assert before < plan.next_run_at <= before + timedelta(hours=1, seconds=5)
    assert ">Pause<" in response.get_data(as_text=True)
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.subject_type == "plan")
                                 .order_by(AuditEvent.id)).all()
    assert actions == ["plan.paused", "plan.resumed"]


def test_resume_refuses_a_held_plan_with_the_reason(client, world):
    plan = db.session.get(ImportPlan, world["ids"]["plan"])
    plan.status = "held"
    db.session.commit()
    as_(client, world)
    body = post(client, f"/operations/plans/{plan.id}/resume", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "held until its connection is reconnected" in body
    assert db.session.get(ImportPlan, plan.id).status == "held"


def test_pause_needs_manage_imports(client, world):
    as_(client, world, "researcher + manage_integrations")
    assert post(client, f"/operations/plans/{world['ids']['plan']}/pause").status_code == 403


def test_delete_asks_for_the_name_then_deletes_runs_but_keeps_participants(client, world):
    plan_id = world["ids"]["plan"]
    add_run(world, outcomes=[{"record_id": rid(1), "outcome": "imported", "participant_id": world["ids"]["participant"]}])
    as_(client, world, "researcher + manage_imports")
    page = client.get(f"/operations/plans/{plan_id}/delete").get_data(as_text=True)
    assert "Type the plan's name to confirm" in page and "2 runs" in page
    wrong = post(client, f"/operations/plans/{plan_id}/delete", data={"confirm_name": "nope"})
    assert wrong.status_code == 422 and db.session.get(ImportPlan, plan_id) is not None
    done = post(client, f"/operations/plans/{plan_id}/delete", data={"confirm_name": "Alpha contacts"})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan_id) is None
    assert db.session.scalar(select(func.count()).select_from(SyncRun)) == 0
    assert db.session.scalar(select(func.count()).select_from(RunOutcome)) == 0
    assert db.session.get(Participant, world["ids"]["participant"]) is not None
    assert db.session.scalar(select(ParticipantSource.plan_id)) is None


def test_delete_refused_while_a_run_is_active(client, world):
    add_run(world, status="running")
    as_(client, world)
    post(client, f"/operations/plans/{world['ids']['plan']}/delete", data={"confirm_name": "Alpha contacts"})
    assert db.session.get(ImportPlan, world["ids"]["plan"]) is not None


# --- runs: list, chart, tail ---------------------------------------------------------------------------

def test_plan_runs_lists_counts_duration_trigger_and_an_escaped_svg_chart(client, world):
    plan = db.session.get(ImportPlan, world["ids"]["plan"])
    plan.name = 'Evil <script>alert(1)</script> plan'
    db.session.commit()
    for i in range(35):
        add_run(world, fetched=i * 10, imported=i, trigger="schedule")
    html = as_(client, world, "researcher").get(f"/operations/plans/{plan.id}/runs").get_data(as_text=True)
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    assert svg.count("<rect") == 30                   # the last 30 runs
    assert "<script>" not in html
    assert "Evil &lt;script&gt;alert(1)&lt;/script&gt; plan" in svg
    assert "· 340 records</title>" in svg and "· 50 records</title>" in svg and "· 40 records</title>" not in svg
    assert "30.0 s" in html and ">schedule<" in html


def test_tail_returns_new_rows_and_keeps_polling_while_running(client, world):
    run = add_run(world, status="running", estimate_total=10, fetched=2, imported=2,
                  outcomes=[{"record_id": rid(1), "outcome": "imported"}, {"record_id": rid(2), "outcome": "imported"}])
    as_(client, world, "researcher")
    page = client.get(f"/operations/runs/{run.id}").get_data(as_text=True)
    assert f'hx-get="/operations/runs/{run.id}/tail?after=2"' in page and 'hx-trigger="every 1s"' in page
    assert '<progress id="run-progress" max="10" value="2">' in page

    db.session.add(RunOutcome(workspace_id=run.workspace_id, run_id=run.id, seq=3, record_id=rid(3),
                              outcome="skipped", reason="Invalid email"))
    run.fetched, run.skipped = 3, 1
    db.session.commit()
    response = client.get(f"/operations/runs/{run.id}/tail?after=2", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in body and f"tail?after=3" in body
    assert body.count('<tr data-seq=') == 1 and 'data-seq="3"' in body and "Invalid email" in body
    assert 'hx-swap-oob="beforeend:#live-rows"' in body
    assert "HX-Trigger" not in response.headers
    assert '3 of 10 records processed (30%)' in body


def test_tail_of_a_finished_run_stops_polling_and_signals_the_table(client, world):
    run = add_run(world, status="running", outcomes=[{"record_id": rid(1), "outcome": "imported"}])
    run.status, run.finished_at, run.fetched, run.imported = "succeeded", utcnow(), 1, 1
    db.session.commit()
    as_(client, world)
    response = client.get(f"/operations/runs/{run.id}/tail?after=0", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert "hx-trigger" not in body and "hx-get" not in body
    assert response.headers["HX-Trigger"] == "run-finished"
    assert 'data-seq="1"' in body  # the last rows still arrive with the final fragment


# --- outcomes: filter, search, keyset pages -----------------------------------------------------------

@pytest.fixture
def big_run(world):
    rows = []
    for n in range(1, 251):
        outcome = "skipped" if n % 5 == 0 else "imported"
        rows.append({"record_id": rid(n), "outcome": outcome, "email": f"Person{n}@Example.org",
                     "email_key": f"person{n}@example.org",
                     "reason": "The email address is not valid." if outcome == "skipped" else None})
    return add_run(world, outcomes=rows, fetched=250, imported=200, skipped=50)


def seqs(html):
    return [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', html)]


def test_outcome_pages_by_keyset_filter_and_search(client, world, big_run):
    as_(client, world, "researcher")
    first = client.get(f"/operations/runs/{big_run.id}").get_data(as_text=True)
    assert seqs(first) == list(range(1, 101))
    assert f"/operations/runs/{big_run.id}?after=100" in first
    third = client.get(f"/operations/runs/{big_run.id}?after=200", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert seqs(third) == list(range(201, 251)) and 'rel="next"' not in third
    assert f"before=201" in third
    back = client.get(f"/operations/runs/{big_run.id}?before=201", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert seqs(back) == list(range(101, 201))

    skipped = client.get(f"/operations/runs/{big_run.id}?outcome=skipped").get_data(as_text=True)
    assert seqs(skipped) == list(range(5, 251, 5))
    assert "Skipped (50)" in skipped and "Imported (200)" in skipped

    by_email = client.get(f"/operations/runs/{big_run.id}?q=PERSON17@example.ORG").get_data(as_text=True)
    assert seqs(by_email) == [17]
    by_id15 = client.get(f"/operations/runs/{big_run.id}?q={rid(42)[:15]}").get_data(as_text=True)
    assert seqs(by_id15) == [42]
    assert "outcome=skipped" in client.get(f"/operations/runs/{big_run.id}?outcome=skipped").get_data(as_text=True)


# --- CSV -------------------------------------------------------------------------------------------------

def test_csv_export_is_streamed_in_keyset_batches(client, world, big_run, monkeypatch):
    monkeypatch.setattr(ops, "EXPORT_BATCH", 100)
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "FROM run_outcomes" in statement and "GROUP BY" not in statement:
            statements.append(statement)

    as_(client, world, "researcher")
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = client.get(f"/operations/runs/{big_run.id}/outcomes.csv")
        # Nothing is read before the body is consumed: the body is a generator, run lazily.
        assert response.is_streamed and statements == []
        assert response.mimetype == "text/csv"
        assert f'filename="run-{big_run.id}-outcomes.csv"' in response.headers["Content-Disposition"]
        text = response.get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(ops.EXPORT_COLUMNS)
    assert len(rows) == 251 and [r[0] for r in rows[1:]] == [str(n) for n in range(1, 251)]
    assert rows[5][3] == "skipped" and rows[5][5] == "The email address is not valid."
    # 250 rows in batches of 100: three bounded keyset reads (seq > the last seen)
    assert len(statements) == 3
    assert all("LIMIT" in s.upper() and "run_outcomes.seq >" in s for s in statements), statements


def test_export_batches_fetch_bounded_pages(world, big_run):
    batches = list(ops.export_batches(big_run, batch_size=100))
    assert [len(b) for b in batches] == [100, 100, 50]
    assert batches[1][0][0] == 101 and batches[2][-1][0] == 250
    generator = ops.export_csv(big_run, batch_size=100)
    assert isinstance(generator, types.GeneratorType)
    assert next(generator).startswith("seq,record_id,")
    assert next(generator).count("\n") == 100


def test_csv_export_honours_filters_and_defuses_formulas(client, world):
    run = add_run(world, outcomes=[
        {"record_id": rid(1), "outcome": "skipped", "email": "=HYPERLINK(\"x\")", "reason": "+bad"},
        {"record_id": rid(2), "outcome": "imported", "email": "ok@example.org"}])
    as_(client, world)
    text = client.get(f"/operations/runs/{run.id}/outcomes.csv?outcome=skipped").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 2
    assert rows[1][6] == "'=HYPERLINK(\"x\")" and rows[1][5] == "'+bad"


# --- a participant's runs, the lookup -------------------------------------------------------------

def test_participant_page_loads_the_runs_that_touched_them(client, world):
    pid = world["ids"]["participant"]
    run = add_run(world, outcomes=[
        {"record_id": "003000000000001AAA", "outcome": "skipped", "reason": "Duplicate of a record within this run"},
        {"record_id": rid(9), "outcome": "updated", "participant_id": pid, "reason": "Email changed",
         "detail": {"invited": True}},
        {"record_id": rid(10), "outcome": "imported", "participant_id": None}])
    as_(client, world, "researcher")
    from core.extensions import db
    from models import Participant
    db.session.get(Participant, pid).attributes = {"tier": "Enterprise", "Region": None}
    db.session.commit()
    page = client.get(f"/participants/{pid}").get_data(as_text=True)
    assert f'hx-get="/operations/participants/{pid}/runs"' in page
    assert "<dt>Region</dt><dd><small>not set</small></dd>" in page and "None" not in page
    fragment = client.get(f"/operations/participants/{pid}/runs", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.count(f'/operations/runs/{run.id}"') == 2
    assert "Duplicate of a record within this run" in fragment and "Email changed" in fragment
    assert ">invited<" in fragment and rid(10) not in fragment


def test_lookup_by_email_shows_each_decision_and_duplicate_of_whom(client, world):
    pid = world["ids"]["participant"]
    add_run(world, outcomes=[{"record_id": rid(5), "outcome": "skipped", "email": "Pat@Alpha.example",
                              "email_key": "pat@alpha.example", "participant_id": pid,
                              "reason": "Same email as participant already in the pool"}])
    add_run(world, outcomes=[{"record_id": rid(5), "outcome": "excluded", "email": "pat@alpha.example",
                              "email_key": "pat@alpha.example", "reason": None}])
    as_(client, world, "researcher")
    html = client.get("/operations/lookup?q=PAT@alpha.example").get_data(as_text=True)
    assert html.count('class="decision decision-') == 2
    assert html.index("decision-excluded") < html.index("decision-skipped")  # newest run first
    assert "Same email as participant already in the pool" in html
    assert f'Same person as <a href="/participants/{pid}">Pat of Alpha</a>' in html
    assert "removed this record in the plan&#39;s preview" in html
    assert 'id="lookup-participants"' in html


def test_lookup_by_salesforce_id_and_phone(client, world):
    add_run(world, outcomes=[{"record_id": rid(77), "outcome": "failed", "reason": "Database refused the row",
                              "phone_key": "+442079460123"}])
    as_(client, world)
    by_id = client.get(f"/operations/lookup?q={rid(77)[:15]}").get_data(as_text=True)
    assert "Database refused the row" in by_id
    by_phone = client.get("/operations/lookup?q=020 7946 0123").get_data(as_text=True)
    assert "Database refused the row" in by_phone
    bad = client.get("/operations/lookup?q=003000000000001aaa").get_data(as_text=True)
    assert "last three characters do not match" in bad


def test_lookup_not_found_explains_the_filters(client, world):
    plan = db.session.get(ImportPlan, world["ids"]["plan"])
    plan.status = "active"
    plan.filters = {"op": "AND", "items": [{"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"},
                                           {"field": "Persona__c", "operator": "any_of", "value": ["Designer", "Engineer"]}]}
    db.session.commit()
    as_(client, world, "researcher")
    html = client.get("/operations/lookup?q=nobody@example.org", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert html.startswith('<section id="lookup-results"')
    assert "the record does not match the plan's filters" in html
    assert "MailingCountry equals United Kingdom AND Persona__c any of Designer, Engineer" in html


# --- retention ----------------------------------------------------------------------------------------

def test_purge_deletes_outcomes_of_runs_older_than_the_retention(app, world):
    from services.outcome_retention import purge_old_outcomes
    old = add_run(world, finished_at=utcnow() - timedelta(days=91),
                  outcomes=[{"record_id": rid(n), "outcome": "imported"} for n in range(1, 8)])
    recent = add_run(world, finished_at=utcnow() - timedelta(days=89), outcomes=[{"record_id": rid(1), "outcome": "imported"}])
    running = add_run(world, status="running", outcomes=[{"record_id": rid(2), "outcome": "imported"}])
    assert purge_old_outcomes(chunk=3) == 7
    remaining = db.session.scalars(select(RunOutcome.run_id).order_by(RunOutcome.run_id)).all()
    assert remaining == [recent.id, running.id]
    assert db.session.get(SyncRun, old.id) is not None  # the run and its counts stay
    app.config["OUTCOME_RETENTION_DAYS"] = 30
    try:
        assert purge_old_outcomes() == 1
    finally:
        app.config["OUTCOME_RETENTION_DAYS"] = 90


# --- the way into the wizard ----------------------------------------------------------------------

def test_imports_page_and_connection_page_offer_set_up_an_import(client, world):
    from models import SalesforceConnection
    new_url = "/wizard/new"
    for column, expected in (("admin", True), ("researcher + manage_imports", True), ("researcher", False)):
        as_(client, world, column)
        page = client.get("/operations/").get_data(as_text=True)
        assert ('id="set-up-import"' in page and new_url in page) is expected, column
        page = client.get(f"/operations/connections/{world['ids']['connection']}").get_data(as_text=True)
        assert ('id="set-up-import"' in page and f"{new_url}?connection={world['ids']['connection']}" in page) \
            is expected, column
    # without a connected connection there is nothing to set an import up on
    conn = db.session.get(SalesforceConnection, world["ids"]["connection"])
    conn.status = "needs_reconnect"
    db.session.commit()
    as_(client, world, "admin")
    assert 'id="set-up-import"' not in client.get("/operations/").get_data(as_text=True)
    assert 'id="set-up-import"' not in client.get(
        f"/operations/connections/{world['ids']['connection']}").get_data(as_text=True)
    # the Salesforce integration page has it too
    conn.status = "connected"
    db.session.commit()
    assert "Set up an import" in client.get("/admin/configuration/integrations/salesforce").get_data(as_text=True)


# --- the guide's words, one view of a finished run, incidents that say what they are about ------------

@pytest.mark.parametrize("action,schedule,daily,action_label,schedule_label", [
    ("import_only", "once", None, "Import only", "Import once"),
    ("pool", "manual", None, "Import to participant pool", "Sync manually"),
    ("invite_study", "hourly", None, "Invite to study", "Sync hourly"),
    ("invite_task", "daily", "07:30", "Invite to task", "Sync daily at 07:30"),
    ("community", "hourly", None, "Add to community", "Sync hourly"),
])
def test_plans_list_shows_action_and_schedule_in_the_guides_words(client, world, action, schedule, daily,
                                                                   action_label, schedule_label):
    plan = db.session.get(ImportPlan, world["ids"]["plan"])
    plan.action, plan.schedule, plan.daily_time = action, schedule, daily
    db.session.commit()
    as_(client, world, "researcher")
    html = client.get("/operations/").get_data(as_text=True)
    assert f'<td class="plan-action">{action_label}</td>' in html
    assert f'<td class="plan-schedule">{schedule_label}</td>' in html
    assert action_label in client.get(f"/operations/plans/{plan.id}/runs").get_data(as_text=True)


def test_a_finished_run_shows_the_outcomes_not_the_live_log_and_plurals_are_right(client, world):
    as_(client, world, "researcher")
    one = add_run(world, "succeeded", imported=1,
                  outcomes=[{"record_id": rid(1), "outcome": "imported"}])
    html = client.get(f"/operations/runs/{one.id}").get_data(as_text=True)
    assert 'id="outcome-table"' in html and 'id="live-log"' not in html and "Live log" not in html
    text = re.sub(r"\s+", " ", html)
    assert "1 records" not in text
    running = add_run(world, "running")
    html = client.get(f"/operations/runs/{running.id}").get_data(as_text=True)
    # while running: the live log, inside the section the full table replaces when the run ends
    section = html[html.index('<section id="outcomes"'):]
    assert 'id="live-log"' in section[:section.index("</section>")]


def test_incident_banner_names_the_plan_or_connection(client, world):
    from models import Incident
    db.session.add_all([
        Incident(workspace_id=world["workspace_id"], kind="needs_reconnect",
                 subject_key=f"connection:{world['ids']['connection']}", message="Reconnect please"),
        Incident(workspace_id=world["workspace_id"], kind="run_failed",
                 subject_key=f"plan:{world['ids']['plan']}", message="boom")])
    db.session.commit()
    as_(client, world, "researcher")
    html = client.get("/operations/").get_data(as_text=True)
    banner = html[html.index('id="incident-banner"'):]
    assert "Salesforce connection “Production”" in banner
    assert "Import “Alpha contacts”" in banner
    assert f'href="/operations/plans/{world["ids"]["plan"]}/runs"' in banner


def test_lookup_names_whom_a_record_skipped_by_the_engine_duplicates(client, world):
    """The engine never links a record it skips (its outcome names no participant): the lookup
    finds the participant holding the record's email instead of showing nothing."""
    from services.sync_sink import ActionTarget, DatabaseSink
    from sync.engine import run as run_engine
    from sync.fakes import ListLog, PagedSource, generated_contact
    from sync.plan import Plan

    plan = db.session.get(ImportPlan, world["ids"]["plan"])
    spec = Plan(org_id="00D000000000001EAA", object_name="Contact")

    def engine_run(records):
        run = SyncRun(workspace_id=world["workspace_id"], plan_id=plan.id, status="running")
        db.session.add(run)
        db.session.commit()
        sink = DatabaseSink(workspace_id=world["workspace_id"], plan_id=plan.id, run_id=run.id,
                            connection_id=None, target=ActionTarget.for_plan(plan))
        return run_engine(spec, PagedSource(records, page_size=100), sink, ListLog())

    engine_run([generated_contact(1), generated_contact(2)])
    first = db.session.scalar(select(Participant).where(Participant.email_key == "p00001@example.org"))
    summary = engine_run([{**generated_contact(2), "Email": "P00001@example.org"}])
    assert summary.counts["skipped"] == 1
    skipped = db.session.scalar(select(RunOutcome).where(RunOutcome.outcome == "skipped"))
    assert skipped.participant_id is None and "already belongs to another participant" in skipped.reason

    result = ops.lookup(db.session.get(Workspace, world["workspace_id"]), "p00001@example.org")
    assert result.duplicates_of == {skipped.id: first}
    as_(client, world, "researcher")
    html = client.get("/operations/lookup?q=p00001@example.org").get_data(as_text=True)
    assert f'Same person as <a href="/participants/{first.id}">{first.display_name}</a>' in html


def test_every_plan_run_and_connection_status_is_shown_in_words(client, world):
    """One mapping (core.labels, the status_label filter) wherever a status badge is shown: no
    raw code such as needs_reconnect or held on the pages."""
    from core.labels import STATUS_LABELS
    from models import SalesforceConnection
    plan = db.session.get(ImportPlan, world["ids"]["plan"])
    plan.status, plan.status_reason = "held", "Salesforce no longer accepts the token"
    conn = db.session.get(SalesforceConnection, world["ids"]["connection"])
    conn.status = "needs_reconnect"
    db.session.commit()
    interrupted = add_run(world, status="interrupted", reason="worker lost")
    add_run(world, status="partial")
    as_(client, world)
    pages = ["/", "/operations/", f"/operations/plans/{plan.id}/runs", f"/operations/connections/{conn.id}",
             f"/operations/runs/{interrupted.id}", "/admin/configuration/integrations/salesforce", "/wizard/new",
             "/operations/lookup?q=nobody@nowhere.example"]
    seen = set()
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        for code, text in re.findall(r'<span class="badge badge-([a-z_]+)[^"]*"[^>]*>([^<]*)</span>', html):
            if code in STATUS_LABELS:
                assert text == STATUS_LABELS[code], (url, code, text)
                seen.add(code)
        assert ">needs_reconnect<" not in html and ">held<" not in html, url
    assert {"held", "needs_reconnect", "interrupted", "partial"} <= seen
    lookup = client.get("/operations/lookup?q=nobody@nowhere.example").get_data(as_text=True)
    assert "On hold: reconnect needed" in lookup

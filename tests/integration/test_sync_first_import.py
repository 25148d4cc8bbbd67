"""A first import end to end: request_run -> RQ job on real Redis -> execute -> emulator -> DB."""
import pytest
from sqlalchemy import select

from core.extensions import db
from models import ImportPlan, Participant, ParticipantSource, SyncRun
from services import runs
from tests.integration.sync_support import (CONTACT_MAPPING, counts_add_up, drain, fresh, make_connection,
                                            make_plan, make_workspace, org, outcomes, participant_count,
                                            rconn, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]


def test_first_import_through_the_sync_queue(app, rconn, org):
    account = org.create("Account", {"Name": "Northwind Research Co"})
    ids = [org.create("Contact", {"FirstName": f"P{i}", "LastName": "Lee", "Email": f"P{i}@Example.org",
                                  "AccountId": account if i % 2 else None, "Phone": "(201) 555-0123",
                                  "SystemModstamp": stamp(i)}) for i in range(5)]
    no_contact = org.create("Contact", {"LastName": "Nobody", "SystemModstamp": stamp(10)})
    workspace = make_workspace()
    plan = make_plan(workspace, make_connection(org, workspace))

    run = runs.request_run(plan, trigger="manual")
    assert run.status == "queued" and run.job_id == f"sync-run-{run.id}"
    drain(app, rconn)

    run = fresh(SyncRun, run.id)
    assert (run.status, run.reason) == ("succeeded", None)
    assert (run.fetched, run.imported, run.skipped, run.updated, run.unchanged) == (6, 5, 1, 0, 0)
    assert counts_add_up(run) and run.full_read is True and run.api_calls >= 2
    assert run.worker_name and run.heartbeat_at is not None and run.finished_at is not None
    plan = fresh(ImportPlan, plan.id)
    assert plan.cursor_at.isoformat() == "2024-05-01T00:00:10+00:00"
    assert run.cursor_after == plan.cursor_at and plan.last_success_at is not None
    assert participant_count(workspace.id) == 5
    people = db.session.execute(select(Participant).order_by(Participant.first_name)).scalars().all()
    assert [p.email for p in people] == [f"P{i}@example.org" for i in range(5)]  # domain normalised
    assert [p.email_key for p in people] == [f"p{i}@example.org" for i in range(5)]
    assert [p.company for p in people] == [None, "Northwind Research Co"] * 2 + [None]
    assert {p.status for p in people} == {"active"}
    # Phone alone never merges people whose emails differ.
    assert {p.phone_e164 for p in people} == {"+12015550123"}
    links = db.session.execute(select(ParticipantSource.record_id)).scalars().all()
    assert sorted(links) == sorted(ids)
    rows = outcomes(run.id)
    assert [r.seq for r in rows] == list(range(1, 7))
    assert [(r.record_id, r.outcome) for r in rows] == [(i, "imported") for i in ids] + [(no_contact, "skipped")]
    assert rows[-1].reason == "No valid email or phone number."
    assert rows[0].email_key == "p0@example.org" and rows[0].participant_id is not None
    assert runs.tail(run.id, 4) == rows[4:]

    # The second run reads from the cursor (look-back 0 in tests): the record at the cursor again.
    second = runs.request_run(plan)
    drain(app, rconn)
    second = fresh(SyncRun, second.id)
    assert (second.status, second.full_read, second.fetched, second.unchanged, second.skipped) == \
        ("succeeded", False, 1, 0, 1)
    assert participant_count(workspace.id) == 5


def test_import_only_stages_and_cli_prints_the_summary(app, rconn, org):
    org.create("Contact", {"LastName": "Staged", "Email": "s@example.org", "SystemModstamp": stamp(1)})
    workspace = make_workspace()
    plan = make_plan(workspace, make_connection(org, workspace), action="import_only",
                     mapping=CONTACT_MAPPING)
    result = app.test_cli_runner().invoke(args=["sync", "run", str(plan.id)])
    assert result.exit_code == 0, result.output
    run = db.session.execute(select(SyncRun)).scalars().one()
    assert result.output.strip() == (
        f"Run {run.id} of plan {plan.id}: succeeded (fetched 1, imported 1, updated 0, unchanged 0, "
        f"skipped 0, failed 0, excluded 0, invited 0, left 0)")
    assert run.trigger == "cli" and run.job_id is None
    assert db.session.execute(select(Participant.status)).scalars().all() == ["staged"]
    listing = app.test_cli_runner().invoke(args=["sync", "list"])
    assert listing.exit_code == 0
    assert listing.output.strip() == (f"{plan.id}\tSalesforce import\tactive\tmanual\tnext -\t"
                                      f"last run {run.id} succeeded")


def test_cli_exits_non_zero_when_the_run_fails(app, rconn, org):
    workspace = make_workspace()
    plan = make_plan(workspace, make_connection(org, workspace),
                     filters={"op": "AND", "items": [{"field": "Email", "operator": "equals", "value": "x"}]})
    org.admin.add_fault(type="error", status=500, path="/query", from_call=1)
    result = app.test_cli_runner().invoke(args=["sync", "run", str(plan.id)])
    assert result.exit_code == 1
    run = db.session.execute(select(SyncRun)).scalars().one()
    assert run.status == "failed"
    assert run.reason.startswith("Salesforce unavailable: ")
    assert result.output.strip().endswith(f"; reason: {run.reason}")

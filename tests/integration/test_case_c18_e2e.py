"""C18 end to end: two real `flask worker` processes get two jobs of one plan at once (two
schedulers both enqueued it). Exactly one run imports; the other is recorded skipped."""
import pytest
from sqlalchemy import select

from core.extensions import db
from core.queues import enqueue
from models import ImportPlan, SyncRun
from services import runs
from tests.conftest import load_case
from tests.integration.sync_support import (distinct_email_keys, fresh, make_connection, make_plan, make_workspace,
                                            org, participant_count, participant_for, put, rconn, stamp,
                                            start_worker, stop_worker, wait_for)

pytestmark = [pytest.mark.redis, pytest.mark.slow]
__all__ = ["org", "rconn"]
CASE = load_case("C18")


def queue_run(plan) -> int:
    """What a scheduler does once it decided the plan is due: a queued row and its job."""
    run = SyncRun(workspace_id=plan.workspace_id, plan_id=plan.id, trigger="schedule", status="queued")
    db.session.add(run)
    db.session.commit()
    job = enqueue("jobs.sync.run_sync", run.id, queue="sync", job_id=f"sync-run-{run.id}")
    run.job_id = job.id
    db.session.commit()
    return run.id


def test_c18_two_workers_two_jobs_one_import(app, rconn, org, database_url):
    inp, expected = CASE["input"], CASE["expected"]
    existing = inp["existing_participant"]
    put(org, "Contact", {"FirstName": "Ana", "LastName": "Ruiz", "Email": existing["email"],
                         "SystemModstamp": stamp(0)}, record_id=existing["source_id"])
    workspace = make_workspace(region="US")
    plan = make_plan(workspace, make_connection(org, workspace), schedule="hourly")
    assert runs.run_inline(plan.id).status == "succeeded"
    cursor_before = fresh(ImportPlan, plan.id).cursor_at
    for i, change in enumerate(inp["new_changes_in_salesforce"]):
        fields = {k: v for k, v in change.items() if k not in ("attributes", "Id")}
        fields["SystemModstamp"] = stamp(60 + i)
        if change["Id"] == existing["source_id"]:
            org.update("Contact", change["Id"], fields)
        else:
            put(org, "Contact", fields, record_id=change["Id"])
    # The first job to start holds the plan while its query is slow; the other starts meanwhile.
    org.admin.add_fault(type="slow", seconds=3, path="/query", times=1)
    workers = [start_worker(app, database_url, "--no-scheduler") for _ in range(2)]
    try:
        run_ids = [queue_run(plan), queue_run(plan)]
        done = wait_for(lambda: all(s in runs.FINISHED for s in (fresh(SyncRun, r).status for r in run_ids)) or None,
                        timeout=90)
        assert done
    finally:
        for worker in workers:
            stop_worker(worker)
    finished = sorted((fresh(SyncRun, r) for r in run_ids), key=lambda r: r.status)
    skipped, imported = finished
    assert (skipped.status, skipped.reason) == ("skipped", runs.ANOTHER_RUN)
    assert skipped.fetched == 0 and skipped.cursor_after is None
    assert imported.status == "succeeded"
    assert (imported.imported, imported.updated) == (expected["participants_created"], expected["participants_updated"])
    assert participant_count(workspace.id) == distinct_email_keys(workspace.id) == 3
    assert sum(1 for r in finished if r.cursor_after is not None) == expected["cursor_writes"]
    from sync.cursor import parse_datetime
    newest = max(parse_datetime(org.get(c["Id"])["SystemModstamp"]) for c in inp["new_changes_in_salesforce"])
    assert fresh(ImportPlan, plan.id).cursor_at == newest != cursor_before
    assert participant_for(existing["source_id"]).phone_e164 == "+12015550150"
    assert len(db.session.execute(select(SyncRun.worker_name).where(SyncRun.worker_name.is_not(None))
                                  .where(SyncRun.trigger == "schedule")).scalars().all()) == 1

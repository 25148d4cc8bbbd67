"""Concurrency: two plans of one workspace racing on the same people, a second trigger while a run
is active, and the worker-lost sweep (stale heartbeat, failed job) releasing the plan's lock."""
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from core.extensions import db
from core.queues import enqueue
from models import Participant, ParticipantSource, SyncRun
from services import runs
from tests.integration.sync_support import (CONTACT_MAPPING, LEAD_MAPPING, distinct_email_keys, fresh,
                                            make_connection, make_plan, make_workspace, org, participant_count,
                                            put, rconn, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]


def test_two_plans_racing_on_the_same_people_create_each_person_once(app, rconn, org):
    n = 300
    for i in range(n):
        email = f"Person{i:03d}@Example.org"
        put(org, "Contact", {"LastName": f"C{i}", "Email": email, "SystemModstamp": stamp(i)})
        put(org, "Lead", {"LastName": f"L{i}", "Company": "Acme", "Status": "Open", "Email": email.upper(),
                          "SystemModstamp": stamp(i)})
    workspace = make_workspace()
    connection = make_connection(org, workspace)
    plans = [make_plan(workspace, connection, "Contact", CONTACT_MAPPING, name="Contacts"),
             make_plan(workspace, connection, "Lead", LEAD_MAPPING, name="Leads")]
    barrier = threading.Barrier(2)
    results, errors = {}, []

    def run(plan_id):
        try:
            with app.app_context():
                barrier.wait()
                run = runs.run_inline(plan_id)
                results[plan_id] = (run.status, run.reason, run.imported, run.updated, run.failed)
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p.id,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    statuses = sorted(results.values())
    assert [s[0] for s in statuses] == ["succeeded", "succeeded"]
    assert sum(s[2] for s in statuses) == n and sum(s[3] for s in statuses) == n
    assert sum(s[4] for s in statuses) == 0
    assert participant_count(workspace.id) == distinct_email_keys(workspace.id) == n
    per_person = db.session.execute(select(func.count()).select_from(ParticipantSource)
                                    .group_by(ParticipantSource.participant_id)).scalars().all()
    assert per_person == [2] * n  # each person linked to their Contact and their Lead


def test_triggers_while_a_run_is_active_return_it_and_record_nothing(app, rconn, org):
    """A double-clicked "Run now" (C18's "or not recorded at all"): one run row, one job."""
    workspace = make_workspace()
    plan = make_plan(workspace, make_connection(org, workspace))
    first = runs.request_run(plan, trigger="wizard")
    second = runs.request_run(plan, trigger="manual")
    third = runs.request_run(plan, trigger="manual")
    assert first.status == "queued" and second.id == third.id == first.id
    assert db.session.query(SyncRun).filter_by(plan_id=plan.id).count() == 1
    assert runs.active_run(plan).id == first.id
    assert rconn.llen("rq:queue:sync") == 1


def _running(plan, heartbeat_age: float, job_id=None) -> SyncRun:
    now = datetime.now(timezone.utc)
    run = SyncRun(workspace_id=plan.workspace_id, plan_id=plan.id, status="running", job_id=job_id,
                  queued_at=now - timedelta(seconds=heartbeat_age + 1), started_at=now - timedelta(seconds=heartbeat_age),
                  heartbeat_at=now - timedelta(seconds=heartbeat_age))
    db.session.add(run)
    db.session.commit()
    return run


def test_sweep_marks_stale_runs_worker_lost_and_releases_the_lock(app, rconn, org):
    workspace = make_workspace()
    connection = make_connection(org, workspace)
    stale_plan, live_plan, failed_plan = (make_plan(workspace, connection, name=n) for n in ("a", "b", "c"))
    bound = app.config["WORKER_LOST_AFTER_SECONDS"]
    stale = _running(stale_plan, bound + 2)
    assert runs._lock(stale_plan.id, stale.id).acquire()
    live = _running(live_plan, 0)
    job = enqueue("builtins:print", "x", queue="sync", job_id="dead-job")
    job.set_status("failed")
    failed = _running(failed_plan, 0, job_id="dead-job")

    from jobs.sync import sweep_lost_runs
    assert sorted(sweep_lost_runs()) == sorted([stale.id, failed.id])
    assert [(fresh(SyncRun, r.id).status, fresh(SyncRun, r.id).reason) for r in (stale, live, failed)] == [
        ("interrupted", "worker lost"), ("running", None), ("interrupted", "worker lost")]
    assert rconn.get("terapage:lock:plan:%d" % stale_plan.id) is None
    assert sweep_lost_runs() == []
    # The next run of the swept plan proceeds.
    assert runs.request_run(stale_plan).status == "queued"


def test_the_next_run_of_a_plan_sweeps_its_lost_run_first(app, rconn, org):
    workspace = make_workspace()
    plan = make_plan(workspace, make_connection(org, workspace))
    stale = _running(plan, app.config["WORKER_LOST_AFTER_SECONDS"] + 2)
    assert runs._lock(plan.id, stale.id).acquire()
    put(org, "Contact", {"LastName": "Solo", "Email": "solo@example.org", "SystemModstamp": stamp(0)})
    run = runs.run_inline(plan.id)
    assert (run.status, run.imported) == ("succeeded", 1)
    assert (fresh(SyncRun, stale.id).status, fresh(SyncRun, stale.id).reason) == ("interrupted", "worker lost")
    assert db.session.execute(select(func.count()).select_from(Participant)).scalar_one() == 1

"""Schedules in the database: next run times (DST-safe daily in the workspace zone), the periodic
tick that queues due plans exactly once across schedulers, API caps, daily reconciliations."""
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core.extensions import db
from models import ImportPlan, SyncRun
from services import runs
from services.schedules import compute_next_run, enqueue_due_plans, enqueue_reconciliations
from tests.integration.sync_support import (drain, fresh, make_connection, make_plan, make_workspace, org, put,
                                            rconn, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]
UTC = timezone.utc


def at(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("daily_time, now, expected", [
    ("07:30", at(2025, 3, 29, 8, 0), at(2025, 3, 30, 6, 30)),    # the spring change in London
    ("07:30", at(2025, 3, 30, 6, 0), at(2025, 3, 30, 6, 30)),
    ("07:30", at(2025, 3, 30, 6, 30), at(2025, 3, 31, 6, 30)),   # strictly after now
    ("07:30", at(2025, 10, 25, 7, 0), at(2025, 10, 26, 7, 30)),  # the autumn change
    ("01:30", at(2025, 3, 30, 0, 0), at(2025, 3, 30, 1, 30)),    # inside the gap: once, same instant
    ("01:30", at(2025, 3, 30, 1, 30), at(2025, 3, 31, 0, 30)),
])
def test_daily_runs_at_the_workspace_local_time(app, daily_time, now, expected):
    workspace = make_workspace(tz="Europe/London")
    plan = ImportPlan(workspace_id=workspace.id, schedule="daily", daily_time=daily_time)
    assert compute_next_run(plan, workspace, now) == expected


def test_manual_once_hourly(app, rconn, org):
    workspace = make_workspace()
    now = at(2025, 1, 1, 9, 0)
    plan = make_plan(workspace, make_connection(org, workspace), schedule="once")
    assert compute_next_run(plan, workspace, now) == now
    put(org, "Contact", {"LastName": "A", "Email": "a@example.org", "SystemModstamp": stamp(0)})
    runs.run_inline(plan.id)
    assert compute_next_run(plan, workspace, now) is None
    plan.schedule = "hourly"
    assert compute_next_run(plan, workspace, now) == now + timedelta(hours=1)
    plan.schedule = "manual"
    assert compute_next_run(plan, workspace, now) is None


def test_tick_queues_each_due_plan_once_across_schedulers(app, rconn, org):
    workspace = make_workspace()
    connection = make_connection(org, workspace)
    broken = make_connection(org, workspace, name="Sandbox")
    broken.status = "needs_reconnect"
    db.session.commit()
    now = datetime.now(UTC)
    due = now - timedelta(minutes=1)
    plans = {
        "due": make_plan(workspace, connection, schedule="hourly", next_run_at=due),
        "held": make_plan(workspace, connection, schedule="hourly", next_run_at=due, status="held"),
        "paused": make_plan(workspace, connection, schedule="hourly", next_run_at=due, status="paused"),
        "later": make_plan(workspace, connection, schedule="hourly", next_run_at=now + timedelta(minutes=5)),
        "reconnect": make_plan(workspace, broken, schedule="hourly", next_run_at=due),
        "once": make_plan(workspace, connection, schedule="once", next_run_at=due),
    }
    barrier = threading.Barrier(4)
    requested = []

    def tick():
        with app.app_context():
            barrier.wait()
            for _ in range(3):
                requested.extend(enqueue_due_plans(now))
            db.session.remove()

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    queued = db.session.execute(select(SyncRun.plan_id, SyncRun.trigger, SyncRun.status)
                                .order_by(SyncRun.plan_id)).all()
    assert queued == [(plans["due"].id, "schedule", "queued"), (plans["once"].id, "schedule", "queued")]
    assert sorted(requested) == sorted(r.id for r in db.session.execute(select(SyncRun)).scalars())
    assert fresh(ImportPlan, plans["due"].id).next_run_at == now + timedelta(hours=1)
    assert fresh(ImportPlan, plans["once"].id).next_run_at is None
    assert fresh(ImportPlan, plans["held"].id).next_run_at == due
    assert rconn.llen("rq:queue:sync") == 2


def test_api_caps_skip_a_scheduled_run_with_the_reason(app, rconn, org):
    for i in range(5):
        put(org, "Contact", {"LastName": f"P{i}", "Email": f"p{i}@example.org", "SystemModstamp": stamp(i)})
    workspace = make_workspace()
    connection = make_connection(org, workspace)
    per_run = make_plan(workspace, connection, per_run_api_cap=1, name="run cap")
    run = runs.request_run(per_run, trigger="schedule")
    drain(app, rconn)
    run = fresh(SyncRun, run.id)
    assert (run.status, run.fetched) == ("skipped", 0)
    assert run.reason == "Skipped: this run would need about 2 Salesforce API calls; the plan allows 1 per run"
    manual = runs.request_run(per_run, trigger="manual")  # people may still run it by hand
    drain(app, rconn)
    assert fresh(SyncRun, manual.id).status == "succeeded"

    per_day = make_plan(workspace, connection, name="day cap")
    runs.run_inline(per_day.id)
    used = fresh(SyncRun, db.session.execute(select(SyncRun.id).where(SyncRun.plan_id == per_day.id)).scalar_one())
    assert used.api_calls == 2  # the describe and the query
    per_day = fresh(ImportPlan, per_day.id)
    per_day.per_day_api_cap = 3
    db.session.commit()
    capped = runs.request_run(per_day, trigger="schedule")
    drain(app, rconn)
    capped = fresh(SyncRun, capped.id)
    assert capped.status == "skipped"
    assert capped.reason == ("Skipped: the plan has used 2 of its 3 Salesforce API calls "
                             "today and this run would need about 2")


def test_daily_reconciliation_is_queued_once(app, rconn, org):
    workspace = make_workspace()
    connection = make_connection(org, workspace)
    put(org, "Contact", {"LastName": "A", "Email": "a@example.org", "SystemModstamp": stamp(0)})
    plan = make_plan(workspace, connection, schedule="daily")
    never_ran = make_plan(workspace, connection, name="never ran", schedule="daily")
    assert enqueue_reconciliations() == []  # nothing has synced yet
    runs.run_inline(plan.id)
    first = enqueue_reconciliations()
    assert len(first) == 1 and enqueue_reconciliations() == []
    drain(app, rconn)
    run = fresh(SyncRun, first[0])
    assert (run.kind, run.trigger, run.status) == ("reconcile", "schedule", "succeeded")
    assert enqueue_reconciliations() == []  # reconciled today
    assert fresh(ImportPlan, never_ran.id).last_reconciled_at is None


def test_periodic_tasks_are_registered(app):
    from jobs.scheduler import load_tasks
    names = {t.name: t.every for t in load_tasks()}
    assert {k: names[k] for k in ("sync.enqueue_due_plans", "sync.sweep_lost_runs",
                                  "sync.enqueue_reconciliations")} == {
        "sync.enqueue_due_plans": 30, "sync.sweep_lost_runs": 30, "sync.enqueue_reconciliations": 3600}


def test_reconciliation_only_for_active_plans_that_sync_on_their_own(app, rconn, org):
    """"Sync manually" and "Import once" plans are never run by the daily reconciliation, nor
    paused, held or draft ones: only active hourly and daily plans."""
    workspace = make_workspace()
    connection = make_connection(org, workspace)
    synced = datetime.now(UTC) - timedelta(days=2)
    plans = {}
    for name, schedule, status in [("manual", "manual", "active"), ("once", "once", "active"),
                                   ("hourly", "hourly", "active"), ("daily", "daily", "active"),
                                   ("paused", "daily", "paused"), ("held", "hourly", "held"),
                                   ("draft", "daily", "draft")]:
        plans[name] = make_plan(workspace, connection, name=name, schedule=schedule, status=status,
                                last_success_at=synced)
    requested = enqueue_reconciliations()
    queued = db.session.execute(select(SyncRun).where(SyncRun.id.in_(requested))).scalars().all()
    assert {(r.plan_id, r.kind, r.trigger) for r in queued} == {
        (plans["hourly"].id, "reconcile", "schedule"), (plans["daily"].id, "reconcile", "schedule")}
    assert db.session.query(SyncRun).count() == 2

"""Plan schedules, kept in the database: when each plan runs next, and the tick that starts them.

``compute_next_run(plan, workspace, now)``:
    manual -> None (only people start it);  once -> ``now`` until the plan has run, then None;
    hourly -> now + 1 hour;  daily -> the next ``daily_time`` (HH:MM) in the workspace's time
    zone strictly after ``now``, as a UTC instant (zoneinfo does the DST arithmetic: 07:30 stays
    07:30 local across the change; a time inside a spring-forward gap runs at the equivalent
    instant, once).

``enqueue_due_plans(now)`` (a periodic task) queues a run of every active plan whose
``next_run_at`` has come and whose connection is connected (held and paused plans wait). Several
schedulers never double-enqueue: the tick holds a lock, and ``next_run_at`` is moved with a
compare-and-set before the run is requested; the per-plan run lock does the rest.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import func, select, update

from core.extensions import db
from core.queues import run_lock
from models import ImportPlan, SalesforceConnection, SyncRun, Workspace
from models.integrations import CONNECTION_CONNECTED
from models.plans import PLAN_ACTIVE
from models.runs import RUN_ACTIVE, RUN_SKIPPED

TICK_LOCK = "scheduler:enqueue-due-plans"
RECONCILE_LOCK = "scheduler:enqueue-reconciliations"
DEFAULT_RECONCILE_SECONDS = 24 * 3600
RECONCILED_SCHEDULES = ("hourly", "daily")  # plans that sync on their own


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _zone(workspace: Workspace | None) -> ZoneInfo:
    try:
        return ZoneInfo((workspace.timezone if workspace else None) or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _daily_time(value: str | None) -> time:
    hours, minutes = (value or "00:00").split(":")
    return time(int(hours), int(minutes))


def compute_next_run(plan: ImportPlan, workspace: Workspace | None, now: datetime | None = None) -> datetime | None:
    now = now or _utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    schedule = plan.schedule or "manual"
    if schedule == "manual":
        return None
    if schedule == "once":
        has_run = plan.id is not None and db.session.execute(select(func.count()).select_from(SyncRun).where(
            SyncRun.plan_id == plan.id, SyncRun.status != RUN_SKIPPED)).scalar_one()
        return None if has_run else now
    if schedule == "hourly":
        return now + timedelta(hours=1)
    if schedule == "daily":
        zone = _zone(workspace)
        at = _daily_time(plan.daily_time)
        local_day = now.astimezone(zone).date()
        for offset in range(0, 3):
            day = local_day + timedelta(days=offset)
            candidate = datetime.combine(day, at, tzinfo=zone).astimezone(timezone.utc)
            if candidate > now:
                return candidate
    raise ValueError(f"unknown schedule {schedule!r}")


def due_plans(now: datetime) -> list[ImportPlan]:
    return list(db.session.execute(
        select(ImportPlan).join(SalesforceConnection, SalesforceConnection.id == ImportPlan.connection_id)
        .where(ImportPlan.status == PLAN_ACTIVE, ImportPlan.next_run_at.is_not(None),
               ImportPlan.next_run_at <= now, SalesforceConnection.status == CONNECTION_CONNECTED)
        .order_by(ImportPlan.next_run_at, ImportPlan.id)).scalars())


def enqueue_due_plans(now: datetime | None = None) -> list[int]:
    """Queue a run of every due plan; return the ids of the runs requested."""
    from services.runs import request_run
    now = now or _utcnow()
    lock = run_lock(TICK_LOCK, ttl=60)
    if not lock.acquire():
        return []  # another scheduler is ticking right now
    try:
        requested = []
        for plan in due_plans(now):
            workspace = db.session.get(Workspace, plan.workspace_id)
            previous = plan.next_run_at
            upcoming = compute_next_run(plan, workspace, now) if plan.schedule != "once" else None
            moved = db.session.execute(update(ImportPlan).where(
                ImportPlan.id == plan.id, ImportPlan.next_run_at == previous,
            ).values(next_run_at=upcoming)).rowcount
            db.session.commit()
            if not moved:
                continue  # another scheduler took it
            requested.append(request_run(plan, trigger="schedule").id)
        return requested
    finally:
        lock.release()


def enqueue_reconciliations(now: datetime | None = None) -> list[int]:
    """Queue a reconciliation of every active plan that syncs on its own (hourly or daily) and
    was not reconciled for a day (by default). "Sync manually" and "Import once" plans are only
    ever run when someone asks; paused, held and draft plans not at all."""
    from services.runs import request_run
    now = now or _utcnow()
    every = int(current_app.config.get("RECONCILE_EVERY_SECONDS", DEFAULT_RECONCILE_SECONDS))
    since = now - timedelta(seconds=every)
    lock = run_lock(RECONCILE_LOCK, ttl=60)
    if not lock.acquire():
        return []
    try:
        requested = []
        plans = db.session.execute(
            select(ImportPlan).join(SalesforceConnection, SalesforceConnection.id == ImportPlan.connection_id)
            .where(ImportPlan.status == PLAN_ACTIVE, ImportPlan.schedule.in_(RECONCILED_SCHEDULES),
                   ImportPlan.last_success_at.is_not(None),
                   SalesforceConnection.status == CONNECTION_CONNECTED)
            .order_by(ImportPlan.id)).scalars().all()
        for plan in plans:
            if plan.last_reconciled_at is not None and plan.last_reconciled_at > since:
                continue
            recent = db.session.execute(select(func.count()).select_from(SyncRun).where(
                SyncRun.plan_id == plan.id,
                (SyncRun.status.in_(RUN_ACTIVE)) | ((SyncRun.kind == "reconcile") & (SyncRun.queued_at > since)),
            )).scalar_one()
            if recent:
                continue
            requested.append(request_run(plan, trigger="schedule", kind="reconcile").id)
        return requested
    finally:
        lock.release()

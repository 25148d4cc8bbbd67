"""Sync runs: request (enqueue), execute (the job's body), inline (CLI), sweep, tail.

A run is an RQ job on the "sync" queue (``jobs.sync.run_sync(run_id)``) with a row in
``sync_runs``. One active run per plan, however many workers and schedulers run:

* ``request_run`` creates a queued row and enqueues the job. When a run of the plan is already
  queued or running it neither enqueues nor records anything: it returns that active run (a
  double-clicked "Run now" leaves no junk rows), so callers show the run that is going on.
* ``execute`` takes the plan's Redis lock (``core.queues.run_lock``, expiring, extended by a
  heartbeat thread) before doing anything; if another holder has it, this run ends ``skipped``
  with the same reason. That is what makes two schedulers enqueueing one plan at once import
  once (C18).
* While running, a heartbeat thread stamps ``heartbeat_at`` (and every committed page does too).
  ``sweep_lost_runs`` (a periodic task, and the start of every run of the plan) marks a run
  whose heartbeat is older than ``WORKER_LOST_AFTER_SECONDS``, or whose RQ job failed or
  vanished, ``interrupted`` ("worker lost") and releases its lock (C17).

The work itself is ``sync.engine.run`` with ``SalesforceSource`` (read one page ahead in a thread,
``sync.readahead``) and ``DatabaseSink``; after a
successful incremental read, the leaving pass (services.reconcile) finds linked records that were
deleted, merged, opted out or stopped matching the filters. A "reconcile" run reads everything,
compares the count and catches deletions older than the recycle bin.
"""
from __future__ import annotations

import logging
import math
import os
import socket
import threading
from contextlib import nullcontext
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import delete, func, select, text, update

from core.extensions import db
from core.queues import enqueue, redis_connection, run_lock
from models import (ImportPlan, RunOutcome, RunSeenRecord, SalesforceConnection, SyncRun, Workspace)
from models.integrations import CONNECTION_NEEDS_RECONNECT
from models.plans import PLAN_ACTIVE, PLAN_HELD
from models.runs import (RUN_ACTIVE, RUN_FAILED, RUN_INTERRUPTED, RUN_PARTIAL, RUN_QUEUED,
                         RUN_RUNNING, RUN_SKIPPED, RUN_SUCCEEDED)
from services import notifications, reconcile
from services.sync_sink import ActionTarget, DatabaseSink
from services.sync_source import SalesforceSource, count as source_count
from sync import cursor as cursors
from sync.engine import run as run_engine
from sync.errors import SourceAuthFailed, SourceError, SourceLimitReached, SourceQueryError
from sync.readahead import ReadAhead

log = logging.getLogger("terapage.sync")

ANOTHER_RUN = "another sync for this plan is running"
WORKER_LOST = "worker lost"
JOB_LOST = "the sync job was lost before it started"
SYNC_QUEUE = "sync"
JOB_TIMEOUT = 6 * 3600
FINISHED = (RUN_SUCCEEDED, RUN_PARTIAL, RUN_FAILED, RUN_INTERRUPTED, RUN_SKIPPED)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _lost_after() -> int:
    return int(current_app.config.get("WORKER_LOST_AFTER_SECONDS", 180))


def _lock_ttl() -> float:
    return max(30.0, 4.0 * _lost_after())


def _lock(plan_id: int, run_id: int):
    """The plan's lock, held under a token naming the run (so a sweep can release it)."""
    lock = run_lock(f"plan:{plan_id}", ttl=_lock_ttl())
    lock.token = f"run:{run_id}"
    return lock


# --- requesting --------------------------------------------------------------------------------

def active_run(plan: ImportPlan) -> SyncRun | None:
    return db.session.execute(select(SyncRun).where(
        SyncRun.plan_id == plan.id, SyncRun.status.in_(RUN_ACTIVE)).order_by(SyncRun.id)).scalars().first()


def request_run(plan: ImportPlan, trigger: str = "manual", user=None, kind: str = "sync") -> SyncRun:
    """Queue a run of ``plan`` (see the module docstring for what happens when one is active)."""
    sweep_lost_runs(plan_id=plan.id)
    active = active_run(plan)
    if active is not None:
        return active  # nothing recorded: the worker-side lock still records a race (C18)
    user_id = getattr(user, "id", user)
    run = SyncRun(workspace_id=plan.workspace_id, plan_id=plan.id, kind=kind, trigger=trigger,
                  triggered_by_id=user_id, status=RUN_QUEUED, queued_at=_utcnow())
    db.session.add(run)
    db.session.commit()
    job = enqueue("jobs.sync.run_sync", run.id, queue=SYNC_QUEUE, job_id=f"sync-run-{run.id}",
                  job_timeout=JOB_TIMEOUT, description=f"sync plan {plan.id} run {run.id}")
    run.job_id = job.id
    db.session.commit()
    return run


def run_inline(plan_id: int, trigger: str = "cli", kind: str = "sync") -> SyncRun:
    """Run ``plan_id`` now, in this process (``flask sync run``)."""
    plan = db.session.get(ImportPlan, plan_id)
    if plan is None:
        raise LookupError(f"no plan {plan_id}")
    run = SyncRun(workspace_id=plan.workspace_id, plan_id=plan.id, kind=kind, trigger=trigger,
                  status=RUN_QUEUED, queued_at=_utcnow())
    db.session.add(run)
    db.session.commit()
    return execute(run.id)


# --- executing -----------------------------------------------------------------------------------

def execute(run_id: int, *, job_id: str | None = None) -> SyncRun:
    """The body of ``jobs.sync.run_sync``: run the queued run ``run_id`` to a definite status."""
    run = db.session.get(SyncRun, run_id)
    if run is None:
        raise LookupError(f"no run {run_id}")
    if run.status != RUN_QUEUED:
        return run  # already ended (skipped, swept) before the job got to it
    plan_id = run.plan_id
    sweep_lost_runs(plan_id=plan_id, exclude=run_id)
    _forget_finished_runs_seen()
    lock = _lock(plan_id, run_id)
    if not lock.acquire():
        return _finish(run_id, RUN_SKIPPED, ANOTHER_RUN)
    heartbeat = None
    try:
        others = db.session.execute(select(func.count()).select_from(SyncRun).where(
            SyncRun.plan_id == plan_id, SyncRun.status == RUN_RUNNING, SyncRun.id != run_id)).scalar_one()
        if others:
            return _finish(run_id, RUN_SKIPPED, ANOTHER_RUN)
        now = _utcnow()
        run = db.session.get(SyncRun, run_id)
        run.status, run.started_at, run.heartbeat_at = RUN_RUNNING, now, now
        run.worker_name = _worker_name()
        run.job_id = run.job_id or job_id or _current_job_id()
        db.session.commit()
        heartbeat = _Heartbeat(run_id, lock, interval=max(0.5, _lost_after() / 4))
        heartbeat.start()
        return _execute(run_id)
    except Exception as exc:  # a bug must still end the run with a reason
        log.exception("run %s failed", run_id)
        db.session.rollback()
        return _finish(run_id, RUN_FAILED, f"Internal error: {type(exc).__name__}: {exc}"[:500])
    finally:
        if heartbeat is not None:
            heartbeat.stop()
            forget_seen([run_id])
        lock.release()


def _execute(run_id: int) -> SyncRun:
    run = db.session.get(SyncRun, run_id)
    plan = db.session.get(ImportPlan, run.plan_id)
    workspace = db.session.get(Workspace, plan.workspace_id)
    connection = db.session.get(SalesforceConnection, plan.connection_id) if plan.connection_id else None
    if connection is None:
        return _finish(run_id, RUN_FAILED, "The plan has no Salesforce connection")
    if connection.status == CONNECTION_NEEDS_RECONNECT:
        return _finish(run_id, RUN_FAILED, "Salesforce needs reconnecting before this plan can sync")
    try:
        client = client_for(connection)
    except Exception as exc:
        return _source_failure(run_id, connection.id, exc)
    calls_before = client.calls_made
    try:
        spec, where = build_spec(plan, workspace, client)
    except Exception as exc:
        _record_usage(run_id, connection.id, client, calls_before)
        return _source_failure(run_id, connection.id, exc)

    start = cursors.resume_from(plan.cursor_at, plan.cursor_fingerprint, spec.fingerprint)
    if run.kind == "reconcile":
        start = None
    run.cursor_before, run.full_read = start, start is None
    db.session.commit()

    if run.trigger == "schedule" and (plan.per_run_api_cap or plan.per_day_api_cap):
        reason = _over_budget(plan, spec, where, start, client)
        if reason:
            _record_usage(run_id, connection.id, client, calls_before)
            return _finish(run_id, RUN_SKIPPED, reason)

    target = ActionTarget.for_plan(plan)
    sink = DatabaseSink(workspace_id=workspace.id, plan_id=plan.id, run_id=run_id,
                        connection_id=connection.id, target=target)
    page_size = int(current_app.config.get("SYNC_PAGE_SIZE", 2000))
    source = SalesforceSource(client, spec, where, start, batch_size=page_size)
    linked_before = reconcile.linked_count(workspace.id, plan.id, spec) if run.kind == "reconcile" else 0
    # The client is the read-ahead thread's alone until it has ended (leaving this block).
    with _read_ahead(source, run_id) as pages:
        seen = _SeenIds(pages, spec, run_id)
        summary = run_engine(spec, seen, sink, _RunLog(run_id), cursor=start, **_parallel_settings())
    status, reason = summary.status, summary.reason

    if status == RUN_SUCCEEDED:
        try:
            seen.flush()
            if run.kind == "reconcile" or start is None:
                reconcile.forget_stale_skips(spec, sink, seen)
            if run.kind == "reconcile":
                total = source_count(client, reconcile.count_query(spec, where))
                left = reconcile.reconcile_linked(client, spec, sink, seen, page_size)
                plan = db.session.get(ImportPlan, plan.id)
                plan.last_reconciled_at = _utcnow()
                db.session.commit()
                note = (f"Salesforce has {total} matching records; {linked_before} were linked "
                        f"before reconciliation; {left} left")
                reason = f"{reason}; {note}" if reason else note
            elif start is not None:
                reconcile.leaving_pass(client, spec, where, start, sink, seen, page_size)
            else:
                # A full read (first run, or the plan changed): links the read did not return
                # (e.g. records the new filters exclude) are checked like in a reconciliation.
                reconcile.reconcile_linked(client, spec, sink, seen, page_size)
        except SourceError as exc:
            status = RUN_PARTIAL
            reason = f"Records that left were not all checked: {exc.message}"
            if isinstance(exc, SourceAuthFailed):
                status, summary.needs_reconnect = RUN_FAILED, True
            # The leavers since ``start`` are only found from ``start``: read from there again.
            _rewind_cursor(plan.id, start, spec.fingerprint)
    _record_usage(run_id, connection.id, client, calls_before)
    if summary.needs_reconnect:
        mark_needs_reconnect(connection.id, reason)
    sink_invitations = list(sink.invitation_ids)
    run = _finish(run_id, status, reason)
    _after_run(run, sink_invitations)
    return run


def _read_ahead(source, run_id: int):
    """The source's pages, each fetched in a thread while the engine works on the one before
    (sync.readahead; SYNC_READ_AHEAD, on by default). The thread runs in an application context of
    its own: a session refresh in the middle of paging (services.connections.refresh_token) needs
    the settings and the database, and must not share this thread's database session."""
    if not current_app.config.get("SYNC_READ_AHEAD", True):
        return nullcontext(source)
    app = current_app._get_current_object()
    return ReadAhead(source, context=app.app_context, name=f"sync-read-ahead-{run_id}")


def _parallel_settings() -> dict:
    """Helper processes validating part of each big page (sync.parallel): SYNC_VALIDATION_PROCESSES,
    where -1 means one on a machine with two or more cores and 0 none."""
    cfg = current_app.config
    processes = int(cfg.get("SYNC_VALIDATION_PROCESSES", -1))
    if processes < 0:
        processes = 1 if (os.cpu_count() or 1) >= 2 else 0
    return {"validation_processes": processes,
            "parallel_min_records": int(cfg.get("SYNC_PARALLEL_MIN_RECORDS", 400))}


def _rewind_cursor(plan_id: int, start, fingerprint: str) -> None:
    db.session.rollback()
    db.session.execute(update(ImportPlan).where(ImportPlan.id == plan_id).values(
        cursor_at=start, cursor_fingerprint=fingerprint if start is not None else None))
    db.session.commit()


def _source_failure(run_id: int, connection_id: int, exc: Exception) -> SyncRun:
    from services.sync_source import translate
    err = exc if isinstance(exc, SourceError) else translate(exc)
    if isinstance(err, SourceAuthFailed):
        mark_needs_reconnect(connection_id, err.message)
    reason = err.message
    if isinstance(err, SourceQueryError):
        reason = f"Salesforce refused the query: {err.message}"
    return _finish(run_id, RUN_PARTIAL if isinstance(err, SourceLimitReached) else RUN_FAILED, reason)


class _SeenIds:
    """Passes the source's pages through and remembers every record ID read, in the database.

    The IDs are rows of ``run_seen_records`` (run, record ID), written a page at a time once the
    engine has committed that page (when it asks for the next one, and after the last), never a
    set in the worker: at a million records that set alone was ~100 MB. The leaving pass asks
    ``unseen(ids)`` a page at a time, and the reconciliation anti-joins the table in SQL. The
    run's rows are deleted when it ends (``forget_seen``)."""

    def __init__(self, source, spec, run_id: int):
        self.source = source
        self.run_id = run_id
        self.field = spec.mapping.external_id
        self.pending: list[str] = []
        self.written = 0

    def __iter__(self):
        for page in self.source:
            self.flush()
            for record in page:
                if isinstance(record, dict):
                    value = record.get("Id")
                    if isinstance(value, str):
                        self.pending.append(value)
                    _replace_nul(record)
            yield page
        self.flush()

    def flush(self) -> None:
        """Write the IDs of the pages handed out so far (one statement, one short transaction).
        Called when the engine asks for the next page, i.e. after it committed the previous one,
        so this never commits half of a page's writes."""
        if not self.pending:
            return
        ids, self.pending = list(dict.fromkeys(self.pending)), []
        _insert_seen(self.run_id, ids)
        db.session.commit()
        self.written += len(ids)

    def unseen(self, ids: list[str]) -> list[str]:
        """The IDs among ``ids`` that this run's read did not return."""
        ids = list(dict.fromkeys(ids))
        seen: set[str] = set()
        for start in range(0, len(ids), 500):
            seen.update(db.session.execute(select(RunSeenRecord.record_id).where(
                RunSeenRecord.run_id == self.run_id,
                RunSeenRecord.record_id.in_(ids[start:start + 500]))).scalars())
        return [i for i in ids if i not in seen]

    def __contains__(self, record_id: str) -> bool:
        return not self.unseen([record_id])


def _insert_seen(run_id: int, ids: list[str]) -> None:
    """One page's seen IDs, skipping those already there (a query-locator restart reads some
    records twice). PostgreSQL: one statement with the IDs as one array (an executemany was one
    INSERT a row, a multi-row VALUES one compiled statement per 1,000); SQLite: one
    executemany of plain tuples."""
    table = RunSeenRecord.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text(
            f"INSERT INTO {table.name} (run_id, record_id) SELECT :run_id, unnest(CAST(:ids AS TEXT[])) "
            f"ON CONFLICT DO NOTHING"), {"run_id": run_id, "ids": ids})
        return
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.connection().exec_driver_sql(
            f"INSERT INTO {table.name} (run_id, record_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(run_id, i) for i in ids])
        return
    db.session.execute(_insert_ignoring_duplicates(table),
                       [{"run_id": run_id, "record_id": i} for i in ids])


def _insert_ignoring_duplicates(table):
    """INSERT that skips rows already there (a query-locator restart reads some records twice)."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert(table).on_conflict_do_nothing()


SEEN_DELETE_CHUNK = 20_000


def forget_seen(run_ids) -> None:
    """Delete the seen-record rows of ``run_ids`` (runs that ended); never fails the caller."""
    run_ids = list(run_ids)
    if not run_ids:
        return
    try:
        for run_id in run_ids:
            # In chunks: SQLite (with foreign keys on) gathers every row a DELETE removes in
            # memory first; one DELETE of a million-record run's rows took the work horse's
            # peak from 133 to 148 MB, chunks of SEEN_DELETE_CHUNK keep it flat.
            while True:
                chunk = select(RunSeenRecord.record_id).where(RunSeenRecord.run_id == run_id).limit(
                    SEEN_DELETE_CHUNK).scalar_subquery()
                # No session to synchronise (nothing loads these rows): without this the ORM
                # fetched every deleted key back to look for it in the identity map.
                removed = db.session.execute(delete(RunSeenRecord).where(
                    RunSeenRecord.run_id == run_id, RunSeenRecord.record_id.in_(chunk),
                ).execution_options(synchronize_session=False)).rowcount
                db.session.commit()
                if removed < SEEN_DELETE_CHUNK:
                    break
    except Exception:  # noqa: BLE001 - left rows are deleted by the next run's cleanup
        log.warning("runs %s: deleting their seen-record rows failed", run_ids, exc_info=True)
        db.session.rollback()


def _forget_finished_runs_seen() -> None:
    """Rows of runs that ended without deleting theirs (a killed worker): cheap when there are none."""
    leftover = db.session.execute(select(SyncRun.id).where(
        SyncRun.status.in_(FINISHED),
        select(RunSeenRecord.run_id).where(RunSeenRecord.run_id == SyncRun.id).exists(),
    ).limit(100)).scalars().all()
    db.session.commit()
    forget_seen(leftover)


def _replace_nul(record: dict) -> None:
    """PostgreSQL text cannot hold NUL (0x00), Salesforce text can: one such value would fail its
    page's transaction and the run. It becomes U+FFFD, so a value with one stays visibly broken
    (an email with a NUL is still invalid, never a key) instead of silently turning valid."""
    for key, value in record.items():
        kind = type(value)  # JSON's own types first: every field of every record comes here
        if kind is str or (kind is not dict and isinstance(value, str)):
            if "\x00" in value:
                record[key] = value.replace("\x00", "\ufffd")
        elif kind is dict or isinstance(value, dict):
            _replace_nul(value)


class _RunLog:
    def __init__(self, run_id: int):
        self.run_id = run_id

    def event(self, message: str, *, level: str = "info", **data) -> None:
        log.log(logging.WARNING if level == "warning" else logging.INFO, "run %s: %s", self.run_id, message)


def _finish(run_id: int, status: str, reason: str | None) -> SyncRun:
    db.session.rollback()
    run = db.session.get(SyncRun, run_id)
    if run.status == RUN_INTERRUPTED:
        return run  # swept as lost while it ran: keep the sweep's verdict
    run.status, run.reason, run.finished_at = status, reason, _utcnow()
    plan = db.session.get(ImportPlan, run.plan_id)
    if plan is not None and status == RUN_SUCCEEDED and run.kind == "sync":
        plan.last_success_at = run.finished_at
    db.session.commit()
    _notify_run_finished(run)
    return run


def _notify_run_finished(run: SyncRun) -> None:
    """The operations hook (incident, one mail to the admins) after every finished run. A mail or
    database hiccup there never changes the run's verdict: the notifications sweep catches up."""
    try:
        notifications.notify_run_finished(run)
    except Exception:  # noqa: BLE001
        log.warning("run %s: notifying its end failed; the notifications sweep retries", run.id, exc_info=True)
        db.session.rollback()


def _after_run(run: SyncRun, invitation_ids: list[int]) -> None:
    if invitation_ids:
        try:
            from services import invitations  # written by the invitations engineer
        except ImportError:
            return  # left pending; sending is wired by the mail layer
        send = getattr(invitations, "enqueue_send", None)
        if send is not None:
            send(invitation_ids)


def mark_needs_reconnect(connection_id: int, reason: str | None) -> None:
    """Flag the connection and hold its active plans until an admin reconnects it."""
    db.session.rollback()
    connection = db.session.get(SalesforceConnection, connection_id)
    if connection is None:
        return
    connection.status = CONNECTION_NEEDS_RECONNECT
    connection.status_reason = reason
    db.session.execute(update(ImportPlan).where(
        ImportPlan.connection_id == connection_id, ImportPlan.status == PLAN_ACTIVE,
    ).values(status=PLAN_HELD, status_reason="Salesforce needs reconnecting"))
    db.session.commit()
    from services.connections import notify_status
    notify_status(connection)


def _record_usage(run_id: int, connection_id: int, client, calls_before: int) -> None:
    db.session.rollback()
    calls = client.calls_made - calls_before
    db.session.execute(update(SyncRun).where(SyncRun.id == run_id).values(
        api_calls=SyncRun.api_calls + calls))
    if client.api_usage is not None:
        used, maximum = client.api_usage
        db.session.execute(update(SalesforceConnection).where(SalesforceConnection.id == connection_id)
                           .values(api_used=used, api_max=maximum, api_usage_at=_utcnow()))
    db.session.commit()


def _over_budget(plan: ImportPlan, spec, where: str, start, client) -> str | None:
    """Why a scheduled run would break the plan's API caps, or None.

    The estimate is one call for the count plus one per page of the records the run would read;
    the day's use is the API calls of the plan's runs since midnight UTC.
    """
    from salesforce.soql import and_conditions, build_count_query
    cursor_clause = cursors.where_clause(spec.cursor_field, start, spec.look_back)
    total = source_count(client, build_count_query(spec.object_name, and_conditions(where, cursor_clause or "")))
    page_size = int(current_app.config.get("SYNC_PAGE_SIZE", 2000))
    estimate = 1 + max(1, math.ceil(total / page_size))
    if plan.per_run_api_cap and estimate > plan.per_run_api_cap:
        return (f"Skipped: this run would need about {estimate} Salesforce API calls; "
                f"the plan allows {plan.per_run_api_cap} per run")
    if plan.per_day_api_cap:
        midnight = _utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        used = db.session.execute(select(func.coalesce(func.sum(SyncRun.api_calls), 0)).where(
            SyncRun.plan_id == plan.id, SyncRun.queued_at >= midnight)).scalar_one()
        if used + estimate > plan.per_day_api_cap:
            return (f"Skipped: the plan has used {used} of its {plan.per_day_api_cap} Salesforce "
                    f"API calls today and this run would need about {estimate}")
    return None


# --- the worker-lost sweep -------------------------------------------------------------------------

def sweep_lost_runs(plan_id: int | None = None, exclude: int | None = None,
                    now: datetime | None = None) -> list[int]:
    """Mark runs whose worker is gone ``interrupted`` ("worker lost"); release their locks."""
    now = now or _utcnow()
    bound = now - timedelta(seconds=_lost_after())
    query = select(SyncRun).where(SyncRun.status.in_(RUN_ACTIVE))
    if plan_id is not None:
        query = query.where(SyncRun.plan_id == plan_id)
    if exclude is not None:
        query = query.where(SyncRun.id != exclude)
    swept = []
    for run in db.session.execute(query).scalars().all():
        if run.status == RUN_RUNNING:
            stamp = run.heartbeat_at or run.started_at or run.queued_at
            lost = stamp < bound or _job_gone(run, running=True)
            reason = WORKER_LOST
        else:
            lost = run.queued_at < bound and run.job_id is not None and _job_gone(run, running=False)
            reason = JOB_LOST
        if not lost:
            continue
        changed = db.session.execute(update(SyncRun).where(
            SyncRun.id == run.id, SyncRun.status == run.status,
        ).values(status=RUN_INTERRUPTED, reason=reason, finished_at=now)).rowcount
        db.session.commit()
        if changed:
            _lock(run.plan_id, run.id).release()
            forget_seen([run.id])
            swept.append(run.id)
            log.warning("run %s of plan %s: %s", run.id, run.plan_id, reason)
            db.session.refresh(run)
            _notify_run_finished(run)
    db.session.commit()
    return swept


def _job_gone(run: SyncRun, running: bool) -> bool:
    """The run's RQ job no longer exists, or RQ says it ended while the row says otherwise."""
    if not run.job_id:
        return False
    from rq.exceptions import NoSuchJobError
    from rq.job import Job
    try:
        job = Job.fetch(run.job_id, connection=redis_connection())
    except NoSuchJobError:
        return True
    status = job.get_status(refresh=False)
    status = getattr(status, "value", status)
    if status in ("failed", "stopped", "canceled"):
        return True
    return running and status == "finished"


class _Heartbeat(threading.Thread):
    """Stamps the run's heartbeat and extends the plan's lock while the run works."""

    def __init__(self, run_id: int, lock, interval: float):
        super().__init__(name=f"sync-heartbeat-{run_id}", daemon=True)
        self.run_id = run_id
        self.lock = lock
        self.interval = interval
        self.engine = db.engine
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            try:
                with self.engine.begin() as conn:
                    conn.execute(update(SyncRun).where(
                        SyncRun.id == self.run_id, SyncRun.status == RUN_RUNNING,
                    ).values(heartbeat_at=_utcnow()))
                self.lock.extend()
            except Exception:  # a missed beat is not fatal; the next one retries
                log.warning("run %s: heartbeat failed", self.run_id, exc_info=True)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=5)


def _worker_name() -> str:
    try:
        from rq import get_current_job
        job = get_current_job()
        if job is not None and job.worker_name:
            return job.worker_name
    except Exception:
        pass
    return f"{socket.gethostname()}:{os.getpid()}"


def _current_job_id() -> str | None:
    try:
        from rq import get_current_job
        job = get_current_job()
        return job.id if job is not None else None
    except Exception:
        return None


# --- reading ---------------------------------------------------------------------------------------

def tail(run_id: int, after_seq: int = 0, limit: int = 200) -> list[RunOutcome]:
    """Outcomes of ``run_id`` after sequence number ``after_seq`` (for live tables)."""
    return list(db.session.execute(select(RunOutcome).where(
        RunOutcome.run_id == run_id, RunOutcome.seq > after_seq,
    ).order_by(RunOutcome.seq).limit(limit)).scalars())


def last_runs(workspace_id: int | None = None) -> list[tuple[ImportPlan, SyncRun | None]]:
    """Every plan (of a workspace) with its latest run."""
    query = select(ImportPlan).order_by(ImportPlan.id)
    if workspace_id is not None:
        query = query.where(ImportPlan.workspace_id == workspace_id)
    result = []
    for plan in db.session.execute(query).scalars():
        latest = db.session.execute(select(SyncRun).where(SyncRun.plan_id == plan.id)
                                    .order_by(SyncRun.id.desc()).limit(1)).scalars().first()
        result.append((plan, latest))
    return result


def summary_line(run: SyncRun) -> str:
    counts = ", ".join(f"{name} {getattr(run, name)}" for name in (
        "fetched", "imported", "updated", "unchanged", "skipped", "failed", "excluded", "invited", "left"))
    text = f"Run {run.id} of plan {run.plan_id}: {run.status} ({counts})"
    return text + (f"; reason: {run.reason}" if run.reason else "")


# --- the plan and the client (services.plans / services.connections) -----------------------------

def build_spec(plan: ImportPlan, workspace: Workspace, client):
    """(sync.plan.Plan, WHERE text of the plan's filters)."""
    from services.sync_source import build_spec as build
    look_back = timedelta(seconds=int(current_app.config.get("SYNC_LOOKBACK_SECONDS", 300)))
    return build(plan, workspace, client, look_back)


def client_for(connection: SalesforceConnection):
    """The connection's client (services.connections.client_for: settings, the emulator's app
    file, the CA, one refresh at a time) with the sync's retry, timeout and backoff settings."""
    from services.connections import client_for as connections_client_for
    cfg = current_app.config
    return connections_client_for(connection, retries=int(cfg.get("SALESFORCE_RETRIES", 3)),
                                  timeout=cfg.get("SALESFORCE_TIMEOUT", (5, 60)),
                                  backoff=tuple(cfg.get("SALESFORCE_BACKOFF", (0.5, 1.0, 2.0))))

"""Record outcomes are kept for OUTCOME_RETENTION_DAYS; a periodic task deletes older ones.

The run rows (status, counters, reason) stay: only the per-record log goes. Deletion walks the
finished runs older than the cutoff that still have outcome rows (sync_runs is small; the
``run_id`` index answers each EXISTS) and deletes in bounded chunks, one transaction each, so a
million-row run never holds one long transaction or lock.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, exists, select

from core.extensions import db
from models import RunOutcome, SyncRun
from models.runs import RUN_ACTIVE
from models.types import utcnow

CHUNK = 5000


def cutoff(now: datetime | None = None, days: int | None = None) -> datetime:
    days = current_app.config.get("OUTCOME_RETENTION_DAYS", 90) if days is None else days
    return (now or utcnow()) - timedelta(days=days)


def purge_old_outcomes(now: datetime | None = None, days: int | None = None, chunk: int = CHUNK) -> int:
    """Delete the outcome rows of runs finished before the cutoff; return how many went."""
    limit = cutoff(now, days)
    run_ids = db.session.scalars(select(SyncRun.id).where(
        SyncRun.finished_at.is_not(None), SyncRun.finished_at < limit, SyncRun.status.not_in(RUN_ACTIVE),
        exists().where(RunOutcome.run_id == SyncRun.id)).order_by(SyncRun.id)).all()
    deleted = 0
    for run_id in run_ids:
        while True:
            ids = db.session.scalars(select(RunOutcome.id).where(RunOutcome.run_id == run_id).limit(chunk)).all()
            if not ids:
                break
            db.session.execute(delete(RunOutcome).where(RunOutcome.id.in_(ids)))
            db.session.commit()
            deleted += len(ids)
            if len(ids) < chunk:
                break
    return deleted

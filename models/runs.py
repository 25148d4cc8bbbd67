"""Sync runs, every record's outcome, preview totals and incidents admins are told about."""
from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from models.types import JSONType, UTCDateTime, utcnow

RUN_QUEUED = "queued"
RUN_RUNNING = "running"
RUN_SUCCEEDED = "succeeded"
RUN_PARTIAL = "partial"
RUN_FAILED = "failed"
RUN_INTERRUPTED = "interrupted"
RUN_SKIPPED = "skipped"
RUN_STATUSES = (RUN_QUEUED, RUN_RUNNING, RUN_SUCCEEDED, RUN_PARTIAL, RUN_FAILED, RUN_INTERRUPTED, RUN_SKIPPED)
RUN_ACTIVE = (RUN_QUEUED, RUN_RUNNING)

OUTCOMES = ("imported", "updated", "unchanged", "excluded", "skipped", "failed", "invited", "left")


class SyncRun(db.Model):
    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_plan_status", "plan_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("import_plans.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="sync")  # sync, reconcile
    status: Mapped[str] = mapped_column(String(20), default=RUN_QUEUED)
    reason: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(20), default="manual")  # manual, schedule, wizard, cli
    triggered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    job_id: Mapped[str | None] = mapped_column(String(64))
    worker_name: Mapped[str | None] = mapped_column(String(120))
    queued_at = mapped_column(UTCDateTime, default=utcnow)
    started_at = mapped_column(UTCDateTime)
    heartbeat_at = mapped_column(UTCDateTime)
    finished_at = mapped_column(UTCDateTime)
    full_read: Mapped[bool] = mapped_column(default=False)
    estimate_total: Mapped[int | None] = mapped_column(Integer)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    excluded: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    invited: Mapped[int] = mapped_column(Integer, default=0)
    left: Mapped[int] = mapped_column(Integer, default=0)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    cursor_before = mapped_column(UTCDateTime)
    cursor_after = mapped_column(UTCDateTime)


class RunOutcome(db.Model):
    """What a run decided for one record, and why."""

    __tablename__ = "run_outcomes"
    __table_args__ = (
        Index("ix_run_outcomes_run_seq", "run_id", "seq"),
        Index("ix_run_outcomes_run_outcome", "run_id", "outcome"),
        Index("ix_run_outcomes_ws_record", "workspace_id", "record_id"),
        Index("ix_run_outcomes_ws_email", "workspace_id", "email_key"),
        Index("ix_run_outcomes_ws_phone", "workspace_id", "phone_key"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    object_name: Mapped[str | None] = mapped_column(String(120))
    record_id: Mapped[str | None] = mapped_column(String(18))
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(320))
    email_key: Mapped[str | None] = mapped_column(String(320))
    phone_key: Mapped[str | None] = mapped_column(String(48))
    detail = mapped_column(JSONType)
    created_at = mapped_column(UTCDateTime, default=utcnow)


class PreviewTotals(db.Model):
    """Totals for a plan's whole matching set, computed by a background job per plan version."""

    __tablename__ = "preview_totals"
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("import_plans.id", ondelete="CASCADE"), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued, running, done, failed
    processed: Mapped[int] = mapped_column(Integer, default=0)
    estimate_total: Mapped[int | None] = mapped_column(Integer)
    totals = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at = mapped_column(UTCDateTime, default=utcnow)
    finished_at = mapped_column(UTCDateTime)


class Incident(db.Model):
    """A failing plan or a connection needing reconnect: admins are told once, until it recovers."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_open", "workspace_id", "subject_key", "closed_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))         # run_failed, needs_reconnect
    subject_key: Mapped[str] = mapped_column(String(40))  # "plan:5", "connection:2"
    message: Mapped[str] = mapped_column(Text)
    opened_at = mapped_column(UTCDateTime, default=utcnow)
    notified_at = mapped_column(UTCDateTime)
    closed_at = mapped_column(UTCDateTime)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)


class RunSeenRecord(db.Model):
    """A record ID that a running sync read, kept in the database instead of the worker's memory.

    The leaving pass needs "every record this run read" to tell which linked records did not come
    back; at a million records that set alone would be ~100 MB of worker memory. Rows are
    written a page at a time as the pages are committed, read back only by SQL (an anti-join or a
    batch ``IN``), and deleted when the run ends (a killed run's rows by the next run of any plan
    or the worker-lost sweep).
    """

    __tablename__ = "run_seen_records"
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(18), primary_key=True)

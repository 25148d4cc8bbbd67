"""Import plans: what to read from Salesforce, how to map and filter it, when and what to do."""
from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from models.types import JSONType, UTCDateTime, utcnow

PLAN_DRAFT = "draft"
PLAN_ACTIVE = "active"
PLAN_PAUSED = "paused"
PLAN_HELD = "held"  # connection needs reconnect; resumes by itself after reconnect

SCHEDULES = ("once", "manual", "hourly", "daily")
ACTIONS = ("import_only", "pool", "invite_study", "invite_task", "community")
INVITE_ACTIONS = ("invite_study", "invite_task", "community")
LEAVING_POLICIES = ("keep", "mark_opted_out", "archive")
WIZARD_STEPS = ("connect", "object", "mapping", "filters", "preview", "schedule")


class ImportPlan(db.Model):
    __tablename__ = "import_plans"
    __table_args__ = (Index("ix_import_plans_due", "status", "next_run_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("salesforce_connections.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200), default="Salesforce import")
    status: Mapped[str] = mapped_column(String(20), default=PLAN_DRAFT)
    status_reason: Mapped[str | None] = mapped_column(Text)
    wizard_step: Mapped[str] = mapped_column(String(20), default="object")  # furthest step reached

    object_name: Mapped[str | None] = mapped_column(String(120))
    mapping = mapped_column(JSONType, default=dict)      # see services.plans for the shape
    filters = mapped_column(JSONType, default=dict)      # {"op": "AND", "rows": [...], "groups": [...]}
    # The filters step's rows as last edited and not saved yet (blank rows included), so a reload
    # of the step shows them; None once saved. Never read by the engine.
    filters_draft = mapped_column(JSONType)
    excluded_record_ids = mapped_column(JSONType, default=list)

    schedule: Mapped[str] = mapped_column(String(20), default="manual")
    daily_time: Mapped[str | None] = mapped_column(String(5))  # "07:30" in the workspace time zone
    next_run_at = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(20), default="pool")
    target_study_id: Mapped[int | None] = mapped_column(ForeignKey("studies.id", ondelete="SET NULL"))
    target_activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="SET NULL"))
    target_community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id", ondelete="SET NULL"))
    leaving_policy: Mapped[str] = mapped_column(String(20), default="keep")
    per_run_api_cap: Mapped[int | None] = mapped_column(Integer)
    per_day_api_cap: Mapped[int | None] = mapped_column(Integer)
    reminder_days = mapped_column(JSONType, default=list)  # e.g. [3, 7]

    # Consent confirmation for auto-invite: voided whenever its fingerprint no longer matches.
    consent_confirmed_at = mapped_column(UTCDateTime)
    consent_confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    consent_confirmation_text: Mapped[str | None] = mapped_column(Text)
    consent_fingerprint: Mapped[str | None] = mapped_column(String(64))

    # Incremental state: the cursor belongs to one version (object + mapping + filters).
    cursor_at = mapped_column(UTCDateTime)
    cursor_fingerprint: Mapped[str | None] = mapped_column(String(64))
    last_reconciled_at = mapped_column(UTCDateTime)
    last_success_at = mapped_column(UTCDateTime)

    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at = mapped_column(UTCDateTime, default=utcnow)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

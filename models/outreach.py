"""Invitations, their message templates, the do-not-contact list and the mail outbox."""
from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from models.types import JSONType, UTCDateTime, utcnow

INVITATION_STATUSES = ("pending", "sent", "failed", "accepted", "declined", "withdrawn", "expired")
TARGET_TYPES = ("study", "activity", "community")


class Invitation(db.Model):
    __tablename__ = "invitations"
    __table_args__ = (
        # Never invite one person twice to the same study, task or community.
        UniqueConstraint("workspace_id", "target_key", "participant_id"),
        Index("ix_invitations_reminders", "status", "next_reminder_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    target_type: Mapped[str] = mapped_column(String(20))
    target_key: Mapped[str] = mapped_column(String(40))  # "study:5", "activity:7", "community:2"
    study_id: Mapped[int | None] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20), default="email")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("import_plans.id", ondelete="SET NULL"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id", ondelete="SET NULL"))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # What the invitation relied on: consent value seen, source record, the confirmation,
    # who confirmed and when.
    consent_evidence = mapped_column(JSONType, default=dict)
    send_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Why the last send of this invitation or of its reminder failed ("links": no public address
    # for the links, "mail": the mail server, "message": the message could not be made); cleared
    # when a send works. The failure is shown on the run and invitation pages meanwhile.
    failure_cause: Mapped[str | None] = mapped_column(String(20))
    # A failed invitation is sent again from then on (the periodic tick); None: not waiting.
    retry_at = mapped_column(UTCDateTime)
    sent_at = mapped_column(UTCDateTime)
    responded_at = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(200))
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    next_reminder_at = mapped_column(UTCDateTime)
    expires_at = mapped_column(UTCDateTime)
    created_at = mapped_column(UTCDateTime, default=utcnow)


class MessageTemplate(db.Model):
    """The invitation message for one study, task or community (merge fields in {{ }})."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "target_key", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    target_key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20), default="invitation")  # invitation, reminder
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SuppressionEntry(db.Model):
    """Do not contact: matched by normalised email key or phone key."""

    __tablename__ = "suppression_entries"
    __table_args__ = (UniqueConstraint("workspace_id", "email_key"), Index("ix_suppression_phone", "workspace_id", "phone_key"))
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    email_key: Mapped[str | None] = mapped_column(String(320))
    phone_key: Mapped[str | None] = mapped_column(String(48))
    reason: Mapped[str | None] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(20), default="manual")  # manual, csv, unsubscribe
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at = mapped_column(UTCDateTime, default=utcnow)


class OutboxMessage(db.Model):
    """Every message the product sends; the embedded outbox when no SMTP server is configured."""

    __tablename__ = "outbox_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    to_addr: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    transport: Mapped[str] = mapped_column(String(20), default="outbox")  # outbox, smtp
    status: Mapped[str] = mapped_column(String(20), default="queued")     # queued, sent, failed
    error: Mapped[str | None] = mapped_column(Text)
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id", ondelete="SET NULL"))
    created_at = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent_at = mapped_column(UTCDateTime)

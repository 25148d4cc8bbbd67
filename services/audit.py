"""The audit trail: one call records who changed what (shown on the pages that own the change)."""
from __future__ import annotations

from sqlalchemy import select

from core.extensions import db
from models import AuditEvent


def record(workspace_id: int, actor, action: str, subject_type: str, subject_id=None,
           **detail) -> AuditEvent:
    """Add an audit event to the session (the caller's commit keeps it with the change).

    ``actor`` is a User, or a label such as "system" or "participant via unsubscribe link".
    """
    event = AuditEvent(workspace_id=workspace_id, action=action, subject_type=subject_type,
                       subject_id=None if subject_id is None else str(subject_id), detail=detail)
    if isinstance(actor, str) or actor is None:
        event.actor_label = actor or "system"
    else:
        event.actor_user_id = actor.id
        event.actor_label = actor.name or actor.email
    db.session.add(event)
    return event


def recent(workspace_id: int, subject_types: tuple[str, ...] | None = None, limit: int = 20) -> list[AuditEvent]:
    """The newest events of a workspace, optionally only about some kinds of subject."""
    stmt = select(AuditEvent).where(AuditEvent.workspace_id == workspace_id)
    if subject_types:
        stmt = stmt.where(AuditEvent.subject_type.in_(subject_types))
    return db.session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit)).all()

"""Studies, their activities, communities, and adding participants to them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.extensions import db
from models import (Activity, ActivityParticipant, Community, CommunityMember, Participant, Study,
                    StudyParticipant, Workspace)
from models.participants import STATUS_ACTIVE
from models.types import utcnow
from services import audit

BATCH = 500


class ResearchError(ValueError):
    pass


@dataclass
class AddResult:
    added: int = 0
    already: int = 0
    refused: int = 0  # not in the workspace's active pool (another workspace, staged, archived)


# --- studies, activities, communities ----------------------------------------------------------

STUDY_FIELDS = ("name", "description", "status", "recurring", "closes_at")
ACTIVITY_FIELDS = ("name", "kind", "description", "due_at")
COMMUNITY_FIELDS = ("name", "description")


def _apply(obj, fields, values: dict) -> dict:
    changed = {}
    for name in fields:
        if name in values and getattr(obj, name) != values[name]:
            changed[name] = True
            setattr(obj, name, values[name])
    return changed


def create_study(workspace: Workspace, *, actor=None, **values) -> Study:
    study = Study(workspace_id=workspace.id, created_by_id=getattr(actor, "id", None))
    _apply(study, STUDY_FIELDS, values)
    db.session.add(study)
    db.session.flush()
    audit.record(workspace.id, actor, "study.created", "study", study.id, name=study.name)
    db.session.commit()
    return study


def update_study(study: Study, *, actor=None, **values) -> Study:
    changed = _apply(study, STUDY_FIELDS, values)
    if changed:
        audit.record(study.workspace_id, actor, "study.updated", "study", study.id, fields=sorted(changed))
    db.session.commit()
    return study


def create_activity(study: Study, *, actor=None, **values) -> Activity:
    activity = Activity(workspace_id=study.workspace_id, study_id=study.id)
    _apply(activity, ACTIVITY_FIELDS, values)
    db.session.add(activity)
    db.session.flush()
    audit.record(study.workspace_id, actor, "activity.created", "activity", activity.id, name=activity.name,
                 study_id=study.id, kind=activity.kind)
    db.session.commit()
    return activity


def update_activity(activity: Activity, *, actor=None, **values) -> Activity:
    changed = _apply(activity, ACTIVITY_FIELDS, values)
    if changed:
        audit.record(activity.workspace_id, actor, "activity.updated", "activity", activity.id, fields=sorted(changed))
    db.session.commit()
    return activity


def create_community(workspace: Workspace, *, actor=None, **values) -> Community:
    community = Community(workspace_id=workspace.id)
    _apply(community, COMMUNITY_FIELDS, values)
    db.session.add(community)
    db.session.flush()
    audit.record(workspace.id, actor, "community.created", "community", community.id, name=community.name)
    db.session.commit()
    return community


def update_community(community: Community, *, actor=None, **values) -> Community:
    changed = _apply(community, COMMUNITY_FIELDS, values)
    if changed:
        audit.record(community.workspace_id, actor, "community.updated", "community", community.id,
                     fields=sorted(changed))
    db.session.commit()
    return community


def studies_with_counts(workspace_id: int):
    counts = (select(StudyParticipant.study_id, func.count().label("n"))
              .where(StudyParticipant.workspace_id == workspace_id).group_by(StudyParticipant.study_id).subquery())
    return db.session.execute(
        select(Study, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.study_id == Study.id)
        .where(Study.workspace_id == workspace_id).order_by(Study.created_at.desc(), Study.id.desc())).all()


def communities_with_counts(workspace_id: int):
    counts = (select(CommunityMember.community_id, func.count().label("n"))
              .where(CommunityMember.workspace_id == workspace_id).group_by(CommunityMember.community_id).subquery())
    return db.session.execute(
        select(Community, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.community_id == Community.id)
        .where(Community.workspace_id == workspace_id).order_by(Community.name)).all()


# --- who takes part ---------------------------------------------------------------------------

_LINKS = {
    Study: (StudyParticipant, "study_id"),
    Activity: (ActivityParticipant, "activity_id"),
    Community: (CommunityMember, "community_id"),
}
TARGET_KINDS = {Study: "study", Activity: "activity", Community: "community"}


def members_query(target):
    """Participants of a study, activity or community, in the order they were added."""
    link, column = _LINKS[type(target)]
    return (select(Participant).join(link, link.participant_id == Participant.id)
            .where(getattr(link, column) == target.id, link.workspace_id == target.workspace_id)
            .order_by(link.added_at.desc(), link.id.desc()))


def member_count(target) -> int:
    link, column = _LINKS[type(target)]
    return db.session.scalar(select(func.count()).select_from(link).where(getattr(link, column) == target.id))


def _insert_links(link, column: str, target_id: int, workspace_id: int, ids: list[int], via: str) -> int:
    """Insert the missing (target, participant) rows; returns how many were new. Idempotent and
    safe when two people add the same person at once (the unique key decides)."""
    existing = set(db.session.scalars(select(link.participant_id).where(
        getattr(link, column) == target_id, link.participant_id.in_(ids))))
    new = [pid for pid in ids if pid not in existing]
    if not new:
        return 0
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    rows = [{"workspace_id": workspace_id, column: target_id, "participant_id": pid, "added_via": via,
             "added_at": now} for pid in new]
    db.session.execute(insert(link).values(rows).on_conflict_do_nothing())
    return len(new)


def add_participants(target, participant_ids: Iterable[int], *, actor=None, via: str = "pool") -> AddResult:
    """Add people from the workspace's active pool to a study, an activity (and so its study)
    or a community. Adding someone twice changes nothing; every call is audited."""
    if type(target) not in _LINKS:
        raise ResearchError(f"cannot add participants to {type(target).__name__}")
    wanted = sorted({int(pid) for pid in participant_ids})
    result = AddResult()
    link, column = _LINKS[type(target)]
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start:start + BATCH]
        allowed = list(db.session.scalars(select(Participant.id).where(
            Participant.workspace_id == target.workspace_id, Participant.status == STATUS_ACTIVE,
            Participant.id.in_(chunk))))
        result.refused += len(chunk) - len(allowed)
        if not allowed:
            continue
        added = _insert_links(link, column, target.id, target.workspace_id, allowed, via)
        result.added += added
        result.already += len(allowed) - added
        if isinstance(target, Activity):
            # Taking part in an activity means taking part in its study.
            _insert_links(StudyParticipant, "study_id", target.study_id, target.workspace_id, allowed, via)
    audit.record(target.workspace_id, actor, "participants.added", TARGET_KINDS[type(target)], target.id,
                 added=result.added, already=result.already, refused=result.refused, via=via)
    db.session.commit()
    return result


def matching_ids(stmt, limit: int = 100_000) -> list[int]:
    """The ids a pool query selects (for "add all matching")."""
    return list(db.session.scalars(stmt.with_only_columns(Participant.id).order_by(None).limit(limit)))

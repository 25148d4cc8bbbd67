"""The participant pool: search, filters and one participant's whole picture."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select, and_, exists, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB

from core.extensions import db
from models import (Activity, ActivityParticipant, Community, CommunityMember, Invitation, Participant,
                    ParticipantSource, SalesforceConnection, Study, StudyParticipant)
from models.participants import CONSENT_STATUSES, STATUS_ACTIVE, STATUS_ARCHIVED, STATUS_STAGED

POOL_STATUSES = (STATUS_ACTIVE, STATUS_STAGED, STATUS_ARCHIVED)


@dataclass(frozen=True)
class PoolFilter:
    """What the researcher typed and picked; unknown values are dropped, never trusted."""

    q: str = ""
    segment: str = ""
    consent: str = ""
    status: str = STATUS_ACTIVE

    @classmethod
    def from_args(cls, args, *, status_fixed: str | None = None) -> "PoolFilter":
        consent = (args.get("consent") or "").strip()
        status = status_fixed or (args.get("status") or STATUS_ACTIVE).strip()
        return cls(q=(args.get("q") or "").strip()[:200], segment=(args.get("segment") or "").strip()[:200],
                   consent=consent if consent in CONSENT_STATUSES else "",
                   status=status if status in POOL_STATUSES else STATUS_ACTIVE)

    def args(self) -> dict:
        """The non-empty values, for links that keep the filters (pagination, add all)."""
        return {k: v for k, v in (("q", self.q), ("segment", self.segment), ("consent", self.consent),
                                  ("status", self.status)) if v and not (k == "status" and v == STATUS_ACTIVE)}


def _like(term: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", term) + "%"


def _contains(term: str):
    """``term`` is in one of the searched columns, ignoring case: one LIKE on
    ``Participant.search_text`` (the columns lower-cased, a space between them; a search word has
    no space, so it never matches across two columns), against the lower-cased pattern:
    ``lower(x) LIKE lower(p)`` is what PostgreSQL's ILIKE does in a UTF-8 database, and a plain
    LIKE is what the trigram index ix_participants_search_text answers. On SQLite lower() is
    Python's (core.db), so every letter is folded there too, not only ASCII ones."""
    return Participant.search_text.like(func.lower(_like(term)), escape="\\")


def _has_segment(segment: str):
    if db.engine.dialect.name == "postgresql":
        return Participant.segments.op("@>")(literal(json.dumps([segment])).cast(JSONB))
    values = db.func.json_each(Participant.segments).table_valued("value")
    return exists(select(literal(1)).select_from(values).where(values.c.value == segment))


def pool_query(workspace_id: int, f: PoolFilter) -> Select:
    """Participants of the workspace matching the filter, newest first.

    Every word of the search must appear in one of name, email, company or phone; a search
    with several digits also matches the phone number with punctuation removed."""
    stmt = select(Participant).where(Participant.workspace_id == workspace_id, Participant.status == f.status)
    words = [_contains(term) for term in f.q.split()]
    if words:
        match = and_(*words)
        # "07700 900123" or "+44 7700-900123": match the digits against E.164 as well (without
        # the trunk zero, which E.164 drops).
        digits = re.sub(r"\D", "", f.q).lstrip("0")
        if len(digits) >= 5:
            match = or_(match, Participant.phone_e164.like(f"%{digits}%"))
        stmt = stmt.where(match)
    if f.segment:
        stmt = stmt.where(_has_segment(f.segment))
    if f.consent:
        stmt = stmt.where(Participant.consent_status == f.consent)
    return stmt.order_by(Participant.id.desc())


def count_matching(stmt: Select) -> int:
    """How many rows ``stmt`` (a ``pool_query``) matches: ``SELECT count(*) FROM participants WHERE
    ...`` straight on the table (an index-only count on the (workspace, status, id) index), not a
    count over a subquery of every column."""
    return db.session.scalar(stmt.with_only_columns(func.count(Participant.id)).order_by(None)) or 0


SEARCH_COUNT_CAP = 1000


class _CappedPagination(Pagination):
    """A search's page and its count capped at ``cap``, from one walk: the ids of the first
    ``cap + 1`` matches in the page's order (more when the page reaches further), the page a
    slice of them, its participants then read by id. A search as common as a tenth of 100k
    participants whose matches sit at the far end of the id order walks the (workspace, status,
    id) order once, not once for the page and again for the count."""

    def _query_items(self) -> list:
        stmt, cap = self._query_args["select"], self._query_args["cap"]
        limit = max(cap + 1, self._query_offset + self.per_page)
        ids = db.session.scalars(stmt.with_only_columns(Participant.id).limit(limit)).all()
        self._found = len(ids)
        page_ids = ids[self._query_offset:self._query_offset + self.per_page]
        if not page_ids:
            return []
        people = {p.id: p for p in db.session.scalars(stmt.order_by(None).where(Participant.id.in_(page_ids)))}
        return [people[pid] for pid in page_ids if pid in people]  # one deleted meanwhile is left out

    def _query_count(self) -> int:
        return self._found


def paginate(stmt: Select, *, page: int, per_page: int, count_cap: int | None = None):
    """``db.paginate`` of ``stmt`` (a ``pool_query``) with the count of ``count_matching`` (same
    ``Pagination``). With ``count_cap`` (searches), at most that many matches are counted and
    paged through: ``pagination.capped`` says there are more (the page says "1,000+" and asks
    for a narrower search) and a page past the cap is the last page within it."""
    if count_cap is None:
        pagination = db.paginate(stmt, page=page, per_page=per_page, error_out=False, count=False)
        pagination.total, pagination.capped = count_matching(stmt), False
        return pagination
    page = min(page, max(1, -(-count_cap // per_page)))
    pagination = _CappedPagination(page=page, per_page=per_page, error_out=False, select=stmt, cap=count_cap)
    found = pagination.total
    pagination.total, pagination.capped = min(found, count_cap), found > count_cap
    return pagination


class LazySegments:
    """``segments_in_use(workspace_id)``, read on first iteration (templates that show no segment
    list cost no query)."""

    def __init__(self, workspace_id: int):
        self.workspace_id = workspace_id
        self._values: list[str] | None = None

    def _load(self) -> list[str]:
        if self._values is None:
            self._values = segments_in_use(self.workspace_id)
        return self._values

    def __iter__(self):
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __bool__(self) -> bool:
        return bool(self._load())

    def __contains__(self, value) -> bool:
        return value in self._load()


def segments_in_use(workspace_id: int, limit: int = 500) -> list[str]:
    """The distinct segment values of a workspace's participants, for the filter list."""
    if db.engine.dialect.name == "postgresql":
        sql = text("SELECT DISTINCT s FROM participants, jsonb_array_elements_text("
                   "CASE WHEN jsonb_typeof(segments) = 'array' THEN segments ELSE '[]'::jsonb END) AS s "
                   "WHERE workspace_id = :ws ORDER BY s LIMIT :limit")
    else:
        sql = text("SELECT DISTINCT j.value FROM participants, json_each(CASE WHEN json_type(participants.segments) "
                   "= 'array' THEN participants.segments ELSE '[]' END) AS j "
                   "WHERE participants.workspace_id = :ws ORDER BY j.value LIMIT :limit")
    return [row[0] for row in db.session.execute(sql, {"ws": workspace_id, "limit": limit}) if row[0] is not None]


def participant_picture(participant: Participant) -> dict:
    """Where a participant came from and what they take part in (all within their workspace)."""
    ws = participant.workspace_id
    sources = db.session.execute(
        select(ParticipantSource, SalesforceConnection.name)
        .outerjoin(SalesforceConnection, SalesforceConnection.id == ParticipantSource.connection_id)
        .where(ParticipantSource.workspace_id == ws, ParticipantSource.participant_id == participant.id)
        .order_by(ParticipantSource.last_synced_at.desc())).all()
    studies = db.session.execute(
        select(Study, StudyParticipant.added_at, StudyParticipant.added_via).join(StudyParticipant, and_(
            StudyParticipant.study_id == Study.id, StudyParticipant.participant_id == participant.id))
        .where(Study.workspace_id == ws).order_by(Study.name)).all()
    activities = db.session.execute(
        select(Activity, Study.name).join(Study, Study.id == Activity.study_id).join(ActivityParticipant, and_(
            ActivityParticipant.activity_id == Activity.id, ActivityParticipant.participant_id == participant.id))
        .where(Activity.workspace_id == ws).order_by(Study.name, Activity.name)).all()
    communities = db.session.execute(
        select(Community, CommunityMember.added_at).join(CommunityMember, and_(
            CommunityMember.community_id == Community.id, CommunityMember.participant_id == participant.id))
        .where(Community.workspace_id == ws).order_by(Community.name)).all()
    invitations = db.session.scalars(
        select(Invitation).where(Invitation.workspace_id == ws, Invitation.participant_id == participant.id)
        .order_by(Invitation.id.desc())).all()
    names = _target_names(ws, invitations)
    return {"sources": sources, "studies": studies, "activities": activities, "communities": communities,
            "invitations": [(inv, names.get(inv.target_key, inv.target_key)) for inv in invitations]}


def _target_names(workspace_id: int, invitations) -> dict[str, str]:
    names: dict[str, str] = {}
    for model, kind, attr in ((Study, "study", "study_id"), (Activity, "activity", "activity_id"),
                              (Community, "community", "community_id")):
        ids = {getattr(inv, attr) for inv in invitations if getattr(inv, attr)}
        if ids:
            for obj in db.session.scalars(select(model).where(model.workspace_id == workspace_id, model.id.in_(ids))):
                names[f"{kind}:{obj.id}"] = obj.name
    return names

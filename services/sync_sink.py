"""The database Sink of the sync engine: ``sync.sink.Sink`` on the workspace's tables.

One sink per run. ``lookup`` answers the engine's batched questions and ends its read
transaction at once (so two runs on SQLite never hold a read lock while the other wants to
write). ``commit_page`` writes one page in one transaction: participants, source links,
departures, invitations (and the study/activity/community membership they come with), every
record's outcome, the plan's remembered skips (``skipped_sources``: forgotten, then stored as one
executemany), the run's counters and heartbeat, and the plan's cursor. A workspace
uniqueness rule refusing the page (one participant per email key, one link per record, one
invitation per person and target) rolls the page back and raises ``SinkConflict``; the engine
looks the page up again and retries it.

What a plan's action does, in one place (``ActionTarget``):
    import_only  -> new participants are "staged" (a researcher approves them later)
    pool         -> new participants are "active"
    invite_study -> eligible people are added to the study (added_via "salesforce") and invited
    invite_task  -> eligible people are added to the activity and invited
    community    -> eligible people are added to the community and invited
"Eligible" is the engine's decision (consent opted in by the plan's rule, valid email, not
suppressed, not archived, not already invited there). A participant whose email the page changes
gets their invitations that the mail server refused at the old address armed again for the new
one (``services.invitations.rearm_refused``; queued with the run's new invitations, the run log
says "Invited again: the address changed").
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import String, Text, any_, bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, IntegrityError

from core.extensions import db
from services import invitations
from models import (ActivityParticipant, CommunityMember, ImportPlan, Invitation, Participant,
                    ParticipantSource, RunOutcome, SkippedSource, StudyParticipant,
                    SuppressionEntry, SyncRun)
from models.participants import (CONSENT_UNKNOWN, SOURCE_ACTIVE, STATUS_ACTIVE, STATUS_ARCHIVED,
                                 STATUS_STAGED)
from sync.errors import SinkConflict
from sync.mapping import SourceRef
from sync.plan import Action, Consent, LeavingPolicy
from sync.sink import (EXCLUDED, FAILED, IMPORTED, INVITED, SKIPPED, UNCHANGED, UPDATED,
                       KnownParticipant, Link, Lookup, LookupResult, NewParticipantRef,
                       PageChanges, ParticipantValues, SkipMemory, refuse_links_of_unapplied)
from sync.validate import Flag

BATCH = 500  # ids per IN (...) list
# PostgreSQL is asked ``column = ANY(:array)``: one parameter however many values, so a page's
# question is one statement (psycopg parses, and the server plans, a 500-placeholder IN list
# anew each time: ~30 such statements a page were a fifth of a PostgreSQL page's worker time).
PG_BATCH = 20_000
# The run row's counter column for each engine outcome.
COUNTER_COLUMNS = {IMPORTED: "imported", UPDATED: "updated", UNCHANGED: "unchanged",
                   EXCLUDED: "excluded", SKIPPED: "skipped", FAILED: "failed", INVITED: "invited"}
# RunOutcome.outcome uses the models' short names.
STORED_OUTCOME = {EXCLUDED: "excluded"}
# Invitations not yet answered; a leaving person's are withdrawn.
OPEN_INVITATIONS = ("pending", "sent")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _chunks(items: Iterable, size: int | None = None):
    if size is None:
        size = PG_BATCH if _on_postgresql() else BATCH
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _on_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _among(column, values: list):
    """``column IN (values)``; on PostgreSQL ``column = ANY(:values)``, one array parameter."""
    if _on_postgresql():
        # Text, not the column's VARCHAR(n): a cast to VARCHAR(n)[] would cut longer values.
        item = Text() if isinstance(column.type, String) else column.type
        return column == any_(bindparam(None, list(values), type_=ARRAY(item)))
    return column.in_(values)


def _by_object(refs: Iterable[SourceRef]) -> dict[tuple[str, str], list[str]]:
    """Record IDs per (org, object): a link is looked up by the whole key of its unique index
    (workspace, org, object, record ID), never by workspace and record ID alone, which reads
    every link of the workspace (a full scan per page on PostgreSQL at 100k links)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for ref in refs:
        grouped.setdefault((ref.org_id, ref.object_name), []).append(ref.record_id)
    return grouped


def _link_filter(workspace_id: int, org_id: str, object_name: str, record_ids: list[str]):
    return (ParticipantSource.workspace_id == workspace_id, ParticipantSource.org_id == org_id,
            ParticipantSource.object_name == object_name, _among(ParticipantSource.record_id, record_ids))


def _skip_filter(workspace_id: int, org_id: str, object_name: str, record_ids: list[str]):
    return (SkippedSource.workspace_id == workspace_id, SkippedSource.org_id == org_id,
            SkippedSource.object_name == object_name, _among(SkippedSource.record_id, record_ids))


@dataclass(frozen=True)
class ActionTarget:
    """What the plan's action does with the people it imports (see the module docstring)."""

    action: Action
    target_type: str | None = None  # "study", "activity", "community"
    target_id: int | None = None
    confirmed_by_id: int | None = None
    confirmed_at: datetime | None = None

    @classmethod
    def for_plan(cls, plan: ImportPlan) -> "ActionTarget":
        action = Action(plan.action)
        target_type, target_id = {
            Action.INVITE_STUDY: ("study", plan.target_study_id),
            Action.INVITE_TASK: ("activity", plan.target_activity_id),
            Action.COMMUNITY: ("community", plan.target_community_id),
        }.get(action, (None, None))
        return cls(action, target_type, target_id, plan.consent_confirmed_by_id,
                   plan.consent_confirmed_at)

    @property
    def key(self) -> str | None:
        """``Invitation.target_key`` ("study:5") and ``Plan.target_id`` for the engine."""
        return f"{self.target_type}:{self.target_id}" if self.target_id else None

    @property
    def new_status(self) -> str:
        return STATUS_STAGED if self.action is Action.IMPORT_ONLY else STATUS_ACTIVE

    def membership(self, workspace_id: int, participant_id: int):
        """The membership row an invite action adds, or None."""
        if self.target_type == "study":
            return StudyParticipant(workspace_id=workspace_id, study_id=self.target_id,
                                    participant_id=participant_id, added_via="salesforce")
        if self.target_type == "activity":
            return ActivityParticipant(workspace_id=workspace_id, activity_id=self.target_id,
                                       participant_id=participant_id, added_via="salesforce")
        if self.target_type == "community":
            return CommunityMember(workspace_id=workspace_id, community_id=self.target_id,
                                   participant_id=participant_id, added_via="salesforce")
        return None

    def membership_model(self):
        return {"study": (StudyParticipant, StudyParticipant.study_id),
                "activity": (ActivityParticipant, ActivityParticipant.activity_id),
                "community": (CommunityMember, CommunityMember.community_id)}.get(self.target_type)


class DatabaseSink:
    """The engine's Sink for one run of one plan in one workspace."""

    def __init__(self, *, workspace_id: int, plan_id: int, run_id: int,
                 connection_id: int | None, target: ActionTarget, write_cursor: bool = True):
        self.workspace_id = workspace_id
        self.plan_id = plan_id
        self.run_id = run_id
        self.connection_id = connection_id
        self.target = target
        self.write_cursor = write_cursor
        self.invitation_ids: list[int] = []  # created by this run, for sending after commit
        self.commits = 0
        self.seq = db.session.execute(
            select(func.coalesce(func.max(RunOutcome.seq), 0)).where(RunOutcome.run_id == run_id)
        ).scalar_one()
        # Whether the plan's skip memory is worth asking this run: a first import has none, and
        # its lookups then cost no statement more. What this run remembers is for records it
        # already read (one read twice in a run is validated again, its row replaced).
        self.plan_skips = db.session.execute(select(SkippedSource.plan_id).where(
            SkippedSource.plan_id == plan_id).limit(1)).first() is not None

    # -- lookup ------------------------------------------------------------------------------

    def lookup(self, query: Lookup) -> LookupResult:
        try:
            return self._lookup(query)
        finally:
            db.session.commit()  # end the read transaction; nothing was written

    def _lookup(self, query: Lookup) -> LookupResult:
        ws = self.workspace_id
        result = LookupResult()
        wanted: set[int] = set()
        for (org_id, obj), ids in _by_object(query.refs).items():
            for chunk in _chunks(ids):
                rows = db.session.execute(select(
                    ParticipantSource.record_id, ParticipantSource.participant_id,
                    ParticipantSource.source_hash, ParticipantSource.source_timestamp,
                ).where(*_link_filter(ws, org_id, obj, chunk)))
                for record_id, pid, source_hash, stamp in rows:
                    ref = SourceRef(org_id, obj, record_id)
                    if ref in query.refs:  # IN compares per the column's collation
                        result.links[ref] = Link(ref, pid, source_hash, stamp)
                        wanted.add(pid)
        unlinked = query.skips - result.links.keys() if self.plan_skips else ()
        for (org_id, obj), ids in _by_object(unlinked).items():
            for chunk in _chunks(ids):
                for row in db.session.execute(select(
                        SkippedSource.record_id, SkippedSource.source_hash, SkippedSource.rules,
                        SkippedSource.reason, SkippedSource.flags, SkippedSource.email,
                        SkippedSource.email_key, SkippedSource.phone_key,
                ).where(*_skip_filter(ws, org_id, obj, chunk),
                        SkippedSource.plan_id == self.plan_id)):
                    ref = SourceRef(org_id, obj, row.record_id)
                    if ref in unlinked:
                        result.skips[ref] = SkipMemory(
                            ref, row.source_hash, row.rules, row.reason, _flags(row.flags),
                            row.email, row.email_key, row.phone_key)
        for keys in _chunks(query.email_keys):
            for pid, key in db.session.execute(select(Participant.id, Participant.email_key).where(
                    Participant.workspace_id == ws, _among(Participant.email_key, keys))):
                result.by_email[key] = pid
                wanted.add(pid)
        for keys in _chunks(query.phone_keys):
            for pid, key in db.session.execute(select(Participant.id, Participant.phone_key).where(
                    Participant.workspace_id == ws, _among(Participant.phone_key, keys))
                    .order_by(Participant.id)):
                result.by_phone.setdefault(key, []).append(pid)
                wanted.add(pid)
        invited: set[int] = set()
        if query.invite_target is not None:
            key = self._target_key(query.invite_target[1])
            for ids in _chunks(wanted):
                invited |= set(db.session.execute(select(Invitation.participant_id).where(
                    Invitation.workspace_id == ws, Invitation.target_key == key,
                    _among(Invitation.participant_id, ids))).scalars())
        for ids in _chunks(sorted(wanted)):
            for p in db.session.execute(select(
                    Participant.id, Participant.email_key, Participant.phone_key,
                    Participant.consent_status, Participant.status).where(_among(Participant.id, ids))):
                result.participants[p.id] = KnownParticipant(
                    p.id, p.email_key, p.phone_key, _consent(p.consent_status),
                    p.status == STATUS_ARCHIVED, p.id in invited)
        # The do-not-contact list for the records' keys and the found participants' own keys
        # (the engine keeps a suppressed person opted out whatever Salesforce says).
        email_keys = set(query.email_keys) | {p.email_key for p in result.participants.values()}
        phone_keys = set(query.phone_keys) | {p.phone_key for p in result.participants.values()}
        email_keys.discard(None)
        phone_keys.discard(None)
        if (email_keys or phone_keys) and db.session.execute(select(SuppressionEntry.id).where(
                SuppressionEntry.workspace_id == ws).limit(1)).first() is None:
            return result  # an empty list (most workspaces): nothing to ask it per key
        for keys in _chunks(email_keys):
            result.suppressed_email_keys |= frozenset(db.session.execute(
                select(SuppressionEntry.email_key).where(
                    SuppressionEntry.workspace_id == ws, _among(SuppressionEntry.email_key, keys))).scalars())
        for keys in _chunks(phone_keys):
            result.suppressed_phone_keys |= frozenset(db.session.execute(
                select(SuppressionEntry.phone_key).where(
                    SuppressionEntry.workspace_id == ws, _among(SuppressionEntry.phone_key, keys))).scalars())
        return result

    # -- commit ------------------------------------------------------------------------------

    def commit_page(self, changes: PageChanges) -> dict[NewParticipantRef, int]:
        try:
            refuse_links_of_unapplied(changes)
            ids = self._apply(changes)
            db.session.commit()
        except IntegrityError as exc:
            db.session.rollback()
            raise SinkConflict(_constraint_text(exc)) from exc
        except Exception:
            db.session.rollback()
            raise
        self.commits += 1
        self.invitation_ids += self._new_invitations
        return ids

    def _apply(self, changes: PageChanges) -> dict[NewParticipantRef, int]:
        ws = self.workspace_id
        now = _utcnow()
        self._new_invitations: list[int] = []
        self._invited_again: set[int] = set()
        email_changed: list[int] = []
        values_of: dict[Any, ParticipantValues] = {}

        existing_ids = {u.participant_id for u in changes.updates}
        existing_ids |= {d.participant_id for d in changes.departures}
        existing_ids |= {w.participant for w in changes.links
                         if not isinstance(w.participant, NewParticipantRef)}
        existing_ids |= {i.participant for i in changes.invitations
                         if not isinstance(i.participant, NewParticipantRef)}
        people: dict[int, Participant] = {}
        for chunk in _chunks(existing_ids):
            for p in db.session.execute(select(Participant).where(
                    Participant.workspace_id == ws, _among(Participant.id, chunk))).scalars():
                people[p.id] = p

        for change in changes.updates:
            person = people.get(change.participant_id)
            if person is None:  # deleted meanwhile by someone else: the retry sees it
                raise SinkConflict(f"participant {change.participant_id} no longer exists")
            address_before = (person.email or "").strip().lower()
            _apply_values(person, change.values)
            values_of[change.participant_id] = change.values
            if person.email and person.email.strip().lower() != address_before:
                email_changed.append(person.id)
        db.session.flush()

        # New people and their links are bulk INSERTs (one statement each, ids RETURNed in
        # order): the unit of work's per-object bookkeeping was a third of an import's time.
        ids: dict[NewParticipantRef, int] = {}
        if changes.creates:
            rows = [_new_participant_row(c.values) for c in changes.creates]
            created = _insert_participants(rows, {"workspace_id": ws, "status": self.target.new_status,
                                                  "created_at": now, "updated_at": now})
            for create, pid in zip(changes.creates, created):
                ids[create.ref] = pid
                values_of[create.ref] = create.values

        def resolve(ref):
            return ids[ref] if isinstance(ref, NewParticipantRef) else ref

        departing = {d.ref for d in changes.departures}
        links = self._links_for([w.ref for w in changes.links] + list(departing))
        new_links = []
        for write in changes.links:
            pid = resolve(write.participant)
            values = values_of.get(write.participant)
            link = links.get(write.ref)
            if link is None and write.ref not in departing:
                new_links.append((
                    write.ref.org_id, write.ref.object_name, write.ref.record_id, pid,
                    write.source_hash, write.source_timestamp,
                    (_evidence_json(values.consent_evidence)
                     if values is not None and values.consent_evidence else None)))
                continue
            if link is None:
                link = ParticipantSource(
                    workspace_id=ws, org_id=write.ref.org_id, object_name=write.ref.object_name,
                    record_id=write.ref.record_id, first_synced_at=now)
                db.session.add(link)
                links[write.ref] = link
            link.participant_id = pid
            link.connection_id = self.connection_id
            link.plan_id = self.plan_id
            link.source_hash = write.source_hash
            link.source_timestamp = write.source_timestamp
            link.source_state = SOURCE_ACTIVE
            link.last_synced_at = now
            link.last_run_id = self.run_id
            if values is not None and values.consent_evidence:
                link.consent_value_seen = json.dumps(dict(values.consent_evidence), default=str)
        if new_links:
            _NEW_LINKS.execute(new_links, {
                "workspace_id": ws, "first_synced_at": now, "connection_id": self.connection_id,
                "plan_id": self.plan_id, "source_state": SOURCE_ACTIVE, "last_synced_at": now,
                "last_run_id": self.run_id, "source_system": _SOURCE_SYSTEM})
        db.session.flush()
        self._skip_memory(changes, now)

        for departure in changes.departures:
            self._leave(departure, links.get(departure.ref), people.get(departure.participant_id), now)

        for invitation in changes.invitations:
            self._invite(invitation, resolve(invitation.participant), now)
        # A new address for someone whose address the mail server refused: invited again there.
        refused_people = set()
        for chunk in _chunks(email_changed):  # one query a page; most pages find nobody
            refused_people |= set(db.session.scalars(select(Invitation.participant_id).where(
                Invitation.workspace_id == ws, _among(Invitation.participant_id, chunk),
                Invitation.failure_cause == "recipient", Invitation.status.in_(("failed", "sent")))))
        for pid in sorted(refused_people):
            armed = invitations.rearm_refused(ws, pid, now=now)
            if armed:
                self._invited_again.add(pid)
                self._new_invitations += [i for i in armed
                                          if db.session.get(Invitation, i).status == "pending"]
        db.session.flush()

        self._outcomes(changes, resolve, values_of, now)
        self._counters(changes, now)
        if self.write_cursor and changes.cursor is not None:
            self._cursor(changes)
        return ids

    def _skip_memory(self, changes: PageChanges, now: datetime) -> None:
        """The plan's skip memory: forget what the engine decided anew, then store the skips
        decided now (one executemany; a row the lookup did not report, e.g. one written earlier
        in this run, is replaced rather than failing the page). Only the plan's own rows are
        written, so only its own runs (one at a time) write them; another plan's rows of a record
        linked now go at that plan's next full read (services.reconcile.forget_stale_skips) and
        are never consulted while the record has its link."""
        ws = self.workspace_id
        for (org_id, obj), ids in _by_object(changes.forget).items():
            for chunk in _chunks(ids):
                db.session.execute(delete(SkippedSource).where(
                    *_skip_filter(ws, org_id, obj, chunk), SkippedSource.plan_id == self.plan_id,
                ).execution_options(synchronize_session=False))
        # A record ID longer than the column (an external ID field that is not the Salesforce
        # Id) is not remembered: such a record is validated every time, as without the memory.
        remember = [m for m in changes.remember if len(m.ref.record_id) <= _RECORD_ID_LENGTH]
        if remember:
            _NEW_SKIPS.execute([(
                m.ref.org_id, m.ref.object_name, m.ref.record_id, m.source_hash, m.rules,
                m.reason, (str(m.email)[:320] if m.email else None), m.email_key, m.phone_key,
                [{"code": f.code, "field": f.field, "raw": f.raw, "reason": f.reason}
                 for f in m.flags] or None,
            ) for m in remember], {"workspace_id": ws, "plan_id": self.plan_id,
                                   "run_id": self.run_id, "skipped_at": now})

    def _links_for(self, refs: list[SourceRef]) -> dict[SourceRef, ParticipantSource]:
        found: dict[SourceRef, ParticipantSource] = {}
        wanted = set(refs)
        for (org_id, obj), ids in _by_object(wanted).items():
            for chunk in _chunks(ids):
                for link in db.session.execute(select(ParticipantSource).where(
                        *_link_filter(self.workspace_id, org_id, obj, chunk))).scalars():
                    ref = SourceRef(link.org_id, link.object_name, link.record_id)
                    if ref in wanted:
                        found[ref] = link
        return found

    def _leave(self, departure, link: ParticipantSource | None, person: Participant | None,
               now: datetime) -> None:
        """Mark the source, then apply the plan's leaving policy to the participant."""
        if link is not None:
            link.source_state = departure.kind
            link.last_synced_at = now
            link.last_run_id = self.run_id
            if departure.kind == "no_longer_matching":
                # Forget the hash, so the record is processed again if it comes back.
                link.source_hash = None
        if person is None:
            return
        opted_out = departure.kind == "opted_out"
        if opted_out or departure.policy is LeavingPolicy.MARK_OPTED_OUT:
            person.consent_status = Consent.OPTED_OUT.value
        if departure.policy is LeavingPolicy.ARCHIVE:
            person.status = STATUS_ARCHIVED
        if opted_out or departure.policy is not LeavingPolicy.KEEP:
            db.session.execute(update(Invitation).where(
                Invitation.workspace_id == self.workspace_id,
                Invitation.participant_id == person.id,
                Invitation.status.in_(OPEN_INVITATIONS),
            ).values(status="withdrawn", withdrawn_reason=departure.reason[:200]))

    def _target_key(self, engine_target: str | None) -> str:
        """The engine names the invite target by the sink's key ("study:5"); another name would
        invite people to one target and add them to another, so it stops the page."""
        if not engine_target or engine_target != self.target.key:
            raise ValueError(f"the engine's invite target {engine_target!r} is not this plan's "
                             f"{self.target.key!r}")
        return engine_target

    def _invite(self, invitation, participant_id: int, now: datetime) -> None:
        target = self.target
        self._target_key(invitation.target_id)
        evidence = {
            "consent": invitation.consent.value,
            "value_seen": dict(invitation.consent_evidence),
            "source_record": str(invitation.ref),
            "confirmation_text": invitation.confirmation,
            "confirmed_by": target.confirmed_by_id,
            "confirmed_at": target.confirmed_at.isoformat() if target.confirmed_at else None,
        }
        row = Invitation(
            workspace_id=self.workspace_id, participant_id=participant_id,
            target_type=target.target_type, target_key=target.key,
            study_id=target.target_id if target.target_type == "study" else None,
            activity_id=target.target_id if target.target_type == "activity" else None,
            community_id=target.target_id if target.target_type == "community" else None,
            status="pending", plan_id=self.plan_id, run_id=self.run_id,
            consent_evidence=json.loads(json.dumps(evidence, default=str)), created_at=now)
        db.session.add(row)
        model, column = target.membership_model()
        already = db.session.execute(select(model.id).where(
            column == target.target_id, model.participant_id == participant_id)).first()
        if already is None:
            db.session.add(target.membership(self.workspace_id, participant_id))
        db.session.flush()
        self._new_invitations.append(row.id)

    def _outcomes(self, changes: PageChanges, resolve, values_of, now: datetime) -> None:
        rows = []
        append = rows.append
        seq = self.seq
        for outcome in changes.outcomes:
            seq += 1
            participant = outcome.participant
            # The record's own email and keys, whatever the outcome (a skipped or failed
            # record is searched by its email too); the values written are the fallback.
            email, email_key, phone_key = outcome.email, outcome.email_key, outcome.phone_key
            if participant is None:
                pid = None
            else:
                pid = resolve(participant)
                values = values_of.get(participant)
                if values is not None:
                    email = email or values.email
                    email_key = email_key or values.email_key
                    phone_key = phone_key or values.phone_key
            detail = None
            if outcome.flags:
                detail = {"flags": [{"code": f.code, "field": f.field, "raw": f.raw,
                                     "reason": f.reason} for f in outcome.flags]}
                if email is None:
                    email = next((f.raw for f in outcome.flags if f.field == "email"), None)
            if outcome.invited:
                detail = {**(detail or {}), "invited": True}
            reason = outcome.reason
            if pid is not None and pid in self._invited_again:
                detail = {**(detail or {}), "invited_again": True}
                parts = [p for p in (reason or "").split("; ") if p and p != "Not invited: already invited"]
                reason = "; ".join(parts + [invitations.INVITED_AGAIN_NOTE])
            if outcome.remembered:  # skipped as in an earlier run, not validated again
                detail = {**(detail or {}), "remembered": True}
            ref = outcome.ref
            append((
                seq, ref.object_name if ref else None,
                (outcome.record_id or "")[:18] or None, pid,
                STORED_OUTCOME.get(outcome.outcome, outcome.outcome),
                reason, (str(email)[:320] if email else None),
                email_key, phone_key, detail))
        self.seq = seq
        if rows:
            _OUTCOMES.execute(rows, {"workspace_id": self.workspace_id, "run_id": self.run_id,
                                     "created_at": now})

    def _counters(self, changes: PageChanges, now: datetime) -> None:
        values: dict[str, Any] = {"heartbeat_at": now}
        fetched = sum(n for name, n in changes.counts.items() if name != INVITED)
        for name, column in COUNTER_COLUMNS.items():
            n = changes.counts.get(name, 0)
            if n:
                values[column] = getattr(SyncRun, column) + n
        if fetched:
            values["fetched"] = SyncRun.fetched + fetched
        if changes.departures:
            values["left"] = SyncRun.left + len(changes.departures)
        db.session.execute(update(SyncRun).where(SyncRun.id == self.run_id).values(**values))

    def _cursor(self, changes: PageChanges) -> None:
        plan = db.session.get(ImportPlan, self.plan_id)
        if (plan.cursor_fingerprint == changes.fingerprint and plan.cursor_at is not None
                and changes.cursor <= plan.cursor_at):
            return  # never backwards (a reconciliation's full read starts from the oldest)
        plan.cursor_at = changes.cursor
        plan.cursor_fingerprint = changes.fingerprint
        db.session.execute(update(SyncRun).where(SyncRun.id == self.run_id)
                           .values(cursor_after=changes.cursor))


class _PreparedInsert:
    """``INSERT INTO <table> (<columns>) VALUES (...)`` as one DB-API executemany.

    ``session.execute(insert(table), [dict, ...])`` runs every row's parameters through
    SQLAlchemy's compiled-parameter machinery; at three tables of 2,000 rows a page that was a
    quarter of an import's database time. Here the statement text is built once per dialect and
    each column's own bind processor (the same SQLAlchemy type conversion: UTC datetimes, JSON)
    is looked up once and applied only where a column has one. Values the same for every row of
    a page (``constants``) are converted once. A column with a default must be given: nothing
    is left to a default this path would not apply.
    """

    def __init__(self, table, columns: tuple[str, ...], constants: tuple[str, ...],
                 upsert_on: tuple[str, ...] = ()):
        self.table = table
        self.columns = columns + constants
        # ``upsert_on``: the unique key; a row already there gets the new values (ON CONFLICT
        # ... DO UPDATE, the same text on PostgreSQL and SQLite).
        self.upsert_on = upsert_on
        given = set(self.columns)
        unset = [c.name for c in table.columns  # a generated column is never given (the database computes it)
                 if c.name not in given and c.computed is None
                 and (c.default is not None or c.server_default is not None)]
        if unset:
            raise ValueError(f"{table.name}: columns with defaults must be given: {unset}")
        self.constants = constants
        self._prepared: dict[str, tuple] = {}

    def _prepare(self, dialect):
        prepared = self._prepared.get(dialect.name)
        if prepared is None:
            quote = dialect.identifier_preparer.quote
            mark = "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"
            sql = (f"INSERT INTO {quote(self.table.name)} "
                   f"({', '.join(quote(name) for name in self.columns)}) "
                   f"VALUES ({', '.join([mark] * len(self.columns))})")
            if self.upsert_on:
                sql += (f" ON CONFLICT ({', '.join(quote(name) for name in self.upsert_on)}) "
                        f"DO UPDATE SET " + ", ".join(
                            f"{quote(name)} = excluded.{quote(name)}"
                            for name in self.columns if name not in self.upsert_on))
            processors = [self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                          for name in self.columns]
            prepared = self._prepared[dialect.name] = (sql, processors)
        return prepared

    def execute(self, rows: list[tuple], constants: dict[str, Any]) -> None:
        if db.session.autoflush:  # as session.execute would: pending objects are written first
            db.session.flush()
        connection = db.session.connection()
        sql, processors = self._prepare(connection.dialect)
        width = len(self.columns) - len(self.constants)
        fixed = tuple(processors[width + i](constants[name]) if processors[width + i]
                      else constants[name] for i, name in enumerate(self.constants))
        varying = [(i, p) for i, p in enumerate(processors[:width]) if p is not None]
        if varying:
            params = []
            empty: dict[tuple, Any] = {}  # None, [] and {} (most rows' JSON): converted once
            for row in rows:
                row = list(row)
                for i, process in varying:
                    value = row[i]
                    if value is None or (not value and type(value) in (list, dict)):
                        key = (i, type(value))
                        if key not in empty:
                            empty[key] = process(value)
                        row[i] = empty[key]
                    else:
                        row[i] = process(value)
                params.append(tuple(row) + fixed)
        else:
            params = [row + fixed for row in rows]
        if connection.dialect.name == "postgresql":
            if self.upsert_on:
                self._upsert_arrays(connection, params)
            else:
                self._copy(connection, params)
        else:
            connection.exec_driver_sql(sql, params)

    def _upsert_arrays(self, connection, params: list[tuple]) -> None:
        """PostgreSQL: the upsert as one statement, each column one array parameter
        (``INSERT ... SELECT * FROM unnest(...) ON CONFLICT ... DO UPDATE``) instead of one
        statement a row. Text columns travel as ``text[]``: the insert's own assignment cast
        then refuses a value too long for its column, as a row's INSERT did (a cast to
        ``varchar(n)[]`` would cut it). Rows with the same key: the last one is kept, as the
        executemany's last UPDATE was."""
        dialect = connection.dialect
        quote = dialect.identifier_preparer.quote
        width = len(self.columns) - len(self.constants)
        keys = [self.columns.index(name) for name in self.upsert_on]
        rows = list({tuple(row[i] for i in keys): row for row in params}.values())
        if not rows:
            return

        def cast(name: str) -> str:
            column_type = self.table.c[name].type
            if isinstance(column_type, String):
                return "TEXT"
            return column_type.dialect_impl(dialect).compile(dialect=dialect)

        varying = ", ".join(f"%s::{cast(name)}[]" for name in self.columns[:width])
        fixed = "".join(f", %s::{cast(name)}" for name in self.constants)
        sql = (f"INSERT INTO {quote(self.table.name)} "
               f"({', '.join(quote(name) for name in self.columns)}) "
               f"SELECT u.*{fixed} FROM unnest({varying}) AS u "
               f"ON CONFLICT ({', '.join(quote(name) for name in self.upsert_on)}) DO UPDATE SET "
               + ", ".join(f"{quote(name)} = excluded.{quote(name)}"
                           for name in self.columns if name not in self.upsert_on))
        arrays = [[row[i] for row in rows] for i in range(width)]
        constants = list(rows[0][width:])
        connection.exec_driver_sql(sql, tuple(constants + arrays))  # the SELECT's order

    def _copy(self, connection, params: list[tuple]) -> None:
        """PostgreSQL: the rows as one ``COPY ... FROM STDIN`` in the page's transaction.

        An executemany sends (and the server executes) one INSERT a row: at three tables of
        2,000 rows a page that was a third of a PostgreSQL import's worker time. COPY streams
        the same values (the same bind-processed Python values, adapted by psycopg) and is
        checked by the same constraints; an error is raised as SQLAlchemy's error for it
        (a unique violation is an ``IntegrityError``, so the page still becomes a
        ``SinkConflict``).
        """
        quote = connection.dialect.identifier_preparer.quote
        sql = (f"COPY {quote(self.table.name)} "
               f"({', '.join(quote(name) for name in self.columns)}) FROM STDIN")
        dbapi = connection.dialect.loaded_dbapi
        try:
            with connection.connection.dbapi_connection.cursor() as cursor:
                with cursor.copy(sql) as copy:
                    for row in params:
                        copy.write_row(row)
        except dbapi.Error as exc:
            raise DBAPIError.instance(sql, None, exc, dbapi.Error) from exc


_PARTICIPANT_COLUMNS = ("first_name", "last_name", "email", "email_key", "company", "phone_e164",
                        "phone_ext", "phone_key", "segments", "attributes", "consent_status")
_PARTICIPANT_CONSTANTS = ("workspace_id", "status", "created_at", "updated_at")
_NEW_PARTICIPANTS = _PreparedInsert(Participant.__table__, _PARTICIPANT_COLUMNS, _PARTICIPANT_CONSTANTS)
_NEW_PARTICIPANTS_WITH_IDS = _PreparedInsert(Participant.__table__, ("id",) + _PARTICIPANT_COLUMNS,
                                             _PARTICIPANT_CONSTANTS)
_NEW_LINKS = _PreparedInsert(
    ParticipantSource.__table__,
    ("org_id", "object_name", "record_id", "participant_id", "source_hash", "source_timestamp",
     "consent_value_seen"),
    ("workspace_id", "first_synced_at", "connection_id", "plan_id", "source_state",
     "last_synced_at", "last_run_id", "source_system"))
_SOURCE_SYSTEM = ParticipantSource.__table__.c.source_system.default.arg
_RECORD_ID_LENGTH = SkippedSource.__table__.c.record_id.type.length
_NEW_SKIPS = _PreparedInsert(
    SkippedSource.__table__,
    ("org_id", "object_name", "record_id", "source_hash", "rules", "reason", "email", "email_key",
     "phone_key", "flags"),
    ("workspace_id", "plan_id", "run_id", "skipped_at"),
    upsert_on=tuple(c.name for c in SkippedSource.__table__.primary_key.columns))
_OUTCOMES = _PreparedInsert(
    RunOutcome.__table__,
    ("seq", "object_name", "record_id", "participant_id", "outcome", "reason", "email",
     "email_key", "phone_key", "detail"),
    ("workspace_id", "run_id", "created_at"))


def _insert_participants(rows: list[tuple], constants: dict[str, Any]) -> list[int]:
    """INSERT ``rows`` (``_PARTICIPANT_COLUMNS`` order) as one executemany; their ids, in order.

    SQLAlchemy's ordered RETURNING falls back to one statement a row for this table (no
    sentinel column), so: PostgreSQL takes the ids from the sequence first; SQLite, whose write
    lock this transaction holds from the first row on, gives the rows consecutive rowids after
    the largest, so they are the last ``len(rows)`` ids.
    """
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        ids = sorted(db.session.execute(text(
            "SELECT nextval(pg_get_serial_sequence('participants', 'id')) FROM generate_series(1, :n)"),
            {"n": len(rows)}).scalars())
        _NEW_PARTICIPANTS_WITH_IDS.execute([(pid,) + row for pid, row in zip(ids, rows)], constants)
        return ids
    if dialect == "sqlite":
        _NEW_PARTICIPANTS.execute(rows, constants)
        last = db.session.execute(select(func.max(Participant.id))).scalar_one()
        return list(range(last - len(rows) + 1, last + 1))
    dicts = [dict(zip(_PARTICIPANT_COLUMNS, row), **constants) for row in rows]
    return list(db.session.scalars(
        insert(Participant).returning(Participant.id, sort_by_parameter_order=True), dicts))


# Names and company are String(255); Salesforce can hand longer text (a custom long text field
# mapped to a name). Keep the first 255 characters: on PostgreSQL a longer value would fail the
# whole page's transaction, and with it the run.
_NAME_LIMIT = 255


def _evidence_json(evidence: tuple[tuple[str, Any], ...]) -> str:
    """``json.dumps(dict(evidence), default=str)``: a picklist value and a flag or two, the
    same few combinations over a whole import, so the text is kept per combination (with each
    value's type: True and 1 are equal keys but different JSON)."""
    try:
        return _evidence_json_cached(tuple((path, type(value), value) for path, value in evidence))
    except TypeError:  # an unhashable value
        return json.dumps(dict(evidence), default=str)


@lru_cache(maxsize=256)
def _evidence_json_cached(typed: tuple) -> str:
    return json.dumps({path: value for path, _, value in typed}, default=str)


def _clip(value):
    return value[:_NAME_LIMIT] if isinstance(value, str) and len(value) > _NAME_LIMIT else value


def _new_participant_row(values: ParticipantValues) -> tuple:
    """The INSERT values (``_PARTICIPANT_COLUMNS``) of a new participant: _apply_values on an
    empty one."""
    phone = values.phone_key is not None
    return (
        _clip(values.first_name), _clip(values.last_name), values.email, values.email_key,
        _clip(values.company), values.phone if phone else None,
        values.phone_extension if phone else None, values.phone_key if phone else None,
        list(values.segments) if values.segments else [],
        (json.loads(json.dumps(dict(values.attributes), default=str)) if values.attributes else {}),
        Consent(values.consent).value if values.consent is not None else CONSENT_UNKNOWN)


def _apply_values(person: Participant, values: ParticipantValues) -> None:
    """None means "leave as is" (the same rule as sync.memory)."""
    for name in ("first_name", "last_name", "email", "email_key", "company"):
        value = getattr(values, name)
        if value is not None:
            setattr(person, name, _clip(value))
    if values.phone_key is not None:
        person.phone_e164 = values.phone
        person.phone_ext = values.phone_extension
        person.phone_key = values.phone_key
    if values.segments:
        person.segments = list(values.segments)
    if values.attributes:
        merged = dict(person.attributes or {})
        merged.update(json.loads(json.dumps(dict(values.attributes), default=str)))
        person.attributes = merged
    if values.consent is not None:
        person.consent_status = Consent(values.consent).value


def _flags(stored) -> tuple[Flag, ...]:
    """A remembered skip's flags, as stored by ``DatabaseSink._skip_memory``."""
    if not stored:
        return ()
    return tuple(Flag(f.get("code"), f.get("field"), f.get("raw"), f.get("reason")) for f in stored)


def _consent(value: str | None) -> Consent:
    try:
        return Consent(value)
    except ValueError:
        return Consent.UNKNOWN


def _constraint_text(exc: IntegrityError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.splitlines()[0][:300]

"""An in-memory Sink for one workspace: the reference implementation of the sink contract.

Used by unit tests and benchmarks. It enforces what the database enforces: one participant per
email key in the workspace (a conflicting page raises ``SinkConflict`` and changes nothing), and
one link per Salesforce record. Its skip memory is keyed by record alone (one plan per sink):
a record run by a plan with another fingerprint has another source hash and is decided anew.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sync.errors import SinkConflict
from sync.mapping import SourceRef
from sync.plan import Action, Consent, LeavingPolicy
from sync.sink import (KnownParticipant, Link, Lookup, LookupResult, NewParticipant,
                       NewParticipantRef, PageChanges, ParticipantValues, RecordOutcome,
                       SkipMemory, refuse_links_of_unapplied)


@dataclass
class StoredParticipant:
    id: int
    values: dict[str, Any]
    consent: Consent = Consent.UNKNOWN
    consent_evidence: tuple = ()
    archived: bool = False

    @property
    def email_key(self) -> str | None:
        return self.values.get("email_key")

    @property
    def phone_key(self) -> str | None:
        return self.values.get("phone_key")


@dataclass
class StoredLink:
    link: Link
    flags: tuple = ()
    left: str | None = None  # deleted, merged, opted_out


@dataclass
class StoredInvitation:
    participant_id: int
    action: Action
    target_id: str
    consent: Consent
    consent_evidence: tuple
    confirmation: str
    status: str = "pending"  # pending, withdrawn


@dataclass
class _State:
    participants: dict[int, StoredParticipant] = field(default_factory=dict)
    links: dict[SourceRef, StoredLink] = field(default_factory=dict)
    skips: dict[SourceRef, SkipMemory] = field(default_factory=dict)  # the skip memory
    invitations: list[StoredInvitation] = field(default_factory=list)
    outcomes: list[RecordOutcome] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    cursor: datetime | None = None
    fingerprint: str | None = None
    next_id: int = 1
    email_index: dict[str, int] = field(default_factory=dict)  # the unique email keys
    phone_index: dict[str, set[int]] = field(default_factory=dict)


class MemorySink:
    def __init__(self, suppressed_email_keys: frozenset[str] = frozenset(),
                 suppressed_phone_keys: frozenset[str] = frozenset()):
        self.state = _State()
        self.suppressed_email_keys = frozenset(suppressed_email_keys)
        self.suppressed_phone_keys = frozenset(suppressed_phone_keys)
        self.lookups: list[Lookup] = []
        self.commits = 0
        self.cursor_writes = 0
        # Called with the page just before it is applied; tests use it to act as a concurrent
        # run writing between this run's lookup and its commit.
        self.before_commit: Callable[[PageChanges], None] | None = None

    # -- reading ----------------------------------------------------------------------------

    @property
    def participants(self) -> dict[int, StoredParticipant]:
        return self.state.participants

    @property
    def links(self) -> dict[SourceRef, StoredLink]:
        return self.state.links

    @property
    def skips(self) -> dict[SourceRef, SkipMemory]:
        return self.state.skips

    @property
    def invitations(self) -> list[StoredInvitation]:
        return self.state.invitations

    @property
    def outcomes(self) -> list[RecordOutcome]:
        return self.state.outcomes

    @property
    def cursor(self) -> datetime | None:
        return self.state.cursor

    @property
    def fingerprint(self) -> str | None:
        return self.state.fingerprint

    def participant_for(self, ref: SourceRef) -> StoredParticipant | None:
        stored = self.state.links.get(ref)
        return self.state.participants[stored.link.participant_id] if stored else None

    def lookup(self, query: Lookup) -> LookupResult:
        self.lookups.append(query)
        state = self.state
        result = LookupResult()
        wanted: set[int] = set()
        for ref in query.refs:
            stored = state.links.get(ref)
            if stored:
                result.links[ref] = stored.link
                wanted.add(stored.link.participant_id)
        for ref in query.skips:
            if ref in state.skips and ref not in state.links:
                result.skips[ref] = state.skips[ref]
        for key in query.email_keys:
            if key in state.email_index:
                result.by_email[key] = state.email_index[key]
                wanted.add(state.email_index[key])
        for key in query.phone_keys:
            if state.phone_index.get(key):
                result.by_phone[key] = sorted(state.phone_index[key])
                wanted.update(state.phone_index[key])
        for pid in sorted(wanted):
            p = state.participants[pid]
            invited = query.invite_target is not None and any(
                i.participant_id == pid and (i.action, i.target_id) == query.invite_target
                for i in state.invitations)
            result.participants[pid] = KnownParticipant(
                pid, p.email_key, p.phone_key, p.consent, p.archived, invited)
        emails = set(query.email_keys) | {p.email_key for p in result.participants.values()}
        phones = set(query.phone_keys) | {p.phone_key for p in result.participants.values()}
        result.suppressed_email_keys = frozenset(emails & self.suppressed_email_keys)
        result.suppressed_phone_keys = frozenset(phones & self.suppressed_phone_keys)
        return result

    # -- writing ----------------------------------------------------------------------------

    def commit_page(self, changes: PageChanges) -> dict[NewParticipantRef, int]:
        if self.before_commit:
            self.before_commit(changes)
        state = self.state
        refuse_links_of_unapplied(changes)
        self._check_email_keys(changes)  # before any write: all or nothing, like a transaction
        ids: dict[NewParticipantRef, int] = {}

        def resolve(ref):
            return ids[ref] if isinstance(ref, NewParticipantRef) else ref

        for update in changes.updates:
            self._apply(state.participants[update.participant_id], update.values)
        for create in changes.creates:
            participant = StoredParticipant(state.next_id, {})
            state.next_id += 1
            state.participants[participant.id] = participant
            self._apply(participant, create.values)
            ids[create.ref] = participant.id
        for ref in changes.forget:
            state.skips.pop(ref, None)
        for memo in changes.remember:
            state.skips[memo.ref] = memo
        for write in changes.links:
            link = Link(write.ref, resolve(write.participant), write.source_hash,
                        write.source_timestamp)
            state.links[write.ref] = StoredLink(link, write.flags)
            state.skips.pop(write.ref, None)  # a linked record is no longer a skipped one
        for departure in changes.departures:
            _leave(state, departure)
        for invitation in changes.invitations:
            state.invitations.append(StoredInvitation(
                resolve(invitation.participant), invitation.action, invitation.target_id,
                invitation.consent, invitation.consent_evidence, invitation.confirmation))
        state.outcomes += [replace(o, participant=resolve(o.participant))
                           if isinstance(o.participant, NewParticipantRef) else o
                           for o in changes.outcomes]
        state.counts.update(changes.counts)
        if changes.cursor != state.cursor or changes.fingerprint != state.fingerprint:
            state.cursor, state.fingerprint = changes.cursor, changes.fingerprint
            self.cursor_writes += 1
        self.commits += 1
        return ids

    def _check_email_keys(self, changes: PageChanges) -> None:
        """Refuse the page if any email key would belong to two participants."""
        new_key_of: dict[object, str] = {}
        for update in changes.updates:
            if update.values.email_key:
                new_key_of[update.participant_id] = update.values.email_key
        for create in changes.creates:
            if create.values.email_key:
                new_key_of[create.ref] = create.values.email_key
        claims: dict[str, set] = {}
        for claimant, key in new_key_of.items():
            claims.setdefault(key, set()).add(claimant)
        for key, claimants in claims.items():
            holder = self.state.email_index.get(key)
            holder_moves_away = new_key_of.get(holder, key) != key
            if len(claimants) > 1 or (holder is not None and holder not in claimants
                                      and not holder_moves_away):
                raise SinkConflict(f"email key {key} is already taken in this workspace")

    def _apply(self, participant: StoredParticipant, values: ParticipantValues) -> None:
        state = self.state
        old_email, old_phone = participant.email_key, participant.phone_key
        _apply(participant, values)
        if participant.email_key != old_email:
            if old_email and state.email_index.get(old_email) == participant.id:
                del state.email_index[old_email]
            state.email_index[participant.email_key] = participant.id
        if participant.phone_key != old_phone:
            if old_phone:
                state.phone_index.get(old_phone, set()).discard(participant.id)
            state.phone_index.setdefault(participant.phone_key, set()).add(participant.id)

    def insert_participant(self, values: ParticipantValues) -> int:
        """Add a participant directly (as another plan or a CSV import would)."""
        changes = PageChanges(0, creates=[NewParticipant(NewParticipantRef(0), values)])
        self._check_email_keys(changes)
        participant = StoredParticipant(self.state.next_id, {})
        self.state.next_id += 1
        self.state.participants[participant.id] = participant
        self._apply(participant, values)
        return participant.id


def _apply(participant: StoredParticipant, values: ParticipantValues) -> None:
    for name in ("first_name", "last_name", "email", "email_key", "company"):
        value = getattr(values, name)
        if value is not None:
            participant.values[name] = value
    if values.phone_key is not None:
        participant.values.update(phone=values.phone, phone_extension=values.phone_extension,
                                  phone_key=values.phone_key)
    if values.segments:
        participant.values["segments"] = values.segments
    if values.attributes:
        attributes = dict(participant.values.get("attributes", {}))
        attributes.update(values.attributes)
        participant.values["attributes"] = attributes
    if values.consent is not None:
        participant.consent = values.consent
        participant.consent_evidence = values.consent_evidence


def _leave(state: _State, departure) -> None:
    state.links[departure.ref].left = departure.kind
    participant = state.participants[departure.participant_id]
    opted_out = departure.kind == "opted_out"
    if opted_out or departure.policy is LeavingPolicy.MARK_OPTED_OUT:
        participant.consent = Consent.OPTED_OUT
    if departure.policy is LeavingPolicy.ARCHIVE:
        participant.archived = True
    if opted_out or departure.policy is not LeavingPolicy.KEEP:
        for invitation in state.invitations:
            if invitation.participant_id == participant.id and invitation.status == "pending":
                invitation.status = "withdrawn"

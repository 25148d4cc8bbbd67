"""The engine's ports: what it reads from (Source), writes to (Sink) and tells (Log),
and the value objects that cross them. Implementations live outside the engine:
``sync.memory.MemorySink`` here, the database sink in ``services/``.
"""
from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sync.mapping import SourceRef
from sync.plan import Action, Consent, LeavingPolicy
from sync.validate import Flag

ParticipantId = Hashable  # whatever the sink uses (an int primary key in the database)

# Record outcomes, one per record read.
IMPORTED = "imported"
UPDATED = "updated"
UNCHANGED = "unchanged"
EXCLUDED = "excluded_in_preview"
SKIPPED = "skipped"
FAILED = "failed"
INVITED = "invited"  # counted in addition to imported/updated for the records invited
OUTCOMES = (IMPORTED, UPDATED, UNCHANGED, EXCLUDED, SKIPPED, FAILED)


@dataclass(frozen=True)
class NewParticipantRef:
    """A participant created by this page, before the sink gives it an id."""

    index: int


ParticipantRef = ParticipantId | NewParticipantRef


# ---- lookup ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lookup:
    """One batched question per page phase (at most two phases per page: by source links, then
    by email/phone keys for the records whose values changed)."""

    refs: frozenset[SourceRef] = frozenset()
    email_keys: frozenset[str] = frozenset()
    phone_keys: frozenset[str] = frozenset()
    invite_target: tuple[Action, str] | None = None  # report who is already invited there
    # Records of the page whose remembered skip (``SkipMemory``, this plan's) to report, for
    # those of them that have no source link.
    skips: frozenset[SourceRef] = frozenset()


@dataclass(frozen=True)
class Link:
    """A stored source link: this Salesforce record is that participant."""

    ref: SourceRef
    participant_id: ParticipantId
    source_hash: str | None
    source_timestamp: datetime | None = None


@dataclass(frozen=True)
class KnownParticipant:
    id: ParticipantId
    email_key: str | None
    phone_key: str | None
    consent: Consent = Consent.UNKNOWN
    archived: bool = False
    invited: bool = False  # already invited to Lookup.invite_target


@dataclass(frozen=True)
class SkipMemory:
    """A record the plan skipped (not importable: missing required values, no valid contact point,
    opted out, deleted), remembered so that fetching it again unchanged costs no validation.

    ``source_hash`` covers the mapped source values and the plan's fingerprint (mapping, filters,
    consent rule, action, default region); ``rules`` names the validation and skip rules that
    decided it (``sync.engine.SKIP_RULES``). The skip holds while both are equal and identity
    still finds nobody for the record's keys; the engine re-checks the latter every time.
    """

    ref: SourceRef
    source_hash: str
    rules: str
    reason: str
    flags: tuple[Flag, ...] = ()
    email: str | None = None  # the record's contact points, as on its outcome
    email_key: str | None = None
    phone_key: str | None = None


@dataclass
class LookupResult:
    links: dict[SourceRef, Link] = field(default_factory=dict)
    skips: dict[SourceRef, SkipMemory] = field(default_factory=dict)  # for Lookup.skips
    participants: dict[ParticipantId, KnownParticipant] = field(default_factory=dict)
    by_email: dict[str, ParticipantId] = field(default_factory=dict)
    by_phone: dict[str, list[ParticipantId]] = field(default_factory=dict)
    suppressed_email_keys: frozenset[str] = frozenset()
    # The do-not-contact list, asked about the records' keys and the found participants' own
    # keys: a consent change the person made in the product (unsubscribe) outranks Salesforce.
    suppressed_phone_keys: frozenset[str] = frozenset()

    def merge(self, other: LookupResult) -> None:
        self.links.update(other.links)
        self.skips.update(other.skips)
        self.participants.update(other.participants)
        self.by_email.update(other.by_email)
        for key, ids in other.by_phone.items():
            self.by_phone[key] = list(dict.fromkeys(self.by_phone.get(key, []) + list(ids)))
        self.suppressed_email_keys = self.suppressed_email_keys | other.suppressed_email_keys
        self.suppressed_phone_keys = self.suppressed_phone_keys | other.suppressed_phone_keys


# ---- page changes -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ParticipantValues:
    """Values to write. None means "leave as is": an empty or invalid value in one record never
    erases what another record (or an earlier sync) gave the participant."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    email_key: str | None = None
    phone: str | None = None  # E.164
    phone_extension: str | None = None
    phone_key: str | None = None
    company: str | None = None
    segments: tuple[str, ...] = ()
    attributes: tuple[tuple[str, Any], ...] = ()
    consent: Consent | None = None  # None when the plan has no consent rule
    consent_evidence: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class NewParticipant:
    ref: NewParticipantRef
    values: ParticipantValues


@dataclass(frozen=True)
class ParticipantUpdate:
    participant_id: ParticipantId
    values: ParticipantValues


@dataclass(frozen=True)
class SourceLinkWrite:
    """Create or refresh the link of one Salesforce record to a participant."""

    ref: SourceRef
    participant: ParticipantRef
    source_hash: str
    source_timestamp: datetime | None
    flags: tuple[Flag, ...] = ()  # the record's current validation flags (raw values kept)


@dataclass(frozen=True)
class Departure:
    """A linked record left: deleted or merged in Salesforce, or opted out."""

    ref: SourceRef
    participant_id: ParticipantId
    kind: str  # "deleted", "merged", "opted_out"
    policy: LeavingPolicy
    reason: str


@dataclass(frozen=True)
class InvitationWrite:
    participant: ParticipantRef
    action: Action
    target_id: str
    consent: Consent
    consent_evidence: tuple[tuple[str, Any], ...]  # the values the consent was read from
    confirmation: str  # the researcher's confirmation it relied on
    ref: SourceRef  # the record it came from


@dataclass(frozen=True)
class RecordOutcome:
    ref: SourceRef | None  # None when the record had no usable ID
    record_id: str | None  # as received (for records that failed before mapping)
    outcome: str  # one of OUTCOMES
    reason: str | None = None
    participant: ParticipantRef | None = None
    invited: bool = False
    flags: tuple[Flag, ...] = ()
    # The record's own contact points, kept whatever the outcome ("why isn't this person
    # here?" searches skipped and failed records by email too): raw email, and the keys
    # when valid.
    email: str | None = None
    email_key: str | None = None
    phone_key: str | None = None
    # A skip repeated from the plan's memory (same source hash, same rules): the record was not
    # validated again; reason, flags and contact points are those the skip was decided with.
    remembered: bool = False


def refuse_links_of_unapplied(changes: "PageChanges") -> None:
    """The sink contract: a record whose outcome is skipped or failed is never linked to a
    participant. Raises ``ValueError`` (before anything is written) if the page links one."""
    unapplied = {o.ref for o in changes.outcomes
                 if o.outcome in (SKIPPED, FAILED) and o.ref is not None}
    wrong = sorted(w.ref.record_id for w in changes.links if w.ref in unapplied)
    if wrong:
        raise ValueError(f"records skipped or failed cannot be linked: {', '.join(wrong)}")


@dataclass
class PageChanges:
    """Everything one page writes; the sink applies it in one transaction."""

    page_number: int
    creates: list[NewParticipant] = field(default_factory=list)
    updates: list[ParticipantUpdate] = field(default_factory=list)
    links: list[SourceLinkWrite] = field(default_factory=list)
    departures: list[Departure] = field(default_factory=list)
    invitations: list[InvitationWrite] = field(default_factory=list)
    outcomes: list[RecordOutcome] = field(default_factory=list)
    # The plan's skip memory: ``forget`` drops what is remembered for these records (decided
    # anew, linked now); ``remember`` stores the skips decided now (at most one per record,
    # replacing what is remembered for it).
    forget: list[SourceRef] = field(default_factory=list)
    remember: list[SkipMemory] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # this page's outcome counters
    cursor: datetime | None = None  # the plan's cursor once this page is committed
    fingerprint: str = ""  # the plan fingerprint the cursor belongs to


# ---- ports ----------------------------------------------------------------------------------

class Source(Protocol):
    """Pages of Salesforce JSON records, fetched lazily in ``ORDER BY <cursor field>, Id``.

    Iteration raises ``sync.errors.Source*`` errors; after one, the engine asks for nothing more.
    """

    def __iter__(self) -> Iterator[Sequence[Mapping[str, Any]]]: ...


class Sink(Protocol):
    def lookup(self, query: Lookup) -> LookupResult:
        """Links for ``query.refs``; the plan's remembered skips of ``query.skips`` that have no
        link; participants by email key and phone key (phone keys may name several); the
        participants of those links and keys; which email keys are suppressed; whether each
        participant is already invited to ``query.invite_target``."""

    def commit_page(self, changes: PageChanges) -> dict[NewParticipantRef, ParticipantId]:
        """Apply ``changes`` in one transaction (participants, links, departures, invitations,
        outcomes, skip memory, run counters, cursor). Raise ``SinkConflict`` (after rolling back) when a
        workspace uniqueness rule refuses it. Returns the ids given to created participants."""


class Log(Protocol):
    def event(self, message: str, *, level: str = "info", **data: Any) -> None:
        """A run-level line for the run log (page committed, stopped and why)."""

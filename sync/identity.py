"""Identity resolution for one page: which participant is each record?

Order: the record's own source link (org + object + 18-character ID); then the other records
that are the same person (a converted lead's contact; a campaign member's contact, else its
lead); then the email key; then the phone key. A phone key matches only when neither the record nor the
participant has a valid email: a switchboard or a shared family phone is not a person, so a
record with an email is never merged by phone into someone with no email or another one (it is
evaluated on its own, by its email). Invalid emails and phones have no key, so they never match
anyone. Two records of
one page that are the same person resolve to one participant: the first claims it, later ones
are reported as its duplicates.
"""
from __future__ import annotations

from dataclasses import dataclass

from sync.mapping import MappedRecord, SourceRef
from sync import verdicts
from sync.sink import LookupResult, NewParticipantRef, ParticipantRef

_FREED = object()


@dataclass(frozen=True)
class Resolution:
    participant: ParticipantRef | None  # None: a new person
    matched_by: str | None = None  # "record id", "Contact 003...", "email", "phone"
    duplicate_of: str | None = None  # record ID of an earlier record of this page, same person
    conflict: str | None = None  # why the record cannot be applied to its participant

    @property
    def by_own_link(self) -> bool:
        return self.matched_by == "record id"


class PageIdentity:
    """Resolves the records of one page against what the sink knows plus the page so far."""

    def __init__(self, known: LookupResult):
        self.known = known
        self._refs: dict[SourceRef, ParticipantRef] = {}
        self._email: dict[str, object] = {}  # page overlay on known.by_email (_FREED = moved)
        self._phone: dict[str, list[ParticipantRef]] = {}
        self._email_of: dict[ParticipantRef, str | None] = {}
        self._phone_of: dict[ParticipantRef, str | None] = {}
        self._claimed_by: dict[ParticipantRef, str] = {}
        self._new = 0

    # -- queries ----------------------------------------------------------------------------

    def participant_for_ref(self, ref: SourceRef) -> ParticipantRef | None:
        if ref in self._refs:
            return self._refs[ref]
        link = self.known.links.get(ref)
        return link.participant_id if link else None

    def owner_of_email(self, key: str) -> ParticipantRef | None:
        owner = self._email.get(key)
        if owner is _FREED:
            return None
        return owner if owner is not None else self.known.by_email.get(key)

    def email_key_of(self, participant: ParticipantRef) -> str | None:
        if participant in self._email_of:
            return self._email_of[participant]
        known = self.known.participants.get(participant)
        return known.email_key if known else None

    def phone_key_of(self, participant: ParticipantRef) -> str | None:
        if participant in self._phone_of:
            return self._phone_of[participant]
        known = self.known.participants.get(participant)
        return known.phone_key if known else None

    def resolve(self, record: MappedRecord, email_key: str | None,
                phone_key: str | None) -> Resolution:
        participant, matched_by = self._match(record, email_key, phone_key)
        if participant is None:
            return Resolution(None)
        if email_key:
            owner = self.owner_of_email(email_key)
            if owner is not None and owner != participant:
                return Resolution(participant, matched_by, conflict=verdicts.email_taken(email_key))
        first = self._claimed_by.get(participant)
        if first is not None and first != record.record_id:
            return Resolution(participant, matched_by, duplicate_of=first)
        return Resolution(participant, matched_by)

    def _match(self, record, email_key, phone_key):
        own = self.participant_for_ref(record.ref)
        if own is not None:
            return own, "record id"
        for ref in record.person_refs:
            found = self.participant_for_ref(ref)
            if found is not None:
                return found, str(ref)
        if email_key:
            found = self.owner_of_email(email_key)
            if found is not None:
                return found, "email"
        if phone_key:
            for candidate in self._phone_candidates(phone_key):
                if email_key is None and self.email_key_of(candidate) is None:
                    return candidate, "phone"
        return None, None

    def _phone_candidates(self, key: str) -> list[ParticipantRef]:
        candidates = list(self._phone.get(key, [])) + list(self.known.by_phone.get(key, []))
        unique = dict.fromkeys(c for c in candidates if self.phone_key_of(c) == key)
        return list(unique)

    # -- updates ----------------------------------------------------------------------------

    def new_participant(self) -> NewParticipantRef:
        self._new += 1
        return NewParticipantRef(self._new)

    def claim(self, participant: ParticipantRef, record: MappedRecord, email_key: str | None,
              phone_key: str | None) -> None:
        """Record that ``record`` is ``participant`` and what its keys now are."""
        self._claimed_by.setdefault(participant, record.record_id)
        self._refs[record.ref] = participant
        for ref in record.person_refs:
            self._refs.setdefault(ref, participant)
        if email_key:
            old = self.email_key_of(participant)
            if old and old != email_key:
                self._email[old] = _FREED
            self._email[email_key] = participant
            self._email_of[participant] = email_key
        if phone_key:
            self._phone.setdefault(phone_key, []).append(participant)
            self._phone_of[participant] = phone_key

    def link_duplicate(self, record: MappedRecord, participant: ParticipantRef) -> None:
        """A later record of the page that is the same person: it resolves to ``participant``."""
        self._refs[record.ref] = participant

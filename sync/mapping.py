"""Mapping one Salesforce record to the participant values a plan asks for.

Mapping reads and trims; it does not validate (see ``sync.validate``). It records the exact
source values it used and a hash of them, so a record whose values did not change since the
last run is recognised before any validation.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sync.cursor import parse_datetime
from sync.ids import to_18
from sync.paths import first_text, get_path, get_text
from sync.plan import CAMPAIGN_MEMBER, CONTACT, LEAD, Consent, ConsentRule, Plan


@dataclass(frozen=True)
class SourceRef:
    """One Salesforce record: the identity a participant's source link is keyed by."""

    org_id: str
    object_name: str
    record_id: str  # 18 characters, case intact

    def __str__(self) -> str:
        return f"{self.object_name} {self.record_id}"


@dataclass(frozen=True)
class MappedRecord:
    ref: SourceRef  # the record itself
    person_refs: tuple[SourceRef, ...]  # other records that are this same person, best first
    person_kind: str  # "record", "converted_lead" or "campaign_member"
    first_name: str | None
    last_name: str | None
    email: str | None  # raw (trimmed) text, not yet validated
    phone: str | None
    company: str | None
    country: str | None
    segments: tuple[str, ...]
    attributes: tuple[tuple[str, Any], ...]
    consent: Consent
    consent_evidence: tuple[tuple[str, Any], ...]  # path -> value the consent was read from
    source_values: tuple[tuple[str, Any], ...]  # path -> raw value used for each mapped field
    source_hash: str
    timestamp: datetime | None
    deleted: bool = False
    merged_into: str | None = None  # MasterRecordId of a record merged away

    @property
    def record_id(self) -> str:
        return self.ref.record_id

    def value(self, name: str) -> Any:
        return getattr(self, name)


def map_record(plan: Plan, record: MappingType[str, Any]) -> MappedRecord:
    """Map one record. Raises ``sync.ids.InvalidRecordId`` for a record without a usable ID."""
    mapping = plan.mapping
    raw_id = get_text(record, mapping.external_id)
    record_id = to_18(raw_id) if mapping.external_id == "Id" else raw_id
    if not record_id:
        raise ValueError(f"the record has no {mapping.external_id}")
    ref = SourceRef(plan.org_id, plan.object_name, record_id)

    person, person_refs, kind = _person(plan, record)
    used: dict[str, Any] = {}
    values: dict[str, str | None] = {}
    for name, paths in mapping.person_paths:
        path, value = first_text(person, paths)  # the first non-blank fallback wins
        if path is not None:
            used[path] = value
        values[name] = value
    segments: list[str] = []
    for path in mapping.segments:
        value = get_text(person, path)
        if value is not None:
            used[path] = value
            segments += split_multiselect(value)
    attributes = []
    for name, path in mapping.attributes:
        value = get_path(person, path)
        used[path] = value
        attributes.append((name, value.strip() if isinstance(value, str) else value))

    consent, evidence = evaluate_consent(plan.consent, person)
    deleted = get_path(record, "IsDeleted") is True
    merged_into = get_text(record, "MasterRecordId")
    identity = tuple((r.object_name, r.record_id) for r in person_refs)
    hash_input = [plan.fingerprint, sorted(used.items()), evidence, identity, deleted, merged_into]
    digest = hashlib.sha256(_HASH_JSON.encode(hash_input).encode()).hexdigest()

    stamp = get_path(record, plan.cursor_field)
    return MappedRecord(
        ref=ref, person_refs=person_refs, person_kind=kind,
        segments=tuple(dict.fromkeys(segments)), attributes=tuple(attributes),
        consent=consent, consent_evidence=evidence, source_values=tuple(used.items()),
        source_hash=digest, timestamp=parse_datetime(stamp) if isinstance(stamp, str) else None,
        deleted=deleted, merged_into=merged_into, **values,
    )


# json.dumps(..., sort_keys=True, default=str, separators=(",", ":")) without building an
# encoder per record. The hash must never change: a stored link's hash equal to the record's
# is what lets an unchanged record skip validation and writes.
_HASH_JSON = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":"))


def _person(plan: Plan, record: MappingType[str, Any]):
    """The object person fields are read from, the refs naming the same person, and the kind."""
    if plan.object_name == CAMPAIGN_MEMBER:
        refs = []
        contact_id, lead_id = get_text(record, "ContactId"), get_text(record, "LeadId")
        if contact_id:
            refs.append(SourceRef(plan.org_id, CONTACT, to_18(contact_id)))
        if lead_id:
            refs.append(SourceRef(plan.org_id, LEAD, to_18(lead_id)))
        parent = CONTACT if contact_id else LEAD
        person = record.get(parent)
        return (person if isinstance(person, MappingType) else None), tuple(refs), "campaign_member"
    if plan.object_name == LEAD and get_path(record, "IsConverted") is True:
        contact_id = get_text(record, "ConvertedContactId")
        if contact_id:
            return record, (SourceRef(plan.org_id, CONTACT, to_18(contact_id)),), "converted_lead"
    return record, (), "record"


def split_multiselect(value: str) -> list[str]:
    """``"Researcher;Designer"`` -> ``["Researcher", "Designer"]`` (every value kept)."""
    return [part.strip() for part in value.split(";") if part.strip()]


def evaluate_consent(rule: ConsentRule, record: MappingType[str, Any] | None):
    """(consent, evidence): the consent a record shows by the plan's rule, and what it read."""
    evidence = []
    opted_out_flag = False
    for path in rule.opt_out_flags:
        value = get_path(record, path)
        evidence.append((path, value))
        opted_out_flag = opted_out_flag or value is True or (
            isinstance(value, str) and value.strip().casefold() == "true")
    status = Consent.UNKNOWN
    if rule.path:
        value = get_path(record, rule.path)
        evidence.insert(0, (rule.path, value))
        folded = _fold(value)
        if folded is not None and folded in _folded_values(rule.opted_out_values):
            status = Consent.OPTED_OUT
        elif folded is not None and folded in _folded_values(rule.opted_in_values):
            status = Consent.OPTED_IN
    if opted_out_flag:
        status = Consent.OPTED_OUT
    return status, tuple(evidence)


def _folded_values(values: tuple[str, ...]) -> frozenset[str | None]:
    try:
        return _folded_values_cached(values)
    except TypeError:  # an unhashable value in the stored rule
        return frozenset(_fold(v) for v in values)


@lru_cache(maxsize=64)
def _folded_values_cached(values: tuple[str, ...]) -> frozenset[str | None]:
    return frozenset(_fold(v) for v in values)


def _fold(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is str and len(value) <= 80:
        return _fold_text(value)  # a picklist: a handful of values over a whole import
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = " ".join(str(value).split()).casefold()
    return text or None


@lru_cache(maxsize=1024)
def _fold_text(value: str) -> str | None:
    return " ".join(value.split()).casefold() or None

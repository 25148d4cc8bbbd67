"""The plan the engine runs: frozen value objects built by services from the plan's rows."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from enum import Enum
from functools import cached_property

from sync.ids import is_valid_id, to_18

Paths = tuple[str, ...]

CAMPAIGN_MEMBER = "CampaignMember"
LEAD = "Lead"
CONTACT = "Contact"


class Action(str, Enum):
    IMPORT_ONLY = "import_only"
    POOL = "pool"
    INVITE_STUDY = "invite_study"
    INVITE_TASK = "invite_task"
    COMMUNITY = "community"

    @property
    def invites(self) -> bool:
        return self in (Action.INVITE_STUDY, Action.INVITE_TASK, Action.COMMUNITY)


class LeavingPolicy(str, Enum):
    """What happens to a linked participant whose record leaves (deleted, merged, opted out)."""

    KEEP = "keep"
    MARK_OPTED_OUT = "mark_opted_out"
    ARCHIVE = "archive"


class Consent(str, Enum):
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Mapping:
    """Participant field -> ordered fallback paths (the first non-blank value wins).

    For CampaignMember plans every path is relative to the member's person: it is read under
    ``Contact.`` when the member has a ContactId, else under ``Lead.``.
    """

    first_name: Paths = ("FirstName",)
    last_name: Paths = ("LastName",)
    email: Paths = ("Email",)
    phone: Paths = ("Phone", "MobilePhone")
    company: Paths = ()
    country: Paths = ()  # the record's country, for the phone region
    segments: Paths = ()  # each value kept; multi-select "a;b" gives both
    attributes: tuple[tuple[str, str], ...] = ()  # custom attribute name -> path
    external_id: str = "Id"
    required: tuple[str, ...] = ()  # participant fields that must have a value

    PERSON_FIELDS = ("first_name", "last_name", "email", "phone", "company", "country")

    @cached_property
    def person_paths(self) -> tuple[tuple[str, Paths], ...]:
        """(participant field, its fallback paths) in PERSON_FIELDS order."""
        return tuple((name, getattr(self, name)) for name in self.PERSON_FIELDS)

    def paths(self) -> list[str]:
        found = [p for name in self.PERSON_FIELDS for p in getattr(self, name)]
        found += list(self.segments) + [p for _, p in self.attributes]
        return _unique(found)


@dataclass(frozen=True)
class ConsentRule:
    """How a record's consent is read.

    A true value in any ``opt_out_flags`` path (HasOptedOutOfEmail, DoNotCall) means opted out.
    Otherwise ``path``'s value is compared, trimmed and case-insensitively, with the values
    meaning opted out and opted in; anything else is unknown.
    """

    path: str | None = None
    opted_in_values: tuple[str, ...] = ()
    opted_out_values: tuple[str, ...] = ()
    opt_out_flags: Paths = ()

    def paths(self) -> list[str]:
        return _unique(([self.path] if self.path else []) + list(self.opt_out_flags))

    @property
    def configured(self) -> bool:
        return bool(self.path or self.opt_out_flags)


@dataclass(frozen=True)
class Plan:
    org_id: str
    object_name: str
    mapping: Mapping = field(default_factory=Mapping)
    consent: ConsentRule = field(default_factory=ConsentRule)
    action: Action = Action.IMPORT_ONLY
    target_id: str | None = None  # invite actions: the target's key, "study:5", "activity:7", "community:2"
    invite_confirmation: str | None = None  # the researcher's recorded confirmation
    filters: str = ""  # canonical text of the plan's filters (e.g. the WHERE clause)
    excluded_ids: frozenset[str] = frozenset()  # removed in the preview
    default_region: str | None = None
    leaving_policy: LeavingPolicy = LeavingPolicy.KEEP
    cursor_field: str = "SystemModstamp"  # LastModifiedDate when the object lacks it
    look_back: timedelta = timedelta(minutes=5)
    plan_id: int | str | None = None

    def __post_init__(self):
        # Excluded IDs may be pasted as 15 characters; records always arrive with 18.
        # A value that is no record ID cannot match a record: dropped, never a failed run (the
        # wizard refuses such values; plans saved before it did may still hold one).
        by_id = self.mapping.external_id == "Id"
        object.__setattr__(self, "excluded_ids",
                           frozenset(to_18(i) if by_id else i for i in self.excluded_ids
                                     if not by_id or is_valid_id(i)))
        object.__setattr__(self, "action", Action(self.action))
        object.__setattr__(self, "leaving_policy", LeavingPolicy(self.leaving_policy))

    @property
    def is_campaign_member(self) -> bool:
        return self.object_name == CAMPAIGN_MEMBER

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever the object, mapping, filters, consent, action or default region change.

        A saved cursor is only reused when its fingerprint equals the plan's; otherwise the run
        reads everything again (and every record's source hash changes with it).
        """
        data = {
            "object": self.object_name,
            "mapping": asdict(self.mapping),
            "filters": self.filters,
            "consent": asdict(self.consent),
            "action": self.action.value,
            "target": self.target_id,
            "default_region": self.default_region,
        }
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def select_fields(self) -> list[str]:
        """Every field the source query must select for this plan, in a stable order."""
        person = self.mapping.paths() + self.consent.paths()
        fields = ["Id", self.cursor_field]
        if self.mapping.external_id != "Id":
            fields.append(self.mapping.external_id)
        if self.is_campaign_member:
            fields += ["ContactId", "LeadId"]
            fields += [f"{parent}.{p}" for parent in (CONTACT, LEAD) for p in person]
        else:
            fields += person
            if self.object_name == LEAD:
                fields += ["IsConverted", "ConvertedContactId"]
        return _unique(fields)


def _unique(items) -> list:
    return list(dict.fromkeys(items))

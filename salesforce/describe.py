"""Describe JSON → small frozen dataclasses, plus what the wizard needs from them.

Nothing here talks HTTP: ``SalesforceClient.describe()`` returns an ``ObjectDescribe``; tests and
services can also build one from recorded JSON with ``ObjectDescribe.from_json``.

Capabilities (email, phone, consent, source ID, last-modified) are recognised from field types
and flags; names only help for the standard opt-out checkboxes and to tell a consent yes/no
picklist from any other yes/no picklist.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field as dc_field
from typing import Any, Iterable, Mapping

COMPOUND_TYPES = frozenset({"address", "location"})
# Types Salesforce can't filter or that mean nothing to a researcher.
UNFILTERABLE_TYPES = COMPOUND_TYPES | {"base64", "anyType", "complexvalue", "encryptedstring", "time"}
STANDARD_FIRST = ("Lead", "Contact", "CampaignMember", "Account")
STANDARD_CONSENT_CHECKBOXES = frozenset({
    "HasOptedOutOfEmail", "DoNotCall", "HasOptedOutOfFax",
    "PersonHasOptedOutOfEmail", "PersonDoNotCall", "PersonHasOptedOutOfFax",
})

# Participant field → describe types it may be mapped from.
PARTICIPANT_FIELD_TYPES: dict[str, tuple[str, ...]] = {  # preferred type first
    "first_name": ("string",),
    "last_name": ("string",),
    "email": ("email", "string"),
    "phone": ("phone", "string"),
    "company": ("string",),
    "segment": ("picklist", "multipicklist", "string"),
    "consent": ("boolean", "picklist", "string"),
    "external_id": ("id",),  # plus any externalId field, see compatible_fields
}


@dataclass(frozen=True)
class PicklistValue:
    value: str
    label: str
    active: bool = True
    default: bool = False


@dataclass(frozen=True)
class FieldInfo:
    name: str
    label: str
    type: str
    length: int = 0
    nillable: bool = True
    filterable: bool = True
    sortable: bool = True
    picklist_values: tuple[PicklistValue, ...] = ()
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    external_id: bool = False
    id_lookup: bool = False
    unique: bool = False
    compound_field_name: str | None = None
    custom: bool = False
    calculated: bool = False
    deprecated_and_hidden: bool = False

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "FieldInfo":
        return cls(
            name=d["name"],
            label=d.get("label") or d["name"],
            type=d.get("type") or "string",
            length=int(d.get("length") or 0),
            nillable=bool(d.get("nillable", True)),
            filterable=bool(d.get("filterable", True)),
            sortable=bool(d.get("sortable", True)),
            picklist_values=tuple(
                PicklistValue(value=str(p["value"]), label=str(p.get("label") or p["value"]),
                              active=bool(p.get("active", True)), default=bool(p.get("defaultValue", False)))
                for p in (d.get("picklistValues") or []) if p.get("value") is not None),
            reference_to=tuple(d.get("referenceTo") or ()),
            relationship_name=d.get("relationshipName") or None,
            external_id=bool(d.get("externalId", False)),
            id_lookup=bool(d.get("idLookup", False)),
            unique=bool(d.get("unique", False)),
            compound_field_name=d.get("compoundFieldName") or None,
            custom=bool(d.get("custom", d["name"].endswith("__c"))),
            calculated=bool(d.get("calculated", False)),
            deprecated_and_hidden=bool(d.get("deprecatedAndHidden", False)),
        )

    @property
    def is_compound(self) -> bool:
        return self.type in COMPOUND_TYPES

    @property
    def is_consent(self) -> bool:
        return _looks_like_consent(self)


@dataclass(frozen=True)
class ChildRelationship:
    child_object: str
    field: str
    relationship_name: str | None


@dataclass(frozen=True)
class ObjectSummary:
    name: str
    label: str
    label_plural: str = ""
    custom: bool = False
    queryable: bool = True
    retrieveable: bool = True
    layoutable: bool = True
    deprecated_and_hidden: bool = False
    key_prefix: str | None = None
    searchable: bool = False

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ObjectSummary":
        return cls(
            name=d["name"],
            label=d.get("label") or d["name"],
            label_plural=d.get("labelPlural") or "",
            custom=bool(d.get("custom", False)),
            queryable=bool(d.get("queryable", False)),
            retrieveable=bool(d.get("retrieveable", False)),
            layoutable=bool(d.get("layoutable", False)),
            deprecated_and_hidden=bool(d.get("deprecatedAndHidden", False)),
            key_prefix=d.get("keyPrefix"),
            searchable=bool(d.get("searchable", False)),
        )

    @property
    def discoverable(self) -> bool:
        return (self.queryable and self.retrieveable and not self.deprecated_and_hidden
                and (self.layoutable or self.custom))


@dataclass(frozen=True)
class Capabilities:
    """What an object offers for participant import, recognised from its describe."""

    email_fields: tuple[str, ...]
    phone_fields: tuple[str, ...]
    consent_fields: tuple[str, ...]
    source_id_fields: tuple[str, ...]
    last_modified_field: str | None

    @property
    def has_email(self) -> bool:
        return bool(self.email_fields)

    @property
    def has_phone(self) -> bool:
        return bool(self.phone_fields)

    @property
    def has_consent(self) -> bool:
        return bool(self.consent_fields)


@dataclass(frozen=True)
class ObjectDescribe:
    name: str
    label: str
    fields: tuple[FieldInfo, ...]
    label_plural: str = ""
    custom: bool = False
    key_prefix: str | None = None
    queryable: bool = True
    child_relationships: tuple[ChildRelationship, ...] = ()
    _by_lower: Mapping[str, FieldInfo] = dc_field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_lower", {f.name.lower(): f for f in self.fields})

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ObjectDescribe":
        return cls(
            name=d["name"],
            label=d.get("label") or d["name"],
            label_plural=d.get("labelPlural") or "",
            custom=bool(d.get("custom", False)),
            key_prefix=d.get("keyPrefix"),
            queryable=bool(d.get("queryable", True)),
            fields=tuple(FieldInfo.from_json(f) for f in d.get("fields") or ()),
            child_relationships=tuple(
                ChildRelationship(c["childSObject"], c["field"], c.get("relationshipName"))
                for c in d.get("childRelationships") or ()),
        )

    def field(self, name: str) -> FieldInfo | None:
        """The field with this API name (Salesforce matches names case-insensitively)."""
        return self._by_lower.get(name.lower())

    @property
    def cursor_field(self) -> str | None:
        """SystemModstamp (changes on system updates too), else LastModifiedDate."""
        for name in ("SystemModstamp", "LastModifiedDate"):
            f = self.field(name)
            if f is not None and f.type == "datetime":
                return f.name
        return None

    @property
    def capabilities(self) -> Capabilities:
        usable = [f for f in self.fields if not f.deprecated_and_hidden]
        source_ids = [f.name for f in usable if f.type == "id"]
        source_ids += [f.name for f in usable if f.type != "id" and f.external_id]
        source_ids += [f.name for f in usable
                       if f.type not in ("id", "email") and not f.external_id and f.id_lookup and f.unique]
        return Capabilities(
            email_fields=tuple(f.name for f in usable if f.type == "email"),
            phone_fields=tuple(f.name for f in usable if f.type == "phone"),
            consent_fields=tuple(f.name for f in usable if _looks_like_consent(f)),
            source_id_fields=tuple(source_ids),
            last_modified_field=self.cursor_field,
        )


def discoverable_objects(summaries: Iterable[ObjectSummary]) -> list[ObjectSummary]:
    """Objects the wizard offers: queryable, retrievable, not hidden, layoutable or custom;
    Lead, Contact, CampaignMember, Account first, then other standard objects, then custom
    ones, each group by label."""
    usable = [s for s in summaries if s.discoverable]
    first = {name: i for i, name in enumerate(STANDARD_FIRST)}

    def key(s: ObjectSummary) -> tuple:
        if s.name in first:
            return (0, first[s.name], "")
        return (2 if s.custom else 1, 0, s.label.lower())

    return sorted(usable, key=key)


# --- consent recognition ------------------------------------------------------------------

_CONSENT_WORDS = re.compile(
    r"opt(ed)?[\s_-]*(in|out)|consent|granted|withdrawn|revoked|unsubscribed|subscribed|declined|do not contact",
    re.IGNORECASE)
_YES_NO = {"yes", "no", "y", "n", "true", "false"}
_CONSENT_NAME = re.compile(r"consent|opt[_\s-]*(in|out)|gdpr|permission|subscri|marketing|contact[_\s-]*ok",
                           re.IGNORECASE)


def _looks_like_consent(f: FieldInfo) -> bool:
    if f.type == "boolean":
        if not f.custom and f.name in STANDARD_CONSENT_CHECKBOXES:
            return True
        return f.custom and bool(_CONSENT_NAME.search(f.name) or _CONSENT_NAME.search(f.label))
    if f.type in ("picklist", "multipicklist"):
        values = [p.value for p in f.picklist_values if p.active] or [p.value for p in f.picklist_values]
        if len(values) < 2:
            return False
        if sum(1 for v in values if _CONSENT_WORDS.search(v)) >= 2:
            return True
        if {v.strip().lower() for v in values} <= _YES_NO:
            # A bare yes/no list is consent only when the field says so.
            return bool(_CONSENT_NAME.search(f.name) or _CONSENT_NAME.search(f.label))
    return False


# --- field paths (own fields plus parents one level up) -----------------------------------

@dataclass(frozen=True)
class FieldChoice:
    """A field as the wizard offers it: ``path`` is what goes into SOQL (``Email``,
    ``Account.Name``), ``label`` what the researcher sees."""

    path: str
    label: str
    field: FieldInfo

    @property
    def is_parent(self) -> bool:
        return "." in self.path


class FieldCatalog:
    """The fields reachable from one object: its own plus, for each lookup with a relationship
    name whose target describe was supplied, the parent's fields as ``Relationship.Field``.

    ``parents`` maps object name → ObjectDescribe (``{"Account": account_describe}``). Polymorphic
    lookups (``Owner`` on Lead → Group or User) only offer fields present on every target
    supplied. This is the describe lookup ``salesforce.soql.build_where`` resolves paths through.
    """

    def __init__(self, obj: ObjectDescribe, parents: Mapping[str, ObjectDescribe] | None = None):
        self.object = obj
        parents = {k.lower(): v for k, v in (parents or {}).items()}
        choices: list[FieldChoice] = []
        for f in obj.fields:
            if not f.deprecated_and_hidden:
                choices.append(FieldChoice(f.name, f.label, f))
        for ref in obj.fields:
            if ref.type != "reference" or not ref.relationship_name or ref.deprecated_and_hidden:
                continue
            targets = [parents.get(t.lower()) for t in ref.reference_to]
            if not targets or any(t is None for t in targets):
                continue
            common = [f for f in targets[0].fields
                      if not f.deprecated_and_hidden and all(t.field(f.name) is not None for t in targets[1:])]
            rel_label = ref.label[:-3] if ref.label.endswith(" ID") else ref.label
            for f in common:
                choices.append(FieldChoice(f"{ref.relationship_name}.{f.name}", f"{rel_label}: {f.label}", f))
        self._choices = tuple(choices)
        self._by_lower = {c.path.lower(): c for c in choices}

    @property
    def object_name(self) -> str:
        return self.object.name

    @property
    def choices(self) -> tuple[FieldChoice, ...]:
        return self._choices

    def resolve(self, path: str) -> FieldChoice | None:
        return self._by_lower.get((path or "").strip().lower())

    def filter_choices(self) -> list[FieldChoice]:
        """Fields a filter row may use: never compound (address/location) whatever the
        ``filterable`` flag says, never fields Salesforce marks unfilterable."""
        return [c for c in self._choices if is_filterable(c.field)]

    def compatible_fields(self, participant_field: str) -> list[FieldChoice]:
        """Choices for one participant field (see PARTICIPANT_FIELD_TYPES), best first:
        own fields before parent paths, then by preferred type (an email field before text)."""
        if participant_field not in PARTICIPANT_FIELD_TYPES:
            raise KeyError(participant_field)
        types = PARTICIPANT_FIELD_TYPES[participant_field]
        if participant_field == "external_id":
            return [c for c in self._choices if not c.is_parent and (c.field.type in types or c.field.external_id)]
        out = [c for c in self._choices if c.field.type in types and not c.field.is_compound]
        # A fax number can be chosen for Phone, but is offered after every other phone field.
        fax_last = participant_field == "phone"
        return sorted(out, key=lambda c: (c.is_parent, types.index(c.field.type), fax_last and is_fax(c.field)))

    def suggested_mapping(self) -> dict[str, str]:
        """Sensible defaults for the mapping step (path per participant field, where one exists).

        Company: the parent account's name (Contact), the lead's own Company, a campaign
        member's CompanyOrAccount; on a business Account the account's own Name *is* the
        company. A Person Account org's Account is not suggested a company: there the Name of
        a person account is the person's own name. Phones: never a fax number (see
        ``phone_fallbacks``)."""
        def first(*names: str) -> str | None:
            for n in names:
                c = self.resolve(n)
                if c is not None:
                    return c.path
            return None

        caps = self.object.capabilities
        phones = self.phone_fallbacks()
        company = first("Account.Name", "Company", "CompanyOrAccount")
        if company is None and self.object.name == "Account" and not self.has_person_accounts:
            company = first("Name")
        suggestion = {
            "first_name": first("FirstName"),
            "last_name": first("LastName"),
            "email": first("Email", "PersonEmail") or (caps.email_fields[0] if caps.email_fields else None),
            "phone": phones[0] if phones else None,
            "company": company,
            "segment": self._suggested_segment(),
            "consent": first("HasOptedOutOfEmail", "PersonHasOptedOutOfEmail")
            or (caps.consent_fields[0] if caps.consent_fields else None),
            "external_id": "Id" if self.resolve("Id") else None,
        }
        return {k: v for k, v in suggestion.items() if v}

    def _suggested_segment(self) -> str | None:
        """An own picklist (multi-select first) or text field that says segment or persona in its
        name or label, e.g. ``Persona__c`` or ``Segment__c``; nothing is guessed otherwise."""
        types = PARTICIPANT_FIELD_TYPES["segment"]
        fits = [f for f in self.object.fields
                if f.type in types and not f.deprecated_and_hidden and _SEGMENT.search(f"{f.name} {f.label or ''}")]
        order = ("multipicklist", "picklist", "string")
        fits.sort(key=lambda f: order.index(f.type))
        return fits[0].name if fits and self.resolve(fits[0].name) is not None else None

    @property
    def has_person_accounts(self) -> bool:
        """An Account describe of an org with Person Accounts enabled (``IsPersonAccount``)."""
        return self.object.field("IsPersonAccount") is not None

    def phone_fallbacks(self) -> list[str]:
        """The object's own phone fields a person can be called on, in fallback order: Phone,
        then the mobile (MobilePhone, PersonMobilePhone), then the others. Fax numbers are never
        among them (a fax line is no way to reach a participant)."""
        phones = [f.name for f in self.object.fields
                  if f.type == "phone" and not f.deprecated_and_hidden and not is_fax(f)]
        preferred = [n for n in ("Phone", "MobilePhone", "PersonMobilePhone") if n in phones]
        return preferred + [n for n in phones if n not in preferred]


def is_fax(f: FieldInfo) -> bool:
    """A fax number field (``Fax``, ``PersonFax``, ``Fax__c``, or labelled "Fax")."""
    return bool(_FAX.search(f.name) or _FAX.search(f.label or ""))


_FAX = re.compile(r"fax", re.IGNORECASE)
_SEGMENT = re.compile(r"segment|persona", re.IGNORECASE)


def is_filterable(f: FieldInfo) -> bool:
    return f.filterable and f.type not in UNFILTERABLE_TYPES and not f.deprecated_and_hidden


def parent_objects(obj: ObjectDescribe) -> dict[str, tuple[str, ...]]:
    """Relationship name → target object names, for the lookups whose parents the catalog can
    expand (fetch those describes and pass them to ``FieldCatalog``)."""
    return {f.relationship_name: f.reference_to for f in obj.fields
            if f.type == "reference" and f.relationship_name and f.reference_to and not f.deprecated_and_hidden}

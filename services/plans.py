"""Import plans as the wizard builds them: drafts, one save per step, the stepper, and the
translation of a stored plan into the engine's value objects.

The stored shape of ``ImportPlan.mapping`` and ``ImportPlan.filters`` is the contract in
docs/architecture.md ("The plan as stored"); this module is the only writer of ``mapping``.

Who edits what
--------------
Sections below are marked with their owner. Steps 1–3 (connect, object, mapping), the stepper,
fingerprints and ``to_spec`` belong to the first wizard engineer; the functions for steps 4–6
(filters, preview exclusions, schedule & action, consent confirmation) live in
``services/plan_steps.py`` (W2), which registers its step checks with :func:`register_step_check`
so the stepper knows when those steps are valid. Both modules call :func:`apply_change` after
changing a plan so the cursor and the consent confirmation are voided when they should be.

Public API
----------
``STEPS``                                   ((key, label), ...) in wizard order
``create_draft(workspace, connection, user, name=None) -> ImportPlan``
``plans_for_workspace(workspace) -> list[ImportPlan]``
``step_errors(plan, step) -> dict[str, str]``   stored data of one step checked (no network)
``stepper(plan, current) -> list[StepState]``   done / current / open / locked per step
``reachable(plan, step) -> bool``               previous steps valid and this one reached
``next_step(step) -> str | None``
``mark_reached(plan, step)``                    move the furthest step reached forward
``set_connection(plan, connection)``            (changing org resets object, mapping, filters)
``save_object(plan, object_name, available) -> errors``  (changing the object resets mapping/filters)
``validate_mapping(data, catalog) -> (mapping, errors)``  data = the posted form as a dict
``save_mapping(plan, data, catalog) -> errors``
``empty_mapping()`` / ``suggested_mapping(catalog) -> mapping``  (stored shape)
``fingerprint(plan) -> str``                object + mapping + filters (sha256 hex)
``consent_fingerprint(plan) -> str``        fingerprint + action + target
``apply_change(plan, before: Snapshot)``    resets cursor / voids consent when needed
``snapshot(plan) -> Snapshot``
``to_spec(plan, workspace, *, cursor_field=None, look_back=None) -> sync.plan.Plan``
``to_filter_group(plan) -> salesforce.soql.FilterGroup``
``preview_mapping(plan, mapping, catalog, workspace, limit=5) -> (rows, reason | None)``
    a few records read through a (not yet saved) mapping, values as text ("" for nothing)

Errors are ``{form_field_name: message}``; views show each message on its field. Functions that
save commit the session themselves (one transaction per step save).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import delete, select

from core.extensions import db
from models import ImportPlan, SalesforceConnection
from models.integrations import CONNECTION_CONNECTED
from models.plans import INVITE_ACTIONS, PLAN_DRAFT, WIZARD_STEPS
from salesforce.describe import STANDARD_CONSENT_CHECKBOXES, FieldCatalog
from salesforce.soql import FilterGroup, FilterRow

# --- steps and the stepper (wizard engineer 1) ----------------------------------------------

STEPS: tuple[tuple[str, str], ...] = (
    ("connect", "Connect"),
    ("object", "Object"),
    ("mapping", "Mapping"),
    ("filters", "Filters"),
    ("preview", "Preview"),
    ("schedule", "Schedule & action"),
)
assert tuple(k for k, _ in STEPS) == WIZARD_STEPS
STEP_INDEX = {key: i for i, (key, _) in enumerate(STEPS)}
STEP_LABELS = dict(STEPS)

# step key -> function(plan) -> {field: message}; W2 registers filters/preview/schedule.
_STEP_CHECKS: dict[str, Callable[[ImportPlan], dict[str, str]]] = {}


def register_step_check(step: str, check: Callable[[ImportPlan], dict[str, str]]) -> None:
    """Let another module say when its step's stored data is valid (``{}`` = valid)."""
    if step not in STEP_INDEX:
        raise ValueError(f"unknown wizard step {step!r}")
    _STEP_CHECKS[step] = check


@dataclass(frozen=True)
class StepState:
    key: str
    label: str
    number: int
    state: str  # "done", "current", "open" (reachable, not complete) or "locked"

    @property
    def reachable(self) -> bool:
        return self.state != "locked"


def next_step(step: str) -> str | None:
    i = STEP_INDEX[step] + 1
    return STEPS[i][0] if i < len(STEPS) else None


def step_errors(plan: ImportPlan, step: str) -> dict[str, str]:
    """The stored data of ``step`` checked without calling Salesforce; ``{}`` when valid."""
    if step == "connect":
        conn = plan_connection(plan)
        if conn is None:
            return {"connection": "Choose a connected Salesforce org."}
        if conn.status != CONNECTION_CONNECTED:
            return {"connection": f"The connection “{conn.name}” needs to be reconnected first."}
        return {}
    if step == "object":
        return {} if plan.object_name else {"object_name": "Choose the Salesforce object to import from."}
    if step == "mapping":
        return mapping_shape_errors(plan.mapping or {})
    check = _STEP_CHECKS.get(step)
    return check(plan) if check else {}


def mark_reached(plan: ImportPlan, step: str) -> None:
    """Record that the wizard got as far as ``step`` (never moves backwards)."""
    if STEP_INDEX[step] > STEP_INDEX.get(plan.wizard_step or "object", 1):
        plan.wizard_step = step


def reachable(plan: ImportPlan, step: str) -> bool:
    """A step opens when every earlier step is valid and the wizard has reached it."""
    index = STEP_INDEX[step]
    if index == 0:
        return True
    if index > STEP_INDEX.get(plan.wizard_step or "object", 1):
        return False
    return all(not step_errors(plan, key) for key, _ in STEPS[:index])


def stepper(plan: ImportPlan | None, current: str) -> list[StepState]:
    """The stepper's state. ``plan`` None is the "new plan" page (only Connect is open)."""
    states = []
    for number, (key, label) in enumerate(STEPS, start=1):
        if key == current:
            state = "current"
        elif plan is None:
            state = "locked"
        elif not reachable(plan, key):
            state = "locked"
        elif not step_errors(plan, key) and _completed(plan, key):
            state = "done"
        else:
            state = "open"
        states.append(StepState(key, label, number, state))
    return states


def _completed(plan: ImportPlan, key: str) -> bool:
    furthest = STEP_INDEX.get(plan.wizard_step or "object", 1)
    if STEP_INDEX[key] < furthest:
        return True
    # The last step is complete once the plan left draft (saved with a schedule).
    return key == STEPS[-1][0] and plan.status != PLAN_DRAFT


# --- drafts, connection, object (wizard engineer 1) -----------------------------------------

def plan_connection(plan: ImportPlan) -> SalesforceConnection | None:
    if plan.connection_id is None:
        return None
    return db.session.scalar(select(SalesforceConnection).where(
        SalesforceConnection.id == plan.connection_id,
        SalesforceConnection.workspace_id == plan.workspace_id))


def plans_for_workspace(workspace) -> list[ImportPlan]:
    return list(db.session.scalars(select(ImportPlan).where(ImportPlan.workspace_id == workspace.id)
                                   .order_by(ImportPlan.created_at.desc(), ImportPlan.id.desc())))


def create_draft(workspace, connection: SalesforceConnection, user=None, name: str | None = None) -> ImportPlan:
    """A new draft plan on ``connection`` (which must belong to ``workspace``)."""
    if connection.workspace_id != workspace.id:
        raise ValueError("the connection belongs to another workspace")
    plan = ImportPlan(workspace_id=workspace.id, connection_id=connection.id,
                      name=(name or f"Salesforce import ({connection.name})")[:200],
                      status=PLAN_DRAFT, wizard_step="object", mapping={}, filters={},
                      excluded_record_ids=[], reminder_days=[],
                      created_by_id=getattr(user, "id", None))
    db.session.add(plan)
    db.session.commit()
    return plan


def set_connection(plan: ImportPlan, connection: SalesforceConnection) -> None:
    """Move a plan to another connection; another org means the object and fields start over."""
    if connection.workspace_id != plan.workspace_id:
        raise ValueError("the connection belongs to another workspace")
    before = snapshot(plan)
    old = plan_connection(plan)
    plan.connection_id = connection.id
    if old is None or old.org_id != connection.org_id:
        _reset_object(plan)
    apply_change(plan, before)
    db.session.commit()


def _reset_object(plan: ImportPlan) -> None:
    plan.object_name = None
    plan.mapping = {}
    plan.filters = {}
    plan.excluded_record_ids = []
    plan.wizard_step = "object"
    # The previews' counts were another object's: the schedule step's API estimate must not use them.
    from models import PreviewTotals
    if plan.id is not None:
        db.session.execute(delete(PreviewTotals).where(PreviewTotals.plan_id == plan.id))


def save_object(plan: ImportPlan, object_name: str, available: Iterable[str]) -> dict[str, str]:
    """Choose the object; ``available`` are the API names the catalog offers. A different
    object resets the mapping, the filters and the preview exclusions."""
    object_name = (object_name or "").strip()
    names = {n.lower(): n for n in available}
    if not object_name:
        return {"object_name": "Choose the Salesforce object to import from."}
    if object_name.lower() not in names:
        shown = object_name if len(object_name) <= 80 else object_name[:80] + "…"
        return {"object_name": f"{shown} is not an object this connection can import from."}
    object_name = names[object_name.lower()]
    before = snapshot(plan)
    if plan.object_name != object_name:
        _reset_object(plan)
        plan.object_name = object_name
        # The mapping and filters are empty now: the plan is a draft again (no scheduled run,
        # no Run now) until the wizard is completed once more.
        if plan.status != PLAN_DRAFT:
            plan.status = PLAN_DRAFT
            plan.status_reason = "Object changed: finish the wizard again to activate it"
            plan.next_run_at = None
    mark_reached(plan, "mapping")
    apply_change(plan, before)
    db.session.commit()
    return {}


# --- mapping (wizard engineer 1) -------------------------------------------------------------

# Participant fields in the order the mapping step shows them, with the guide's words.
PARTICIPANT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("first_name", "First Name", "Personalises invites and participant records."),
    ("last_name", "Last Name", "Completes the participant profile."),
    ("email", "Email", "Used for study invitations and reminders."),
    ("phone", "Phone", "Used for phone-based studies and AI-moderated telephone interviews."),
    ("company", "Company", "Useful for B2B segmentation."),
    ("segment", "Segment", "Supports filters, quotas, analysis groups, and reporting."),
    ("consent", "Consent Status", "Helps prevent accidental invitation of ineligible contacts."),
    ("external_id", "External Source ID", "Used for deduplication and update tracking."),
)
FALLBACK_FIELDS = ("email", "phone")  # a second choice used when the first is blank
MAX_ATTRIBUTES = 30


def empty_mapping() -> dict:
    return {"fields": {key: [] for key, _, _ in PARTICIPANT_FIELDS}, "country": [], "attributes": [],
            "consent_rule": {"path": None, "opted_in": [], "opted_out": [], "opt_out_flags": []}}


def mapping_shape_errors(mapping: Mapping[str, Any]) -> dict[str, str]:
    """What a stored mapping must have, checked without a describe: the record ID and an email
    or a phone."""
    fields = (mapping or {}).get("fields") or {}
    errors = {}
    if not fields.get("external_id"):
        errors["external_id"] = "Map the External Source ID (the record ID) so updates find the same participant."
    if not fields.get("email") and not fields.get("phone"):
        errors["email"] = "Map an email or a phone field: a participant needs one of them."
    return errors


def suggested_mapping(catalog: FieldCatalog) -> dict:
    """The stored-shape mapping pre-filled from the describe (FieldCatalog.suggested_mapping)."""
    mapping = empty_mapping()
    suggestion = catalog.suggested_mapping()
    for key, path in suggestion.items():
        if key == "consent":
            continue
        mapping["fields"][key] = [path]
    phones = catalog.phone_fallbacks()
    if phones:
        mapping["fields"]["phone"] = phones[:2]
    emails = [c.path for c in catalog.compatible_fields("email") if not c.is_parent and c.field.type == "email"]
    if emails:
        first = mapping["fields"]["email"][0] if mapping["fields"]["email"] else emails[0]
        mapping["fields"]["email"] = [first] + [e for e in emails if e != first][:1]
    consent = suggestion.get("consent")
    picklists = [name for name in catalog.object.capabilities.consent_fields
                 if name not in STANDARD_CONSENT_CHECKBOXES]
    if picklists:  # a consent status field says more than an opt-out checkbox
        consent = picklists[0]
    flags = [f.name for f in catalog.object.fields
             if f.type == "boolean" and not f.custom and f.name in SUGGESTED_OPT_OUT_FLAGS]
    mapping["consent_rule"]["opt_out_flags"] = flags
    if consent and consent not in STANDARD_CONSENT_CHECKBOXES:
        opted_in, opted_out = _suggest_consent_field_values(catalog, consent)
        # Only a consent field whose values we can read is suggested: one with nothing ticked
        # can't be saved ("Choose which values mean opted in or opted out"), so a suggestion the
        # researcher can't accept as offered is left for them to choose instead.
        if opted_in or opted_out:
            mapping["fields"]["consent"] = [consent]
            mapping["consent_rule"]["path"] = consent
            mapping["consent_rule"]["opted_in"], mapping["consent_rule"]["opted_out"] = opted_in, opted_out
    for name in SUGGESTED_COUNTRY_FIELDS:
        choice = catalog.resolve(name)
        if choice is not None and choice.field.type in ("string", "picklist"):
            mapping["country"] = [choice.path]
            break
    return mapping


# The standard opt-out checkboxes suggested as "a ticked box means opted out" (email and calls;
# a fax opt-out says nothing about being invited), Person Account names included.
SUGGESTED_OPT_OUT_FLAGS = ("HasOptedOutOfEmail", "DoNotCall", "PersonHasOptedOutOfEmail", "PersonDoNotCall")
# The person's own country first (a Person Account's mailing address), then the company's.
SUGGESTED_COUNTRY_FIELDS = ("MailingCountry", "PersonMailingCountry", "Country", "Country__c", "BillingCountry")


_OPTED_OUT_WORDS = re.compile(r"\bopt(ed)?[\s_-]*out\b|withdrawn|revoked|unsubscribed|declined|do not|^no$|^false$",
                              re.IGNORECASE)
_OPTED_IN_WORDS = re.compile(r"\bopt(ed)?[\s_-]*in\b|granted|\bsubscribed|consented|^yes$|^true$", re.IGNORECASE)


def _suggest_consent_field_values(catalog: FieldCatalog, path: str) -> tuple[list[str], list[str]]:
    """(opted in, opted out) for a consent field. A picklist by its values' wording; a custom
    checkbox by its own name, since true means opted *out* on "Email Opt Out" and opted in on
    "Research Consent" (neither wording: nothing is suggested)."""
    choice = catalog.resolve(path)
    if choice is None:
        return [], []
    f = choice.field
    if f.type == "boolean":
        words = f"{f.name} {f.label}".replace("_", " ")
        if _OPTED_OUT_WORDS.search(words):
            return [], ["true"]
        if _OPTED_IN_WORDS.search(words) or re.search(r"consent", words, re.IGNORECASE):
            return ["true"], ["false"]
        return [], []
    return _suggest_consent_values(consent_values(catalog, path))


def _suggest_consent_values(values: list[str]) -> tuple[list[str], list[str]]:
    """Picklist values that say opted in / opted out in so many words (a suggestion the
    researcher confirms; values saying neither are left unknown)."""
    opted_out = [v for v in values if _OPTED_OUT_WORDS.search(v)]
    opted_in = [v for v in values if v not in opted_out and _OPTED_IN_WORDS.search(v)]
    return opted_in, opted_out


def consent_values(catalog: FieldCatalog, path: str | None) -> list[str]:
    """The values a consent field can take, from the describe (picklists; true/false for
    checkboxes). Empty for free text."""
    choice = catalog.resolve(path) if path else None
    if choice is None:
        return []
    if choice.field.type == "boolean":
        return ["true", "false"]
    return [p.value for p in choice.field.picklist_values if p.active] or [p.value for p in choice.field.picklist_values]


# The form field naming the consent field whose values the form showed (and posts back).
CONSENT_SHOWN_FOR = "consent_values_for"
MAX_CONSENT_VALUE = 255  # a Salesforce text field's length
MAX_CONSENT_VALUES = 50


def typed_values(values: Iterable[str]) -> list[str]:
    """Values typed for a free-text consent field, one per line (blank lines left out, each
    trimmed, the first of values typed twice kept)."""
    out: dict[str, str] = {}
    for text in values:
        for line in str(text or "").splitlines():
            line = line.strip()
            if line and line.casefold() not in out:
                out[line.casefold()] = line
    return list(out.values())


def consent_field_changed(data: Mapping[str, Any], consent_path: str | None) -> bool:
    """True when the form posted opted in / opted out values shown for another consent field
    than the one now chosen (or when none were shown). Data without ``consent_values_for``
    (not the form: a caller that states the values itself) is taken as meant for the field."""
    if CONSENT_SHOWN_FOR not in data:
        return False
    shown = data.get(CONSENT_SHOWN_FOR)
    if isinstance(shown, (list, tuple)):
        shown = shown[0] if shown else ""
    return _clean(shown).lower() != _clean(consent_path).lower()


def reoffered_consent_values(catalog: FieldCatalog, consent_path: str | None, shown_for: str | None,
                             opted_in: list[str], opted_out: list[str]) -> tuple[list[str], list[str]]:
    """(opted in, opted out) to show when the consent field changed from ``shown_for`` to
    ``consent_path``: the new field's suggested values (a picklist's or a checkbox's, by their
    wording; nothing for free text). The old field's picklist values are never carried over;
    values *typed* for a free-text field are, when the new field is free text too (to confirm)."""
    new = catalog.resolve(consent_path) if consent_path else None
    if new is None:
        return [], []
    old = catalog.resolve(shown_for) if shown_for else None
    if not consent_values(catalog, new.path) and old is not None and not consent_values(catalog, old.path):
        return typed_values(opted_in), typed_values(opted_out)
    return _suggest_consent_field_values(catalog, new.path)


def opt_out_flag_choices(catalog: FieldCatalog) -> list:
    """Checkboxes whose true means opted out: the standard ones (HasOptedOutOfEmail, DoNotCall...)
    and custom checkboxes the describe recognises as consent-like."""
    return [c for c in catalog.choices
            if not c.is_parent and c.field.type == "boolean"
            and (c.field.name in STANDARD_CONSENT_CHECKBOXES or (c.field.custom and c.field.is_consent))]


def _clean(value: Any) -> str:
    return str(value or "").strip()


def validate_mapping(data: Mapping[str, Any], catalog: FieldCatalog) -> tuple[dict, dict[str, str]]:
    """The posted mapping form → (stored-shape mapping, errors).

    ``data`` keys: ``<field>`` and, for email and phone, ``<field>_fallback`` (paths);
    ``country``; ``attr_name`` / ``attr_path`` (lists, same length); ``consent_in`` /
    ``consent_out`` (lists of values; for a free-text consent field, typed one per line);
    ``opt_out_flags`` (list of paths); from the form, ``consent_values_for`` (the consent field
    the values were shown for: values of another field are refused, never stored). Lists may
    also be given as a single string. Every path must come from the describe and fit the
    field's type; a fallback may not repeat its first field.
    """
    def as_list(key: str) -> list[str]:
        value = data.get(key)
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return [_clean(v) for v in value]
        return [_clean(value)]

    errors: dict[str, str] = {}
    mapping = empty_mapping()
    for key, label, _ in PARTICIPANT_FIELDS:
        compatible = {c.path.lower(): c.path for c in catalog.compatible_fields(key)}
        chosen = []
        names = [key] + ([f"{key}_fallback"] if key in FALLBACK_FIELDS else [])
        for name in names:
            path = _clean(data.get(name))
            if not path:
                continue
            if path.lower() not in compatible:
                errors[name] = (f"{path} is not a field of {catalog.object_name}." if catalog.resolve(path) is None
                                else f"{path} cannot be used as {label}: its type does not fit.")
                continue
            if compatible[path.lower()] in chosen:
                # A fallback read when the first field is empty would be that same empty field.
                errors[name] = (f"The fallback is the same field as {label} ({compatible[path.lower()]}): "
                                f"choose another field, or no fallback.")
                continue
            chosen.append(compatible[path.lower()])
        if key in FALLBACK_FIELDS and not _clean(data.get(key)) and _clean(data.get(f"{key}_fallback")):
            errors.setdefault(f"{key}_fallback", "Choose the first field before its fallback.")
        mapping["fields"][key] = chosen

    country = _clean(data.get("country"))
    if country:
        choice = catalog.resolve(country)
        if choice is None or choice.field.type not in ("string", "picklist"):
            errors["country"] = f"{country} is not a text or picklist field of {catalog.object_name}."
        else:
            mapping["country"] = [choice.path]

    names, paths = as_list("attr_name"), as_list("attr_path")
    seen: set[str] = set()
    for i in range(max(len(names), len(paths))):
        name = names[i] if i < len(names) else ""
        path = paths[i] if i < len(paths) else ""
        if not name and not path:
            continue  # an empty row is just not used
        if not name:
            errors[f"attr_name-{i}"] = "Give the attribute a name."
            continue
        if len(name) > 100:
            errors[f"attr_name-{i}"] = "Keep attribute names under 100 characters."
            continue
        if name.lower() in seen:
            errors[f"attr_name-{i}"] = f"“{name}” is used twice."
            continue
        choice = catalog.resolve(path) if path else None
        if choice is None or choice.field.is_compound:
            errors[f"attr_path-{i}"] = (f"Choose the field for “{name}”." if not path
                                        else f"{path} is not a field of {catalog.object_name}.")
            continue
        seen.add(name.lower())
        mapping["attributes"].append({"name": name, "path": choice.path})
    if len(mapping["attributes"]) > MAX_ATTRIBUTES:
        errors["attributes"] = f"At most {MAX_ATTRIBUTES} custom attributes."

    rule = mapping["consent_rule"]
    consent_path = mapping["fields"]["consent"][0] if mapping["fields"]["consent"] else None
    rule["path"] = consent_path
    if consent_path and consent_field_changed(data, consent_path):
        # The values posted are another field's (or none were shown): never stored for this
        # one. The form offers this field's values again (reoffered_consent_values).
        errors["consent_in"] = (f"The consent field is now {consent_path}: say which of its values "
                                f"mean opted in or opted out.")
    elif consent_path:
        offered = consent_values(catalog, consent_path)
        by_lower = {v.lower(): v for v in offered}
        opted_in = [v for v in as_list("consent_in") if v]
        opted_out = [v for v in as_list("consent_out") if v]
        if offered:
            unknown = [v for v in opted_in + opted_out if v.lower() not in by_lower]
            if unknown:
                errors["consent_in"] = f"{', '.join(unknown)} is not a value of {consent_path}."
            opted_in = [by_lower[v.lower()] for v in opted_in if v.lower() in by_lower]
            opted_out = [by_lower[v.lower()] for v in opted_out if v.lower() in by_lower]
        else:  # free text: the values typed, one per line
            opted_in, opted_out = typed_values(opted_in), typed_values(opted_out)
            too_long = [v for v in opted_in + opted_out if len(v) > MAX_CONSENT_VALUE]
            if too_long:
                errors["consent_in"] = f"A value is at most {MAX_CONSENT_VALUE} characters."
            elif len(opted_in) + len(opted_out) > MAX_CONSENT_VALUES:
                errors["consent_in"] = f"At most {MAX_CONSENT_VALUES} values."
        both = {v.lower() for v in opted_in} & {v.lower() for v in opted_out}
        if both:
            errors["consent_out"] = "A value cannot mean both opted in and opted out."
        if not opted_in and not opted_out:
            errors["consent_in"] = ("Choose which values mean opted in or opted out." if offered else
                                    f"Type the values of {consent_path} that mean opted in or opted out "
                                    f"(one per line).")
        rule["opted_in"] = list(dict.fromkeys(opted_in))
        rule["opted_out"] = list(dict.fromkeys(opted_out))
    flag_paths = {c.path.lower(): c.path for c in opt_out_flag_choices(catalog)}
    for flag in as_list("opt_out_flags"):
        if not flag:
            continue
        if flag.lower() not in flag_paths:
            errors["opt_out_flags"] = f"{flag} is not an opt-out checkbox of {catalog.object_name}."
        elif flag_paths[flag.lower()] not in rule["opt_out_flags"]:
            rule["opt_out_flags"].append(flag_paths[flag.lower()])

    for key, message in mapping_shape_errors(mapping).items():
        errors.setdefault(key, message)
    return mapping, errors


def save_mapping(plan: ImportPlan, data: Mapping[str, Any], catalog: FieldCatalog) -> dict[str, str]:
    """Validate and store the mapping; nothing is stored when there are errors."""
    if catalog.object_name != plan.object_name:
        return {"object_name": "The plan's object changed; choose the mapping again."}
    mapping, errors = validate_mapping(data, catalog)
    if errors:
        return errors
    before = snapshot(plan)
    plan.mapping = mapping
    mark_reached(plan, "filters")
    apply_change(plan, before)
    db.session.commit()
    return {}


PREVIEW_CONSENT_LABELS = {"opted_in": "Opted in", "opted_out": "Opted out", "unknown": "Missing"}


def preview_mapping(plan: ImportPlan, mapping: dict, catalog: FieldCatalog, workspace,
                    limit: int = 5) -> tuple[list[dict], str | None]:
    """The first ``limit`` records of the plan's object read through ``mapping``: participant
    field -> text, "" where there is nothing (a null parent such as a Contact without Account
    gives "", never None or the parent's JSON). Returns (rows, None) or ([], reason)."""
    from salesforce.errors import SalesforceError
    from salesforce.soql import build_query
    from services import connections
    from sync.mapping import map_record

    draft = ImportPlan(workspace_id=plan.workspace_id, connection_id=plan.connection_id,
                       object_name=plan.object_name, mapping=mapping, filters={}, action="pool")
    spec = to_spec(draft, workspace, cursor_field=catalog.object.cursor_field or "Id")
    fields = [f for f in spec.select_fields() if f == "Id" or catalog.resolve(f) is not None]
    soql = build_query(plan.object_name, fields, limit=limit)
    connection = plan_connection(plan)
    try:
        client = connections.client_for(connection)
        try:
            page = next(client.query_pages(soql, batch_size=200))
        finally:
            connections.record_usage(connection, client)
    except SalesforceError as exc:
        return [], exc.reason
    rows = []
    for record in page.records[:limit]:
        mapped = map_record(spec, record)
        row = {key: "" if getattr(mapped, key) is None else str(getattr(mapped, key))
               for key in ("first_name", "last_name", "email", "phone", "company")}
        row["segment"] = "; ".join(mapped.segments)
        row["consent"] = PREVIEW_CONSENT_LABELS.get(mapped.consent.value, mapped.consent.value)
        row["attributes"] = {name: "" if value is None else str(value) for name, value in mapped.attributes}
        row["record_id"] = mapped.record_id
        rows.append(row)
    return rows, None


# --- fingerprints, cursor and consent voiding (shared) ---------------------------------------

def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(plan: ImportPlan) -> str:
    """sha256 of object + mapping + filters: the plan version a cursor belongs to."""
    return _digest({"object": plan.object_name, "mapping": plan.mapping or {}, "filters": plan.filters or {}})


def target_id(plan: ImportPlan) -> int | None:
    return {"invite_study": plan.target_study_id, "invite_task": plan.target_activity_id,
            "community": plan.target_community_id}.get(plan.action)


def _engine_target(plan: ImportPlan) -> str | None:
    """The engine's ``Plan.target_id``: the sink's target key ("study:5", "activity:7",
    "community:2"), the one representation of an invite target between engine and sink."""
    from services.sync_sink import ActionTarget
    return ActionTarget.for_plan(plan).key


def consent_fingerprint(plan: ImportPlan) -> str:
    """What the consent confirmation was given for: filters, mapping, object, action, target."""
    return consent_fingerprint_for(plan, plan.action, target_id(plan))


def consent_fingerprint_for(plan: ImportPlan, action: str | None, target: int | None) -> str:
    """The consent fingerprint ``plan`` would have with another action and target (so a save can
    be refused before anything on the plan changes)."""
    return _digest({"plan": fingerprint(plan), "action": action, "target": target})


@dataclass(frozen=True)
class Snapshot:
    fingerprint: str
    consent_fingerprint: str


def snapshot(plan: ImportPlan) -> Snapshot:
    return Snapshot(fingerprint(plan), consent_fingerprint(plan))


def apply_change(plan: ImportPlan, before: Snapshot) -> None:
    """After a change: a new plan version starts from no cursor (a full read), and a consent
    confirmation given for other filters, mapping, action or target is void."""
    if fingerprint(plan) != before.fingerprint:
        plan.cursor_at = None
        plan.cursor_fingerprint = None
    if plan.consent_confirmed_at is not None and (
            consent_fingerprint(plan) != before.consent_fingerprint
            or (plan.consent_fingerprint and plan.consent_fingerprint != consent_fingerprint(plan))):
        void_consent(plan)


def void_consent(plan: ImportPlan) -> None:
    plan.consent_confirmed_at = None
    plan.consent_confirmed_by_id = None
    plan.consent_confirmation_text = None
    plan.consent_fingerprint = None


def consent_confirmed(plan: ImportPlan) -> bool:
    """The confirmation stands only for the exact filters, mapping, action and target it saw."""
    return (plan.consent_confirmed_at is not None
            and plan.consent_fingerprint == consent_fingerprint(plan))


# --- the engine's view of a plan (shared) ----------------------------------------------------

def to_filter_group(plan: ImportPlan) -> FilterGroup | None:
    """The stored filters as ``salesforce.soql`` objects; None when there are none.

    Stored: ``{"op": "AND"|"OR", "items": [row | group, ...]}`` with rows
    ``{"field", "operator", "value"}`` (docs/architecture.md).
    """
    stored = plan.filters or {}
    if not stored or not stored.get("items"):
        return None
    return _group(stored)


def _group(node: Mapping[str, Any]) -> FilterGroup:
    op = str(node.get("op") or "AND").upper()
    if op not in ("AND", "OR"):
        raise ValueError(f"unknown filter group operator {op!r}")
    children = []
    for item in node.get("items") or ():
        if "items" in item:
            children.append(_group(item))
        else:
            children.append(FilterRow(item["field"], item["operator"], item.get("value")))
    return FilterGroup(op, tuple(children))


def _paths(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value if v)


def to_spec(plan: ImportPlan, workspace, *, cursor_field: str | None = None,
            look_back: timedelta | None = None):
    """The plan as ``sync.plan.Plan`` (what the engine runs).

    ``filters`` in the spec is the canonical JSON of the stored filters (it only has to change
    when they change); the WHERE clause itself comes from ``to_filter_group`` +
    ``salesforce.soql.build_where`` with the object's FieldCatalog. ``cursor_field`` defaults
    to the cached describe's (SystemModstamp, else LastModifiedDate).
    """
    from sync.plan import ConsentRule, Mapping as SpecMapping, Plan

    if plan.workspace_id != workspace.id:
        raise ValueError("the plan belongs to another workspace")
    connection = plan_connection(plan)
    if connection is None or not connection.org_id:
        raise ValueError("the plan has no connected org")
    if not plan.object_name:
        raise ValueError("the plan has no object")
    stored = plan.mapping or {}
    fields = stored.get("fields") or {}
    external = _paths(fields.get("external_id"))
    spec_mapping = SpecMapping(
        first_name=_paths(fields.get("first_name")),
        last_name=_paths(fields.get("last_name")),
        email=_paths(fields.get("email")),
        phone=_paths(fields.get("phone")),
        company=_paths(fields.get("company")),
        country=_paths(stored.get("country")),
        segments=_paths(fields.get("segment")),
        attributes=tuple((a["name"], a["path"]) for a in stored.get("attributes") or ()),
        external_id=external[0] if external else "Id",
    )
    rule = stored.get("consent_rule") or {}
    consent_path = rule.get("path") or (_paths(fields.get("consent")) or (None,))[0]
    consent = ConsentRule(path=consent_path, opted_in_values=tuple(rule.get("opted_in") or ()),
                          opted_out_values=tuple(rule.get("opted_out") or ()),
                          opt_out_flags=tuple(rule.get("opt_out_flags") or ()))
    if cursor_field is None:
        from services.catalog import cached_cursor_field
        cursor_field = cached_cursor_field(connection, plan.object_name) or "SystemModstamp"
    if look_back is None:
        look_back = timedelta(seconds=_setting("SYNC_LOOKBACK_SECONDS", 300))
    target = target_id(plan)
    confirmation = plan.consent_confirmation_text if consent_confirmed(plan) else None
    return Plan(
        org_id=connection.org_id,
        object_name=plan.object_name,
        mapping=spec_mapping,
        consent=consent,
        action=plan.action or "pool",
        target_id=_engine_target(plan) if target is not None and plan.action in INVITE_ACTIONS else None,
        invite_confirmation=confirmation,
        filters=json.dumps(plan.filters or {}, sort_keys=True, separators=(",", ":")),
        excluded_ids=frozenset(plan.excluded_record_ids or ()),
        default_region=workspace.default_phone_region,
        leaving_policy=plan.leaving_policy or "keep",
        cursor_field=cursor_field,
        look_back=look_back,
        plan_id=plan.id,
    )


def _setting(name: str, default):
    try:
        from flask import current_app
        return current_app.config.get(name, default)
    except RuntimeError:  # outside an application context (scripts)
        return default

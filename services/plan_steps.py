"""The wizard's second half as application verbs: filters (step 4), schedule and action (step 6),
the consent confirmation, the API-call estimate, and reviewing staged records (Import only).

Filters are stored on ``ImportPlan.filters`` in the shape docs/architecture.md fixes::

    {"op": "AND", "items": [
        {"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"},
        {"op": "OR", "items": [...rows...]},
        {"field": "Id", "operator": "in_campaign", "value": "701..."}]}

The wizard edits them as one top-level group plus nested groups one level deep
(``FilterState``); the order rows appear in on the page is the depth-first order of the stored
JSON, which is also how ``salesforce.soql.FilterError.row_index`` counts, so an error lands on
the row the researcher sees.

The consent confirmation is tied to ``services.plans.consent_fingerprint`` (object, mapping,
filters, action and target); when it no longer matches, the confirmation is void and the
schedule step asks again (``confirmation_valid``). Next runs come from
``services.schedules.compute_next_run`` (the scheduler's own function).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from typing import Any, Iterable

from sqlalchemy import select

from core.extensions import db
from models import (Activity, Community, ImportPlan, Participant, ParticipantSource, Study, User,
                    Workspace)
from models.participants import STATUS_ACTIVE, STATUS_ARCHIVED, STATUS_STAGED
from models.plans import ACTIONS, INVITE_ACTIONS, LEAVING_POLICIES, SCHEDULES
from salesforce.describe import FieldCatalog
from salesforce.soql import FilterError, FilterGroup, FilterRow, build_where
from salesforce.soql import normalize_operator as _normalize_operator
from services import plans
from sync.ids import is_valid_id

# The wording the researcher confirms before any auto-invite (integration guide §5, "Consent
# safeguard"). Stored verbatim with who confirmed and when.
CONSENT_CONFIRMATION_TEXT = (
    "I confirm that the selected contacts can be invited to this research study or task, and "
    "that their consent and suppression-list requirements have been checked.")

CAMPAIGN_FIELD = "__campaign__"  # the wizard's pseudo-field for "campaign membership"
MULTI_VALUE_OPERATORS = ("any_of", "includes", "excludes", "in_campaign")
NO_VALUE_OPERATORS = ("is_empty", "is_not_empty")
MAX_GROUPS = 5
MAX_PLAN_NAME = 200  # import_plans.name
MAX_API_CAP = 2_147_483_647  # the caps' INTEGER columns (PostgreSQL's int4)
MAX_ROWS = 40

SCHEDULE_LABELS = {"once": "Import once", "manual": "Sync manually", "hourly": "Sync hourly",
                   "daily": "Sync daily"}
ACTION_LABELS = {"import_only": "Import only", "pool": "Import to participant pool",
                 "invite_study": "Invite to study", "invite_task": "Invite to task",
                 "community": "Add to community"}
ACTION_HELP = {
    "import_only": "Eligible Salesforce records are imported into Terapage but no invite is sent.",
    "pool": "Records are added to the workspace participant database.",
    "invite_study": "New eligible participants are added to a selected study and invited.",
    "invite_task": ("Participants are sent directly to a selected activity, survey, diary, "
                    "interview, or task."),
    "community": "Participants are added to the selected community and invited.",
}
LEAVING_LABELS = {"keep": "Keep the participant", "mark_opted_out": "Mark as opted out",
                  "archive": "Archive the participant"}
RECORDS_PER_PAGE = 2000


class StepError(ValueError):
    """A step's input that can't be saved; ``errors`` maps a form field to its message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


# --- filters: the editable shape ----------------------------------------------------------

@dataclass
class FilterRowState:
    field: str = ""
    operator: str = ""
    value: Any = None  # str, or a list for multi-value operators
    error: str | None = None

    def to_json(self) -> dict:
        if self.field == CAMPAIGN_FIELD:
            return {"field": "Id", "operator": "in_campaign", "value": self.value}
        # A value left in the form under "is empty" is not part of the filter.
        value = None if self.operator in NO_VALUE_OPERATORS else self.value
        return {"field": self.field, "operator": self.operator, "value": value}

    @property
    def is_blank(self) -> bool:
        return not self.field


@dataclass
class GroupState:
    op: str = "AND"
    rows: list[FilterRowState] = field(default_factory=list)


@dataclass
class FilterState:
    """Group 0 holds the top-level rows; groups 1.. are nested groups (one level deep)."""

    op: str = "AND"
    groups: list[GroupState] = field(default_factory=lambda: [GroupState()])

    @property
    def rows(self) -> list[FilterRowState]:
        """Every row in display order (= depth-first order of ``to_json``)."""
        return [r for g in self.groups for r in g.rows]

    def to_json(self) -> dict:
        items: list[dict] = [r.to_json() for r in self.groups[0].rows if not r.is_blank]
        for g in self.groups[1:]:
            rows = [r.to_json() for r in g.rows if not r.is_blank]
            if rows:
                items.append({"op": _op(g.op), "items": rows})
        return {"op": _op(self.op), "items": items}

    def drop_blank_rows(self) -> None:
        for g in self.groups:
            g.rows = [r for r in g.rows if not r.is_blank]


def normalize_operator(op: Any) -> str:
    """An operator key as the SOQL builder reads it (``"any of"``, ``"Any-Of"`` -> ``any_of``):
    one reading for the form, the stored JSON and the builder."""
    return _normalize_operator(op)


def _op(value: Any) -> str:
    return "OR" if str(value or "").strip().upper() == "OR" else "AND"


def filter_state_from_json(data: dict | None) -> FilterState:
    """The editable state of stored filters. Accepts the architecture shape (``items``) and the
    older ``{"op", "rows", "groups"}`` shape; deeper nesting is kept as one nested group each."""
    state = FilterState(op=_op((data or {}).get("op")), groups=[GroupState()])
    for item in _items(data):
        if _is_group(item):
            group = GroupState(op=_op(item.get("op")))
            group.rows = [_row_state(r) for r in _flatten(item)]
            state.groups.append(group)
        else:
            state.groups[0].rows.append(_row_state(item))
    return state


def _items(data: dict | None) -> list[dict]:
    if not data:
        return []
    if "items" in data:
        return [i for i in data.get("items") or [] if isinstance(i, dict)]
    return [i for i in (data.get("rows") or []) + (data.get("groups") or []) if isinstance(i, dict)]


def _is_group(item: dict) -> bool:
    return "items" in item or "rows" in item or "groups" in item


def _flatten(group: dict) -> list[dict]:
    out = []
    for item in _items(group):
        out += _flatten(item) if _is_group(item) else [item]
    return out


def _row_state(item: dict) -> FilterRowState:
    op = normalize_operator(item.get("operator") or item.get("op") or "")
    if op == "in_campaign":
        return FilterRowState(CAMPAIGN_FIELD, "in_campaign", item.get("value"))
    return FilterRowState(str(item.get("field") or ""), op, item.get("value"))


def group_from_json(data: dict | None) -> FilterGroup | None:
    """``salesforce.soql`` filter objects for stored filters (None when there are none)."""
    if not data or not _items(data):
        return None

    def node(item: dict):
        if _is_group(item):
            return FilterGroup(_op(item.get("op")), tuple(node(i) for i in _items(item)))
        return FilterRow(str(item.get("field") or ""), str(item.get("operator") or item.get("op") or ""),
                         item.get("value"))

    return node(data)


@dataclass
class FilterCheck:
    where: str  # the WHERE condition ("" when there are no filters or some row is wrong)
    errors: dict[int, str]  # display row index -> message

    @property
    def ok(self) -> bool:
        return not self.errors


def check_filters(data: dict | None, catalog: FieldCatalog) -> FilterCheck:
    """Every row checked against the describe (so each wrong row gets its own message), then the
    whole tree (rules that depend on the group, like campaign membership under OR). No request
    is made; a filter with errors yields no SOQL at all."""
    errors: dict[int, str] = {}
    rows = _depth_first_rows(data)
    for i, item in enumerate(rows):
        single = FilterGroup("AND", (FilterRow(str(item.get("field") or ""),
                                               str(item.get("operator") or ""), item.get("value")),))
        try:
            build_where(single, catalog)
        except FilterError as exc:
            errors[i] = exc.message
    if errors:
        return FilterCheck("", errors)
    try:
        return FilterCheck(build_where(group_from_json(data), catalog), {})
    except FilterError as exc:
        return FilterCheck("", {exc.row_index if exc.row_index is not None else 0: exc.message})


def _depth_first_rows(data: dict | None) -> list[dict]:
    out = []
    for item in _items(data):
        out += _depth_first_rows(item) if _is_group(item) else [item]
    return out


def save_filters(plan: ImportPlan, state: FilterState, catalog: FieldCatalog) -> FilterCheck:
    """Check and store the filters; nothing is stored when a row is wrong (errors come back on
    ``state``'s rows too)."""
    state.drop_blank_rows()
    data = state.to_json()
    check = check_filters(data, catalog)
    for i, row in enumerate(state.rows):
        row.error = check.errors.get(i)
    if not check.ok:
        return check
    before = plans.snapshot(plan)
    # Exclusions stay when the filters change: one of a record that no longer matches costs
    # nothing, and dropping them would re-admit people the researcher removed.
    plan.filters = data
    plans.mark_reached(plan, "preview")
    plans.apply_change(plan, before)  # new plan version: cursor reset, consent voided
    db.session.commit()
    return check


# --- what the filters step shows ---------------------------------------------------------------

@dataclass
class FieldOption:
    """One field a filter row may use, with the operators and picklist values that fit it."""

    path: str
    label: str
    type: str
    operators: list[tuple[str, str]]  # (key, label)
    picklist: list[str]


@dataclass
class FilterContext:
    plan: ImportPlan
    catalog: FieldCatalog
    fields: list[FieldOption]
    campaigns: list[tuple[str, str]]  # (Id, Name)
    campaign_error: str | None
    client_factory: Any
    spec: Any = None

    def client(self):
        return self.client_factory()


@dataclass
class FilterResult:
    where: str
    soql: str | None  # the query the engine will send (full read)
    count_soql: str | None
    count: int | None
    errors: dict[int, str]
    error: str | None = None  # Salesforce's answer, researcher-readable


CAMPAIGN_OBJECTS = ("Contact", "Lead", "CampaignMember")
CAMPAIGN_QUERY_LIMIT = 500


def field_options(catalog: FieldCatalog) -> list[FieldOption]:
    """Only what the describe offers as filterable: never compound fields (address, location)."""
    from salesforce.soql import OPERATOR_LABELS, operators_for
    out = []
    for choice in catalog.filter_choices():
        ops = [(o, OPERATOR_LABELS[o]) for o in operators_for(choice.field) if o != "in_campaign"]
        if not ops:
            continue
        values = [p.value for p in choice.field.picklist_values if p.active] or \
                 [p.value for p in choice.field.picklist_values]
        out.append(FieldOption(choice.path, choice.label, choice.field.type, ops, values))
    return out


def default_operators(state: "FilterState", catalog: FieldCatalog) -> None:
    """A row with a field and no operator gets the field's first operator: the one the operator
    list shows selected when a field is picked, so what the person sees is what is checked."""
    from salesforce.soql import operators_for
    for row in state.rows:
        if row.field and not row.operator and row.field != CAMPAIGN_FIELD:
            choice = catalog.resolve(row.field)
            ops = [o for o in operators_for(choice.field) if o != "in_campaign"] if choice else []
            if ops:
                row.operator = ops[0]


def campaign_choices(client) -> list[tuple[str, str]]:
    """The org's campaigns (a Campaign query), for "campaign membership" rows."""
    from salesforce.soql import build_query
    soql = build_query("Campaign", ["Id", "Name"], order_by=["Name", "Id"], limit=CAMPAIGN_QUERY_LIMIT)
    out = []
    for page in client.query_pages(soql):
        out += [(r["Id"], r.get("Name") or r["Id"]) for r in page.records]
    return out


def filter_context(plan: ImportPlan, workspace: Workspace, *, with_campaigns: bool = True) -> FilterContext:
    """The plan's catalog (cached describe), field options and campaigns. ``StepError`` when the
    connection or describe can't be reached, with the reason."""
    from salesforce.errors import SalesforceError
    from services import catalog as catalogs
    from services import connections

    connection = plans.plan_connection(plan)
    if connection is None or not plan.object_name:
        raise StepError({"connection": "Choose a connected org and an object first."})
    try:
        catalog = catalogs.field_catalog(connection, plan.object_name)
    except SalesforceError as exc:
        raise StepError({"connection": exc.reason or str(exc)}) from None
    client_box: list = []

    def client():
        if not client_box:
            client_box.append(connections.client_for(connection))
        return client_box[0]

    campaigns, campaign_error = [], None
    if with_campaigns and plan.object_name in CAMPAIGN_OBJECTS:
        try:
            # a short-lived per-connection cache: re-rendering the step asks Salesforce again only
            # after catalogs.CAMPAIGNS_TTL (or the object step's "Refresh")
            campaigns = catalogs.campaigns(connection, lambda: campaign_choices(client()))
        except SalesforceError as exc:
            campaign_error = exc.reason or str(exc)
    spec = None
    try:
        spec = plans.to_spec(plan, workspace)
    except ValueError:
        spec = None
    return FilterContext(plan, catalog, field_options(catalog), campaigns, campaign_error, client, spec)


def filter_result(ctx: FilterContext, state: FilterState, *, count: bool = True) -> FilterResult:
    """The rows checked against the describe; when all are valid, the exact SOQL and (with
    ``count``) ``SELECT COUNT()`` sent to Salesforce. No request at all when a row is wrong."""
    from salesforce.errors import SalesforceError
    from salesforce.soql import build_count_query
    from services.sync_source import sync_query

    rows = [r for r in state.rows if not r.is_blank]
    data = FilterState(state.op, [GroupState(g.op, [r for r in g.rows if not r.is_blank])
                                  for g in state.groups]).to_json()
    check = check_filters(data, ctx.catalog)
    # Errors are numbered over the non-blank rows; show them on the displayed rows.
    for r in state.rows:
        r.error = None
    for i, row in enumerate(rows):
        row.error = check.errors.get(i)
    if not check.ok:
        return FilterResult("", None, None, None, check.errors)
    soql = sync_query(ctx.spec, check.where, None) if ctx.spec is not None else None
    count_soql = build_count_query(ctx.plan.object_name, check.where)
    result = FilterResult(check.where, soql, count_soql, None, {})
    if count:
        try:
            result.count = ctx.client().count(count_soql)
        except SalesforceError as exc:
            result.error = exc.reason or exc.default_reason  # never the raw text (URLs, bodies)
    return result


# --- exclusions (step 5) ------------------------------------------------------------------

MAX_EXCLUDED_ID = 255  # an external ID field's longest value


def exclude_records(plan: ImportPlan, record_ids: Iterable[str]) -> list[str]:
    """Remove rows in the preview: the engine skips them and logs "excluded in preview".

    Returns the values refused: not a valid Salesforce ID (15 or 18 characters, checksum
    included) when the plan keys records by Id, or not a plausible external ID otherwise. Nothing
    refused is stored, so a crafted value can never break the plan's runs."""
    current = list(plan.excluded_record_ids or [])
    external = plans._paths(((plan.mapping or {}).get("fields") or {}).get("external_id"))
    by_id = (external[0] if external else "Id") == "Id"
    refused = []
    for rid in record_ids:
        rid = str(rid).strip()
        if not rid:
            continue
        if (not is_valid_id(rid)) if by_id else (len(rid) > MAX_EXCLUDED_ID or not rid.isprintable()):
            refused.append(rid)
        elif rid not in current:
            current.append(rid)
    plan.excluded_record_ids = current
    db.session.commit()
    return refused


def restore_records(plan: ImportPlan, record_ids: Iterable[str]) -> list[str]:
    drop = {str(r).strip() for r in record_ids}
    plan.excluded_record_ids = [r for r in (plan.excluded_record_ids or []) if r not in drop]
    db.session.commit()
    return plan.excluded_record_ids


# --- schedule and action (step 6) ----------------------------------------------------------

def target_of(plan: ImportPlan):
    """The study, task or community an action points at (None for pool / import only)."""
    if plan.action == "invite_study" and plan.target_study_id:
        return db.session.get(Study, plan.target_study_id)
    if plan.action == "invite_task" and plan.target_activity_id:
        return db.session.get(Activity, plan.target_activity_id)
    if plan.action == "community" and plan.target_community_id:
        return db.session.get(Community, plan.target_community_id)
    return None


def target_key(plan: ImportPlan) -> str | None:
    """``study:5``, ``activity:7`` or ``community:2`` (the engine's target id)."""
    if plan.action == "invite_study" and plan.target_study_id:
        return f"study:{plan.target_study_id}"
    if plan.action == "invite_task" and plan.target_activity_id:
        return f"activity:{plan.target_activity_id}"
    if plan.action == "community" and plan.target_community_id:
        return f"community:{plan.target_community_id}"
    return None


def default_schedule(plan: ImportPlan) -> str:
    """Hourly for communities and recurring studies (the guide's default), else manual."""
    if plan.action == "community":
        return "hourly"
    if plan.action in ("invite_study", "invite_task"):
        study_id = plan.target_study_id
        if plan.action == "invite_task" and plan.target_activity_id:
            activity = db.session.get(Activity, plan.target_activity_id)
            study_id = activity.study_id if activity else None
        study = db.session.get(Study, study_id) if study_id else None
        if study is not None and study.recurring:
            return "hourly"
    return "manual"


def parse_daily_time(value: str | None) -> time:
    text = (value or "").strip()
    try:
        hours, minutes = text.split(":")
        if len(hours) > 2 or len(minutes) != 2:
            raise ValueError
        return time(int(hours), int(minutes))
    except ValueError:
        raise StepError({"daily_time": "Give a time as HH:MM, for example 07:30."}) from None


def _next_run(plan: ImportPlan, workspace: Workspace, now: datetime) -> datetime | None:
    # services.schedules is the one place due times are computed (the scheduler tick uses it too).
    from services.schedules import compute_next_run
    return compute_next_run(plan, workspace, now)


@dataclass
class ScheduleInput:
    schedule: str
    daily_time: str | None
    action: str
    target_study_id: int | None = None
    target_activity_id: int | None = None
    target_community_id: int | None = None
    leaving_policy: str = "keep"
    per_run_api_cap: int | None = None
    per_day_api_cap: int | None = None
    reminder_days: list[int] = field(default_factory=list)
    confirm_consent: bool = False
    name: str | None = None


@dataclass(frozen=True)
class _ScheduleChange:
    """Step 6's input, checked: the values the plan takes when it is stored."""

    schedule: str
    daily_time: str | None
    action: str
    target_study_id: int | None
    target_activity_id: int | None
    target_community_id: int | None
    leaving_policy: str
    per_run_api_cap: int | None
    per_day_api_cap: int | None
    reminder_days: list[int]
    name: str | None

    @property
    def target(self) -> int | None:
        """The same id ``services.plans.target_id`` reads for this action."""
        return {"invite_study": self.target_study_id, "invite_task": self.target_activity_id,
                "community": self.target_community_id}.get(self.action)


def _check_schedule(data: ScheduleInput, workspace: Workspace) -> _ScheduleChange:
    """Every rule of step 6 checked with nothing on the plan touched. Raises ``StepError``."""
    errors: dict[str, str] = {}
    if data.schedule not in SCHEDULES:
        errors["schedule"] = "Choose when to import."
    if data.action not in ACTIONS:
        errors["action"] = "Choose what to do with the records."
    if data.leaving_policy not in LEAVING_POLICIES:
        errors["leaving_policy"] = "Choose what happens to records deleted or opted out in Salesforce."
    daily_time = None
    if data.schedule == "daily":
        try:
            daily_time = parse_daily_time(data.daily_time).strftime("%H:%M")
        except StepError as exc:
            errors.update(exc.errors)
    for name in ("per_run_api_cap", "per_day_api_cap"):
        value = getattr(data, name)
        if value is not None and value < 1:
            errors[name] = "A cap must be at least 1 API call (leave empty for none)."
        elif value is not None and value > MAX_API_CAP:
            errors[name] = f"A cap is at most {MAX_API_CAP:,} API calls (leave empty for none)."
    if any(d < 1 or d > 60 for d in data.reminder_days):
        errors["reminder_days"] = "Reminder days are between 1 and 60."
    study = activity = community = None
    if data.action == "invite_study":
        study = _in_workspace(Study, data.target_study_id, workspace)
        if study is None:
            errors["target_study_id"] = "Choose the study to invite to."
    elif data.action == "invite_task":
        activity = _in_workspace(Activity, data.target_activity_id, workspace)
        if activity is None:
            errors["target_activity_id"] = "Choose the task to invite to."
    elif data.action == "community":
        community = _in_workspace(Community, data.target_community_id, workspace)
        if community is None:
            errors["target_community_id"] = "Choose the community to add to."
    if data.name is not None and not data.name.strip():
        # A posted, cleared name is a mistake to show, not "keep the old name" (None: not posted).
        errors["name"] = "Give this import a name (it names the import in the list and in emails)."
    elif data.name is not None and len(data.name.strip()) > MAX_PLAN_NAME:
        errors["name"] = f"A name is at most {MAX_PLAN_NAME} characters."
    if errors:
        raise StepError(errors)
    name = data.name.strip() if data.name and data.name.strip() else None
    return _ScheduleChange(
        schedule=data.schedule, daily_time=daily_time, action=data.action,
        target_study_id=study.id if study else (activity.study_id if activity else None),
        target_activity_id=activity.id if activity else None,
        target_community_id=community.id if community else None,
        leaving_policy=data.leaving_policy, per_run_api_cap=data.per_run_api_cap,
        per_day_api_cap=data.per_day_api_cap, reminder_days=sorted(set(data.reminder_days)), name=name)


def _confirmation_missing(plan: ImportPlan, change: _ScheduleChange, confirm: bool) -> bool:
    """Activating an invite plan needs a confirmation for exactly this action and target: ticked
    now, or one already given that the change leaves standing."""
    if change.action not in INVITE_ACTIONS or confirm:
        return False
    return not (plan.consent_confirmed_at is not None and plan.consent_fingerprint
                == plans.consent_fingerprint_for(plan, change.action, change.target))


def _consent_refused() -> StepError:
    return StepError({"confirm_consent": "Confirm the consent statement before enabling auto-invite."})


def _store_schedule(plan: ImportPlan, change: _ScheduleChange, confirm: bool, user: User | None,
                    now: datetime) -> None:
    """Write a checked change on the plan (no commit): the caller has already refused what it
    must refuse, so nothing here can fail half-way."""
    before = plans.snapshot(plan)
    plan.schedule = change.schedule
    plan.daily_time = change.daily_time
    plan.action = change.action
    plan.target_study_id = change.target_study_id
    plan.target_activity_id = change.target_activity_id
    plan.target_community_id = change.target_community_id
    plan.leaving_policy = change.leaving_policy
    plan.per_run_api_cap = change.per_run_api_cap
    plan.per_day_api_cap = change.per_day_api_cap
    plan.reminder_days = change.reminder_days
    if change.name:
        plan.name = change.name
    plans.apply_change(plan, before)  # another action or target voids the confirmation
    void_stale_confirmation(plan)
    if plan.action in INVITE_ACTIONS:
        if confirm and not confirmation_valid(plan):
            plan.consent_confirmed_at = now
            plan.consent_confirmed_by_id = user.id if user is not None else None
            plan.consent_confirmation_text = CONSENT_CONFIRMATION_TEXT
            plan.consent_fingerprint = plans.consent_fingerprint(plan)
    else:
        clear_confirmation(plan)
    plans.mark_reached(plan, "schedule")


def apply_schedule(plan: ImportPlan, data: ScheduleInput, workspace: Workspace, user: User | None,
                   *, now: datetime | None = None) -> None:
    """Validate and store step 6 (not yet activated; see ``activate``). Raises ``StepError``
    before anything on the plan changes.

    The consent confirmation is stored only for invite actions, with its wording, who, when and
    the fingerprint of what was confirmed; a stale one is cleared first.
    """
    now = now or datetime.now(timezone.utc)
    change = _check_schedule(data, workspace)
    _store_schedule(plan, change, data.confirm_consent, user, now)
    if plan.status == "active":
        plan.next_run_at = _next_run(plan, workspace, now)
    db.session.commit()


def save_and_activate(plan: ImportPlan, data: ScheduleInput, workspace: Workspace, user: User | None,
                      *, now: datetime | None = None) -> None:
    """Step 6's Save: store the schedule and action and make the plan active, in one commit.
    Everything is checked first, the consent confirmation included; when anything is refused
    (``StepError``) the plan is left exactly as it was: no action, target or confirmation of a
    refused save is ever stored."""
    now = now or datetime.now(timezone.utc)
    change = _check_schedule(data, workspace)
    if _confirmation_missing(plan, change, data.confirm_consent):
        raise _consent_refused()
    _store_schedule(plan, change, data.confirm_consent, user, now)
    _make_active(plan, workspace, now)
    db.session.commit()


def _in_workspace(model, object_id, workspace: Workspace):
    if not object_id:
        return None
    obj = db.session.get(model, int(object_id))
    return obj if obj is not None and obj.workspace_id == workspace.id else None


def activate(plan: ImportPlan, workspace: Workspace, *, now: datetime | None = None) -> None:
    """Save: the plan becomes active and gets its next run. An invite plan without a valid
    consent confirmation is refused (``StepError``) with nothing changed."""
    now = now or datetime.now(timezone.utc)
    if plan.action in INVITE_ACTIONS and not confirmation_valid(plan):
        raise _consent_refused()
    void_stale_confirmation(plan)
    _make_active(plan, workspace, now)
    db.session.commit()


def _make_active(plan: ImportPlan, workspace: Workspace, now: datetime) -> None:
    plan.status = "active"
    plan.status_reason = None
    plan.next_run_at = _next_run(plan, workspace, now)


# --- the consent confirmation --------------------------------------------------------------
# The fingerprint, its check and voiding are services.plans' (one definition for both halves of
# the wizard): object + mapping + filters + action + target. Exclusions are not in it: removing
# rows never widens who is invited.

def confirmation_valid(plan: ImportPlan) -> bool:
    return plans.consent_confirmed(plan)


def clear_confirmation(plan: ImportPlan) -> None:
    plans.void_consent(plan)


def void_stale_confirmation(plan: ImportPlan) -> bool:
    """Clear a confirmation given for other filters, mapping, action or target. True if voided."""
    if plan.consent_confirmed_at and not plans.consent_confirmed(plan):
        plans.void_consent(plan)
        return True
    return False


def step_checks_registered() -> None:
    """Tell the stepper when steps 4-6 hold valid data (no network: shapes only)."""
    plans.register_step_check("filters", _filters_step_errors)
    plans.register_step_check("preview", lambda plan: {})
    plans.register_step_check("schedule", _schedule_step_errors)


def _filters_step_errors(plan: ImportPlan) -> dict[str, str]:
    for i, row in enumerate(_depth_first_rows(plan.filters or {})):
        if not row.get("field") or not row.get("operator"):
            return {f"rows-{i}-field": "Complete or remove this filter row."}
    return {}


def _schedule_step_errors(plan: ImportPlan) -> dict[str, str]:
    errors = {}
    if plan.schedule not in SCHEDULES:
        errors["schedule"] = "Choose when to import."
    if plan.schedule == "daily" and not plan.daily_time:
        errors["daily_time"] = "Give a time as HH:MM, for example 07:30."
    if plan.action in INVITE_ACTIONS and not plans.target_id(plan):
        errors["action"] = "Choose the study, task or community."
    return errors


# --- API budget -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ApiEstimate:
    records: int | None
    pages: int
    overhead: int
    per_run: int
    per_day: int | None

    @property
    def text(self) -> str:
        if self.records is None:
            return "unknown until the matching records are counted"
        return f"about {self.per_run} API calls per run"


def api_estimate(count: int | None, schedule: str, *, overhead: int = 2) -> ApiEstimate:
    """API calls one full run costs: ``ceil(count / 2000)`` query pages plus ``overhead`` (the
    describe refresh and the COUNT() the run starts with). Incremental runs cost less; this is
    the upper bound a per-run cap must allow."""
    pages = max(1, math.ceil(count / RECORDS_PER_PAGE)) if count else 1
    per_run = pages + overhead
    runs_per_day = {"hourly": 24, "daily": 1}.get(schedule)
    return ApiEstimate(count, pages, overhead, per_run,
                       per_run * runs_per_day if runs_per_day else None)


# --- Import only: reviewing staged records ------------------------------------------------

def staged_participants(plan: ImportPlan) -> list[Participant]:
    stmt = (select(Participant).join(ParticipantSource, ParticipantSource.participant_id == Participant.id)
            .where(ParticipantSource.plan_id == plan.id, ParticipantSource.workspace_id == plan.workspace_id,
                   Participant.workspace_id == plan.workspace_id, Participant.status == STATUS_STAGED)
            .order_by(Participant.id).distinct())
    return list(db.session.scalars(stmt))


def _staged_ids(plan: ImportPlan, ids: Iterable | None) -> list[Participant]:
    staged = staged_participants(plan)
    if ids is None:
        return staged
    wanted = set()
    for value in ids:
        try:
            wanted.add(int(value))
        except (TypeError, ValueError):
            continue
    return [p for p in staged if p.id in wanted]


def approve_staged(plan: ImportPlan, ids: Iterable | None = None, *, actor: User | None = None) -> int:
    """Staged participants of this plan reach the pool (all when ``ids`` is None)."""
    chosen = _staged_ids(plan, ids)
    for p in chosen:
        p.status = STATUS_ACTIVE
    _audit(plan, actor, "plan.staged_approved", len(chosen))
    db.session.commit()
    return len(chosen)


def discard_staged(plan: ImportPlan, ids: Iterable | None = None, *, actor: User | None = None) -> int:
    """Discarded records are archived, not deleted: their source link stays, so the next sync
    recognises them instead of staging them again."""
    chosen = _staged_ids(plan, ids)
    for p in chosen:
        p.status = STATUS_ARCHIVED
    _audit(plan, actor, "plan.staged_discarded", len(chosen))
    db.session.commit()
    return len(chosen)


def _audit(plan: ImportPlan, actor, action: str, count: int) -> None:
    if count:
        from services import audit
        audit.record(plan.workspace_id, actor, action, "import_plan", plan.id, count=count)


step_checks_registered()

"""The preview (wizard step 5, and "Add participants" from Salesforce): what a plan would do.

Every verdict comes from the engine itself. The preview runs ``sync.engine.run`` over the
matching records with a ``DryRunSink``: lookups go to the database (read-only) with what earlier
pages of the same preview "created" laid over them, and ``commit_page`` only records outcomes.
So "duplicate within the set", "matched an existing participant", "already imported",
opted out, no valid contact point and "removed in the preview" are exactly what a real run would
decide, by the same identity keys, and in the run log's words (``sync.verdicts``). The per-field
details shown beside each row (email valid or the reason, phone before and after E.164, consent)
come from ``sync.mapping.map_record`` and ``sync.validate.check_record``, the functions the
engine validates with.

Two entry points:

* ``first_page(plan, spec, client, where)`` — one query page (``LIMIT 50``, engine order), at once.
* ``request_totals(plan, ...)`` + ``compute_totals(totals_id)`` — the whole matching set, in a
  background job (``jobs.preview.compute_totals``), progress on a ``PreviewTotals`` row, cached
  per plan version (``totals_key``: the plan fingerprint plus the exclusions). The totals are the
  run's outcome counters (``Tally``): each record under exactly one outcome, in the run log's
  words, so a preview right before a full read predicts its counters. A cached count can go
  stale as Salesforce changes: the panel says when it counted and offers "Count again", and the
  step counts again when the first page's totalSize disagrees with the cached count (``is_stale``).
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import select

from core.extensions import db
from models import ImportPlan, PreviewTotals, Workspace
from salesforce.errors import SalesforceError
from salesforce.soql import build_count_query, build_query
from sync import engine
from sync import validate, verdicts
from sync.mapping import SourceRef, map_record
from sync.plan import Consent, Plan
from sync.sink import (EXCLUDED, IMPORTED, SKIPPED, UNCHANGED, UPDATED, KnownParticipant, Link,
                       Lookup, LookupResult, NewParticipantRef, PageChanges, RecordOutcome)

log = logging.getLogger(__name__)

PREVIEW_ROWS = 50
TOTALS_QUEUE = "default"
# The run's outcome counters (sync.verdicts.TOTAL_LABELS), then "<outcome>.<situation>" counts
# (sync.verdicts.situation) that split each outcome once more.
TOTAL_KEYS = ("total",) + verdicts.TOTAL_OUTCOMES + ("invited", "left")
# What the totals count (bump it when Tally changes: totals cached before are counted again).
TOTALS_VERSION = "totals 2: the run's counters"
STATUS_QUEUED, STATUS_RUNNING, STATUS_DONE, STATUS_FAILED = "queued", "running", "done", "failed"


# --- reading the database (read-only), exactly as the engine's sink answers ----------------------

def database_lookup(plan: ImportPlan) -> Callable[[Lookup], LookupResult]:
    """The database sink's own ``lookup`` (services.sync_sink) for this plan: links by source
    ref, participants by email and phone key, suppressed emails, who is already invited to the
    plan's target. Only its lookup is used; the preview never commits a page."""
    from services.sync_sink import ActionTarget, DatabaseSink

    sink = DatabaseSink(workspace_id=plan.workspace_id, plan_id=plan.id, run_id=0,
                        connection_id=plan.connection_id, target=ActionTarget.for_plan(plan),
                        write_cursor=False)
    return sink.lookup


# --- the dry-run sink -------------------------------------------------------------------------

@dataclass(frozen=True)
class WouldCreate:
    """A participant the previewed run would create (stands in for an id)."""

    index: int


class DryRunSink:
    """A Sink that writes nothing: lookups read through ``lookup_fn`` with the participants and
    links earlier pages of this preview would have created laid over them; ``commit_page``
    records outcomes (``on_outcome``) and remembers what it would have written."""

    def __init__(self, lookup_fn: Callable[[Lookup], LookupResult],
                 on_outcome: Callable[[RecordOutcome], None] | None = None):
        self.lookup_fn = lookup_fn
        self.on_outcome = on_outcome
        self.departures = 0  # records that would leave the plan (the run's "left" counter)
        self.stored_links: set[SourceRef] = set()  # refs with a ParticipantSource already
        self._links: dict[SourceRef, Link] = {}
        self._people: dict[Any, KnownParticipant] = {}
        self._by_email: dict[str, Any] = {}
        self._by_phone: dict[str, list] = {}
        self._created = 0

    def lookup(self, query: Lookup) -> LookupResult:
        result = self.lookup_fn(query)
        self.stored_links.update(result.links)
        for ref in query.refs:
            if ref in self._links:
                link = self._links[ref]
                result.links[ref] = link
                if link.participant_id in self._people:
                    result.participants[link.participant_id] = self._people[link.participant_id]
        for key in query.email_keys:
            if key in self._by_email:
                pid = self._by_email[key]
                result.by_email[key] = pid
                result.participants.setdefault(pid, self._people[pid])
        for key in query.phone_keys:
            for pid in self._by_phone.get(key, []):
                result.by_phone.setdefault(key, [])
                if pid not in result.by_phone[key]:
                    result.by_phone[key].append(pid)
                result.participants.setdefault(pid, self._people[pid])
        return result

    def commit_page(self, changes: PageChanges) -> dict:
        ids: dict[NewParticipantRef, WouldCreate] = {}
        for new in changes.creates:
            self._created += 1
            pid = WouldCreate(self._created)
            ids[new.ref] = pid
            v = new.values
            self._people[pid] = KnownParticipant(pid, v.email_key, v.phone_key,
                                                 v.consent or Consent.UNKNOWN)
            if v.email_key:
                self._by_email[v.email_key] = pid
            if v.phone_key:
                self._by_phone.setdefault(v.phone_key, []).append(pid)
        for link in changes.links:
            pid = ids.get(link.participant, link.participant)
            self._links[link.ref] = Link(link.ref, pid, link.source_hash, link.source_timestamp)
        self.departures += len(changes.departures)
        if self.on_outcome is not None:
            for outcome in changes.outcomes:
                self.on_outcome(outcome)
        return ids


class _NullLog:
    def event(self, message: str, *, level: str = "info", **data: Any) -> None:
        log.debug("preview: %s", message)


# --- one record's verdict ---------------------------------------------------------------------

@dataclass
class PreviewRow:
    record_id: str
    name: str
    email_raw: str | None
    email: str | None
    email_reason: str | None
    phone_raw: str | None
    phone_e164: str | None
    phone_ext: str | None
    phone_reason: str | None
    consent: str  # opted_in, opted_out, unknown
    consent_value: Any
    consent_missing: bool
    already_imported: bool
    duplicate_in_set: str | None  # the record ID this one duplicates
    duplicate_existing: str | None  # "email" / "phone" / ... when it matched an existing participant
    outcome: str  # the engine's outcome
    reason: str | None  # the engine's reason
    excluded: bool
    segments: tuple[str, ...] = ()
    company: str | None = None

    @property
    def verdict(self) -> str:
        """One line for the researcher, in the run log's words (sync.verdicts)."""
        return verdicts.preview_verdict(self.outcome, self.reason, already_imported=self.already_imported)

    @property
    def ok(self) -> bool:
        return self.outcome in (IMPORTED, UPDATED, UNCHANGED) and not self.excluded

    @property
    def problems(self) -> list[str]:
        out = []
        if self.email_reason:
            out.append("invalid email")
        if self.phone_reason:
            out.append("invalid phone")
        if self.consent_missing:
            out.append("consent missing")
        if self.duplicate_in_set or self.duplicate_existing:
            out.append("duplicate")
        if self.already_imported:
            out.append("already imported")
        return out


def _matched_by(reason: str | None) -> str | None:
    return verdicts.matched_existing_by(reason)


def _duplicate_of(reason: str | None) -> str | None:
    found = verdicts.duplicate_in_set_of(reason)
    return found[0] if found else None


def _reason(o: RecordOutcome) -> str | None:
    """The reason as the run log shows it (a remembered skip says it is skipped again)."""
    return verdicts.run_reason(o.outcome, o.reason, {"remembered": o.remembered}) or None


def _row(spec: Plan, raw: dict, outcome: RecordOutcome | None, stored_links: set[SourceRef]) -> PreviewRow:
    mapped = map_record(spec, raw)
    checked = validate.check_record(mapped, spec.mapping.required, spec.default_region)
    consent_value = mapped.consent_evidence[0][1] if mapped.consent_evidence else None
    kind = outcome.outcome if outcome else SKIPPED
    reason = _reason(outcome) if outcome else "The record could not be read"
    return PreviewRow(
        record_id=mapped.record_id,
        name=" ".join(p for p in (mapped.first_name, mapped.last_name) if p) or mapped.record_id,
        email_raw=mapped.email, email=checked.email.email,
        email_reason=checked.email.flag.reason if checked.email.flag else None,
        phone_raw=mapped.phone, phone_e164=checked.phone.e164, phone_ext=checked.phone.extension,
        phone_reason=checked.phone.flag.reason if checked.phone.flag else None,
        consent=mapped.consent.value, consent_value=consent_value,
        consent_missing=spec.consent.configured is False or mapped.consent == Consent.UNKNOWN,
        already_imported=verdicts.situation(kind, reason) == "already_imported",
        duplicate_in_set=_duplicate_of(reason),
        duplicate_existing=_matched_by(reason),
        outcome=kind, reason=reason, excluded=kind == EXCLUDED,
        segments=mapped.segments, company=mapped.company)


# --- queries ----------------------------------------------------------------------------------

def preview_query(spec: Plan, where: str, limit: int = PREVIEW_ROWS) -> str:
    """The first page in the engine's order (cursor field, then Id)."""
    return build_query(spec.object_name, spec.select_fields(), where,
                       order_by=[spec.cursor_field, "Id"], limit=limit)


def run_query(spec: Plan, where: str) -> str:
    """The query the engine sends on a full read (the first run, or after the plan changed):
    the sync source's own ``sync_query`` with no cursor."""
    from services.sync_source import sync_query
    return sync_query(spec, where, None)


def count_query(spec: Plan, where: str) -> str:
    return build_count_query(spec.object_name, where)


def with_exclusions(spec: Plan, excluded: Iterable[str]) -> Plan:
    ids = frozenset(str(i) for i in excluded or () if i)
    if ids == spec.excluded_ids:
        return spec
    return replace(spec, excluded_ids=spec.excluded_ids | ids)


# --- the first page ---------------------------------------------------------------------------

@dataclass
class PreviewPage:
    rows: list[PreviewRow]
    query: str
    error: str | None = None
    total_size: int | None = None  # the first page's totalSize (at most the LIMIT in Salesforce)

    @property
    def shown(self) -> int:
        return len(self.rows)


def preview_records(spec: Plan, records: list[dict], lookup_fn: Callable[[Lookup], LookupResult]) -> list[PreviewRow]:
    """Verdicts for one page of records (pure apart from ``lookup_fn``)."""
    outcomes: dict[str, RecordOutcome] = {}
    sink = DryRunSink(lookup_fn, lambda o: outcomes.setdefault(o.record_id, o))
    engine.run(spec, [records], sink, _NullLog())
    rows = []
    for raw in records:
        try:
            mapped_id = map_record(spec, raw).record_id
        except Exception:  # unreadable: the engine has a failed outcome under the raw id
            continue
        rows.append(_row(spec, raw, outcomes.get(mapped_id), sink.stored_links))
    return rows


def first_page(plan: ImportPlan, spec: Plan, client, where: str, limit: int = PREVIEW_ROWS) -> PreviewPage:
    """One query page of matching records with their verdicts, at once. A Salesforce error comes
    back as ``error`` (its researcher-readable reason), never as an exception."""
    soql = preview_query(spec, where, limit)
    try:
        page = next(iter(client.query_pages(soql)), None)
    except SalesforceError as exc:
        return PreviewPage([], soql, error=exc.reason or exc.message or str(exc))
    records = list(page.records) if page is not None else []
    total_size = max(page.total_size or 0, len(records)) if page is not None else 0
    return PreviewPage(preview_records(spec, records, database_lookup(plan)), soql,
                       total_size=total_size)


# --- totals for the whole matching set --------------------------------------------------------

def totals_key(spec: Plan) -> str:
    """One cache entry per plan version: the engine fingerprint (object, mapping, filters,
    consent, action, target, region) plus the exclusions."""
    text = TOTALS_VERSION + "|" + spec.fingerprint + "|" + ",".join(sorted(spec.excluded_ids))
    return hashlib.sha256(text.encode()).hexdigest()


class Tally:
    """Counts for the totals panel, by the run's own counting rules: one outcome per record (the
    engine's), so the outcome counts add up to the records read; within an outcome, one
    situation per record (``sync.verdicts.situation``); "invited" and "left" as the run counts
    them (invited outcomes; departures)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def outcome(self, o: RecordOutcome) -> None:
        c = self.counts
        name = "excluded" if o.outcome == EXCLUDED else o.outcome  # the run's counter names
        c[name] += 1
        c[f"{name}.{verdicts.situation(o.outcome, _reason(o))}"] += 1
        if o.invited:
            c["invited"] += 1

    def totals(self, records: int, left: int) -> dict[str, int]:
        counts = {key: 0 for key in TOTAL_KEYS}
        counts.update(self.counts)
        counts["total"], counts["left"] = records, left
        return counts


def is_stale(row: PreviewTotals | None, page: PreviewPage | None, limit: int = PREVIEW_ROWS) -> bool:
    """Whether finished totals disagree with the first page just read: Salesforce's totalSize of
    a ``LIMIT n`` query is the number returned, so a page that is not full says how many match
    now, and a full one says at least ``n`` do. (A change that keeps the count, an email edited,
    is not seen: the panel says when it counted and offers to count again.)"""
    if row is None or row.status != STATUS_DONE or page is None or page.error:
        return False
    counted = row.estimate_total
    if counted is None:
        counted = (row.totals or {}).get("total")
    now = page.total_size if page.total_size is not None else page.shown
    if counted is None or now is None or now == counted:
        return False
    if now == limit and counted >= limit:  # a full page: "at least limit", as counted
        return False
    return True


def request_totals(plan: ImportPlan, spec: Plan, *, enqueue_job: bool = True,
                   again: bool = False) -> PreviewTotals:
    """The totals row for this plan version: the cached one, or a new one with its job queued.
    A failed computation is retried by asking again; ``again`` counts anew whatever is cached
    (Salesforce changed since: "Count again", or a first page that disagrees)."""
    key = totals_key(spec)
    row = db.session.scalar(select(PreviewTotals).where(
        PreviewTotals.plan_id == plan.id, PreviewTotals.fingerprint == key,
        PreviewTotals.status != STATUS_FAILED).order_by(PreviewTotals.id.desc()))
    if row is not None and (not again or row.status in (STATUS_QUEUED, STATUS_RUNNING)):
        return row
    row = PreviewTotals(workspace_id=plan.workspace_id, plan_id=plan.id, fingerprint=key,
                        status=STATUS_QUEUED, processed=0, totals={})
    db.session.add(row)
    db.session.commit()
    if enqueue_job:
        from core.queues import enqueue
        try:
            enqueue("jobs.preview:compute_totals", row.id, queue=TOTALS_QUEUE,
                    job_id=f"terapage-preview-totals-{row.id}", job_timeout=3600,
                    description=f"preview totals for plan {plan.id}")
        except Exception as exc:  # Redis down: say so on the row rather than spin forever
            row.status, row.error = STATUS_FAILED, f"Could not start the count: {exc}"
            db.session.commit()
    return row


def compute_totals(totals_id: int, *, client=None, spec: Plan | None = None, where: str | None = None,
                   commit_every: int = 1) -> PreviewTotals | None:
    """Read the whole matching set page by page and count what the engine would do. Progress
    (``processed`` of ``estimate_total``) is committed after every page so the browser's
    progress bar moves."""
    row = db.session.get(PreviewTotals, totals_id)
    if row is None or row.status == STATUS_DONE:
        return row
    plan = db.session.get(ImportPlan, row.plan_id)
    row.status, row.error, row.processed = STATUS_RUNNING, None, 0
    db.session.commit()
    try:
        if spec is None or where is None or client is None:
            ctx = plan_context(plan)
            spec = spec or ctx.spec
            where = ctx.where if where is None else where
            client = client or ctx.client
        spec = with_exclusions(spec, plan.excluded_record_ids or ())
        row.estimate_total = client.count(count_query(spec, where))
        db.session.commit()
        tally = Tally()
        sink = DryRunSink(database_lookup(plan), tally.outcome)
        read = [0]

        def pages() -> Iterator[list]:
            for n, page in enumerate(client.query_pages(run_query(spec, where)), start=1):
                records = list(page.records)
                yield records
                read[0] += len(records)
                row.processed = read[0]
                if n % commit_every == 0:
                    db.session.commit()

        summary = engine.run(spec, pages(), sink, _NullLog())
        if summary.status != engine.SUCCEEDED:
            raise RuntimeError(summary.reason or summary.status)
        counts = tally.totals(summary.fetched, sink.departures)
        row.totals = counts
        row.processed = counts["total"]
        row.status = STATUS_DONE
        row.finished_at = datetime.now(timezone.utc)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        row = db.session.get(PreviewTotals, totals_id)
        row.status = STATUS_FAILED
        row.error = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        row.finished_at = datetime.now(timezone.utc)
        db.session.commit()
        log.warning("preview totals %s failed: %s", totals_id, row.error)
    return row


# --- the plan's context (connection, describe, engine spec) ---------------------------------

@dataclass
class PlanContext:
    plan: ImportPlan
    spec: Plan
    catalog: Any
    where: str
    filter_errors: dict[int, str]
    client: Any

    @property
    def ready(self) -> bool:
        return not self.filter_errors


def plan_context(plan: ImportPlan, *, client=None) -> PlanContext:
    """Everything a preview needs, from the services that own each part: the connection's
    client (token refresh included), the cached describe, the engine's spec of the plan."""
    from models import SalesforceConnection
    from services import catalog as catalogs
    from services import connections
    from services import plans
    from services.plan_steps import check_filters

    workspace = db.session.get(Workspace, plan.workspace_id)
    connection = db.session.get(SalesforceConnection, plan.connection_id)
    catalog = catalogs.field_catalog(connection, plan.object_name)
    check = check_filters(plan.filters or {}, catalog)
    spec = with_exclusions(plans.to_spec(plan, workspace), plan.excluded_record_ids or ())
    return PlanContext(plan, spec, catalog, check.where, check.errors,
                       client or connections.client_for(connection))


def plan_context_or_reason(plan: ImportPlan, *, client=None) -> tuple[PlanContext | None, str | None]:
    """``plan_context`` for views (which never import salesforce/): a Salesforce failure, or a
    plan the engine can't read (``ValueError`` from ``to_spec``), becomes its readable reason."""
    try:
        return plan_context(plan, client=client), None
    except (SalesforceError, ValueError) as exc:
        return None, getattr(exc, "reason", None) or str(exc)


def totals_view(row: PreviewTotals | None) -> dict:
    """What the progress panel shows."""
    if row is None:
        return {"status": None}
    total = row.estimate_total
    percent = 100 if row.status == STATUS_DONE else (
        int(min(99, (row.processed or 0) * 100 / total)) if total else 0)
    return {"status": row.status, "processed": row.processed or 0, "estimate": total,
            "percent": percent, "totals": row.totals or {}, "error": row.error, "id": row.id,
            "counted_at": row.finished_at if row.status == STATUS_DONE else None,
            "stale": False}


def totals_json(row: PreviewTotals) -> str:
    return json.dumps(totals_view(row), sort_keys=True, default=str)

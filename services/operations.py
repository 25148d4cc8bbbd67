"""What admins and researchers see after set-up: connection status, plans, runs and their
record outcomes (live tail, keyset pages, streamed CSV), a participant's runs, and the
"why isn't this person here?" lookup.

Everything here reads; the few writes (pause, resume, delete a plan, the token health check)
are plain verbs the operations views call. "Run now" (Imports page and wizard) is ``run_now``,
over ``services.runs.request_run``; reconnect and disconnect are ``services.connections``.
"""
from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterator

from flask import current_app
from sqlalchemy import delete, func, or_, select

from core.extensions import db
from models import (ImportPlan, Participant, ParticipantSource, RunOutcome, SalesforceConnection,
                    SkippedSource, SyncRun, Workspace)
from models.integrations import CONNECTION_CONNECTED
from models.plans import INVITE_ACTIONS, PLAN_ACTIVE, PLAN_DRAFT, PLAN_HELD, PLAN_PAUSED
from models.runs import RUN_ACTIVE, RUN_SUCCEEDED
from models.types import utcnow
from services import audit, invitations
from sync import verdicts
from sync.ids import is_valid_id, to_18
from sync.validate import email_key, normalize_email, normalize_phone

log = logging.getLogger("terapage.operations")

# The words for outcomes: one vocabulary with the preview's (sync.verdicts).
OUTCOME_LABELS = verdicts.OUTCOME_LABELS
OUTCOME_EXPLAINED = verdicts.OUTCOME_EXPLAINED
PAGE_SIZE = 100
TAIL_LIMIT = 500
EXPORT_BATCH = 1000
_ID_SHAPE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


# --- connections ----------------------------------------------------------------------------------

@dataclass
class ConnectionStatus:
    connection: SalesforceConnection
    last_success_at: datetime | None
    next_run_at: datetime | None
    api_share: float | None           # 0..100, None when Salesforce has not told us yet
    plans: list[ImportPlan]

    @property
    def api_usage_text(self) -> str:
        c = self.connection
        if not c.api_max:
            return "unknown until the first call"
        return f"{c.api_used or 0:,} of {c.api_max:,} ({self.api_share:.1f}%)"


def connection_status(connection: SalesforceConnection) -> ConnectionStatus:
    plans = db.session.scalars(select(ImportPlan).where(
        ImportPlan.workspace_id == connection.workspace_id, ImportPlan.connection_id == connection.id)
        .order_by(ImportPlan.name, ImportPlan.id)).all()
    last_success = db.session.scalar(
        select(func.max(SyncRun.finished_at)).join(ImportPlan, ImportPlan.id == SyncRun.plan_id).where(
            ImportPlan.connection_id == connection.id, SyncRun.workspace_id == connection.workspace_id,
            SyncRun.status == RUN_SUCCEEDED))
    plan_success = max((p.last_success_at for p in plans if p.last_success_at), default=None)
    last_success = max((t for t in (last_success, plan_success) if t), default=None)
    next_run = min((p.next_run_at for p in plans if p.status == PLAN_ACTIVE and p.next_run_at), default=None)
    share = None
    if connection.api_max:
        share = 100.0 * (connection.api_used or 0) / connection.api_max
    return ConnectionStatus(connection, last_success, next_run, share, list(plans))


def check_token(connection: SalesforceConnection) -> str:
    """The token health check: one cheap authenticated call (the org's limits, which also
    refresh the API usage). A refused refresh marks the connection "needs reconnect", holds its
    plans and opens an incident before a scheduled sync would fail. Returns "ok",
    "needs_reconnect" or "error" (Salesforce unreachable: the status is left as it was)."""
    from salesforce.errors import NeedsReconnect, SalesforceError
    from services import connections as connections_service
    from services import runs as runs_service
    from services.notifications import notify_connection_status

    now = utcnow()
    try:
        client = connections_service.client_for(connection)
        client.limits()
    except NeedsReconnect as exc:
        # A refused refresh has already marked the connection (in its own transaction).
        db.session.rollback()
        db.session.refresh(connection)
        if connection.status == CONNECTION_CONNECTED:
            runs_service.mark_needs_reconnect(connection.id, getattr(exc, "reason", None) or str(exc) or None)
            db.session.refresh(connection)
        connection.last_token_check_at = now
        db.session.commit()
        notify_connection_status(connection)
        return "needs_reconnect"
    except SalesforceError as exc:
        log.warning("token check of connection %s: %s", connection.id, exc)
        db.session.rollback()
        connection.last_token_check_at = now
        db.session.commit()
        return "error"
    connection.last_token_check_at = now
    connections_service.record_usage(connection, client, commit=False)
    db.session.commit()
    return "ok"


def check_tokens(older_than: timedelta = timedelta(minutes=50)) -> dict:
    """Periodic task: check every connected connection not checked for ``older_than``."""
    cutoff = utcnow() - older_than
    ids = db.session.scalars(select(SalesforceConnection.id).where(
        SalesforceConnection.status == CONNECTION_CONNECTED,
        or_(SalesforceConnection.last_token_check_at.is_(None),
            SalesforceConnection.last_token_check_at < cutoff))).all()
    results: dict[str, int] = {}
    for connection_id in ids:
        connection = db.session.get(SalesforceConnection, connection_id)
        try:
            result = check_token(connection)
        except Exception:  # noqa: BLE001 - one broken connection must not stop the others' checks
            log.exception("token check of connection %s", connection_id)
            db.session.rollback()
            result = "error"
        results[result] = results.get(result, 0) + 1
    return results


# --- plans ------------------------------------------------------------------------------------------

@dataclass
class PlanRow:
    plan: ImportPlan
    connection: SalesforceConnection | None
    last_run: SyncRun | None
    active_run: SyncRun | None


def plan_rows(workspace_id: int) -> list[PlanRow]:
    """Every plan of the workspace with its connection, last run and active run (three queries)."""
    plans = db.session.scalars(select(ImportPlan).where(ImportPlan.workspace_id == workspace_id)
                               .order_by(ImportPlan.name, ImportPlan.id)).all()
    if not plans:
        return []
    ids = [p.id for p in plans]
    last_ids = select(func.max(SyncRun.id)).where(SyncRun.plan_id.in_(ids)).group_by(SyncRun.plan_id)
    last = {r.plan_id: r for r in db.session.scalars(select(SyncRun).where(SyncRun.id.in_(last_ids)))}
    active = {r.plan_id: r for r in db.session.scalars(select(SyncRun).where(
        SyncRun.plan_id.in_(ids), SyncRun.status.in_(RUN_ACTIVE)).order_by(SyncRun.id))}
    conn_ids = {p.connection_id for p in plans if p.connection_id}
    conns = {c.id: c for c in db.session.scalars(select(SalesforceConnection).where(
        SalesforceConnection.id.in_(conn_ids)))} if conn_ids else {}
    return [PlanRow(p, conns.get(p.connection_id), last.get(p.id), active.get(p.id)) for p in plans]


class PlanStateError(ValueError):
    """A pause or resume that does not apply to the plan as it is (shown as a message)."""


def pause_plan(plan: ImportPlan, user) -> None:
    if plan.status == PLAN_PAUSED:
        return
    if plan.status != PLAN_ACTIVE:
        raise PlanStateError(f"Only an active plan can be paused; this one is {plan.status}.")
    plan.status = PLAN_PAUSED
    plan.status_reason = f"Paused by {getattr(user, 'name', None) or 'someone'}"
    audit.record(plan.workspace_id, user, "plan.paused", "plan", plan.id, name=plan.name)
    db.session.commit()


def resume_plan(plan: ImportPlan, user) -> None:
    """Paused → active, with its next run from its schedule. An auto-invite plan whose consent
    confirmation no longer matches it is refused (the wizard asks again)."""
    from services import plan_steps

    if plan.status == PLAN_ACTIVE:
        return
    if plan.status != PLAN_PAUSED:
        raise PlanStateError("Only a paused plan can be resumed here"
                             + ("; this one is held until its connection is reconnected." if plan.status == PLAN_HELD
                                else "; finish it in the wizard." if plan.status == PLAN_DRAFT else "."))
    workspace = db.session.get(Workspace, plan.workspace_id)
    try:
        plan_steps.activate(plan, workspace)
    except plan_steps.StepError as exc:
        db.session.rollback()
        raise PlanStateError(" ".join(exc.errors.values()) if hasattr(exc, "errors") else str(exc)) from exc
    audit.record(plan.workspace_id, user, "plan.resumed", "plan", plan.id, name=plan.name)
    db.session.commit()


@dataclass
class RunNow:
    run: SyncRun
    started: bool     # False: the plan's run that was already queued or running, returned as it is

    @property
    def message(self) -> str:
        if self.started:
            return "Started."
        return "A run of this plan was already queued or running: this is it (no second run was started)."


def run_now(plan: ImportPlan, trigger: str, user) -> RunNow:
    """"Run now", from the Imports page (trigger "manual") or the wizard's last step ("wizard"):
    queue a run of the plan, or hand back the one already queued or running. A draft is refused
    (PlanStateError): its set-up is not finished."""
    from services import runs as runs_service

    if plan.status == PLAN_DRAFT:
        raise PlanStateError(f"Not started: “{plan.name}” is a draft. Finish its set-up in the wizard (through "
                             "“Import, sync, and invite participants”) before running it.")
    before = runs_service.active_run(plan)
    run = runs_service.request_run(plan, trigger, user)
    return RunNow(run, started=before is None or before.id != run.id)


def delete_plan(plan: ImportPlan, user) -> None:
    """Delete the plan, its runs' logs and its remembered skips. Participants it brought in stay
    (their source links keep the Salesforce record; only the plan reference is cleared)."""
    active = db.session.scalar(select(func.count()).select_from(SyncRun).where(
        SyncRun.plan_id == plan.id, SyncRun.status.in_(RUN_ACTIVE)))
    if active:
        raise PlanStateError("A run of this plan is in progress; wait for it to end before deleting the plan.")
    audit.record(plan.workspace_id, user, "plan.deleted", "plan", plan.id, name=plan.name,
                 object_name=plan.object_name)
    run_ids = select(SyncRun.id).where(SyncRun.plan_id == plan.id).scalar_subquery()
    db.session.execute(delete(RunOutcome).where(RunOutcome.run_id.in_(run_ids)))
    # The plan's remembered skips (its own memory: no other plan reads them).
    db.session.execute(delete(SkippedSource).where(SkippedSource.plan_id == plan.id))
    db.session.execute(delete(SyncRun).where(SyncRun.plan_id == plan.id))
    db.session.delete(plan)
    db.session.commit()


# --- runs --------------------------------------------------------------------------------------------

def runs_for_plan(plan: ImportPlan, limit: int = 50) -> list[SyncRun]:
    return db.session.scalars(select(SyncRun).where(SyncRun.plan_id == plan.id, SyncRun.workspace_id == plan.workspace_id)
                              .order_by(SyncRun.id.desc()).limit(limit)).all()


def processed(run: SyncRun) -> int:
    """Records the run has decided so far (every outcome counts once; invited is extra)."""
    return run.fetched or sum((run.imported, run.updated, run.unchanged, run.excluded, run.skipped, run.failed))


def progress(run: SyncRun) -> tuple[int, int | None]:
    """(records processed, the estimate) for the progress bar; the estimate never below the done."""
    done = processed(run)
    total = run.estimate_total
    if total is not None and total < done:
        total = done
    return done, total


def duration(run: SyncRun) -> timedelta | None:
    if run.started_at is None:
        return None
    return (run.finished_at or utcnow()) - run.started_at


def is_active(run: SyncRun) -> bool:
    return run.status in RUN_ACTIVE


def last_seq(run: SyncRun) -> int:
    return db.session.scalar(select(func.coalesce(func.max(RunOutcome.seq), 0)).where(RunOutcome.run_id == run.id)) or 0


def outcomes_after(run: SyncRun, after_seq: int, limit: int = TAIL_LIMIT) -> list[RunOutcome]:
    """The live tail: outcome rows written after ``after_seq``, oldest first."""
    return db.session.scalars(select(RunOutcome).where(RunOutcome.run_id == run.id, RunOutcome.seq > after_seq)
                              .order_by(RunOutcome.seq).limit(limit)).all()


def outcome_counts(run: SyncRun) -> dict[str, int]:
    rows = db.session.execute(select(RunOutcome.outcome, func.count()).where(RunOutcome.run_id == run.id)
                              .group_by(RunOutcome.outcome)).all()
    return {outcome: n for outcome, n in sorted(rows, key=lambda r: list(OUTCOME_LABELS).index(r[0])
                                                  if r[0] in OUTCOME_LABELS else 99)}


def _search_clause(q: str):
    """Search by email or Salesforce ID: an exact record ID (15 or 18 characters), an exact email
    (compared by its case-folded key), else a prefix of either."""
    q = q.strip()
    if not q:
        return None
    if "@" in q:
        result = normalize_email(q)
        key = result.key or email_key(q)
        return or_(RunOutcome.email_key == key, func.lower(RunOutcome.email) == q.lower())
    if _ID_SHAPE.match(q) and is_valid_id(q):
        return RunOutcome.record_id == to_18(q)
    like = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(RunOutcome.record_id.like(like, escape="\\"), RunOutcome.email_key.like(email_key(like), escape="\\"))


@dataclass
class OutcomePage:
    rows: list[RunOutcome]
    has_next: bool
    has_prev: bool
    first_seq: int | None = None
    last_seq: int | None = None
    args: dict = field(default_factory=dict)


def _filtered(run: SyncRun, outcome: str | None, q: str | None):
    stmt = select(RunOutcome).where(RunOutcome.run_id == run.id)
    if outcome:
        if outcome == "invited":  # invited is a note on an imported or updated record
            stmt = stmt.where(_invited_clause())
        else:
            stmt = stmt.where(RunOutcome.outcome == outcome)
    clause = _search_clause(q or "")
    if clause is not None:
        stmt = stmt.where(clause)
    return stmt


def _invited_clause():
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        return RunOutcome.detail["invited"].astext == "true"
    return func.json_extract(RunOutcome.detail, "$.invited") == 1


def outcome_page(run: SyncRun, *, outcome: str | None = None, q: str | None = None, after: int | None = None,
                 before: int | None = None, per_page: int = PAGE_SIZE) -> OutcomePage:
    """One page of a run's outcomes in seq order, by keyset: ``after`` (next pages) or ``before``
    (previous pages) a seq. Costs one indexed range read however deep the page is."""
    stmt = _filtered(run, outcome, q)
    if before is not None:
        rows = db.session.scalars(stmt.where(RunOutcome.seq < before).order_by(RunOutcome.seq.desc())
                                  .limit(per_page + 1)).all()
        has_prev = len(rows) > per_page
        rows = list(reversed(rows[:per_page]))
        has_next = True
    else:
        if after is not None:
            stmt = stmt.where(RunOutcome.seq > after)
        rows = db.session.scalars(stmt.order_by(RunOutcome.seq).limit(per_page + 1)).all()
        has_next = len(rows) > per_page
        rows = rows[:per_page]
        has_prev = after is not None and after > 0
    return OutcomePage(rows, has_next, has_prev, rows[0].seq if rows else None, rows[-1].seq if rows else None,
                       {k: v for k, v in (("outcome", outcome), ("q", q)) if v})


# "invited": "queued" when the run made the invitation (it is sent by the mail queue, within the
# daily cap), "queued again" when the run armed a refused one again for a new address;
# "invitation": how that invitation stands now (services.invitations.send_state).
# The engine's note on a record an invite plan did not invite because its consent confirmation
# is missing ("Not invited: " + sync.verdicts.NOT_CONFIRMED).
NOT_CONFIRMED_NOTE = verdicts.NOT_CONFIRMED


def invites_without_confirmation(plan: ImportPlan | None) -> bool:
    """An invite plan whose consent confirmation is missing or void (e.g. its filters changed):
    its runs import but invite nobody until someone confirms again in the schedule step."""
    from services import plans as plan_service

    return (plan is not None and plan.action in INVITE_ACTIONS and plan_service.target_id(plan) is not None
            and not plan_service.consent_confirmed(plan))


# How many of a run's imported/updated records are read for the note: when the confirmation is
# missing, every one of them carries it, so the first ones tell.
_NOTE_SAMPLE = 200


def run_lacked_confirmation(run: SyncRun) -> bool:
    """The run of an invite plan invited nobody because the plan's consent confirmation was
    missing (its imported and updated records carry the engine's note). Reads at most the
    first ``_NOTE_SAMPLE`` of those records: the run page asks this on every refresh."""
    if run.invited or not (run.imported or run.updated):
        return False
    plan = db.session.get(ImportPlan, run.plan_id)
    if plan is None or plan.action not in INVITE_ACTIONS:
        return False
    first = (select(RunOutcome.reason).where(RunOutcome.run_id == run.id,
                                            RunOutcome.outcome.in_(("imported", "updated")))
             .order_by(RunOutcome.seq).limit(_NOTE_SAMPLE).subquery())
    return db.session.scalar(select(func.count()).select_from(first).where(
        first.c.reason.like(f"%{NOT_CONFIRMED_NOTE}%"))) > 0


def invitation_send_counts(run: SyncRun) -> dict[str, int]:
    """How the invitations the run queued stand now (sent, waiting, failed, refused, withdrawn):
    the run's "invited" counts invitations queued, not messages sent."""
    return invitations.run_send_counts(run.id) if run.invited else {}


EXPORT_COLUMNS = ("seq", "record_id", "object", "outcome", "invited", "reason", "email", "participant_id",
                  "flags", "recorded_at", "invitation")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    # A spreadsheet would run a cell that starts like a formula; a leading quote keeps it text.
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_batches(run: SyncRun, *, outcome: str | None = None, q: str | None = None,
                   batch_size: int | None = None) -> Iterator[list]:
    """The run's outcome rows as tuples, ``batch_size`` at a time by keyset on seq: each batch is
    one fresh indexed query, and plain rows (not ORM objects) never pile up in the session."""
    cols = (RunOutcome.seq, RunOutcome.record_id, RunOutcome.object_name, RunOutcome.outcome, RunOutcome.detail,
            RunOutcome.reason, RunOutcome.email, RunOutcome.participant_id, RunOutcome.created_at)
    base = _filtered(run, outcome, q).with_only_columns(*cols)
    batch_size = batch_size or EXPORT_BATCH
    after = 0
    while True:
        rows = db.session.execute(base.where(RunOutcome.seq > after).order_by(RunOutcome.seq).limit(batch_size)).all()
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        after = rows[-1][0]


def export_csv(run: SyncRun, *, outcome: str | None = None, q: str | None = None,
               batch_size: int | None = None) -> Iterator[str]:
    """The CSV text in chunks: the header, then one chunk per batch."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    yield buffer.getvalue()
    for rows in export_batches(run, outcome=outcome, q=q, batch_size=batch_size):
        buffer.seek(0)
        buffer.truncate()
        invited_pids = [r[7] for r in rows if r[4] and (r[4].get("invited") or r[4].get("invited_again"))]
        states = invitations.send_states_for(run.plan_id, run.id, invited_pids) if invited_pids else {}
        for seq, record_id, obj, kind, detail, reason, email, pid, created in rows:
            detail = detail or {}
            flags = "; ".join(f"{f.get('field')}: {f.get('reason')}" for f in detail.get("flags", []) if isinstance(f, dict))
            invited = "queued" if detail.get("invited") else "queued again" if detail.get("invited_again") else ""
            reason = verdicts.run_reason(kind, reason, detail)
            writer.writerow([_cell(v) for v in (seq, record_id, obj, kind, invited, reason, email, pid, flags,
                                                created, states.get(pid, "") if invited else "")])
        yield buffer.getvalue()


def outcomes_purged(run: SyncRun) -> bool:
    """True when the run's outcome rows are older than the retention period (deleted or due)."""
    days = current_app.config.get("OUTCOME_RETENTION_DAYS", 90)
    return bool(run.finished_at and run.finished_at < utcnow() - timedelta(days=days))


# --- a participant's runs ------------------------------------------------------------------------

@dataclass
class Touch:
    outcome: RunOutcome
    run: SyncRun
    plan: ImportPlan | None


def participant_runs(participant: Participant, limit: int = 100) -> list[Touch]:
    """Every kept outcome row about this participant: by the participant id the run recorded, or
    by a Salesforce record linked to them (records skipped before any link had one)."""
    record_ids = db.session.scalars(select(ParticipantSource.record_id).where(
        ParticipantSource.workspace_id == participant.workspace_id,
        ParticipantSource.participant_id == participant.id)).all()
    who = RunOutcome.participant_id == participant.id
    if record_ids:
        who = or_(who, RunOutcome.record_id.in_(record_ids))
    rows = db.session.execute(
        select(RunOutcome, SyncRun, ImportPlan).join(SyncRun, SyncRun.id == RunOutcome.run_id)
        .outerjoin(ImportPlan, ImportPlan.id == SyncRun.plan_id)
        .where(RunOutcome.workspace_id == participant.workspace_id, who)
        .order_by(RunOutcome.run_id.desc(), RunOutcome.seq.desc()).limit(limit)).all()
    return [Touch(o, r, p) for o, r, p in rows]


# --- "why isn't this person here?" -------------------------------------------------------------

@dataclass
class Lookup:
    query: str
    kind: str | None = None          # email, phone, record_id
    shown: str | None = None         # the value searched, normalised
    error: str | None = None
    touches: list[Touch] = field(default_factory=list)
    participants: list[Participant] = field(default_factory=list)
    plans: list[ImportPlan] = field(default_factory=list)
    # outcome id → the participant a record skipped as a duplicate is the same person as
    duplicates_of: dict[int, Participant] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return bool(self.touches or self.participants)


# The engine's reason for a record skipped because its email is another participant's
# (sync.identity): the record is never linked, so its outcome names no participant.
_EMAIL_TAKEN = verdicts.EMAIL_TAKEN


def _duplicates_of(workspace_id: int, outcomes: list[RunOutcome]) -> dict[int, Participant]:
    """For each skipped outcome that is a duplicate, the participant it is the same person as:
    the one the outcome names when it names one, else the one holding the record's email now."""
    by_id: dict[int, int] = {}
    by_email: dict[int, str] = {}
    for o in outcomes:
        if o.outcome != "skipped":
            continue
        if o.participant_id:
            by_id[o.id] = o.participant_id
        elif o.email_key and o.reason and _EMAIL_TAKEN in o.reason:
            by_email[o.id] = o.email_key
    if not by_id and not by_email:
        return {}
    clauses = []
    if by_id:
        clauses.append(Participant.id.in_(set(by_id.values())))
    if by_email:
        clauses.append(Participant.email_key.in_(set(by_email.values())))
    people = db.session.scalars(select(Participant).where(
        Participant.workspace_id == workspace_id, or_(*clauses))).all()
    ids = {p.id: p for p in people}
    emails = {p.email_key: p for p in people if p.email_key}
    found = {oid: ids[pid] for oid, pid in by_id.items() if pid in ids}
    found.update({oid: emails[key] for oid, key in by_email.items() if key in emails})
    return found


def lookup(workspace: Workspace, query: str, limit: int = 200) -> Lookup:
    """Search an email, a phone number or a Salesforce record ID across the workspace's kept run
    outcomes and participants, newest run first."""
    result = Lookup(query=(query or "").strip())
    q = result.query
    if not q:
        return result
    ws = workspace.id
    if "@" in q:
        checked = normalize_email(q)
        key = checked.key or email_key(q)
        result.kind, result.shown = "email", key
        clause = or_(RunOutcome.email_key == key, func.lower(RunOutcome.email) == q.lower())
        people = select(Participant).where(Participant.workspace_id == ws, Participant.email_key == key)
    elif _ID_SHAPE.match(q):
        if not is_valid_id(q):
            result.error = ("That is not a Salesforce record ID: its last three characters do not match its "
                            "case. Copy the ID from Salesforce again (IDs are case-sensitive).")
            return result
        record_id = to_18(q)
        result.kind, result.shown = "record_id", record_id
        clause = RunOutcome.record_id == record_id
        people = (select(Participant).join(ParticipantSource, ParticipantSource.participant_id == Participant.id)
                  .where(ParticipantSource.workspace_id == ws, ParticipantSource.record_id == record_id))
    elif sum(ch.isdigit() for ch in q) >= 6:
        phone = normalize_phone(q, workspace.default_phone_region)
        if phone.key is None:
            result.error = f"That phone number cannot be read: {phone.flag.reason if phone.flag else 'unknown format'}"
            return result
        result.kind, result.shown = "phone", phone.key
        clause = RunOutcome.phone_key == phone.key
        people = select(Participant).where(Participant.workspace_id == ws, Participant.phone_key == phone.key)
    else:
        result.error = "Enter an email address, a phone number or a Salesforce record ID."
        return result
    rows = db.session.execute(
        select(RunOutcome, SyncRun, ImportPlan).join(SyncRun, SyncRun.id == RunOutcome.run_id)
        .outerjoin(ImportPlan, ImportPlan.id == SyncRun.plan_id)
        .where(RunOutcome.workspace_id == ws, clause)
        .order_by(RunOutcome.run_id.desc(), RunOutcome.seq.desc()).limit(limit)).all()
    result.touches = [Touch(o, r, p) for o, r, p in rows]
    result.participants = db.session.scalars(people.order_by(Participant.id).distinct()).all()
    result.duplicates_of = _duplicates_of(ws, [t.outcome for t in result.touches])
    if not result.touches:
        result.plans = db.session.scalars(select(ImportPlan).where(
            ImportPlan.workspace_id == ws, ImportPlan.status != PLAN_DRAFT).order_by(ImportPlan.name)).all()
    return result


def describe_filters(plan: ImportPlan) -> str:
    """The plan's filters in words, for "it may not match the plan's filters"."""
    def node(item) -> str:
        if not isinstance(item, dict):
            return ""
        if "items" in item:
            parts = [p for p in (node(i) for i in item.get("items") or []) if p]
            joined = f" {item.get('op', 'AND')} ".join(parts)
            return f"({joined})" if len(parts) > 1 else joined
        value = item.get("value")
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        op = str(item.get("operator", "")).replace("_", " ")
        return f"{item.get('field')} {op}" + (f" {value}" if value not in (None, "") else "")

    text = node(plan.filters or {})
    return text.strip("()") if text else "no filters (every record of the object)"

""""Add participants" from Salesforce in a study, activity or community (integration guide §6):
select a saved plan, preview its records (``services.previews``, the same dry run as the wizard),
leave out the invalid entries, add the rest.

Adding runs the engine synchronously on exactly the chosen records, through the database sink,
recorded as a run of the plan (trigger "add") so every record's outcome is in the plan's log;
then the resulting participants join the target with ``added_via="salesforce"``.

Why synchronous and not a queued run: the set is one preview page (at most 50 records, one
query), the researcher is waiting for the result on the same page, and a queued run would need
a second mechanism to carry "only these IDs, add to that target" to the worker. Why the plan's
action is replaced by "Import to participant pool" for this run: the researcher is adding people
to a target by hand here; the plan's own invite action (to another study or task) must not fire
from this page. New participants are active (the researcher chose them), not staged.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from sqlalchemy import select

from core.extensions import db
from models import ImportPlan, RunOutcome, SyncRun
from models.plans import PLAN_DRAFT
from models.runs import RUN_FAILED, RUN_RUNNING, RUN_SUCCEEDED
from salesforce.errors import SalesforceError
from salesforce.soql import is_record_id
from sync import engine
from sync.plan import Action

MAX_RECORDS = 200
ADDED_OUTCOMES = ("imported", "updated", "unchanged")


@dataclass
class AddResult:
    run: SyncRun | None
    added: int = 0
    already: int = 0
    not_added: int = 0  # records the engine skipped or failed (reasons in the run's log)
    error: str | None = None


def usable_plans(workspace_id: int) -> list[ImportPlan]:
    """Saved plans (not drafts) with an object and a mapping."""
    rows = db.session.scalars(select(ImportPlan).where(
        ImportPlan.workspace_id == workspace_id, ImportPlan.status != PLAN_DRAFT,
        ImportPlan.object_name.is_not(None)).order_by(ImportPlan.name, ImportPlan.id))
    return [p for p in rows if (p.mapping or {}).get("fields")]


def add_records(plan: ImportPlan, record_ids: list[str], target, *, actor=None) -> AddResult:
    """Import ``record_ids`` (that still match the plan's filters) and add them to ``target``."""
    from services import previews, research
    from services.sync_sink import ActionTarget, DatabaseSink
    from services.sync_source import id_query, read_all

    ids = list(dict.fromkeys(i.strip() for i in record_ids if i and is_record_id(i.strip())))[:MAX_RECORDS]
    if not ids:
        return AddResult(None, error="Select at least one record to add.")
    ctx = previews.plan_context(plan)
    if not ctx.ready:
        return AddResult(None, error="The plan's filters can't be used any more; fix them in the wizard.")
    spec = replace(ctx.spec, action=Action.POOL, target_id=None, invite_confirmation=None)
    now = datetime.now(timezone.utc)
    run = SyncRun(workspace_id=plan.workspace_id, plan_id=plan.id, kind="sync", trigger="add",
                  triggered_by_id=getattr(actor, "id", None), status=RUN_RUNNING, queued_at=now,
                  started_at=now, heartbeat_at=now, estimate_total=len(ids))
    db.session.add(run)
    db.session.commit()
    target_for_sink = replace(ActionTarget.for_plan(plan), action=Action.POOL, target_type=None, target_id=None)
    sink = DatabaseSink(workspace_id=plan.workspace_id, plan_id=plan.id, run_id=run.id,
                        connection_id=plan.connection_id, target=target_for_sink, write_cursor=False)
    soql = id_query(spec.object_name, spec.select_fields(), ids, extra=f"({ctx.where})" if ctx.where else "")
    try:
        summary = engine.run(spec, read_all(ctx.client, soql), sink, _Log())
    except SalesforceError as exc:  # pragma: no cover - read_all translates these
        summary = None
        reason = exc.reason
    else:
        reason = summary.reason
    run = db.session.get(SyncRun, run.id)
    run.status = RUN_SUCCEEDED if summary is not None and summary.status == engine.SUCCEEDED else RUN_FAILED
    run.reason = reason
    run.finished_at = datetime.now(timezone.utc)
    db.session.commit()
    people = list(dict.fromkeys(db.session.scalars(select(RunOutcome.participant_id).where(
        RunOutcome.run_id == run.id, RunOutcome.outcome.in_(ADDED_OUTCOMES),
        RunOutcome.participant_id.is_not(None)).order_by(RunOutcome.seq))))
    result = AddResult(run, not_added=max(0, len(ids) - len(people)))
    if run.status == RUN_FAILED:
        result.error = reason or "The import failed."
    if people:
        added = research.add_participants(target, people, actor=actor, via="salesforce")
        result.added, result.already = added.added, added.already
    return result


class _Log:
    def event(self, message: str, *, level: str = "info", **data) -> None:
        pass

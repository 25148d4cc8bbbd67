"""Step 4, Filters: rows of field, operator and value, AND/OR groups, the exact SOQL, a live count.

GET/POST /wizard/plans/<id>/filters          wizard.filters
POST     /wizard/plans/<id>/filters/count    wizard.filters_count   (htmx, debounced; also a
                                                                      plain POST answers the page)

A plain form post with ``action`` add_row-K / add_group / remove_row-N / remove_group-K /
refresh re-renders the rows (no JavaScript needed); ``save`` stores the filters and moves on.
Nothing reaches Salesforce while any row is wrong: a crafted post with a compound or unknown
field comes back with the error on that row and no query sent.
"""
from __future__ import annotations

from flask import request

from core.extensions import db
from core.security import requires
from core.tenancy import current_workspace
from core.web import is_htmx, render
from models import ImportPlan
from services import plan_steps, plans
from wizard import bp, load_plan, render_step, step_done
from wizard.forms_filters import apply_action, parse_action, parse_filter_form

# htmx targets answered with a fragment: the live count, and the rows (a field or operator
# change redraws only them, from the whole posted form, so nothing typed elsewhere is lost).
PARTIALS = {"filter-count": "wizard/_filters_count.html", "filter-rows": "wizard/_filters_redraw.html"}


def _context(plan: ImportPlan, state: plan_steps.FilterState, *, count: bool = True,
             campaigns: bool = True) -> dict:
    """The describe-driven choices and, when every row is valid, the SOQL and the live count.
    ``campaigns=False`` sends no Campaign query (a re-render of wrong rows sends nothing)."""
    try:
        ctx = plan_steps.filter_context(plan, current_workspace(), with_campaigns=campaigns)
    except plan_steps.StepError as exc:
        return {"state": state, "load_error": next(iter(exc.errors.values())), "fields": [], "result": None}
    plan_steps.default_operators(state, ctx.catalog)
    result = plan_steps.filter_result(ctx, state, count=count)
    return {"state": state, "fields": ctx.fields, "campaigns": ctx.campaigns,
            "campaign_error": ctx.campaign_error, "result": result, "load_error": None}


def _draft_json(state: plan_steps.FilterState) -> dict:
    """The rows as edited, blank ones and groups included (``plan.filters_draft``)."""
    return {"op": state.op, "groups": [
        {"op": g.op, "rows": [{"field": r.field, "operator": r.operator, "value": r.value} for r in g.rows]}
        for g in state.groups]}


def _state_from_draft(draft: dict) -> plan_steps.FilterState | None:
    try:
        groups = [plan_steps.GroupState("OR" if str(g.get("op")).upper() == "OR" else "AND",
                                        [plan_steps.FilterRowState(str(r.get("field") or ""),
                                                                   str(r.get("operator") or ""), r.get("value"))
                                         for r in g.get("rows") or [] if isinstance(r, dict)])
                  for g in draft.get("groups") or [] if isinstance(g, dict)]
    except (AttributeError, TypeError):
        return None
    if not groups:
        return None
    return plan_steps.FilterState("OR" if str(draft.get("op")).upper() == "OR" else "AND", groups)


def _without_blanks(state: plan_steps.FilterState) -> dict:
    return _draft_json(plan_steps.FilterState(state.op, [
        plan_steps.GroupState(g.op, [r for r in g.rows if not r.is_blank]) for g in state.groups]))


def _keep_draft(plan: ImportPlan, state: plan_steps.FilterState) -> None:
    """Remember the rows as edited (not saved), so reloading the step shows them; nothing when
    they are the saved filters (the count the panel loads posts those)."""
    saved = plan_steps.filter_state_from_json(plan.filters)
    draft = None if _without_blanks(state) == _without_blanks(saved) else _draft_json(state)
    if plan.filters_draft != draft:
        plan.filters_draft = draft
        db.session.commit()


@bp.route("/wizard/plans/<int:plan_id>/filters", methods=["GET", "POST"])
@requires("manage_imports")
def filters(plan_id: int):
    plan = load_plan(plan_id, "filters")
    if not isinstance(plan, ImportPlan):
        return plan
    errors: dict = {}
    if request.method == "GET":
        # Rules added or changed and not saved yet come back on a reload (the draft); else the
        # saved filters.
        draft = _state_from_draft(plan.filters_draft) if isinstance(plan.filters_draft, dict) else None
        state = draft or plan_steps.filter_state_from_json(plan.filters)
        if not state.rows:
            state.groups[0].rows.append(plan_steps.FilterRowState())
        # The panel (htmx) renders at once, with the query; the count of matching records (a live
        # Salesforce call) comes in its own request (hx-trigger="load" on #filter-count). A whole
        # page (no JavaScript needed) still counts inline.
        pending = is_htmx()
        return render_step(plan, "filters", "wizard/_filters.html", partials=PARTIALS, count_pending=pending,
                           unsaved=draft is not None, **_context(plan, state, count=not pending))

    state = parse_filter_form(request.form)
    action = parse_action(request.form.get("action"))
    if action.kind != "save":
        apply_action(state, action)
        if not state.rows:
            state.groups[0].rows.append(plan_steps.FilterRowState())
        _keep_draft(plan, state)
        return render_step(plan, "filters", "wizard/_filters.html", partials=PARTIALS, **_context(plan, state))
    try:
        ctx = plan_steps.filter_context(plan, current_workspace(), with_campaigns=False)
        plan_steps.default_operators(state, ctx.catalog)
        check = plan_steps.save_filters(plan, state, ctx.catalog)
    except plan_steps.StepError as exc:
        return render_step(plan, "filters", "wizard/_filters.html", errors=exc.errors, partials=PARTIALS,
                           **_context(plan, state))
    if check.ok:
        if plan.filters_draft is not None:
            plan.filters_draft = None
            db.session.commit()
        return step_done(plan, "filters")
    _keep_draft(plan, state)
    errors = {f"rows-{i}": message for i, message in check.errors.items()}
    # No SOQL and no count while a row is wrong.
    return render_step(plan, "filters", "wizard/_filters.html", errors=errors, partials=PARTIALS,
                       **_context(plan, state, count=False, campaigns=False))


@bp.post("/wizard/plans/<int:plan_id>/filters/count")
@requires("manage_imports")
def filters_count(plan_id: int):
    """The SOQL and the number of matching records for the rows as they are now (not saved)."""
    plan = load_plan(plan_id, "filters")
    if not isinstance(plan, ImportPlan):
        return plan
    state = parse_filter_form(request.form)
    _keep_draft(plan, state)
    context = _context(plan, state, campaigns=not is_htmx())
    if is_htmx():
        return render("wizard/_filters_count.html", "wizard/_filters_count.html", plan=plan, **context)
    return render_step(plan, "filters", "wizard/_filters.html", partials=PARTIALS, **context)


plans  # noqa: B018  (the stepper's step checks are registered by services.plan_steps)

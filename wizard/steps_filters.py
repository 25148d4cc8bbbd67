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
    result = plan_steps.filter_result(ctx, state, count=count)
    return {"state": state, "fields": ctx.fields, "campaigns": ctx.campaigns,
            "campaign_error": ctx.campaign_error, "result": result, "load_error": None}


@bp.route("/wizard/plans/<int:plan_id>/filters", methods=["GET", "POST"])
@requires("manage_imports")
def filters(plan_id: int):
    plan = load_plan(plan_id, "filters")
    if not isinstance(plan, ImportPlan):
        return plan
    errors: dict = {}
    if request.method == "GET":
        state = plan_steps.filter_state_from_json(plan.filters)
        if not state.rows:
            state.groups[0].rows.append(plan_steps.FilterRowState())
        # The panel (htmx) renders at once, with the query; the count of matching records (a live
        # Salesforce call) comes in its own request (hx-trigger="load" on #filter-count). A whole
        # page (no JavaScript needed) still counts inline.
        pending = is_htmx()
        return render_step(plan, "filters", "wizard/_filters.html", partials=PARTIALS, count_pending=pending,
                           **_context(plan, state, count=not pending))

    state = parse_filter_form(request.form)
    action = parse_action(request.form.get("action"))
    if action.kind != "save":
        apply_action(state, action)
        if not state.rows:
            state.groups[0].rows.append(plan_steps.FilterRowState())
        return render_step(plan, "filters", "wizard/_filters.html", partials=PARTIALS, **_context(plan, state))
    try:
        ctx = plan_steps.filter_context(plan, current_workspace(), with_campaigns=False)
        check = plan_steps.save_filters(plan, state, ctx.catalog)
    except plan_steps.StepError as exc:
        return render_step(plan, "filters", "wizard/_filters.html", errors=exc.errors, partials=PARTIALS,
                           **_context(plan, state))
    if check.ok:
        return step_done(plan, "filters")
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
    context = _context(plan, state, campaigns=not is_htmx())
    if is_htmx():
        return render("wizard/_filters_count.html", "wizard/_filters_count.html", plan=plan, **context)
    return render_step(plan, "filters", "wizard/_filters.html", partials=PARTIALS, **context)


plans  # noqa: B018  (the stepper's step checks are registered by services.plan_steps)

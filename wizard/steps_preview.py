"""Step 5, Preview: the first page of matching records with the engine's verdict for each, totals
for the whole set from a background job, and removing (or restoring) rows.

GET/POST /wizard/plans/<id>/preview          wizard.preview
GET      /wizard/plans/<id>/preview/totals   wizard.preview_totals   (the progress panel; polls
                                                                       itself until done)
POST     /wizard/plans/<id>/preview/totals/count-again   wizard.preview_count_again
                                                      ("Count again": new totals, read anew)

POST ``action=remove`` with one or more ``record_id`` removes rows (stored on the plan as
``excluded_record_ids``; the engine skips them and logs "excluded in preview"); ``action=restore``
puts them back; ``action=continue`` goes on to the schedule. Plain posts redirect back (303).
"""
from __future__ import annotations

from flask import flash, request

from core.request_values import db_int
from core.security import requires
from core.web import is_htmx, redirect_to, render
from models import ImportPlan, PreviewTotals
from services import plan_steps, plans, previews
from wizard import bp, load_plan, render_step, step_done

PARTIALS = {"preview-totals": "wizard/_preview_totals.html"}


def preview_context(plan: ImportPlan) -> dict:
    """Rows, totals and the query for the preview (shared with "Add participants")."""
    ctx, reason = previews.plan_context_or_reason(plan)
    if ctx is None:
        return {"page": None, "totals": None, "load_error": reason}
    if not ctx.ready:
        return {"page": None, "totals": None,
                "load_error": "Some filter rules can't be used any more; fix them on the Filters step."}
    page = previews.first_page(plan, ctx.spec, ctx.client, ctx.where)
    totals = previews.request_totals(plan, ctx.spec) if page.error is None else None
    recounting = previews.is_stale(totals, page)
    if recounting:  # Salesforce changed since the cached count: count again at once
        totals = previews.request_totals(plan, ctx.spec, again=True)
    shown = {r.record_id for r in page.rows}
    hidden_removed = [rid for rid in (plan.excluded_record_ids or []) if rid not in shown]
    view = previews.totals_view(totals)
    if totals is not None:
        view["recounting"] = recounting
    return {"page": page, "totals": view, "load_error": page.error,
            "hidden_removed": hidden_removed}


@bp.route("/wizard/plans/<int:plan_id>/preview", methods=["GET", "POST"])
@requires("manage_imports")
def preview(plan_id: int):
    plan = load_plan(plan_id, "preview")
    if not isinstance(plan, ImportPlan):
        return plan
    if request.method == "POST":
        action = request.form.get("action", "continue")
        ids = [i for i in request.form.getlist("record_id") if i][:500]
        if request.form.get("restore_id"):  # the Restore button of one removed row
            action, ids = "restore", [request.form["restore_id"]]
        if action == "remove" and ids:
            refused = plan_steps.exclude_records(plan, ids)
            if refused:
                shown = ", ".join(repr(r[:40]) for r in refused[:3]) + (" …" if len(refused) > 3 else "")
                flash(f"Not removed: {shown} is not a record ID of this preview.", "error")
        elif action == "restore" and ids:
            plan_steps.restore_records(plan, ids)
        elif action == "continue":
            plans.mark_reached(plan, "schedule")
            from core.extensions import db
            db.session.commit()
            return step_done(plan, "preview")
        if not is_htmx():
            return redirect_to("wizard.preview", plan_id=plan.id)
    return render_step(plan, "preview", "wizard/_preview.html", partials=PARTIALS, **preview_context(plan))


@bp.post("/wizard/plans/<int:plan_id>/preview/totals/count-again")
@requires("manage_imports")
def preview_count_again(plan_id: int):
    """"Count again": new totals for the plan's current version (the job reads Salesforce anew);
    the panel it returns polls itself until done. A plain post redirects back to the step."""
    plan = load_plan(plan_id, "preview")
    if not isinstance(plan, ImportPlan):
        return plan
    ctx, reason = previews.plan_context_or_reason(plan)
    if ctx is None or not ctx.ready:
        if not is_htmx():
            flash(reason or "Some filter rules can't be used any more; fix them on the Filters step.", "error")
            return redirect_to("wizard.preview", plan_id=plan.id)
        return render("wizard/_preview_totals.html", "wizard/_preview_totals.html", plan=plan,
                      totals={"status": "failed", "error": reason or "Some filter rules can't be used any more.",
                              "id": None})
    row = previews.request_totals(plan, ctx.spec, again=True)
    if not is_htmx():
        return redirect_to("wizard.preview", plan_id=plan.id)
    return render("wizard/_preview_totals.html", "wizard/_preview_totals.html", plan=plan,
                  totals=previews.totals_view(row))


@bp.get("/wizard/plans/<int:plan_id>/preview/totals")
@requires("manage_imports")
def preview_totals(plan_id: int):
    """The totals panel for the plan's current version; htmx polls it until the job is done."""
    plan = load_plan(plan_id, "preview")
    if not isinstance(plan, ImportPlan):
        return plan
    from core.tenancy import scoped
    from core.extensions import db
    row = db.session.scalar(scoped(PreviewTotals).where(
        PreviewTotals.plan_id == plan.id, PreviewTotals.id == request.args.get("id", type=db_int)))
    return render("wizard/_preview_totals.html", "wizard/_preview_totals.html", plan=plan,
                  totals=previews.totals_view(row))

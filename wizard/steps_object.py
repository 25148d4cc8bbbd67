"""Step 2: Object. Every object the connected user can query, searchable, with what it offers."""
from __future__ import annotations

from flask import request

from core.security import requires
from models import ImportPlan
from services import catalog
from services import plans as plan_service
from wizard import bp, load_plan, render_step, step_done


def _rows(plan: ImportPlan, refresh: bool = False):
    return catalog.objects_or_reason(plan_service.plan_connection(plan), refresh=refresh)


@bp.route("/wizard/plans/<int:plan_id>/object", methods=["GET", "POST"])
@requires("manage_imports")
def object(plan_id: int):  # noqa: A001 - the endpoint is named after its step
    plan = load_plan(plan_id, "object")
    if not isinstance(plan, ImportPlan):
        return plan
    errors: dict = {}
    refresh = request.method == "POST" and request.form.get("action") == "refresh"
    rows, sf_error = _rows(plan, refresh=refresh)
    if request.method == "POST" and not refresh:
        chosen = request.form.get("object_name", "")
        errors = plan_service.save_object(plan, chosen, [r.name for r in rows]) if not sf_error else {
            "object_name": sf_error}
        if not errors:
            return step_done(plan, "object")
    query = request.values.get("q", "")
    return render_step(plan, "object", "wizard/_step_object.html", errors=errors, sf_error=sf_error,
                       rows=catalog.search_objects(rows, query), total=len(rows), q=query,
                       fetched_at=catalog.catalog_fetched_at(plan_service.plan_connection(plan)),
                       partials={"object-rows": "wizard/_object_rows.html"})

""""Add participants" → Salesforce, in a study, an activity or a community.

GET/POST /studies/<id>/add-participants/salesforce       wizard.sf_add_study
GET/POST /activities/<id>/add-participants/salesforce    wizard.sf_add_activity
GET/POST /communities/<id>/add-participants/salesforce   wizard.sf_add_community

GET ``?plan=<id>`` previews the saved plan's first page with the wizard's preview code; rows the
engine would not import (invalid email and phone, opted out, duplicates, removed in the wizard)
come unticked. POST adds the ticked records (services.add_from_salesforce: the engine, run now
on those records, then membership with added_via "salesforce"). Registered as a tab of the
research blueprint's source selector.
"""
from __future__ import annotations

from flask import flash, request, url_for
from flask_login import current_user

from core.security import requires
from core.tenancy import current_workspace, get_in_workspace_or_404
from core.web import redirect_to, render
from models import Activity, Community, ImportPlan, Study
from research import sources
from services import add_from_salesforce as adding
from wizard import bp

KINDS = {"study": Study, "activity": Activity, "community": Community}


def _url(kind: str, target) -> str:
    return url_for(f"wizard.sf_add_{kind}", **{f"{kind}_id": target.id})


sources.register_source(sources.AddSource("salesforce", "Salesforce", _url))


def _page(kind: str, target):
    workspace = current_workspace()
    plans = adding.usable_plans(workspace.id)
    if request.method == "POST":
        plan = get_in_workspace_or_404(ImportPlan, request.form.get("plan"))
        result = adding.add_records(plan, request.form.getlist("record_id"), target, actor=current_user)
        if result.error and not result.added:
            flash(result.error, "error")
            return redirect_to(f"wizard.sf_add_{kind}", **{f"{kind}_id": target.id}, plan=plan.id)
        message = f"{result.added} participant{'s' if result.added != 1 else ''} added to “{target.name}” from Salesforce"
        if result.already:
            message += f"; {result.already} {'was' if result.already == 1 else 'were'} already there"
        if result.not_added:
            message += f"; {result.not_added} not added (see the run's log for why)"
        flash(message + ".", "success" if not result.error else "warning")
        return redirect_to(f"research.{kind}", **{f"{kind}_id": target.id})
    plan, preview = None, {}
    if request.args.get("plan"):
        plan = get_in_workspace_or_404(ImportPlan, request.args.get("plan"))
        from wizard.steps_preview import preview_context
        preview = preview_context(plan)
    return render("wizard/sf_source.html", "wizard/_sf_source_preview.html", kind=kind, target=target,
                  plans=plans, plan=plan, sources=sources.tabs(kind, target), active_source="salesforce",
                  base_args={f"{kind}_id": target.id}, **preview)


@bp.route("/studies/<int:study_id>/add-participants/salesforce", methods=["GET", "POST"])
@requires("manage_imports")
def sf_add_study(study_id: int):
    return _page("study", get_in_workspace_or_404(Study, study_id))


@bp.route("/activities/<int:activity_id>/add-participants/salesforce", methods=["GET", "POST"])
@requires("manage_imports")
def sf_add_activity(activity_id: int):
    return _page("activity", get_in_workspace_or_404(Activity, activity_id))


@bp.route("/communities/<int:community_id>/add-participants/salesforce", methods=["GET", "POST"])
@requires("manage_imports")
def sf_add_community(community_id: int):
    return _page("community", get_in_workspace_or_404(Community, community_id))

"""Studies, activities (survey, diary, interview, task), communities, and "Add participants"."""
from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user

from core.request_values import db_int
from core.extensions import db
from core.security import login_required
from core.tenancy import current_workspace, get_in_workspace_or_404, ids_in_workspace
from core.web import render
from models import Activity, Community, Participant, Study
from participants.views import pool_context
from research import sources
from research.forms import ActivityForm, AddParticipantsForm, CommunityForm, StudyForm
from services import participants_pool as pool
from services import research

bp = Blueprint("research", __name__)
PER_PAGE = 25


def _end_of_day(day: date | None) -> datetime | None:
    """A date picked in the workspace's time zone, as the aware instant its day ends."""
    if day is None:
        return None
    return datetime.combine(day, time(23, 59, 59), tzinfo=ZoneInfo(current_workspace().timezone))


def _local_date(instant: datetime | None) -> date | None:
    return instant.astimezone(ZoneInfo(current_workspace().timezone)).date() if instant else None


def _members_page(target):
    return db.paginate(research.members_query(target), page=request.args.get("page", 1, type=db_int),
                       per_page=PER_PAGE, error_out=False)


# --- studies ----------------------------------------------------------------------------------

@bp.get("/studies")
@login_required
def studies():
    return render("research/studies.html", rows=research.studies_with_counts(current_workspace().id))


@bp.route("/studies/new", methods=["GET", "POST"])
@login_required
def study_new():
    form = StudyForm()
    if form.validate_on_submit():
        study = research.create_study(current_workspace(), actor=current_user, name=form.name.data.strip(),
                                      description=form.description.data or None, status=form.status.data,
                                      recurring=form.recurring.data, closes_at=_end_of_day(form.closes_on.data))
        flash(f"Study “{study.name}” created.", "success")
        return redirect(url_for("research.study", study_id=study.id))
    return render("research/study_form.html", form=form, study=None)


@bp.get("/studies/<int:study_id>")
@login_required
def study(study_id: int):
    target = get_in_workspace_or_404(Study, study_id)
    return render("research/study.html", "research/_members_table.html", study=target, target=target,
                  kind="study", page=_members_page(target), closes_on=_local_date(target.closes_at))


@bp.route("/studies/<int:study_id>/edit", methods=["GET", "POST"])
@login_required
def study_edit(study_id: int):
    target = get_in_workspace_or_404(Study, study_id)
    form = StudyForm(obj=target)
    if request.method == "GET":
        form.closes_on.data = _local_date(target.closes_at)
    if form.validate_on_submit():
        research.update_study(target, actor=current_user, name=form.name.data.strip(),
                              description=form.description.data or None, status=form.status.data,
                              recurring=form.recurring.data, closes_at=_end_of_day(form.closes_on.data))
        flash("Study saved.", "success")
        return redirect(url_for("research.study", study_id=target.id))
    return render("research/study_form.html", form=form, study=target)


# --- activities -------------------------------------------------------------------------------

@bp.route("/studies/<int:study_id>/activities/new", methods=["GET", "POST"])
@login_required
def activity_new(study_id: int):
    parent = get_in_workspace_or_404(Study, study_id)
    form = ActivityForm()
    if form.validate_on_submit():
        activity = research.create_activity(parent, actor=current_user, name=form.name.data.strip(),
                                            kind=form.kind.data, description=form.description.data or None,
                                            due_at=_end_of_day(form.due_on.data))
        flash(f"Activity “{activity.name}” created.", "success")
        return redirect(url_for("research.activity", activity_id=activity.id))
    return render("research/activity_form.html", form=form, study=parent, activity=None)


@bp.get("/activities/<int:activity_id>")
@login_required
def activity(activity_id: int):
    target = get_in_workspace_or_404(Activity, activity_id)
    return render("research/activity.html", "research/_members_table.html", activity=target, target=target,
                  kind="activity", page=_members_page(target), due_on=_local_date(target.due_at))


@bp.route("/activities/<int:activity_id>/edit", methods=["GET", "POST"])
@login_required
def activity_edit(activity_id: int):
    target = get_in_workspace_or_404(Activity, activity_id)
    form = ActivityForm(obj=target)
    if request.method == "GET":
        form.due_on.data = _local_date(target.due_at)
    if form.validate_on_submit():
        research.update_activity(target, actor=current_user, name=form.name.data.strip(), kind=form.kind.data,
                                 description=form.description.data or None, due_at=_end_of_day(form.due_on.data))
        flash("Activity saved.", "success")
        return redirect(url_for("research.activity", activity_id=target.id))
    return render("research/activity_form.html", form=form, study=target.study, activity=target)


# --- communities ------------------------------------------------------------------------------

@bp.get("/communities")
@login_required
def communities():
    return render("research/communities.html", rows=research.communities_with_counts(current_workspace().id))


@bp.route("/communities/new", methods=["GET", "POST"])
@login_required
def community_new():
    form = CommunityForm()
    if form.validate_on_submit():
        community = research.create_community(current_workspace(), actor=current_user, name=form.name.data.strip(),
                                              description=form.description.data or None)
        flash(f"Community “{community.name}” created.", "success")
        return redirect(url_for("research.community", community_id=community.id))
    return render("research/community_form.html", form=form, community=None)


@bp.get("/communities/<int:community_id>")
@login_required
def community(community_id: int):
    target = get_in_workspace_or_404(Community, community_id)
    return render("research/community.html", "research/_members_table.html", community=target, target=target,
                  kind="community", page=_members_page(target))


@bp.route("/communities/<int:community_id>/edit", methods=["GET", "POST"])
@login_required
def community_edit(community_id: int):
    target = get_in_workspace_or_404(Community, community_id)
    form = CommunityForm(obj=target)
    if form.validate_on_submit():
        research.update_community(target, actor=current_user, name=form.name.data.strip(),
                                  description=form.description.data or None)
        flash("Community saved.", "success")
        return redirect(url_for("research.community", community_id=target.id))
    return render("research/community_form.html", form=form, community=target)


# --- Add participants (from the pool; other sources plug in through research.sources) ---------

def _add_participants(kind: str, target):
    endpoint = f"research.{kind}_add_participants"
    id_arg = {f"{kind}_id": target.id}
    form = AddParticipantsForm()
    if request.method == "POST":
        if not form.validate_on_submit():  # CSRF is checked before; this catches nothing else
            return redirect(url_for(endpoint, **id_arg))
        if request.form.get("all_matching"):
            filters = pool.PoolFilter.from_args(request.form, status_fixed="active")
            ids = research.matching_ids(pool.pool_query(target.workspace_id, filters))
        else:
            ids = ids_in_workspace(Participant, request.form.getlist("participant_id"))
        if not ids:
            flash("Select at least one participant to add.", "warning")
            return redirect(url_for(endpoint, **id_arg, **pool.PoolFilter.from_args(request.form).args()))
        result = research.add_participants(target, ids, actor=current_user, via="pool")
        message = f"{result.added} participant{'s' if result.added != 1 else ''} added to “{target.name}”"
        if result.already:
            message += f"; {result.already} {'was' if result.already == 1 else 'were'} already there"
        flash(message + ".", "success")
        return redirect(url_for(f"research.{kind}", **id_arg))
    filters = pool.PoolFilter.from_args(request.args, status_fixed="active")
    ctx = pool_context(filters, endpoint, id_arg, cap_search=False)
    return render("research/add_participants.html", "research/_add_results.html", target=target, kind=kind,
                  form=form, base_args=id_arg, sources=sources.tabs(kind, target), active_source="pool", **ctx)


@bp.route("/studies/<int:study_id>/add-participants", methods=["GET", "POST"])
@login_required
def study_add_participants(study_id: int):
    return _add_participants("study", get_in_workspace_or_404(Study, study_id))


@bp.route("/activities/<int:activity_id>/add-participants", methods=["GET", "POST"])
@login_required
def activity_add_participants(activity_id: int):
    return _add_participants("activity", get_in_workspace_or_404(Activity, activity_id))


@bp.route("/communities/<int:community_id>/add-participants", methods=["GET", "POST"])
@login_required
def community_add_participants(community_id: int):
    return _add_participants("community", get_in_workspace_or_404(Community, community_id))

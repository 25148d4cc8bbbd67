"""Dashboard, Workspace Administration → Configuration, settings, members, suppression list, outbox."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from core.request_values import db_int
from core.extensions import db
from core.security import login_required, requires, safe_next, signed_in
from core.tenancy import current_workspace, get_in_workspace_or_404, scoped, switch_workspace
from core.web import render
from models import (Community, ImportPlan, Membership, OutboxMessage, Participant, SalesforceConnection, Study,
                    SuppressionEntry, SyncRun)
from services import accounts, audit, suppression
from workspace.forms import (AddMemberForm, ConfirmForm, MemberAccessForm, SettingsForm, SuppressionAddForm,
                             SuppressionUploadForm, SwitchWorkspaceForm)

bp = Blueprint("workspace", __name__)
PER_PAGE = 50


@bp.get("/")
@login_required
def dashboard():
    workspace = current_workspace()
    by_status = dict(db.session.execute(
        scoped(Participant, Participant.status, func.count()).group_by(Participant.status)).all())
    counts = {
        "participants": by_status.get("active", 0),
        "staged": by_status.get("staged", 0),
        "archived": by_status.get("archived", 0),
        "studies": db.session.scalar(scoped(Study, func.count(Study.id))),
        "communities": db.session.scalar(scoped(Community, func.count(Community.id))),
        "connections": db.session.scalar(scoped(SalesforceConnection, func.count(SalesforceConnection.id))),
    }
    runs = db.session.execute(
        select(SyncRun, ImportPlan.name).join(ImportPlan, ImportPlan.id == SyncRun.plan_id)
        .where(SyncRun.workspace_id == workspace.id).order_by(SyncRun.id.desc()).limit(10)).all()
    return render("workspace/dashboard.html", workspace=workspace, counts=counts, runs=runs)


@bp.post("/workspace/switch")
@signed_in
def switch():
    form = SwitchWorkspaceForm()
    if form.validate_on_submit():
        try:
            wanted = db_int(form.workspace_id.data)
        except ValueError:
            wanted = None
        if wanted is not None and switch_workspace(wanted):
            flash(f"You are now working in {current_workspace().name}.", "info")
            # Stay on the same kind of page, but never on another workspace's object.
            target = safe_next(form.next.data)
            if target and not any(ch.isdigit() for ch in target):
                return redirect(target)
            return redirect(url_for("workspace.dashboard"))
    abort(404)


# --- Workspace Administration ----------------------------------------------------------------

@bp.get("/admin")
@login_required
def administration():
    return render("workspace/administration.html")


@bp.get("/admin/configuration")
@login_required
def configuration():
    return render("workspace/configuration.html")


@bp.route("/admin/configuration/settings", methods=["GET", "POST"])
@requires("admin")
def settings():
    workspace = current_workspace()
    form = SettingsForm(obj=workspace)
    if form.validate_on_submit():
        accounts.update_settings(workspace, name=form.name.data, default_phone_region=form.default_phone_region.data,
                                 timezone=form.timezone.data, actor=current_user)
        flash("Settings saved.", "success")
        return redirect(url_for("workspace.settings"))
    return render("workspace/settings.html", form=form)


@bp.get("/admin/members")
@requires("admin")
def members():
    workspace = current_workspace()
    return render("workspace/members.html", members=accounts.members(workspace.id), form=AddMemberForm(),
                  events=audit.recent(workspace.id, ("membership",), limit=15))


@bp.post("/admin/members")
@requires("admin")
def member_add():
    workspace = current_workspace()
    form = AddMemberForm()
    if form.validate_on_submit():
        try:
            membership = accounts.invite_member(
                workspace, email=form.email.data, name=form.name.data, password=form.password.data,
                role=form.role.data, manage_integrations=form.manage_integrations.data,
                manage_imports=form.manage_imports.data, actor=current_user)
        except accounts.AccountError as exc:
            form.email.errors.append(str(exc))
        else:
            flash(f"{membership.user.email} is now a member of {workspace.name}.", "success")
            return redirect(url_for("workspace.members"))
    return render("workspace/members.html", members=accounts.members(workspace.id), form=form,
                  events=audit.recent(workspace.id, ("membership",), limit=15))


@bp.route("/admin/members/<int:membership_id>", methods=["GET", "POST"])
@requires("admin")
def member_edit(membership_id: int):
    membership = get_in_workspace_or_404(Membership, membership_id)
    form = MemberAccessForm(obj=membership)
    if request.method == "GET":
        form.manage_integrations.data = membership.can_manage_integrations
        form.manage_imports.data = membership.can_manage_imports
    if form.validate_on_submit():
        try:
            accounts.set_access(membership, role=form.role.data, manage_integrations=form.manage_integrations.data,
                                manage_imports=form.manage_imports.data, actor=current_user)
        except accounts.AccountError as exc:
            form.role.errors.append(str(exc))
        else:
            flash(f"Access for {membership.user.email} saved.", "success")
            return redirect(url_for("workspace.members"))
    return render("workspace/member_edit.html", membership=membership, form=form)


# --- Suppression (do-not-contact) list -------------------------------------------------------

def _suppression_page(add_form=None, upload_form=None, upload_result=None, status=200):
    workspace = current_workspace()
    q = (request.args.get("q") or "").strip()
    page = db.paginate(suppression.entries(workspace.id, q), page=request.args.get("page", 1, type=db_int),
                       per_page=PER_PAGE, error_out=False)
    return render("workspace/suppression.html", "workspace/_suppression_table.html", status=status,
                  page=page, q=q, add_form=add_form or SuppressionAddForm(),
                  upload_form=upload_form or SuppressionUploadForm(), upload_result=upload_result,
                  events=audit.recent(workspace.id, ("suppression_entry", "suppression_list"), limit=20))


@bp.get("/suppression")
@login_required
def suppression_list():
    return _suppression_page()


@bp.post("/suppression")
@login_required
def suppression_add():
    form = SuppressionAddForm()
    if form.validate_on_submit():
        try:
            entry, created = suppression.add_entry(current_workspace(), email=form.email.data, phone=form.phone.data,
                                                   reason=form.reason.data, actor=current_user)
        except suppression.SuppressionError as exc:
            target = form.phone if exc.field == "phone" else form.email
            target.errors = list(target.errors) + [str(exc)]
        else:
            shown = entry.email or entry.phone_key
            flash(f"{shown} is on the do-not-contact list." if created else f"{shown} was already on the list.",
                  "success" if created else "info")
            return redirect(url_for("workspace.suppression_list"))
    return _suppression_page(add_form=form)


@bp.post("/suppression/upload")
@login_required
def suppression_upload():
    form = SuppressionUploadForm()
    if form.validate_on_submit():
        try:
            result = suppression.upload_csv(current_workspace(), form.file.data.read(), actor=current_user)
        except suppression.SuppressionError as exc:
            form.file.errors.append(str(exc))
        else:
            flash(f"CSV read: {result.added} added, {result.already} already on the list, "
                  f"{len(result.errors)} rows with problems.", "success" if not result.errors else "warning")
            return _suppression_page(upload_result=result)
    return _suppression_page(upload_form=form)


@bp.route("/suppression/<int:entry_id>/remove", methods=["GET", "POST"])
@requires("admin")
def suppression_remove(entry_id: int):
    entry = get_in_workspace_or_404(SuppressionEntry, entry_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        shown = entry.email or entry.phone_key
        suppression.remove_entry(entry, actor=current_user)
        flash(f"{shown} was removed from the do-not-contact list.", "success")
        return redirect(url_for("workspace.suppression_list"))
    return render("workspace/suppression_remove.html", entry=entry, form=form)


# --- Outbox (the embedded mail outbox, when no SMTP server is configured) ---------------------

@bp.get("/admin/outbox")
@requires("admin")
def outbox():
    page = db.paginate(scoped(OutboxMessage).order_by(OutboxMessage.id.desc()),
                       page=request.args.get("page", 1, type=db_int), per_page=PER_PAGE, error_out=False)
    return render("workspace/outbox.html", page=page)


@bp.get("/admin/outbox/<int:message_id>")
@requires("admin")
def outbox_message(message_id: int):
    return render("workspace/outbox_message.html", message=get_in_workspace_or_404(OutboxMessage, message_id))

"""Step 1: Connect. The OAuth connect, callback, reconnect and disconnect routes, and the
wizard's first step (choose one of the workspace's connected orgs, or connect one)."""
from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from core.request_values import db_int
from core.security import requires
from core.tenancy import current_workspace, get_in_workspace_or_404
from core.web import is_htmx
from integrations.forms import label_environments
from models import ImportPlan, SalesforceConnection
from models.integrations import CONNECTION_CONNECTED
from services import connections as connection_service
from services import plans as plan_service
from wizard import bp, load_plan, render_step
from wizard.forms_connect import ChooseConnectionForm, ConnectForm


def _away(url: str):
    """Send the browser to Salesforce (htmx: a full navigation, never an XHR to another site)."""
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)


def _connect_page(form: ConnectForm, error: str | None = None, status: int = 200, error_code: str | None = None):
    workspace = current_workspace()
    label_environments(form)
    return make_response(render_template("wizard/connect.html", form=form, error=error, error_code=error_code,
                                         connections=connection_service.connections_for(workspace)), status)


@bp.route("/integrations/salesforce/connect", methods=["GET", "POST"])
@requires("manage_integrations")
def connect():
    form = ConnectForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
        return _connect_page(form)
    if not form.validate_on_submit():
        return _connect_page(form, status=422)
    try:
        url = connection_service.begin_connect(
            current_workspace(), current_user, form.name.data, form.environment.data, form.my_domain.data,
            redirect_uri=url_for("wizard.callback", _external=True),
            return_to="wizard" if form.next.data == "wizard" else None)
    except connection_service.ConnectError as exc:
        target = getattr(form, exc.field, None) if exc.field else None
        if target is not None:
            target.errors = list(target.errors) + [exc.message]
            return _connect_page(form, status=422)
        return _connect_page(form, error=exc.message, status=422)
    return _away(url)


@bp.get("/integrations/salesforce/callback")
@requires("manage_integrations")
def callback():
    try:
        result = connection_service.complete_connect(current_workspace(), current_user, request.args)
    except connection_service.ConnectError as exc:
        # Deny on Salesforce's page (or a reload of that answer) is the person's choice, not a bad request.
        return _connect_page(ConnectForm(formdata=None), error=exc.message, error_code=exc.code,
                             status=200 if exc.code == "access_denied" else 400)
    conn = result.connection
    verb = "Reconnected" if result.reconnected else "Connected"
    flash(f"{verb} {conn.org_name} ({conn.org_id}) as “{conn.name}”.", "success")
    if result.return_to == "wizard":
        return redirect(url_for("wizard.new", connection=conn.id), code=303)
    return redirect(url_for("integrations.salesforce"), code=303)


@bp.post("/integrations/salesforce/<int:connection_id>/reconnect")
@requires("manage_integrations")
def reconnect(connection_id: int):
    conn = get_in_workspace_or_404(SalesforceConnection, connection_id)
    try:
        url = connection_service.begin_connect(current_workspace(), current_user, conn.name, conn.environment,
                                               None, redirect_uri=url_for("wizard.callback", _external=True),
                                               reconnect=conn)
    except connection_service.ConnectError as exc:
        flash(exc.message, "error")
        return redirect(url_for("integrations.salesforce"), code=303)
    return _away(url)


@bp.post("/integrations/salesforce/<int:connection_id>/disconnect")
@requires("manage_integrations")
def disconnect(connection_id: int):
    conn = get_in_workspace_or_404(SalesforceConnection, connection_id)
    warning = connection_service.disconnect(conn, current_user)
    flash(f"Disconnected “{conn.name}”. Its plans are held until it is reconnected.", "success")
    if warning:
        flash(warning, "warning")
    return redirect(url_for("integrations.salesforce"), code=303)


# --- the wizard's step 1 -----------------------------------------------------------------------

def _step_one(plan: ImportPlan | None, errors: dict | None = None, selected: int | None = None):
    workspace = current_workspace()
    return render_step(plan, "connect", "wizard/_step_connect.html", errors=errors,
                       connections=connection_service.connections_for(workspace),
                       selected=selected if selected is not None else (plan.connection_id if plan else None),
                       form=ChooseConnectionForm(formdata=None))


def _chosen_connection(errors: dict):
    conn = connection_service.get_connection(current_workspace(), request.form.get("connection"))
    if conn is None:
        errors["connection"] = "Choose a connected Salesforce org."
    elif conn.status != CONNECTION_CONNECTED:
        errors["connection"] = f"“{conn.name}” is {conn.status.replace('_', ' ')}; reconnect it first."
    return conn


@bp.route("/wizard/new", methods=["GET", "POST"])
@requires("manage_imports")
def new():
    if request.method == "POST":
        ChooseConnectionForm()  # CSRF is checked globally; the form only names the field
        errors: dict = {}
        conn = _chosen_connection(errors)
        if not errors:
            plan = plan_service.create_draft(current_workspace(), conn, current_user)
            return redirect(url_for("wizard.object", plan_id=plan.id), code=303)
        return _step_one(None, errors)
    selected = request.args.get("connection", type=db_int)
    return _step_one(None, selected=selected)


@bp.route("/wizard/plans/<int:plan_id>/connect", methods=["GET", "POST"])
@requires("manage_imports")
def connect_step(plan_id: int):
    plan = load_plan(plan_id, "connect")
    if not isinstance(plan, ImportPlan):
        return plan
    if request.method == "POST":
        errors: dict = {}
        conn = _chosen_connection(errors)
        if not errors:
            if conn.id != plan.connection_id:
                plan_service.set_connection(plan, conn)
            return redirect(url_for("wizard.object", plan_id=plan.id), code=303)
        return _step_one(plan, errors)
    return _step_one(plan)

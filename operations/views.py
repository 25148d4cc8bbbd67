"""Operations pages: what admins and researchers see after set-up.

Everyone in the workspace reads (connection status, plans, runs, outcomes, the lookup); pausing,
resuming, running and deleting plans needs "manage imports"; reconnecting and disconnecting are
the connection views' (this page only links to them, for people with "manage integrations").

A running run's page polls ``run_tail?after=<seq>``: each answer is the live panel again
(counters, progress bar) plus the new outcome rows out of band; the answer for a finished run
leaves out ``hx-trigger``, so polling stops, and sends ``HX-Trigger: run-finished`` so the full
outcome table loads itself.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, make_response, request, stream_with_context, url_for
from flask_login import current_user

from core.request_values import db_int
from core.extensions import db
from core.security import login_required, requires
from core.tenancy import current_workspace, current_workspace_id, get_in_workspace_or_404
from core.web import is_htmx, redirect_to, render
from models import ImportPlan, Participant, SalesforceConnection, SyncRun
from services import charts, invitations, notifications
from services import operations as ops

bp = Blueprint("operations", __name__, url_prefix="/operations")
CHART_RUNS = 30


@bp.app_context_processor
def _operations_globals():
    def banner_incidents():
        from flask import g
        membership = g.get("membership")
        return notifications.open_incidents(membership.workspace_id) if membership is not None else []

    def plan_edit_url(plan):
        """Edit opens the wizard at its first step; the stepper reaches every other."""
        return url_for("wizard.connect_step", plan_id=plan.id)

    def consent_evidence_view(invitation):
        from services.invitations import evidence_view
        return evidence_view(invitation)

    def incident_subject(incident):
        """(what the incident is about, its page): "Import “UK contacts”" or "Salesforce connection
        “Production”", by the subject's current name; None when the subject is gone."""
        kind, _, raw_id = (incident.subject_key or "").partition(":")
        if kind == "invitations":
            return "Invitation emails", url_for("operations.incidents")
        if not raw_id.isdigit():
            return None
        if kind == "plan":
            plan = db.session.get(ImportPlan, int(raw_id))
            if plan is not None and plan.workspace_id == incident.workspace_id:
                return f"Import “{plan.name}”", url_for("operations.plan_runs", plan_id=plan.id)
        if kind == "connection":
            conn = db.session.get(SalesforceConnection, int(raw_id))
            if conn is not None and conn.workspace_id == incident.workspace_id:
                return (f"Salesforce connection “{conn.name}”",
                        url_for("operations.connection_status", connection_id=conn.id))
        return None

    def plan_action_label(plan):
        """The guide's words for what a plan does ("Import to participant pool", ...)."""
        from services.plan_steps import ACTION_LABELS
        return ACTION_LABELS.get(plan.action, plan.action or "—")

    def plan_schedule_label(plan):
        """The guide's words for when it runs ("Sync daily at 07:00", ...)."""
        from services.plan_steps import SCHEDULE_LABELS
        label = SCHEDULE_LABELS.get(plan.schedule, plan.schedule or "—")
        if plan.schedule == "daily" and plan.daily_time:
            label = f"{label} at {plan.daily_time}"
        return label

    def plan_not_inviting(plan):
        """An invite plan whose consent confirmation is missing: it runs but invites nobody."""
        return ops.invites_without_confirmation(plan)

    return {"plan_not_inviting": plan_not_inviting, "banner_incidents": banner_incidents, "outcome_labels": ops.OUTCOME_LABELS,
            "plan_edit_url": plan_edit_url, "consent_evidence_view": consent_evidence_view,
            "plan_action_label": plan_action_label, "plan_schedule_label": plan_schedule_label,
            "incident_subject": incident_subject}


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, type=db_int)
    return value if value is not None and value >= 0 else None


# --- connections ---------------------------------------------------------------------------------

@bp.get("/connections/<int:connection_id>")
@login_required
def connection_status(connection_id: int):
    connection = get_in_workspace_or_404(SalesforceConnection, connection_id)
    return render("operations/connection.html", info=ops.connection_status(connection),
                  incident=notifications.open_incident(connection.workspace_id,
                                                       notifications.connection_key(connection.id)),
                  connection_actions=_connection_actions(connection))


def _connection_actions(connection) -> dict:
    """Reconnect and Disconnect are the connect flow's routes (wizard/connect.py)."""
    return {"reconnect": url_for("wizard.reconnect", connection_id=connection.id),
            "disconnect": url_for("wizard.disconnect", connection_id=connection.id)}


@bp.post("/connections/<int:connection_id>/check")
@requires("manage_integrations")
def check_connection(connection_id: int):
    connection = get_in_workspace_or_404(SalesforceConnection, connection_id)
    result = ops.check_token(connection)
    messages = {"ok": ("Salesforce accepted the connection's token.", "success"),
                "needs_reconnect": ("Salesforce refused the connection's token: reconnect it.", "error"),
                "error": ("Salesforce could not be reached; the status is unchanged. Try again later.", "warning")}
    flash(*messages[result])
    return redirect_to("operations.connection_status", connection_id=connection.id)


# --- plans ------------------------------------------------------------------------------------------

@bp.get("/")
@login_required
def plans():
    workspace_id = current_workspace_id()
    from sqlalchemy import exists, select
    has_connected = db.session.scalar(select(exists().where(
        SalesforceConnection.workspace_id == workspace_id, SalesforceConnection.status == "connected")))
    return render("operations/plans.html", rows=ops.plan_rows(workspace_id),
                  incidents=notifications.open_incidents(workspace_id), has_connected=has_connected)


def _plan_row_response(plan: ImportPlan, message: str | None = None, category: str = "success"):
    """The plan's row again for htmx; the plans page for a plain form post."""
    if not is_htmx():
        if message:
            flash(message, category)
        return redirect_to("operations.plans")
    row = next(r for r in ops.plan_rows(plan.workspace_id) if r.plan.id == plan.id)
    return render("operations/_plan_row.html", "operations/_plan_row.html", row=row, message=message,
                  message_category=category)


@bp.post("/plans/<int:plan_id>/pause")
@requires("manage_imports")
def pause_plan(plan_id: int):
    plan = get_in_workspace_or_404(ImportPlan, plan_id)
    try:
        ops.pause_plan(plan, current_user)
    except ops.PlanStateError as exc:
        return _plan_row_response(plan, str(exc), "error")
    return _plan_row_response(plan, "Paused: no scheduled run starts until you resume it.")


@bp.post("/plans/<int:plan_id>/resume")
@requires("manage_imports")
def resume_plan(plan_id: int):
    plan = get_in_workspace_or_404(ImportPlan, plan_id)
    try:
        ops.resume_plan(plan, current_user)
    except ops.PlanStateError as exc:
        return _plan_row_response(plan, str(exc), "error")
    return _plan_row_response(plan, "Resumed.")


@bp.post("/plans/<int:plan_id>/run")
@requires("manage_imports")
def run_plan(plan_id: int):
    plan = get_in_workspace_or_404(ImportPlan, plan_id)
    try:
        started = ops.run_now(plan, "manual", current_user)
    except ops.PlanStateError as exc:
        flash(str(exc), "error")
        return redirect_to("operations.plans")
    flash(started.message, "success" if started.started else "info")
    return redirect_to("operations.run_detail", run_id=started.run.id)


@bp.route("/plans/<int:plan_id>/delete", methods=["GET", "POST"])
@requires("manage_imports")
def delete_plan(plan_id: int):
    plan = get_in_workspace_or_404(ImportPlan, plan_id)
    if request.method == "POST":
        if request.form.get("confirm_name", "").strip() != plan.name.strip():
            flash("Type the plan's name exactly to delete it.", "error")
            return render("operations/plan_delete.html", plan=plan, status=422,
                          run_count=len(ops.runs_for_plan(plan, limit=10_000)))
        name = plan.name
        try:
            ops.delete_plan(plan, current_user)
        except ops.PlanStateError as exc:
            flash(str(exc), "error")
            return redirect_to("operations.plans")
        flash(f"Deleted the plan “{name}”. Participants it imported stay in the pool.", "success")
        return redirect_to("operations.plans")
    return render("operations/plan_delete.html", plan=plan, run_count=len(ops.runs_for_plan(plan, limit=10_000)))


@bp.get("/plans/<int:plan_id>/runs")
@login_required
def plan_runs(plan_id: int):
    plan = get_in_workspace_or_404(ImportPlan, plan_id)
    runs = ops.runs_for_plan(plan, limit=100)
    chart = charts.run_history_chart(list(reversed(runs[:CHART_RUNS])), processed=ops.processed,
                                     href=lambda r: url_for("operations.run_detail", run_id=r.id),
                                     plan_name=plan.name)
    return render("operations/plan_runs.html", plan=plan, runs=runs, chart=chart, ops=ops,
                  incident=notifications.open_incident(plan.workspace_id, notifications.plan_key(plan.id)))


# --- runs ---------------------------------------------------------------------------------------------

def _outcome_context(run: SyncRun) -> dict:
    outcome = request.args.get("outcome") or None
    q = (request.args.get("q") or "").strip() or None
    page = ops.outcome_page(run, outcome=outcome, q=q, after=_int_arg("after"), before=_int_arg("before"))
    return {"page": page, "outcome": outcome, "q": q or "", "counts": ops.outcome_counts(run),
            "purged": ops.outcomes_purged(run)}


@bp.get("/runs/<int:run_id>")
@login_required
def run_detail(run_id: int):
    run = get_in_workspace_or_404(SyncRun, run_id)
    plan = db.session.get(ImportPlan, run.plan_id)
    ctx = {"run": run, "plan": plan, "ops": ops, "failures": invitations.failures_for_run(run.id)}
    if ops.is_active(run) and not is_htmx():
        after = ops.last_seq(run)
        live_rows = ops.outcomes_after(run, max(0, after - 50), limit=50)
        return render("operations/run.html", run_live=True, live_rows=live_rows, **ctx, **_live_context(run, after))
    return render("operations/run.html", "operations/_outcomes.html", run_live=False, **ctx,
                  **_live_context(run, 0), **_outcome_context(run))


def _live_context(run: SyncRun, after: int) -> dict:
    done, total = ops.progress(run)
    return {"after": after, "done": done, "total": total, "active": ops.is_active(run)}


@bp.get("/runs/<int:run_id>/tail")
@login_required
def run_tail(run_id: int):
    """New outcome rows after ``?after=<seq>`` and the counters; polling stops when the run ends."""
    run = get_in_workspace_or_404(SyncRun, run_id)
    after = _int_arg("after") or 0
    rows = ops.outcomes_after(run, after)
    # Read the status after the rows: rows written before the run ended are all in this answer
    # or a later one, never lost between the last poll and the final fragment.
    db.session.refresh(run)
    new_after = rows[-1].seq if rows else after
    active = ops.is_active(run) or len(rows) == ops.TAIL_LIMIT
    response = make_response(render_template_fragment(run, rows, new_after, active))
    response.vary.add("HX-Request")
    if not active:
        response.headers["HX-Trigger"] = "run-finished"
    return response


def render_template_fragment(run, rows, after, active):
    from flask import render_template

    done, total = ops.progress(run)
    return render_template("operations/_run_tail.html", run=run, rows=rows, after=after, active=active,
                           done=done, total=total, ops=ops)


@bp.get("/runs/<int:run_id>/outcomes.csv")
@login_required
def run_export(run_id: int):
    """Every outcome row of the run (as filtered) streamed in keyset batches: constant memory."""
    run = get_in_workspace_or_404(SyncRun, run_id)
    outcome = request.args.get("outcome") or None
    q = (request.args.get("q") or "").strip() or None
    body = stream_with_context(ops.export_csv(run, outcome=outcome, q=q))
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="run-{run.id}-outcomes.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


# --- participants, lookup, incidents ------------------------------------------------------------------

@bp.get("/participants/<int:participant_id>/runs")
@login_required
def participant_runs(participant_id: int):
    person = get_in_workspace_or_404(Participant, participant_id)
    return render("operations/participant_runs.html", "operations/_participant_runs.html", participant=person,
                  touches=ops.participant_runs(person))


@bp.get("/lookup")
@login_required
def lookup():
    query = request.args.get("q", "")
    result = ops.lookup(current_workspace(), query)
    return render("operations/lookup.html", "operations/_lookup_results.html", result=result, ops=ops,
                  retention_days=current_app.config.get("OUTCOME_RETENTION_DAYS", 90))


@bp.get("/incidents")
@login_required
def incidents():
    return render("operations/incidents.html", incidents=notifications.recent_incidents(current_workspace_id()))


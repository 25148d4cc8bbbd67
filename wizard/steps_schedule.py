"""Step 6, Schedule and action; and the review of records staged by an Import only plan.

GET/POST /wizard/plans/<id>/schedule   wizard.schedule
    action=refresh   re-render (another action chosen: the target and consent fields follow)
    action=save      store, activate (the plan becomes active with its next run), go to its runs
    action=run_now   the same, then request a run (services.operations.run_now, trigger "wizard")
                     and go to the run's page
GET/POST /wizard/plans/<id>/staged     wizard.staged   approve all / approve selected / discard

Auto-invite needs the consent confirmation (the exact wording in
``services.plan_steps.CONSENT_CONFIRMATION_TEXT``), saved with who, when and the plan's consent
fingerprint; it is void, and asked again, whenever the filters, mapping, action or target change.
"""
from __future__ import annotations

from flask import flash, request
from flask_login import current_user
from sqlalchemy import select

from core.extensions import db
from core.request_values import db_int
from core.security import requires
from core.tenancy import current_workspace, scoped
from core.web import redirect_to, render
from models import Activity, Community, ImportPlan, PreviewTotals, Study
from models.plans import INVITE_ACTIONS, LEAVING_POLICIES, SCHEDULES
from services import plan_steps, plans
from wizard import bp, load_plan, render_step


def _int(value) -> int | None:
    """A whole number in a 32-bit column's range (a bigger one is as wrong as a word), or None."""
    try:
        return db_int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _days(value: str | None) -> tuple[list[int], bool]:
    out, ok = [], True
    for part in (value or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if part.isdigit():
            out.append(int(part))
        else:
            ok = False
    return out, ok


def _input_from_form(form, plan: ImportPlan) -> tuple[plan_steps.ScheduleInput, dict]:
    errors = {}
    caps = {}
    for name in ("per_run_api_cap", "per_day_api_cap"):
        raw = (form.get(name) or "").strip()
        caps[name] = int(raw) if raw.isascii() and raw.isdigit() else None  # the range: plan_steps
        if raw and caps[name] is None:
            errors[name] = "A cap is a whole number of API calls (leave empty for none)."
    days, ok = _days(form.get("reminder_days"))
    if not ok:
        errors["reminder_days"] = "Reminder days are whole numbers separated by commas, for example 3, 7."
    data = plan_steps.ScheduleInput(
        schedule=form.get("schedule") or "", daily_time=form.get("daily_time") or None,
        action=form.get("action_choice") or "", target_study_id=_int(form.get("target_study_id")),
        target_activity_id=_int(form.get("target_activity_id")),
        target_community_id=_int(form.get("target_community_id")),
        leaving_policy=form.get("leaving_policy") or "", per_run_api_cap=caps["per_run_api_cap"],
        per_day_api_cap=caps["per_day_api_cap"], reminder_days=days,
        confirm_consent=form.get("confirm_consent") in ("y", "on", "1", "true"),
        name=form.get("name"))
    return data, errors


def _estimate(plan: ImportPlan, schedule: str):
    """The API calls a run costs, from the newest preview count of this plan (no extra call)."""
    row = db.session.scalar(select(PreviewTotals).where(
        PreviewTotals.plan_id == plan.id, PreviewTotals.estimate_total.is_not(None))
        .order_by(PreviewTotals.id.desc()))
    return plan_steps.api_estimate(row.estimate_total if row else None, schedule)


def _context(plan: ImportPlan, values: dict | None = None) -> dict:
    values = values or {}
    schedule = values.get("schedule") or plan.schedule
    if plan.status == "draft" and not values and plan.schedule == "manual":
        schedule = plan_steps.default_schedule(plan)
    action = values.get("action_choice") or plan.action or "pool"
    studies = db.session.scalars(scoped(Study).order_by(Study.name)).all()
    activities = db.session.scalars(scoped(Activity).order_by(Activity.study_id, Activity.name)).all()
    communities = db.session.scalars(scoped(Community).order_by(Community.name)).all()
    plan_steps.void_stale_confirmation(plan)
    confirmer = None
    if plan.consent_confirmed_by_id:
        from models import User
        confirmer = db.session.get(User, plan.consent_confirmed_by_id)
    return {
        "form": {
            "name": values.get("name", plan.name), "schedule": schedule,
            "daily_time": values.get("daily_time", plan.daily_time or "07:00"), "action_choice": action,
            "target_study_id": _int(values.get("target_study_id")) or plan.target_study_id,
            "target_activity_id": _int(values.get("target_activity_id")) or plan.target_activity_id,
            "target_community_id": _int(values.get("target_community_id")) or plan.target_community_id,
            "leaving_policy": values.get("leaving_policy") or plan.leaving_policy or "keep",
            "per_run_api_cap": values.get("per_run_api_cap", plan.per_run_api_cap or ""),
            "per_day_api_cap": values.get("per_day_api_cap", plan.per_day_api_cap or ""),
            "reminder_days": values.get("reminder_days", ", ".join(str(d) for d in plan.reminder_days or [])),
        },
        "schedules": [(key, plan_steps.SCHEDULE_LABELS[key]) for key in SCHEDULES],
        "actions": [(key, plan_steps.ACTION_LABELS[key], plan_steps.ACTION_HELP[key])
                    for key in plan_steps.ACTION_LABELS],
        "policies": [(key, plan_steps.LEAVING_LABELS[key]) for key in LEAVING_POLICIES],
        "invite_actions": INVITE_ACTIONS, "studies": studies, "activities": activities,
        "communities": communities, "consent_text": plan_steps.CONSENT_CONFIRMATION_TEXT,
        "confirmed": plan_steps.confirmation_valid(plan), "confirmer": confirmer,
        "estimate": _estimate(plan, schedule), "timezone": current_workspace().timezone,
        "can_run_now": _runs() is not None,
    }


def _runs():
    try:
        from services import runs
    except ImportError:  # the sync engine's runs service is not there: no "Run now"
        return None
    return runs if hasattr(runs, "request_run") else None


@bp.route("/wizard/plans/<int:plan_id>/schedule", methods=["GET", "POST"])
@requires("manage_imports")
def schedule(plan_id: int):
    plan = load_plan(plan_id, "schedule")
    if not isinstance(plan, ImportPlan):
        return plan
    if request.method == "GET":
        return render_step(plan, "schedule", "wizard/_schedule.html", **_context(plan))
    step_action = request.form.get("step_action", "save")
    data, errors = _input_from_form(request.form, plan)
    if step_action == "refresh" or errors:
        return render_step(plan, "schedule", "wizard/_schedule.html", errors=errors,
                           **_context(plan, request.form.to_dict()))
    workspace = current_workspace()
    try:
        plan_steps.save_and_activate(plan, data, workspace, current_user)
    except plan_steps.StepError as exc:
        # Refused before anything changed: the plan is as stored, the form keeps what was posted.
        return render_step(plan, "schedule", "wizard/_schedule.html", errors=exc.errors,
                           **_context(plan, request.form.to_dict()))
    runs = _runs()
    if step_action == "run_now" and runs is not None:
        from services import operations as ops
        started = ops.run_now(plan, "wizard", current_user)
        flash(f"Saved. {started.message}", "success" if started.started else "info")
        return redirect_to("operations.run_detail", run_id=started.run.id)
    flash(f"Saved “{plan.name}”: it is active.", "success")
    return redirect_to("operations.plan_runs", plan_id=plan.id)


# --- Import only: review what was staged ---------------------------------------------------------

@bp.route("/wizard/plans/<int:plan_id>/staged", methods=["GET", "POST"])
@requires("manage_imports")
def staged(plan_id: int):
    """Records an Import only plan staged: approve all, approve the selected ones, or discard."""
    from core.tenancy import get_in_workspace_or_404
    plan = get_in_workspace_or_404(ImportPlan, plan_id)
    if request.method == "POST":
        choice = request.form.get("review", "")
        ids = request.form.getlist("participant_id")
        if choice == "approve_all":
            n = plan_steps.approve_staged(plan, None, actor=current_user)
            flash(f"Approved {n} staged participants: they are in the pool now.", "success")
        elif choice == "approve_selected":
            n = plan_steps.approve_staged(plan, ids, actor=current_user)
            flash(f"Approved {n} staged participants.", "success")
        elif choice == "discard_selected":
            n = plan_steps.discard_staged(plan, ids, actor=current_user)
            flash(f"Discarded {n} staged records (archived; the next sync will not stage them again).", "success")
        return redirect_to("wizard.staged", plan_id=plan.id)
    people = plan_steps.staged_participants(plan)
    return render("wizard/schedule_staged.html", "wizard/_schedule_staged_table.html", plan=plan, people=people)


plans  # noqa: B018

# "Add participants" from Salesforce lives in the wizard blueprint too; loading it here registers
# its routes and its tab in research.sources.
import wizard.add_from_salesforce  # noqa: E402,F401

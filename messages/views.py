"""Message templates of a study, task (activity) or community, and invitation records."""
from __future__ import annotations

from flask import Blueprint, abort, flash, request
from flask_login import current_user

from core.request_values import db_int
from core.extensions import db
from core.security import login_required
from core.tenancy import get_in_workspace_or_404
from core.web import redirect_to, render
from messages.forms import MessageTemplateForm, ResetForm
from models import Activity, Community, Invitation, Participant, Study
from services import invitations
from services import templates_merge as merge

bp = Blueprint("messages", __name__)
TARGETS = {"study": Study, "activity": Activity, "community": Community}
TARGET_LABELS = {"study": "study", "activity": "task", "community": "community"}


ARG_NAMES = {"study": "study_id", "activity": "activity_id", "community": "community_id"}
PATHS = {"study": "/studies/<int:study_id>", "activity": "/activities/<int:activity_id>",
         "community": "/communities/<int:community_id>"}


def _target(ids: dict):
    """(target type, target, url args) from the route's one id variable (404 outside the workspace)."""
    for target_type, name in ARG_NAMES.items():
        if ids.get(name) is not None:
            return target_type, get_in_workspace_or_404(TARGETS[target_type], ids[name]), {name: ids[name]}
    abort(404)


def _routes(suffix: str, **options):
    """Register a view under the study, activity and community paths (one endpoint)."""
    def decorator(view):
        for path in PATHS.values():
            bp.add_url_rule(path + suffix, view_func=view, **options)
        return view
    return decorator


def _kind(kind: str) -> str:
    if kind not in merge.KINDS:
        abort(404)
    return kind


def _preview_participant(target, candidates):
    wanted = request.values.get("participant_id", type=db_int)
    if wanted is not None:
        person = get_in_workspace_or_404(Participant, wanted)
        return person
    return candidates[0] if candidates else None


def _context(target_type, target, target_args, kind, form, template, candidates, participant, problems=()):
    rendered = invitations.preview(target, kind, template, participant)
    return dict(target_type=target_type, target=target, target_args=target_args, kind=kind, form=form, reset_form=ResetForm(),
                template=template, fields=merge.fields_for(target_type), field_help=merge.FIELD_HELP,
                kinds=merge.KINDS, kind_labels=merge.KIND_LABELS, label=TARGET_LABELS[target_type],
                candidates=candidates, participant=participant, rendered=rendered, problems=list(problems),
                invitations=invitations.invitations_for_target(target))


@login_required
def edit(kind: str, **ids):
    (target_type, target, target_args), kind = _target(ids), _kind(kind)
    template = invitations.template_for(target.workspace_id, invitations.target_key(target), kind)
    form = MessageTemplateForm(data={"subject": template.subject, "body_text": template.body_text,
                                     "body_html": template.body_html or ""} if request.method == "GET" else None)
    problems = []
    if form.validate_on_submit():
        try:
            invitations.save_template(target, kind, subject=form.subject.data, body_text=form.body_text.data,
                                      body_html=form.body_html.data, actor=current_user)
        except invitations.TemplateError as exc:
            problems = exc.problems
        else:
            flash(f"{merge.KIND_LABELS[kind]} message saved.", "success")
            return redirect_to("messages.edit", kind=kind, **target_args)
    if request.method == "POST":
        template = merge.Template(form.subject.data or "", form.body_text.data or "", form.body_html.data or None)
    candidates = invitations.preview_candidates(target)
    participant = _preview_participant(target, candidates)
    status = 422 if request.method == "POST" else 200
    return render("messages/edit.html", status=status,
                  **_context(target_type, target, target_args, kind, form, template, candidates, participant, problems))


@login_required
def preview(kind: str, **ids):
    """The preview fragment for the form as it stands (nothing is saved)."""
    (target_type, target, _args), kind = _target(ids), _kind(kind)
    template = merge.Template(request.form.get("subject", ""), request.form.get("body_text", ""),
                              request.form.get("body_html") or None)
    candidates = invitations.preview_candidates(target)
    participant = _preview_participant(target, candidates)
    problems = merge.check(template.subject, template.body_text, template.body_html, target_type)
    return render("messages/_preview.html", "messages/_preview.html",
                  rendered=invitations.preview(target, kind, template, participant), participant=participant,
                  problems=problems)


@login_required
def reset(kind: str, **ids):
    (target_type, target, target_args), kind = _target(ids), _kind(kind)
    if ResetForm().validate_on_submit() and invitations.reset_template(target, kind, actor=current_user):
        flash(f"{merge.KIND_LABELS[kind]} message set back to the default wording.", "success")
    return redirect_to("messages.edit", kind=kind, **target_args)


@bp.get("/invitations/<int:invitation_id>")
@login_required
def invitation(invitation_id: int):
    row = get_in_workspace_or_404(Invitation, invitation_id)
    participant = db.session.get(Participant, row.participant_id)
    target = invitations.target_of(row)
    target_args = {ARG_NAMES[row.target_type]: target.id} if target is not None else {}
    return render("messages/invitation.html", invitation=row, participant=participant, target=target,
                  target_type=row.target_type, target_args=target_args,
                  evidence=invitations.evidence_view(row), messages=invitations.messages_of(row),
                  label=TARGET_LABELS.get(row.target_type, row.target_type))


_routes("/messages/<kind>", methods=["GET", "POST"])(edit)
_routes("/messages/<kind>/preview", methods=["POST"])(preview)
_routes("/messages/<kind>/reset", methods=["POST"])(reset)

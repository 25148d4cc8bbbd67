"""What a participant opens from a message. Every endpoint here is public (``core.security``
declares the whole ``invite`` blueprint so); the signed token in the URL is the only key, and
a page shows nothing of the workspace beyond the study or task the person was invited to.
GET never changes anything (mail scanners open links); answers are POSTed.

The answer forms are protected against cross-site requests by a token bound to the signed link
(``invitations.form_token``), not by the session's CSRF token: a participant's browser may keep
no cookies. These two views are therefore exempt from Flask-WTF's session check, and each checks
its own token on POST, after the link itself (a bad or expired link stays the plain 404 page).
"""
from __future__ import annotations

from flask import Blueprint, make_response, render_template, request

from core.extensions import csrf, db
from models import Participant
from models.types import utcnow
from services import invitations

bp = Blueprint("invite", __name__)


def _page(template: str, status: int = 200, **ctx):
    response = make_response(render_template(template, **ctx), status)
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    return response


def _invalid():
    return _page("invite/invalid.html", 404)


def _form_refused(token: str, action: str):
    """A POST without the token of the page we served (none, another link's or another form's)."""
    return _page("invite/form_refused.html", 400, token=token, action=action)


def _context(invitation):
    target = invitations.target_of(invitation)
    participant = db.session.get(Participant, invitation.participant_id)
    study = target if invitations.target_type_of(target) == "study" else getattr(target, "study", None)
    return {"invitation": invitation, "target": target, "study": study, "participant": participant,
            "kind": invitation.target_type, "closed": invitations.target_closed(target, utcnow()),
            "deadline": invitations.participant_deadline(invitation, target),
            "evidence": invitations.evidence_view(invitation)}


@bp.route("/invite/<token>", methods=["GET", "POST"])
@csrf.exempt  # the form carries invitations.form_token instead (checked below)
def respond(token: str):
    invitation = invitations.invitation_for_token(token)
    if invitation is None or invitations.target_of(invitation) is None:
        return _invalid()
    outcome = None
    form_token = invitations.form_token(token, "respond")
    if request.method == "POST":
        if not invitations.form_token_valid(token, "respond", request.form.get("csrf_token")):
            return _form_refused(token, "respond")
        answer = request.form.get("answer")
        if answer not in ("accept", "decline"):
            return _page("invite/respond.html", 400, token=token, error="Choose accept or decline.",
                         form_token=form_token, **_context(invitation))
        before = invitation.status
        outcome = invitations.respond(invitation, answer)
        # An answer given earlier stands: say so when this one was not recorded.
        unchanged = before not in invitations.OPEN_STATUSES and outcome != {"accept": "accepted",
                                                                          "decline": "declined"}[answer]
        return _page("invite/respond.html", token=token, outcome=outcome, unchanged=unchanged,
                     form_token=form_token, **_context(invitation))
    return _page("invite/respond.html", token=token, outcome=outcome, form_token=form_token,
                 **_context(invitation))


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # the form carries invitations.form_token instead (checked below)
def unsubscribe(token: str):
    found = invitations.unsubscribe_subject(token)
    if found is None:
        return _invalid()
    participant, invitation = found
    done = False
    if request.method == "POST":
        if not invitations.form_token_valid(token, "unsubscribe", request.form.get("csrf_token")):
            return _form_refused(token, "unsubscribe")
        invitations.unsubscribe(participant, invitation)
        done = True
    return _page("invite/unsubscribe.html", token=token, done=done, participant=participant,
                 form_token=invitations.form_token(token, "unsubscribe"))

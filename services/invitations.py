"""Invitations: what a participant receives, the links they act on, sending, reminders, opt-outs.

The sync engine decides who is invited (eligibility and consent evidence) and creates the
``Invitation`` rows (status "pending"); after committing them it calls ``enqueue_send(ids)``.
From there on this module owns the invitation:

* ``send`` (run by the job ``jobs.invitations.send_invitation``, with RQ retries) checks again,
  at send time, that the person may be contacted (not suppressed, consent still opted in, the
  study still open), respects the workspace's daily cap (beyond it the invitation stays pending
  with the reason and the periodic ``tick`` sends it on a later day), renders the study's
  template and sends through ``core.mail``. Every failed attempt (of the invitation or of a
  reminder) is recorded on the invitation with its reason and cause (``failure_cause``: "links"
  when no link can be made, e.g. PUBLIC_BASE_URL unset; "mail" when the mail server refuses;
  "message" otherwise) and opens the workspace's incident for that cause, once per cause
  (``services.notifications``); a send that works closes it. The last failed attempt marks the
  invitation "failed", never lost: ``retry_at`` says when the tick tries it again (an hour,
  doubling with each round that fails, at most a day; at once when another send works). A
  reminder whose last attempt failed is handed back (``reminders_sent`` as before, due again an
  hour later, or at once when another send works). ``failures_for_run``
  lists what failed for the run page. A failed message is not counted as sent (status, the
  daily cap).
* A permanent refusal of the address (a 5xx for the recipient, cause "recipient") is not retried
  and opens no incident; its outbox row is marked "refused" and nothing of that invitation is
  ever sent to that address again. When the participant's email changes (the sync sink calls
  ``rearm_refused``), the invitation is armed again for the new address: a failed one goes back
  to "pending" (the normal queue and daily cap), stopped reminders are due again.
* ``tick`` (periodic) expires invitations whose link ran out, releases failed invitations whose
  ``retry_at`` has come (back to "pending"), claims due reminders atomically
  (``UPDATE ... WHERE reminders_sent = n AND next_reminder_at <= now``) so each is sent once,
  and enqueues pending invitations that are waiting for the cap or were never enqueued.
* Links are signed (itsdangerous, one salt per purpose): ``respond_url`` opens the participant
  page (accept or decline; expires after INVITATION_LINK_DAYS), ``unsubscribe_url`` stops every
  message. Tokens carry the invitation id, a binding to the row (so a recycled id never matches
  an old link) and a random nonce (each message's links differ).
* The answer forms on those pages carry ``form_token(link_token, action)``: an HMAC of the
  link's token and the form's action under the app's secret, checked on POST by
  ``form_token_valid``. It stands in for the session's CSRF token (the views are exempt from
  it), so a participant whose browser keeps no cookies can still answer, while a POST that
  did not come from the page we served (no token, another link's, another form's) is refused.
* ``unsubscribe`` puts the person on the suppression list (audited as "participant via
  unsubscribe link"), sets their consent to opted out and withdraws their open invitations.

``consent_evidence`` (JSON on the invitation), as written by the sync engine; build it with
``consent_evidence_record``::

    {"consent": "opted_in",                                  # the decision
     "values_seen": [["Consent_Status__c", "Opted In"], ["HasOptedOutOfEmail", false]],
     "source": {"system": "salesforce", "org_id": "00D...", "object": "Contact",
                "record_id": "003..."},
     "confirmation": {"text": "...", "confirmed_by": "Ada Researcher", "confirmed_by_id": 3,
                      "confirmed_at": "2026-03-01T09:30:00+00:00"},
     "plan_id": 4, "plan_name": "UK customers", "run_id": 12, "seen_at": "2026-03-02T07:00:00+00:00"}

``evidence_view(invitation)`` reads it (older or partial shapes included, falling back to the
plan's recorded confirmation) for ``templates/invite/_consent_evidence.html``.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Any, Iterable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app, has_request_context, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, or_, select, update

from core.extensions import db
from core.mail import MailError, deliver, send_mail
from models import (Activity, Community, ImportPlan, Invitation, MessageTemplate, OutboxMessage, Participant,
                    Study, User, Workspace)
from models.participants import CONSENT_OPTED_IN, CONSENT_OPTED_OUT, STATUS_ACTIVE
from models.types import utcnow
from services import audit, research, suppression
from services import templates_merge as merge

log = logging.getLogger("terapage.invitations")

RESPOND_SALT = "terapage.invitation.respond"
UNSUBSCRIBE_SALT = "terapage.invitation.unsubscribe"
FORM_SALT = "terapage.invitation.form"
FORM_ACTIONS = ("respond", "unsubscribe")
UNSUBSCRIBE_LINK_DAYS = 400  # an unsubscribe link must keep working long after the invitation
OPEN_STATUSES = ("pending", "sent")  # not answered, not ended
PARTICIPANT_ACTOR = "participant via invitation link"
UNSUBSCRIBE_ACTOR = "participant via unsubscribe link"
DEFAULT_RETRY_INTERVALS = [30, 120, 600]
SEND_RETRIES = 3
TICK_BATCH = 500
REFUSED = "refused"  # an outbox row whose address the mail server refused for good (5xx)
NOT_SENT_MESSAGES = ("failed", REFUSED)
INVITED_AGAIN_NOTE = "Invited again: the address changed"

TARGET_MODELS = {"study": Study, "activity": Activity, "community": Community}
TARGET_COLUMNS = {"study": "study_id", "activity": "activity_id", "community": "community_id"}


class InvitationError(RuntimeError):
    """Something an invitation cannot do (the message says what, for a person)."""


class LinkError(InvitationError):
    """A message's links cannot be made (no public address configured)."""


class TemplateError(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


# --- targets ------------------------------------------------------------------------------------

def target_key(target) -> str:
    return f"{target_type_of(target)}:{target.id}"


def target_type_of(target) -> str:
    for name, model in TARGET_MODELS.items():
        if isinstance(target, model):
            return name
    raise InvitationError(f"cannot invite to {type(target).__name__}")


def target_of(invitation: Invitation):
    """The study, activity or community an invitation is for (None when it was deleted)."""
    column = TARGET_COLUMNS.get(invitation.target_type)
    target_id = getattr(invitation, column) if column else None
    if target_id is None and invitation.target_key and ":" in invitation.target_key:
        target_id = invitation.target_key.split(":", 1)[1]
    model = TARGET_MODELS.get(invitation.target_type)
    if model is None or target_id is None:
        return None
    target = db.session.get(model, int(target_id))
    return target if target is not None and target.workspace_id == invitation.workspace_id else None


def target_closed(target, now: datetime) -> str | None:
    """Why the study (or task) no longer takes people, else None."""
    if target is None:
        return "the study or task no longer exists"
    study = target if isinstance(target, Study) else getattr(target, "study", None)
    if study is not None:
        if study.status == "closed":
            return "the study is closed"
        if study.closes_at is not None and study.closes_at <= now:
            return "the study's closing date has passed"
    if isinstance(target, Activity) and target.due_at is not None and target.due_at <= now:
        return "the task's due date has passed"
    return None


def new_invitation(target, participant: Participant, *, plan: ImportPlan | None = None, run_id: int | None = None,
                   invited_by: User | None = None, consent_evidence: dict | None = None) -> Invitation:
    """An Invitation row for ``participant`` (pending, added to the session, not committed).

    The sync engine may build its rows itself; this keeps the target columns consistent."""
    kind = target_type_of(target)
    invitation = Invitation(workspace_id=target.workspace_id, participant_id=participant.id, target_type=kind,
                            target_key=target_key(target), status="pending", channel="email",
                            plan_id=getattr(plan, "id", None), run_id=run_id,
                            invited_by_id=getattr(invited_by, "id", None), consent_evidence=consent_evidence or {},
                            send_attempts=0, reminders_sent=0)
    setattr(invitation, TARGET_COLUMNS[kind], target.id)
    if isinstance(target, Activity):
        invitation.study_id = target.study_id
    db.session.add(invitation)
    return invitation


# --- signed links ---------------------------------------------------------------------------------

def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _binding(*parts: Any) -> str:
    text = ":".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _created_stamp(row) -> int:
    return int(row.created_at.timestamp()) if row.created_at else 0


def _invitation_binding(invitation: Invitation) -> str:
    return _binding("invitation", invitation.id, invitation.workspace_id, invitation.participant_id,
                    invitation.target_key, _created_stamp(invitation))


def _participant_binding(participant: Participant) -> str:
    return _binding("participant", participant.id, participant.workspace_id, _created_stamp(participant))


def respond_token(invitation: Invitation) -> str:
    return _serializer(RESPOND_SALT).dumps(
        {"i": invitation.id, "b": _invitation_binding(invitation), "n": secrets.token_urlsafe(6)})


def unsubscribe_token(participant: Participant, invitation: Invitation | None = None) -> str:
    return _serializer(UNSUBSCRIBE_SALT).dumps(
        {"p": participant.id, "i": getattr(invitation, "id", None), "b": _participant_binding(participant),
         "n": secrets.token_urlsafe(6)})


def _load(token: str, salt: str, max_days: int, now: datetime | None) -> dict | None:
    try:
        payload, signed_at = _serializer(salt).loads(token, return_timestamp=True)
    except (BadSignature, ValueError, TypeError):
        return None
    now = now or utcnow()
    if signed_at.tzinfo is None:
        signed_at = signed_at.replace(tzinfo=timezone.utc)
    if now - signed_at > timedelta(days=max_days) or signed_at - now > timedelta(minutes=5):
        return None
    return payload if isinstance(payload, dict) else None


def invitation_for_token(token: str, now: datetime | None = None) -> Invitation | None:
    """The invitation a respond link names, or None (tampered, expired, or no such invitation)."""
    payload = _load(token, RESPOND_SALT, current_app.config["INVITATION_LINK_DAYS"], now)
    if not payload or not isinstance(payload.get("i"), int):
        return None
    invitation = db.session.get(Invitation, payload["i"])
    if invitation is None or not secrets.compare_digest(str(payload.get("b")), _invitation_binding(invitation)):
        return None
    return invitation


def unsubscribe_subject(token: str, now: datetime | None = None) -> tuple[Participant, Invitation | None] | None:
    """(participant, invitation or None) an unsubscribe link names, or None when it is not valid."""
    payload = _load(token, UNSUBSCRIBE_SALT, UNSUBSCRIBE_LINK_DAYS, now)
    if not payload or not isinstance(payload.get("p"), int):
        return None
    participant = db.session.get(Participant, payload["p"])
    if participant is None or not secrets.compare_digest(str(payload.get("b")), _participant_binding(participant)):
        return None
    invitation = db.session.get(Invitation, payload["i"]) if isinstance(payload.get("i"), int) else None
    if invitation is not None and invitation.participant_id != participant.id:
        invitation = None
    return participant, invitation


def form_token(link_token: str, action: str) -> str:
    """The token an answer form on a participant page carries: an HMAC (SHA-256, keyed with the
    app's secret) of the form's action and the signed link it was served from. Only the server
    can make it, it needs no cookie or session, and it is valid for this link and form only."""
    if action not in FORM_ACTIONS:
        raise ValueError(f"unknown form action {action!r}")
    key = hmac.new(str(current_app.config["SECRET_KEY"]).encode(), FORM_SALT.encode(), hashlib.sha256).digest()
    return hmac.new(key, f"{action}\x00{link_token}".encode(), hashlib.sha256).hexdigest()


def form_token_valid(link_token: str, action: str, given: str | None) -> bool:
    """Whether a POSTed form token is the one ``form_token`` made for this link and action."""
    if not given or not isinstance(given, str):
        return False
    return hmac.compare_digest(form_token(link_token, action).encode(), given.encode("utf-8", "replace"))


def public_url(endpoint: str, **values) -> str:
    """An absolute URL for a link in a message (PUBLIC_BASE_URL; the request's host as a fallback)."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base and has_request_context():
        base = request.host_url
    if not base:
        raise LinkError("PUBLIC_BASE_URL is not set: messages need the site's public address for their links")
    parts = urlsplit(base)
    adapter = current_app.url_map.bind(parts.netloc, script_name=parts.path.rstrip("/") or "/",
                                       url_scheme=parts.scheme or "https")
    return adapter.build(endpoint, values, force_external=True)


def respond_url(invitation: Invitation) -> str:
    return public_url("invite.respond", token=respond_token(invitation))


def unsubscribe_url(participant: Participant, invitation: Invitation | None = None) -> str:
    return public_url("invite.unsubscribe", token=unsubscribe_token(participant, invitation))


# --- templates ----------------------------------------------------------------------------------

def template_for(workspace_id: int, key: str, kind: str = "invitation") -> merge.Template:
    """The saved template of a study, task or community, else the default wording."""
    row = db.session.scalar(select(MessageTemplate).where(
        MessageTemplate.workspace_id == workspace_id, MessageTemplate.target_key == key, MessageTemplate.kind == kind))
    if row is not None:
        return merge.Template(row.subject, row.body_text, row.body_html, saved=True)
    return merge.default_template(key.split(":", 1)[0], kind)


def saved_template(workspace_id: int, key: str, kind: str) -> MessageTemplate | None:
    return db.session.scalar(select(MessageTemplate).where(
        MessageTemplate.workspace_id == workspace_id, MessageTemplate.target_key == key, MessageTemplate.kind == kind))


def save_template(target, kind: str, *, subject: str, body_text: str, body_html: str | None,
                  actor=None) -> MessageTemplate:
    """Save a study's, task's or community's template (TemplateError lists what to fix)."""
    if kind not in merge.KINDS:
        raise TemplateError([f"unknown message kind {kind!r}"])
    kind_of_target = target_type_of(target)
    body_html = (body_html or "").strip() or None
    problems = merge.check(subject, body_text, body_html, kind_of_target)
    if problems:
        raise TemplateError(problems)
    key = target_key(target)
    row = saved_template(target.workspace_id, key, kind)
    if row is None:
        row = MessageTemplate(workspace_id=target.workspace_id, target_key=key, kind=kind)
        db.session.add(row)
    row.subject = " ".join(subject.split())[:300]
    row.body_text = body_text.replace("\r\n", "\n")
    row.body_html = merge.sanitize_html(body_html) if body_html else None
    row.updated_by_id = getattr(actor, "id", None)
    row.updated_at = utcnow()
    db.session.flush()
    audit.record(target.workspace_id, actor, "message_template.saved", kind_of_target, target.id, kind=kind)
    db.session.commit()
    return row


def reset_template(target, kind: str, *, actor=None) -> bool:
    row = saved_template(target.workspace_id, target_key(target), kind)
    if row is None:
        return False
    db.session.delete(row)
    audit.record(target.workspace_id, actor, "message_template.reset", target_type_of(target), target.id, kind=kind)
    db.session.commit()
    return True


def _local_date(workspace: Workspace, instant: datetime | None) -> str:
    if instant is None:
        return ""
    local = instant.astimezone(ZoneInfo(workspace.timezone or "UTC"))
    return f"{local.day} {local:%B %Y}"


def researcher_name(target, plan: ImportPlan | None = None, invited_by: User | None = None) -> str:
    """Who the message comes from: the inviter, else the plan's or study's creator, else the team."""
    candidates = [invited_by]
    if plan is not None and plan.created_by_id:
        candidates.append(db.session.get(User, plan.created_by_id))
    study = target if isinstance(target, Study) else getattr(target, "study", None)
    if study is not None and study.created_by_id:
        candidates.append(db.session.get(User, study.created_by_id))
    for user in candidates:
        if user is not None and (user.name or "").strip():
            return user.name.strip()
    workspace = db.session.get(Workspace, target.workspace_id)
    return f"The {workspace.name} research team" if workspace else "The research team"


def deadline_of(target, expires_at: datetime | None) -> datetime | None:
    if isinstance(target, Study) and target.closes_at:
        return target.closes_at
    if isinstance(target, Activity):
        return target.due_at or target.study.closes_at or expires_at
    return expires_at


def participant_deadline(invitation: Invitation, target=None) -> str:
    """The reply-by date shown to the participant (workspace time zone), or ""."""
    target = target if target is not None else target_of(invitation)
    if target is None:
        return ""
    return _local_date(db.session.get(Workspace, invitation.workspace_id), deadline_of(target, invitation.expires_at))


def merge_values(target, participant: Participant, *, accept_link: str, unsubscribe_link: str,
                 plan: ImportPlan | None = None, invited_by: User | None = None,
                 expires_at: datetime | None = None) -> dict[str, str]:
    workspace = db.session.get(Workspace, target.workspace_id)
    values = {
        "first_name": (participant.first_name or "").strip() or "there",
        "researcher_name": researcher_name(target, plan, invited_by),
        "deadline": _local_date(workspace, deadline_of(target, expires_at)),
        "accept_link": accept_link,
        "unsubscribe_link": unsubscribe_link,
    }
    if isinstance(target, Study):
        values["study_name"] = target.name
    elif isinstance(target, Activity):
        values["task_name"] = target.name
        values["study_name"] = target.study.name
    else:
        values["community_name"] = target.name
    return values


def compose(invitation: Invitation, kind: str = "invitation", *, now: datetime | None = None) -> merge.Rendered:
    """The message for one invitation, with its own signed links."""
    now = now or utcnow()
    target = target_of(invitation)
    participant = db.session.get(Participant, invitation.participant_id)
    plan = db.session.get(ImportPlan, invitation.plan_id) if invitation.plan_id else None
    invited_by = db.session.get(User, invitation.invited_by_id) if invitation.invited_by_id else None
    expires_at = invitation.expires_at or now + timedelta(days=current_app.config["INVITATION_LINK_DAYS"])
    values = merge_values(target, participant, accept_link=respond_url(invitation),
                          unsubscribe_link=unsubscribe_url(participant, invitation), plan=plan,
                          invited_by=invited_by, expires_at=expires_at)
    return merge.render(template_for(invitation.workspace_id, invitation.target_key, kind), values)


def preview(target, kind: str, template: merge.Template, participant: Participant | None) -> merge.Rendered:
    """The message as ``participant`` would receive it; the links are examples that open nothing."""
    if participant is None:
        participant = Participant(first_name="Alex", workspace_id=target.workspace_id)
    example = public_url("invite.respond", token="example-link")
    values = merge_values(target, participant, accept_link=example,
                          unsubscribe_link=public_url("invite.unsubscribe", token="example-link"),
                          expires_at=utcnow() + timedelta(days=current_app.config["INVITATION_LINK_DAYS"]))
    return merge.render(template, values)


def preview_candidates(target, limit: int = 30) -> list[Participant]:
    """Real people to preview with: those invited to the target first, then its members, then the pool."""
    key = target_key(target)
    invited = db.session.scalars(select(Participant).join(Invitation, Invitation.participant_id == Participant.id)
                                 .where(Invitation.workspace_id == target.workspace_id, Invitation.target_key == key)
                                 .order_by(Invitation.id.desc()).limit(limit)).all()
    members = db.session.scalars(research.members_query(target).limit(limit)).all()
    people, seen = [], set()
    for person in [*invited, *members]:
        if person.id not in seen:
            seen.add(person.id)
            people.append(person)
    if not people:
        people = db.session.scalars(select(Participant).where(
            Participant.workspace_id == target.workspace_id, Participant.status == STATUS_ACTIVE)
            .order_by(Participant.id).limit(limit)).all()
    return people[:limit]


# --- who may be contacted -----------------------------------------------------------------------------

def contact_block(invitation: Invitation, participant: Participant | None = None) -> str | None:
    """Why this person must not be sent anything now (checked at every send), else None."""
    participant = participant or db.session.get(Participant, invitation.participant_id)
    if participant is None:
        return "the participant no longer exists"
    if participant.status != STATUS_ACTIVE:
        return f"the participant is {participant.status}"
    if participant.consent_status == CONSENT_OPTED_OUT:
        return "the participant opted out"
    if participant.consent_status != CONSENT_OPTED_IN:
        return "the participant's consent is no longer opted in"
    if not participant.email_key:
        return "the participant has no valid email address"
    if suppression.find(invitation.workspace_id, participant.email_key, participant.phone_key) is not None:
        return "the participant is on the suppression list"
    return None


def withdraw(invitation: Invitation, reason: str) -> bool:
    """End an open invitation (status withdrawn, with the reason); False if it was not open."""
    result = db.session.execute(
        update(Invitation).where(Invitation.id == invitation.id, Invitation.status.in_(OPEN_STATUSES))
        .values(status="withdrawn", withdrawn_reason=reason[:200], next_reminder_at=None)
        .execution_options(synchronize_session=False))
    db.session.refresh(invitation)
    return result.rowcount == 1


def withdraw_open_invitations(workspace_id: int, participant_id: int, reason: str) -> int:
    """Withdraw every open invitation of a participant (the caller commits); returns how many."""
    result = db.session.execute(
        update(Invitation).where(Invitation.workspace_id == workspace_id, Invitation.participant_id == participant_id,
                                 Invitation.status.in_(OPEN_STATUSES))
        .values(status="withdrawn", withdrawn_reason=reason[:200], next_reminder_at=None)
        .execution_options(synchronize_session=False))
    return result.rowcount


# --- the daily cap -------------------------------------------------------------------------------------

def _day_bounds(workspace: Workspace, now: datetime) -> tuple[datetime, datetime]:
    zone = ZoneInfo(workspace.timezone or "UTC")
    local = now.astimezone(zone)
    start = datetime.combine(local.date(), time(0), tzinfo=zone)
    end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def sent_today(workspace: Workspace, now: datetime) -> int:
    """Invitation and reminder messages of the workspace recorded today (its time zone)."""
    start, end = _day_bounds(workspace, now)
    # A failed message is not counted (it was not sent); sending it again checks the cap anew.
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.workspace_id == workspace.id, OutboxMessage.invitation_id.is_not(None),
        OutboxMessage.status.not_in(NOT_SENT_MESSAGES),
        OutboxMessage.created_at >= start, OutboxMessage.created_at < end)) or 0


def cap_room(workspace: Workspace, now: datetime) -> int:
    return max(0, (workspace.daily_invite_cap or 0) - sent_today(workspace, now))


def _cap_reason(workspace: Workspace) -> str:
    return (f"Waiting: the workspace's daily limit of {workspace.daily_invite_cap} invitation messages is "
            "reached; it will be sent the next day")


def _lock_workspace(workspace_id: int) -> Workspace:
    # Serialises the count and the new outbox row per workspace on PostgreSQL (the row lock is
    # held until send_mail commits the row); SQLite ignores FOR UPDATE and serialises writers.
    return db.session.scalar(select(Workspace).where(Workspace.id == workspace_id).with_for_update())


# --- sending ---------------------------------------------------------------------------------------------

def retry_intervals() -> list[int]:
    return list(current_app.config.get("INVITATION_RETRY_INTERVALS", DEFAULT_RETRY_INTERVALS))


def send_job_id(invitation_id: int) -> str:
    return f"invitation-{invitation_id}-send"


def reminder_job_id(invitation_id: int, number: int) -> str:
    return f"invitation-{invitation_id}-reminder-{number}"


def _in_flight(job_id: str, connection) -> bool:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        status = Job.fetch(job_id, connection=connection).get_status(refresh=True)
    except NoSuchJobError:
        return False
    return status in ("queued", "started", "scheduled", "deferred")


def _enqueue(func: str, job_id: str, *args, connection=None) -> bool:
    from rq import Retry

    from core.queues import enqueue, redis_connection

    connection = connection or redis_connection()
    if _in_flight(job_id, connection):
        return False
    enqueue(func, *args, queue="mail", job_id=job_id, connection=connection,
            retry=Retry(max=SEND_RETRIES, interval=retry_intervals()), failure_ttl=7 * 24 * 3600)
    return True


def enqueue_send(invitation_ids: Iterable[int], connection=None) -> int:
    """Queue the first message of each (committed, pending) invitation; returns how many were
    queued (an invitation whose send is already queued or running is not queued twice)."""
    queued = 0
    for invitation_id in sorted({int(i) for i in invitation_ids}):
        queued += _enqueue("jobs.invitations:send_invitation", send_job_id(invitation_id), invitation_id,
                           connection=connection)
    return queued


def _message_row(invitation_id: int, number: int) -> OutboxMessage | None:
    """The recorded message number ``number`` of an invitation (0: the invitation, n: reminder n).
    A message to an address the mail server refused for good does not count: once the address
    is corrected, that message is made anew for the new address."""
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.invitation_id == invitation_id,
                                                          OutboxMessage.status != REFUSED)
                              .order_by(OutboxMessage.id)).all()
    return rows[number] if len(rows) > number else None


def _address_key(address: str | None) -> str:
    return (address or "").strip().lower()


def refused_addresses(invitation_id: int) -> set[str]:
    """The addresses (lower case) the mail server refused for good for this invitation."""
    return {_address_key(a) for a in db.session.scalars(select(OutboxMessage.to_addr).where(
        OutboxMessage.invitation_id == invitation_id, OutboxMessage.status == REFUSED))}


def _mark_refused(exc: Exception) -> None:
    """Remember on its outbox row that this message's address was refused for good (never sent
    to again for this invitation; the row no longer stands for the message, see _message_row)."""
    outbox_id = getattr(exc, "outbox_id", None)
    if outbox_id is not None:
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id)
                           .values(status=REFUSED).execution_options(synchronize_session=False))


def _refused_before(invitation: Invitation) -> str | None:
    """The participant's current address when it was already refused for this invitation."""
    participant = db.session.get(Participant, invitation.participant_id)
    address = _address_key(getattr(participant, "email", None))
    return participant.email if address and address in refused_addresses(invitation.id) else None


def rearm_refused(workspace_id: int, participant_id: int, *, now: datetime | None = None) -> list[int]:
    """The participant's email changed: each invitation of theirs that stopped because the mail
    server refused their address (cause "recipient") is armed again for the new address, unless
    that address was refused too. A failed invitation goes back to "pending" (sent through the
    normal queue and the daily cap); a sent one whose reminders stopped has its reminder due
    again. The failure is cleared. The caller commits and queues the returned pending ids
    (``enqueue_send``; the tick would send them too). Returns the ids armed again."""
    now = now or utcnow()
    participant = db.session.get(Participant, participant_id)
    address = _address_key(getattr(participant, "email", None))
    if participant is None or not address:
        return []
    rows = db.session.scalars(select(Invitation).where(
        Invitation.workspace_id == workspace_id, Invitation.participant_id == participant_id,
        Invitation.failure_cause == "recipient", Invitation.status.in_(("failed", "sent")))).all()
    armed = []
    for invitation in rows:
        if address in refused_addresses(invitation.id):
            continue  # never sent again to an address refused before
        if invitation.status == "failed":
            invitation.status = "pending"
            invitation.retry_at = None
        else:  # reminders stopped at reminder n (claimed): hand it back, due now
            if invitation.next_reminder_at is not None:
                continue
            invitation.reminders_sent = max(0, (invitation.reminders_sent or 0) - 1)
            invitation.next_reminder_at = now
        invitation.failure_cause = None
        invitation.last_error = None
        audit.record(workspace_id, "system", "invitation.rearmed", "invitation", invitation.id,
                     participant_id=participant_id, reason="the participant's email address changed")
        armed.append(invitation.id)
    return armed


def _reminder_at(invitation: Invitation, plan_days: list, index: int) -> datetime | None:
    """When reminder ``index + 1`` is due: the plan's days after the invitation was sent."""
    days = sorted({int(d) for d in plan_days or [] if str(d).strip().lstrip("-").isdigit() and int(d) > 0})
    if index >= len(days) or invitation.sent_at is None:
        return None
    return invitation.sent_at + timedelta(days=days[index])


def _plan_days(invitation: Invitation) -> list:
    plan = db.session.get(ImportPlan, invitation.plan_id) if invitation.plan_id else None
    return list(plan.reminder_days or []) if plan is not None else []


def _counted(message: OutboxMessage | None) -> bool:
    """Whether a recorded message already counts towards today's cap (queued or sent; a failed
    one does not, so sending it again must find room like a new one)."""
    return message is not None and message.status not in NOT_SENT_MESSAGES


def _deliver_or_send(invitation: Invitation, number: int, kind: str, now: datetime) -> OutboxMessage:
    existing = _message_row(invitation.id, number)
    if existing is not None:
        return deliver(existing.id)  # a retry: the same recorded message, never a second one
    participant = db.session.get(Participant, invitation.participant_id)
    rendered = compose(invitation, kind, now=now)
    return send_mail(participant.email, rendered.subject, rendered.text, html=rendered.html,
                     workspace_id=invitation.workspace_id, invitation_id=invitation.id)


def failure_cause(exc: Exception) -> str:
    """Which incident a failed send belongs to: "links", "mail" or "message"; "recipient" for a
    permanent refusal of this person's address (no incident: nothing is wrong with sending)."""
    if isinstance(exc, LinkError):
        return "links"
    if isinstance(exc, MailError):
        return "recipient" if exc.permanent else "mail"
    return "message"


def _refused(exc: Exception) -> bool:
    return isinstance(exc, MailError) and exc.permanent


def retry_delay(invitation: Invitation) -> timedelta:
    """How long a finally failed send waits before the tick tries it again: the configured
    minutes, doubling with each round of attempts that failed, at most a day."""
    base = timedelta(minutes=current_app.config.get("INVITATION_FAILED_RETRY_MINUTES", 60))
    rounds = max(1, -(-(invitation.send_attempts or 0) // (SEND_RETRIES + 1)))
    return min(timedelta(days=1), base * 2 ** min(rounds - 1, 10))


def _report_failure(workspace_id: int, exc: Exception) -> None:
    """Open (or count on) the workspace's incident for this cause. The failure is already on the
    invitation: a problem while reporting it must not hide the send's own error."""
    from services.notifications import notify_invitation_send_failed

    if _refused(exc):
        return

    try:
        notify_invitation_send_failed(workspace_id, failure_cause(exc), str(exc)[:500])
    except Exception:  # noqa: BLE001 - the send's error is what the job raises and retries on
        log.exception("could not open the invitation incident of workspace %s", workspace_id)
        db.session.rollback()


def _report_success(workspace_id: int) -> None:
    from services.notifications import notify_invitation_sent

    try:
        notify_invitation_sent(workspace_id)
    except Exception:  # noqa: BLE001 - the message went; the sweep of incidents is not its concern
        log.exception("could not close the invitation incidents of workspace %s", workspace_id)
        db.session.rollback()


def send(invitation_id: int, *, now: datetime | None = None, final_attempt: bool = True) -> str:
    """Send an invitation's first message. Returns "sent", "withdrawn" (may not be contacted or the
    study closed), "deferred" (daily cap), "refused" (the mail server refused the address for good:
    "failed", never retried) or "skipped" (not pending). A mail failure is recorded
    on the invitation and raised (MailError) for the job to retry; on the final attempt the
    invitation becomes "failed"."""
    now = now or utcnow()
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.status != "pending":
        return "skipped"
    reason = contact_block(invitation) or target_closed(target_of(invitation), now)
    if reason:
        withdraw(invitation, f"Not sent: {reason}")
        db.session.commit()
        return "withdrawn"
    refused_before = _refused_before(invitation)
    if refused_before:
        invitation.status = "failed"
        invitation.retry_at = None
        invitation.failure_cause = "recipient"
        invitation.last_error = (f"The mail server refused this address before ({refused_before}): "
                                 "it is not sent to again")[:2000]
        db.session.commit()
        return "refused"
    workspace = _lock_workspace(invitation.workspace_id)
    if not _counted(_message_row(invitation.id, 0)) and cap_room(workspace, now) <= 0:
        invitation.last_error = _cap_reason(workspace)
        db.session.commit()
        return "deferred"
    try:
        _deliver_or_send(invitation, 0, "invitation", now)
    except (MailError, InvitationError) as exc:
        db.session.rollback()
        invitation = db.session.get(Invitation, invitation_id)
        invitation.send_attempts = (invitation.send_attempts or 0) + 1
        invitation.last_error = str(exc)[:2000]
        invitation.failure_cause = failure_cause(exc)
        if _refused(exc):  # the address itself was refused: never tried again, no incident
            _mark_refused(exc)
            invitation.status = "failed"
            invitation.retry_at = None
            invitation.last_error = f"The mail server refused this address: {exc}"[:2000]
            db.session.commit()
            return "refused"
        if final_attempt:
            invitation.status = "failed"
            invitation.retry_at = now + retry_delay(invitation)
        workspace_id = invitation.workspace_id
        db.session.commit()
        _report_failure(workspace_id, exc)
        raise
    invitation.status = "sent"
    invitation.sent_at = now
    invitation.send_attempts = (invitation.send_attempts or 0) + 1
    invitation.last_error = None
    invitation.failure_cause = None
    invitation.retry_at = None
    invitation.expires_at = now + timedelta(days=current_app.config["INVITATION_LINK_DAYS"])
    invitation.reminders_sent = 0
    invitation.next_reminder_at = _reminder_at(invitation, _plan_days(invitation), 0)
    db.session.commit()
    _report_success(invitation.workspace_id)
    return "sent"


def claim_reminder(invitation: Invitation, now: datetime) -> int | None:
    """Take reminder number n+1 of a sent invitation, once across every scheduler: the UPDATE only
    matches while reminders_sent is still n and the reminder is due. Returns its number or None."""
    number = (invitation.reminders_sent or 0) + 1
    following = _reminder_at(invitation, _plan_days(invitation), number)
    result = db.session.execute(
        update(Invitation).where(Invitation.id == invitation.id, Invitation.status == "sent",
                                 Invitation.reminders_sent == number - 1, Invitation.next_reminder_at <= now)
        .values(reminders_sent=number, next_reminder_at=following)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return number if result.rowcount == 1 else None


def _stop_reminders(invitation: Invitation, reason: str, withdraw_it: bool) -> None:
    if withdraw_it:
        withdraw(invitation, f"Reminders stopped: {reason}")
    else:
        db.session.execute(update(Invitation).where(Invitation.id == invitation.id)
                           .values(next_reminder_at=None).execution_options(synchronize_session=False))
    db.session.commit()


def send_reminder(invitation_id: int, number: int, *, now: datetime | None = None,
                  final_attempt: bool = True) -> str:
    """Send claimed reminder ``number``. "sent", "stopped" (a response, an opt-out, suppression or
    the study closing came first), "deferred" (daily cap: the claim is handed back for the next
    day) or "skipped" (not this reminder's turn)."""
    now = now or utcnow()
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.status != "sent" or invitation.reminders_sent != number:
        return "skipped"
    blocked = contact_block(invitation)
    closed = target_closed(target_of(invitation), now)
    if blocked or closed:
        _stop_reminders(invitation, blocked or closed, withdraw_it=bool(blocked))
        return "stopped"
    if invitation.expires_at is not None and invitation.expires_at <= now:
        _stop_reminders(invitation, "the invitation expired", withdraw_it=False)
        return "stopped"
    refused_before = _refused_before(invitation)
    if refused_before:
        invitation.failure_cause = "recipient"
        invitation.last_error = (f"Reminder {number}: the mail server refused this address before "
                                 f"({refused_before}): it is not sent to again")[:2000]
        _stop_reminders(invitation, "the mail server refused this address", withdraw_it=False)
        return "stopped"
    workspace = _lock_workspace(invitation.workspace_id)
    if not _counted(_message_row(invitation.id, number)) and cap_room(workspace, now) <= 0:
        _, next_day = _day_bounds(workspace, now)
        db.session.execute(update(Invitation).where(Invitation.id == invitation.id,
                                                    Invitation.reminders_sent == number)
                           .values(reminders_sent=number - 1, next_reminder_at=next_day,
                                   last_error=_cap_reason(workspace))
                           .execution_options(synchronize_session=False))
        db.session.commit()
        return "deferred"
    try:
        _deliver_or_send(invitation, number, "reminder", now)
    except (MailError, InvitationError) as exc:
        db.session.rollback()
        invitation = db.session.get(Invitation, invitation_id)
        invitation.last_error = f"Reminder {number}: {exc}"[:2000]
        invitation.failure_cause = failure_cause(exc)
        workspace_id = invitation.workspace_id
        if _refused(exc):
            _mark_refused(exc)
        db.session.commit()
        if _refused(exc):  # the address is refused now: no more reminders to it, no incident
            invitation.last_error = f"Reminder {number}: the mail server refused this address: {exc}"[:2000]
            _stop_reminders(invitation, "the mail server refused this address", withdraw_it=False)
            return "stopped"
        if final_attempt:
            # The claim is handed back: the reminder is due again later, never lost (the tick
            # claims it anew; a message already recorded for it is the one sent then).
            db.session.execute(update(Invitation).where(Invitation.id == invitation_id,
                                                        Invitation.reminders_sent == number)
                               .values(reminders_sent=number - 1, next_reminder_at=now + retry_delay(invitation))
                               .execution_options(synchronize_session=False))
            db.session.commit()
        _report_failure(workspace_id, exc)
        raise
    invitation.last_error = None
    invitation.failure_cause = None
    db.session.commit()
    _report_success(invitation.workspace_id)
    return "sent"


def expire_overdue(now: datetime) -> int:
    result = db.session.execute(
        update(Invitation).where(Invitation.status == "sent", Invitation.expires_at.is_not(None),
                                 Invitation.expires_at <= now)
        .values(status="expired", next_reminder_at=None).execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount


def release_failed(now: datetime) -> int:
    """Failed invitations whose ``retry_at`` has come go back to "pending" (their error stays
    shown until a send works); the tick then queues them within the daily cap."""
    result = db.session.execute(
        update(Invitation).where(Invitation.status == "failed", Invitation.retry_at.is_not(None),
                                 Invitation.retry_at <= now)
        .values(status="pending", retry_at=None).execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount


@dataclass
class TickResult:
    expired: int = 0
    reminders: list[tuple[int, int]] = field(default_factory=list)  # (invitation id, reminder number)
    stopped: int = 0
    sends: list[int] = field(default_factory=list)
    retried: int = 0  # failed invitations whose retry time came: pending again, sent below


def tick(now: datetime | None = None, *, enqueue: bool = True, connection=None) -> TickResult:
    """The periodic task: expire, claim due reminders, and send pending invitations the daily cap
    held back (or that were never queued), within each workspace's room for today."""
    now = now or utcnow()
    result = TickResult(expired=expire_overdue(now), retried=release_failed(now))
    due = db.session.scalars(select(Invitation).where(Invitation.status == "sent",
                                                      Invitation.next_reminder_at.is_not(None),
                                                      Invitation.next_reminder_at <= now)
                             .order_by(Invitation.next_reminder_at, Invitation.id).limit(TICK_BATCH)).all()
    rooms: dict[int, int] = {}
    for invitation in due:
        blocked = contact_block(invitation)
        closed = target_closed(target_of(invitation), now)
        if blocked or closed:
            _stop_reminders(invitation, blocked or closed, withdraw_it=bool(blocked))
            result.stopped += 1
            continue
        workspace = db.session.get(Workspace, invitation.workspace_id)
        if rooms.setdefault(workspace.id, cap_room(workspace, now)) <= 0:
            continue  # stays due; claimed on a later tick when the day has room
        number = claim_reminder(invitation, now)
        if number is None:
            continue  # another scheduler took it
        rooms[workspace.id] -= 1
        result.reminders.append((invitation.id, number))
        if enqueue:
            _enqueue("jobs.invitations:send_reminder", reminder_job_id(invitation.id, number), invitation.id,
                     number, connection=connection)
    # Pending invitations: created more than a minute ago (the sync queues its own at once).
    pending = db.session.scalars(select(Invitation).where(Invitation.status == "pending",
                                                          Invitation.created_at <= now - timedelta(minutes=1))
                                 .order_by(Invitation.id).limit(TICK_BATCH)).all()
    for invitation in pending:
        workspace = db.session.get(Workspace, invitation.workspace_id)
        if rooms.setdefault(workspace.id, cap_room(workspace, now)) <= 0:
            continue
        rooms[workspace.id] -= 1
        result.sends.append(invitation.id)
    if enqueue and result.sends:
        enqueue_send(result.sends, connection=connection)
    return result


# --- the participant's answers -----------------------------------------------------------------------------

def respond(invitation: Invitation, answer: str, *, now: datetime | None = None) -> str:
    """Accept or decline an open invitation. Returns the invitation's status afterwards, or
    "closed" when the study no longer takes people. Accepting adds the person to the study,
    task (and its study) or community, added via "invitation"."""
    if answer not in ("accept", "decline"):
        raise InvitationError(f"unknown answer {answer!r}")
    now = now or utcnow()
    if invitation.status not in OPEN_STATUSES:
        return invitation.status
    target = target_of(invitation)
    if answer == "accept" and target_closed(target, now):
        return "closed"
    status = "accepted" if answer == "accept" else "declined"
    result = db.session.execute(
        update(Invitation).where(Invitation.id == invitation.id, Invitation.status.in_(OPEN_STATUSES))
        .values(status=status, responded_at=now, next_reminder_at=None)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # answered in another tab a moment ago
        db.session.rollback()
        db.session.refresh(invitation)
        return invitation.status
    audit.record(invitation.workspace_id, PARTICIPANT_ACTOR, f"invitation.{status}", "invitation", invitation.id,
                 participant_id=invitation.participant_id, target=invitation.target_key)
    if status == "accepted" and target is not None:
        research.add_participants(target, [invitation.participant_id], actor=PARTICIPANT_ACTOR, via="invitation")
    db.session.commit()
    db.session.refresh(invitation)
    return invitation.status


def unsubscribe(participant: Participant, invitation: Invitation | None = None) -> int:
    """The person asked for no more messages: suppression list (audited), consent opted out,
    open invitations withdrawn. Returns how many invitations were withdrawn. Idempotent."""
    workspace = db.session.get(Workspace, participant.workspace_id)
    # By the participant's own keys (email, even one email-validator refuses, and phone): what
    # the sync and the send-time check match, so a later sync cannot opt them back in.
    suppression.add_for_participant(workspace, participant, reason="Unsubscribed from a research invitation",
                                    source="unsubscribe", actor=UNSUBSCRIBE_ACTOR)
    if participant.consent_status != CONSENT_OPTED_OUT:
        audit.record(workspace.id, UNSUBSCRIBE_ACTOR, "participant.consent_changed", "participant", participant.id,
                     before=participant.consent_status, after=CONSENT_OPTED_OUT,
                     invitation_id=getattr(invitation, "id", None))
        participant.consent_status = CONSENT_OPTED_OUT
    withdrawn = withdraw_open_invitations(workspace.id, participant.id, "The participant unsubscribed")
    db.session.commit()
    return withdrawn


# --- for the run and operations pages ---------------------------------------------------------------------

def failures_for_run(run_id: int) -> list[tuple[Invitation, Participant]]:
    """Invitations of a run whose last send (the invitation's or a reminder's) failed, with the
    person, newest first: finally failed (waiting for ``retry_at``) or still being retried."""
    return db.session.execute(select(Invitation, Participant).join(Participant, Participant.id == Invitation.participant_id)
                              .where(Invitation.run_id == run_id,
                                     or_(Invitation.status == "failed",
                                         Invitation.status.in_(OPEN_STATUSES) & Invitation.failure_cause.is_not(None)))
                              .order_by(Invitation.id.desc())).all()


# How a run's invitation stands now, in the words the run page and its CSV use.
SEND_STATES = {"pending": "waiting", "sent": "sent", "failed": "failed", "accepted": "sent",
               "declined": "sent", "expired": "sent", "withdrawn": "withdrawn"}


def send_state(invitation: Invitation | None) -> str:
    """"sent" (its first message went), "waiting" (queued, held by the daily cap or being
    retried), "failed" (waiting for a later retry, or its address was refused: "refused"),
    "withdrawn" (not sent: the person may no longer be contacted), or "" when there is none."""
    if invitation is None:
        return ""
    if invitation.failure_cause == "recipient" and invitation.status == "failed":
        return "refused"
    if invitation.status == "withdrawn" and invitation.sent_at is not None:
        return "sent"
    return SEND_STATES.get(invitation.status, invitation.status)


def run_send_counts(run_id: int) -> dict[str, int]:
    """How the invitations a run queued stand now: {"sent": n, "waiting": n, "failed": n,
    "refused": n, "withdrawn": n} (only the states that occur)."""
    counts: dict[str, int] = {}
    for invitation in db.session.scalars(select(Invitation).where(Invitation.run_id == run_id)):
        state = send_state(invitation)
        counts[state] = counts.get(state, 0) + 1
    return counts


def send_states_for(plan_id: int | None, run_id: int, participant_ids: Iterable[int]) -> dict[int, str]:
    """participant id -> ``send_state`` of their invitation from this run, else their newest
    invitation of the plan (one invited again by this run was made by an earlier one)."""
    ids = sorted({int(i) for i in participant_ids if i is not None})
    states: dict[int, str] = {}
    for start in range(0, len(ids), TICK_BATCH):
        chunk = ids[start:start + TICK_BATCH]
        rows = db.session.scalars(select(Invitation).where(
            Invitation.participant_id.in_(chunk),
            or_(Invitation.run_id == run_id, Invitation.plan_id == plan_id) if plan_id else Invitation.run_id == run_id)
            .order_by(Invitation.id)).all()
        ours: set[int] = set()
        for invitation in rows:  # this run's invitation wins, else the newest (ordered by id)
            if invitation.participant_id in ours:
                continue
            states[invitation.participant_id] = send_state(invitation)
            if invitation.run_id == run_id:
                ours.add(invitation.participant_id)
    return states


def invitations_for_target(target, limit: int = 200) -> list[tuple[Invitation, Participant]]:
    return db.session.execute(select(Invitation, Participant).join(Participant, Participant.id == Invitation.participant_id)
                              .where(Invitation.workspace_id == target.workspace_id,
                                     Invitation.target_key == target_key(target))
                              .order_by(Invitation.id.desc()).limit(limit)).all()


def messages_of(invitation: Invitation) -> list[OutboxMessage]:
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.invitation_id == invitation.id)
                              .order_by(OutboxMessage.id)).all()


def consent_evidence_record(*, consent: str, values_seen: Iterable[tuple[str, Any]], org_id: str | None,
                            object_name: str | None, record_id: str | None, plan: ImportPlan | None = None,
                            confirmed_by: User | None = None, run_id: int | None = None,
                            seen_at: datetime | None = None) -> dict:
    """The JSON an invitation keeps of the consent it relied on (see the module docstring)."""
    if plan is not None and confirmed_by is None and plan.consent_confirmed_by_id:
        confirmed_by = db.session.get(User, plan.consent_confirmed_by_id)
    return {
        "consent": consent,
        "values_seen": [[str(k), v] for k, v in values_seen],
        "source": {"system": "salesforce", "org_id": org_id, "object": object_name, "record_id": record_id},
        "confirmation": {
            "text": getattr(plan, "consent_confirmation_text", None),
            "confirmed_by": getattr(confirmed_by, "name", None),
            "confirmed_by_id": getattr(confirmed_by, "id", None),
            "confirmed_at": plan.consent_confirmed_at.isoformat() if plan is not None and plan.consent_confirmed_at else None,
        },
        "plan_id": getattr(plan, "id", None), "plan_name": getattr(plan, "name", None), "run_id": run_id,
        "seen_at": (seen_at or utcnow()).isoformat(),
    }


@dataclass
class EvidenceView:
    consent: str | None = None
    values_seen: list[tuple[str, str]] = field(default_factory=list)
    source_system: str | None = None
    source_object: str | None = None
    source_record_id: str | None = None
    source_org_id: str | None = None
    confirmation_text: str | None = None
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None
    plan_name: str | None = None
    seen_at: datetime | None = None

    @property
    def empty(self) -> bool:
        return not (self.consent or self.values_seen or self.source_record_id or self.confirmation_text)


def _as_datetime(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def _display(value) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def evidence_view(invitation: Invitation) -> EvidenceView:
    """What the invitation relied on, for display (plan confirmation as a fallback)."""
    raw = invitation.consent_evidence if isinstance(invitation.consent_evidence, dict) else {}
    view = EvidenceView(consent=raw.get("consent") or raw.get("decision"))
    seen = raw.get("values_seen") or raw.get("values") or raw.get("evidence") or []
    if isinstance(seen, dict):
        seen = list(seen.items())
    for item in seen:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            view.values_seen.append((str(item[0]), _display(item[1])))
    if not view.values_seen and "value_seen" in raw:
        # The sync sink's shape: {"value_seen": {field: value}}; older rows: one value and "field".
        value_seen = raw["value_seen"]
        if isinstance(value_seen, dict):
            view.values_seen = [(str(k), _display(v)) for k, v in value_seen.items()]
        else:
            view.values_seen.append((str(raw.get("field") or "Consent"), _display(value_seen)))
    source = raw.get("source") if isinstance(raw.get("source"), dict) else {}
    view.source_system = source.get("system") or raw.get("source_system") or "salesforce"
    view.source_object = source.get("object") or raw.get("object_name") or raw.get("object")
    view.source_record_id = source.get("record_id") or raw.get("record_id")
    view.source_org_id = source.get("org_id") or raw.get("org_id")
    if not view.source_record_id and isinstance(raw.get("source_record"), str):
        # "Contact 003..." (sync.mapping.SourceRef as text)
        object_name, _, record_id = raw["source_record"].strip().rpartition(" ")
        view.source_object = view.source_object or object_name or None
        view.source_record_id = record_id or None
    confirmation = raw.get("confirmation")
    if isinstance(confirmation, str):
        confirmation = {"text": confirmation}
    confirmation = confirmation if isinstance(confirmation, dict) else {}
    view.confirmation_text = confirmation.get("text") or raw.get("confirmation_text")
    confirmed_by = confirmation.get("confirmed_by") or raw.get("confirmed_by")
    if isinstance(confirmed_by, int) and not isinstance(confirmed_by, bool):
        user = db.session.get(User, confirmed_by)  # the sink records the confirming user's id
        confirmed_by = user.name if user else None
    view.confirmed_by = confirmed_by if isinstance(confirmed_by, str) else None
    view.confirmed_at = _as_datetime(confirmation.get("confirmed_at") or raw.get("confirmed_at"))
    plan = db.session.get(ImportPlan, invitation.plan_id) if invitation.plan_id else None
    if plan is not None:
        view.plan_name = raw.get("plan_name") or plan.name
        view.confirmation_text = view.confirmation_text or plan.consent_confirmation_text
        view.confirmed_at = view.confirmed_at or plan.consent_confirmed_at
        if not view.confirmed_by and plan.consent_confirmed_by_id:
            user = db.session.get(User, plan.consent_confirmed_by_id)
            view.confirmed_by = user.name if user else None
    else:
        view.plan_name = raw.get("plan_name")
    view.seen_at = _as_datetime(raw.get("seen_at"))
    return view


__all__ = ["enqueue_send", "send", "send_reminder", "tick", "respond", "unsubscribe", "failures_for_run",
           "evidence_view", "consent_evidence_record", "compose", "preview", "template_for", "save_template",
           "reset_template", "invitation_for_token", "unsubscribe_subject", "respond_url", "unsubscribe_url",
           "new_invitation", "withdraw_open_invitations", "contact_block", "rearm_refused", "TemplateError", "InvitationError"]

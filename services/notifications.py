"""Incidents: a failing plan, a connection needing reconnect or invitation emails that cannot be
sent, told to admins once until it recovers.

Two hooks, called by whoever changes the state (and by the periodic sweep below, so an incident
is never missed when a caller forgets or a process dies between the change and the call):

* ``notify_run_finished(run)``: after a run reaches a final status. The plan's latest finished
  run decides: failed or interrupted opens (or keeps open) the plan's incident; succeeded closes
  it. Partial (daily API limit, resumes by itself) and skipped (caps) change nothing.
* ``notify_connection_status(connection)``: after a connection's status changes. Needs reconnect
  opens the connection's incident; connected (a reconnect) or disconnected (someone chose to)
  closes it.

Invitation sending has two more (called by ``services.invitations``, not by the sweep: only a
send attempt knows whether sending works):

* ``notify_invitation_send_failed(workspace_id, cause, reason)``: a send of an invitation or a
  reminder failed. One incident per cause ("invitations:links" when no link can be made,
  "invitations:mail" when the mail server fails, "invitations:message" when the message cannot
  be made), not one per email; each further failure raises ``occurrences``.
* ``notify_invitation_sent(workspace_id)``: a send worked, so sending works again: the open
  invitation incidents of the workspace close, and invitations and reminders waiting to be tried
  again after a failure are due at once (the periodic tick sends them).

Both are idempotent: calling them twice for one state changes nothing and mails no one twice.
An incident is one row per subject ("plan:5", "connection:2") while open; the workspace admins
are emailed when it opens (``notified_at``); later failures only raise ``occurrences`` (for a
plan: the failed runs since it opened, counted from the runs themselves, so a repeated call never
double-counts). Open incidents show as a banner on every page (``open_incidents``).
"""
from __future__ import annotations

import logging
import zlib
from datetime import timedelta

from flask import current_app, url_for
from sqlalchemy import func, select, text, update

from core.extensions import db
from core.mail import MailError, send_mail
from models import ImportPlan, Incident, Membership, SalesforceConnection, SyncRun, User
from models.accounts import ROLE_ADMIN
from models.integrations import CONNECTION_CONNECTED, CONNECTION_DISCONNECTED, CONNECTION_NEEDS_RECONNECT
from models.runs import RUN_FAILED, RUN_INTERRUPTED, RUN_SUCCEEDED
from models.types import utcnow

log = logging.getLogger("terapage.notifications")

LATE_NOTICE = timedelta(minutes=5)  # an incident email sent later than this says when it began
KIND_RUN_FAILED = "run_failed"
KIND_NEEDS_RECONNECT = "needs_reconnect"
KIND_INVITATIONS_FAILING = "invitations_failing"
INVITATION_CAUSES = ("links", "mail", "message")
_INVITATION_WHAT = {
    "links": "Invitation emails cannot be sent: their links cannot be made",
    "mail": "Invitation emails cannot be sent: the mail server did not accept them",
    "message": "Invitation emails cannot be sent: the message could not be made",
}
_SUBJECTS = {
    KIND_RUN_FAILED: "Terapage: an import is failing",
    KIND_NEEDS_RECONNECT: "Terapage: a Salesforce connection needs reconnecting",
    KIND_INVITATIONS_FAILING: "Terapage: invitation emails cannot be sent",
}
FAILED_STATUSES = (RUN_FAILED, RUN_INTERRUPTED)
FINAL_STATUSES = (RUN_FAILED, RUN_INTERRUPTED, RUN_SUCCEEDED, "partial", "skipped")
SWEEP_LOOKBACK = timedelta(hours=6)


def plan_key(plan_id: int) -> str:
    return f"plan:{plan_id}"


def connection_key(connection_id: int) -> str:
    return f"connection:{connection_id}"


def invitations_key(cause: str) -> str:
    return f"invitations:{cause}"


# --- reading ------------------------------------------------------------------------------------

def open_incident(workspace_id: int, subject_key: str) -> Incident | None:
    return db.session.scalar(select(Incident).where(
        Incident.workspace_id == workspace_id, Incident.subject_key == subject_key,
        Incident.closed_at.is_(None)).order_by(Incident.id.desc()).limit(1))


def open_incidents(workspace_id: int) -> list[Incident]:
    """The workspace's open incidents, newest first (the banner)."""
    return db.session.scalars(select(Incident).where(
        Incident.workspace_id == workspace_id, Incident.closed_at.is_(None))
        .order_by(Incident.opened_at.desc(), Incident.id.desc())).all()


def recent_incidents(workspace_id: int, limit: int = 50) -> list[Incident]:
    return db.session.scalars(select(Incident).where(Incident.workspace_id == workspace_id)
                              .order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(limit)).all()


def admin_emails(workspace_id: int) -> list[str]:
    return db.session.scalars(select(User.email).join(Membership, Membership.user_id == User.id).where(
        Membership.workspace_id == workspace_id, Membership.role == ROLE_ADMIN, User.active.is_(True))
        .order_by(User.email)).all()


# --- the hooks ----------------------------------------------------------------------------------

def notify_run_finished(run: SyncRun) -> Incident | None:
    """Open, count or close the plan's incident from the plan's latest finished run.

    Returns the plan's incident when one is open afterwards, else None. Commits.
    """
    latest = db.session.scalar(select(SyncRun).where(
        SyncRun.plan_id == run.plan_id, SyncRun.status.in_(FINAL_STATUSES), SyncRun.finished_at.is_not(None))
        .order_by(SyncRun.finished_at.desc(), SyncRun.id.desc()).limit(1))
    if latest is None:
        return open_incident(run.workspace_id, plan_key(run.plan_id))
    key = plan_key(latest.plan_id)
    if latest.status == RUN_SUCCEEDED:
        _close(latest.workspace_id, key)
        return None
    if latest.status not in FAILED_STATUSES:
        return open_incident(latest.workspace_id, key)
    plan = db.session.get(ImportPlan, latest.plan_id)
    plan_name = plan.name if plan is not None else f"plan {latest.plan_id}"
    reason = latest.reason or latest.status
    message = f"The import “{plan_name}” {'failed' if latest.status == RUN_FAILED else 'was interrupted'}: {reason}"
    return _open(latest.workspace_id, KIND_RUN_FAILED, key, message, opened_at=latest.finished_at,
                 link=_url("operations.run_detail", run_id=latest.id),
                 count=lambda incident: _failed_runs_since(latest.plan_id, incident.opened_at))


def notify_connection_status(connection: SalesforceConnection) -> Incident | None:
    """Open the connection's incident when it needs reconnect; close it when connected or
    deliberately disconnected. Returns the open incident, if any. Commits."""
    key = connection_key(connection.id)
    if connection.status in (CONNECTION_CONNECTED, CONNECTION_DISCONNECTED):
        _close(connection.workspace_id, key)
        return None
    if connection.status != CONNECTION_NEEDS_RECONNECT:
        return open_incident(connection.workspace_id, key)
    reason = connection.status_reason or "Salesforce no longer accepts the connection's token."
    message = (f"The Salesforce connection “{connection.name}” ({connection.org_name or connection.org_id or 'org'}) "
               f"needs to be reconnected: {reason} Scheduled imports on it are held until then.")
    return _open(connection.workspace_id, KIND_NEEDS_RECONNECT, key, message, opened_at=utcnow(),
                 link=_url("operations.connection_status", connection_id=connection.id), count=None)


def notify_invitation_send_failed(workspace_id: int, cause: str, reason: str) -> Incident:
    """Open the workspace's incident for this cause of failed invitation sends, or count one more
    failure on it. Admins are emailed when it opens, not for each email that fails. Commits."""
    if cause not in INVITATION_CAUSES:
        raise ValueError(f"unknown cause {cause!r}")
    message = (f"{_INVITATION_WHAT[cause]} ({reason}). Nothing is lost: the invitations and reminders "
               "are kept and sent once sending works again.")
    return _open(workspace_id, KIND_INVITATIONS_FAILING, invitations_key(cause), message[:4000],
                 opened_at=utcnow(), link=_url("operations.incidents"),
                 count=lambda incident: (incident.occurrences or 1) + 1)


def notify_invitation_sent(workspace_id: int) -> int:
    """A send worked: close the workspace's open invitation incidents and make every send waiting
    after a failure due now. Returns how many incidents closed (one query when none is open)."""
    from models import Invitation

    keys = [invitations_key(cause) for cause in INVITATION_CAUSES]
    incidents = db.session.scalars(select(Incident).where(
        Incident.workspace_id == workspace_id, Incident.subject_key.in_(keys), Incident.closed_at.is_(None))).all()
    if not incidents:
        return 0
    now = utcnow()
    for incident in incidents:
        incident.closed_at = now
    # What failed while the incident was open is tried again by the next tick, not in an hour.
    db.session.execute(update(Invitation).where(
        Invitation.workspace_id == workspace_id, Invitation.status == "failed", Invitation.retry_at > now)
        .values(retry_at=now).execution_options(synchronize_session=False))
    db.session.execute(update(Invitation).where(
        Invitation.workspace_id == workspace_id, Invitation.status == "sent", Invitation.failure_cause.is_not(None),
        Invitation.next_reminder_at > now).values(next_reminder_at=now).execution_options(synchronize_session=False))
    db.session.commit()
    return len(incidents)


# --- the periodic sweep ----------------------------------------------------------------------------

def sweep() -> dict:
    """Periodic task: apply the hooks to recent state, and retry mail that failed to go.

    Catches what no caller reported (a run marked interrupted by the reaper, a process that died
    between changing the state and calling the hook). Idempotent, so running it after the hooks
    costs nothing but queries.
    """
    db.session.expire_all()  # read the state as it is now, not as this session last saw it
    since = utcnow() - SWEEP_LOOKBACK
    # One run per plan is enough: the latest finished run decides.
    latest_ids = db.session.scalars(select(func.max(SyncRun.id)).where(
        SyncRun.status.in_(FINAL_STATUSES), SyncRun.finished_at >= since).group_by(SyncRun.plan_id)).all()
    runs = 0
    for run_id in latest_ids:
        run = db.session.get(SyncRun, run_id)
        if run is not None:
            notify_run_finished(run)
            runs += 1
    connections = 0
    open_keys = set(db.session.scalars(select(Incident.subject_key).where(Incident.closed_at.is_(None))).all())
    for connection in db.session.scalars(select(SalesforceConnection)):
        wants_open = connection.status == CONNECTION_NEEDS_RECONNECT
        if wants_open != (connection_key(connection.id) in open_keys):
            notify_connection_status(connection)
            connections += 1
    retried = 0
    for incident in db.session.scalars(select(Incident).where(Incident.closed_at.is_(None),
                                                              Incident.notified_at.is_(None))).all():
        retried += _mail_admins(incident)
    return {"runs": runs, "connections": connections, "mail_retried": retried}


# --- internals ----------------------------------------------------------------------------------

def _failed_runs_since(plan_id: int, since) -> int:
    return db.session.scalar(select(func.count()).select_from(SyncRun).where(
        SyncRun.plan_id == plan_id, SyncRun.status.in_(FAILED_STATUSES), SyncRun.finished_at >= since)) or 1


def _lock(workspace_id: int, subject_key: str) -> None:
    """Serialise opening an incident for one subject (two workers failing at once mail once)."""
    if db.session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"incident:{workspace_id}:{subject_key}".encode())
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def _open(workspace_id: int, kind: str, subject_key: str, message: str, *, opened_at, link: str | None,
          count) -> Incident:
    _lock(workspace_id, subject_key)
    incident = open_incident(workspace_id, subject_key)
    if incident is None:
        incident = Incident(workspace_id=workspace_id, kind=kind, subject_key=subject_key, message=message,
                            opened_at=opened_at or utcnow(), occurrences=1)
        db.session.add(incident)
        db.session.commit()
        _mail_admins(incident, link=link)
        return incident
    if count is not None:
        incident.occurrences = max(incident.occurrences or 1, count(incident))
    incident.message = message
    db.session.commit()
    return incident


def _close(workspace_id: int, subject_key: str) -> None:
    incident = open_incident(workspace_id, subject_key)
    if incident is not None:
        incident.closed_at = utcnow()
        db.session.commit()


def _still_open(incident: Incident) -> bool:
    """The incident's state in the database now (another worker may have closed it meanwhile)."""
    closed_at = db.session.scalar(select(Incident.closed_at).where(Incident.id == incident.id))
    return closed_at is None and db.session.get(Incident, incident.id) is not None


def _mail_admins(incident: Incident, link: str | None = None) -> int:
    """Email every admin of the workspace; ``notified_at`` marks it done. 1 when sent, else 0.

    Read again just before sending: an incident closed meanwhile (sending works again, the run
    succeeded) is not mailed about at all; an email sent later than the incident opened (the
    sweep's retry after mail itself failed) says when it started and that it closes by itself."""
    if not _still_open(incident):
        return 0
    recipients = admin_emails(incident.workspace_id)
    if not recipients:
        return 0
    subject = _SUBJECTS.get(incident.kind, "Terapage: something needs your attention")
    late = ""
    opened_at = incident.opened_at
    if opened_at is not None and utcnow() - opened_at > LATE_NOTICE:
        late = (f"This started at {opened_at.strftime('%d %b %Y %H:%M UTC')}; this email could not be sent "
                "until now. If it has recovered since, the incident closes by itself: the Incidents page "
                "shows whether it is still open.\n\n")
    body = (f"{incident.message}\n\n" + late
            + (f"Details: {link}\n\n" if link else "")
            + "You are told once; Terapage tells you again only after it has recovered and fails anew.\n")
    try:
        for address in recipients:
            if not _still_open(incident):  # closed while the previous admin's email was going out
                break
            send_mail(address, subject, body, workspace_id=incident.workspace_id)
    except MailError as exc:
        log.warning("incident %s: mail to admins failed (%s); the sweep retries", incident.id, exc)
        return 0
    incident.notified_at = utcnow()
    db.session.commit()
    return 1


def _url(endpoint: str, **values) -> str | None:
    """An absolute link for the email, built without a request (workers have none)."""
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    try:
        with current_app.test_request_context(base_url=base or "http://localhost"):
            return url_for(endpoint, _external=True, **values)
    except Exception:  # noqa: BLE001 - the link is a convenience; the message stands without it
        return None

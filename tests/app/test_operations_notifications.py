"""Incidents: a failed run or a connection needing reconnect mails the admins once and shows a
banner; repeats count occurrences without mail; recovery closes the incident."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import Incident, OutboxMessage, SalesforceConnection, SyncRun
from models.types import utcnow
from services import notifications
from tests.support.web import make_world, sign_in


@pytest.fixture
def world(app):
    world = make_world("Alpha")
    run = db.session.get(SyncRun, world["ids"]["run"])  # an earlier success of the plan
    run.started_at = run.finished_at = utcnow() - timedelta(days=1)
    db.session.commit()
    return world


def finish(world, status, reason=None, minutes_ago=0):
    run = SyncRun(workspace_id=world["workspace_id"], plan_id=world["ids"]["plan"], status=status, reason=reason,
                  started_at=utcnow() - timedelta(minutes=minutes_ago + 1),
                  finished_at=utcnow() - timedelta(minutes=minutes_ago))
    db.session.add(run)
    db.session.commit()
    return run


def mails():
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.subject.like("Terapage:%"))
                              .order_by(OutboxMessage.id)).all()


def test_a_failing_plan_mails_the_admins_once_and_counts_occurrences(world):
    first = finish(world, "failed", "Salesforce rejected the query: No such column 'Foo__c'", minutes_ago=120)
    incident = notifications.notify_run_finished(first)
    assert incident.kind == "run_failed" and incident.subject_key == f"plan:{world['ids']['plan']}"
    assert "Alpha contacts" in incident.message and "No such column 'Foo__c'" in incident.message
    sent = mails()
    assert [m.to_addr for m in sent] == ["admin@alpha.example"]  # admins only, not researchers
    assert sent[0].subject == "Terapage: an import is failing"
    assert f"/operations/runs/{first.id}" in sent[0].body_text
    assert incident.notified_at is not None

    # Every hour fails again: no more mail, the occurrences count up; a repeated call counts nothing.
    for hours in (1, 0):
        again = finish(world, "failed", "still broken", minutes_ago=hours * 60)
        notifications.notify_run_finished(again)
        notifications.notify_run_finished(again)
    interrupted = finish(world, "interrupted", "worker lost")
    incident = notifications.notify_run_finished(interrupted)
    assert incident.occurrences == 4
    assert len(mails()) == 1
    assert db.session.scalar(select(func.count()).select_from(Incident)) == 1


def test_a_succeeded_run_closes_the_incident_and_a_late_report_does_not_reopen_it(world):
    failed = finish(world, "failed", "boom", minutes_ago=10)
    notifications.notify_run_finished(failed)
    ok = finish(world, "succeeded")
    assert notifications.notify_run_finished(ok) is None
    incident = db.session.scalar(select(Incident))
    assert incident.closed_at is not None
    notifications.notify_run_finished(failed)  # reported late: the plan's latest run decides
    assert notifications.open_incidents(world["workspace_id"]) == []
    # A new failure after recovery is a new incident, mailed again.
    notifications.notify_run_finished(finish(world, "failed", "boom again"))
    assert len(notifications.open_incidents(world["workspace_id"])) == 1
    assert len(mails()) == 2


def test_partial_and_skipped_runs_neither_open_nor_close(world):
    assert notifications.notify_run_finished(finish(world, "partial", "Salesforce API daily limit reached")) is None
    notifications.notify_run_finished(finish(world, "failed", "boom"))
    assert notifications.notify_run_finished(finish(world, "skipped", "over the per-run cap")) is not None
    assert len(notifications.open_incidents(world["workspace_id"])) == 1


def test_connection_needing_reconnect_then_reconnected(world):
    conn = db.session.get(SalesforceConnection, world["ids"]["connection"])
    conn.status, conn.status_reason = "needs_reconnect", "Salesforce no longer accepts this connection's authorization."
    db.session.commit()
    incident = notifications.notify_connection_status(conn)
    notifications.notify_connection_status(conn)
    assert incident.kind == "needs_reconnect" and "needs to be reconnected" in incident.message
    assert [m.subject for m in mails()] == ["Terapage: a Salesforce connection needs reconnecting"]
    conn.status = "connected"
    db.session.commit()
    assert notifications.notify_connection_status(conn) is None
    assert db.session.scalar(select(Incident.closed_at)) is not None


def test_banner_shows_open_incidents_to_every_member(client, world):
    notifications.notify_run_finished(finish(world, "failed", "The <b>query</b> failed"))
    sign_in(client, world["users"]["researcher"], world["workspace_id"])
    html = client.get("/participants/").get_data(as_text=True)
    assert 'id="incident-banner"' in html and "The &lt;b&gt;query&lt;/b&gt; failed" in html
    notifications.notify_run_finished(finish(world, "succeeded"))
    assert 'id="incident-banner"' not in client.get("/participants/").get_data(as_text=True)
    page = client.get("/operations/incidents").get_data(as_text=True)
    assert 'class="closed"' in page


def test_sweep_mails_incidents_other_services_opened_and_closes_recovered_connections(world):
    # The sync engine opens incidents itself (services.runs); the sweep makes sure admins hear.
    db.session.add(Incident(workspace_id=world["workspace_id"], kind="needs_reconnect",
                            subject_key=f"connection:{world['ids']['connection']}", message="Reconnect please"))
    db.session.commit()
    notifications.sweep()  # the connection is "connected" in make_world: the incident closes, no mail
    assert notifications.open_incidents(world["workspace_id"]) == [] and mails() == []

    failed = finish(world, "failed", "boom")
    db.session.add(Incident(workspace_id=world["workspace_id"], kind="run_failed",
                            subject_key=f"plan:{failed.plan_id}", message="boom", opened_at=failed.finished_at))
    db.session.commit()
    result = notifications.sweep()
    assert result["mail_retried"] == 1 and len(mails()) == 1
    assert notifications.sweep()["mail_retried"] == 0 and len(mails()) == 1


def test_an_incident_closed_before_its_email_goes_is_not_mailed_and_a_late_email_says_when_it_began(world, monkeypatch):
    """Invitation sending failed and the admins' email failed too; by the time the sweep retries
    it, sending works again and the incident closed (another worker, after the sweep listed it):
    no email. An email the sweep gets out later than the incident opened says when it began and
    that it closes by itself."""
    from core import mail

    ws = world["workspace_id"]
    real_send = mail.send_mail

    def refusing(*args, **kwargs):
        raise mail.MailError("ConnectionRefusedError: [Errno 111] Connection refused")

    monkeypatch.setattr(notifications, "send_mail", refusing)
    incident = notifications.notify_invitation_send_failed(ws, "mail", "Connection refused")
    assert incident.notified_at is None and mails() == []
    monkeypatch.setattr(notifications, "send_mail", real_send)

    listed = db.session.scalars(select(Incident).where(Incident.closed_at.is_(None))).all()
    assert listed == [incident]
    # Another worker's send works and closes it, after the sweep read the list.
    db.session.execute(Incident.__table__.update().where(Incident.id == incident.id).values(closed_at=utcnow()))
    db.session.commit()
    assert notifications._mail_admins(incident) == 0
    assert mails() == [] and notifications.sweep()["mail_retried"] == 0 and mails() == []

    # Still open when retried an hour later: mailed, saying when it began.
    late = Incident(workspace_id=ws, kind="invitations_failing", subject_key="invitations:links",
                    message="Invitation emails cannot be sent: their links cannot be made",
                    opened_at=utcnow() - timedelta(hours=1), occurrences=3)
    db.session.add(late)
    db.session.commit()
    assert notifications.sweep()["mail_retried"] == 1
    body = mails()[0].body_text
    assert "This started at" in body and "this email could not be sent until now" in body
    assert "closes by itself" in body
    # Mailed at once when it opens: no such note.
    db.session.delete(late)
    db.session.commit()
    fresh = notifications.notify_invitation_send_failed(ws, "message", "Template broken")
    assert fresh.notified_at is not None and "This started at" not in mails()[-1].body_text

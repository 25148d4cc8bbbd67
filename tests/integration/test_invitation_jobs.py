"""Invitation jobs on the real Redis and RQ workers: sending through a real SMTP server, retries
ending in a visible failure, the periodic tick and its reminders claimed once, and invitations
created by a real sync against the emulator (an unsubscribed person is never invited again)."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import func, select

from core.extensions import db
from models import (ImportPlan, Invitation, OutboxMessage, Participant, Study, StudyParticipant, SuppressionEntry,
                    SyncRun, User)
from models.types import utcnow
from sync import verdicts
from services import invitations, plans, runs
from tests.integration.sync_support import (drain, make_connection, make_plan, make_workspace, org, outcomes, put,
                                            rconn, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]

LINK = re.compile(r"http://localhost(/invite/[A-Za-z0-9_.\-]+)")
UNSUB = re.compile(r"http://localhost(/unsubscribe/[A-Za-z0-9_.\-]+)")
INVITE_MAPPING = {
    "fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"], "external_id": ["Id"]},
    "consent_rule": {"path": "Consent_Status__c", "opted_in": ["Granted"], "opted_out": ["Withdrawn"],
                     "opt_out_flags": ["HasOptedOutOfEmail"]},
}


def fresh(model, id_):
    """The row as the workers left it (ends this session's transaction: no stale snapshot)."""
    db.session.commit()
    db.session.expire_all()
    return db.session.get(model, id_)


@pytest.fixture
def smtp(app, smtp_server, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", smtp_server.port)
    monkeypatch.setitem(app.config, "INVITATION_RETRY_INTERVALS", [0, 0, 0])
    return smtp_server


def _people_and_study(n=2, reminder_days=(3, 7)):
    workspace = make_workspace()
    study = Study(workspace_id=workspace.id, name="Checkout study", status="open")
    db.session.add(study)
    db.session.flush()
    plan = ImportPlan(workspace_id=workspace.id, name="Direct", action="invite_study", target_study_id=study.id,
                      reminder_days=list(reminder_days))
    people = [Participant(workspace_id=workspace.id, first_name=f"P{i}", email=f"p{i}@example.org",
                          email_key=f"p{i}@example.org", consent_status="opted_in") for i in range(n)]
    db.session.add_all([plan, *people])
    db.session.commit()
    rows = [invitations.new_invitation(study, p, plan=plan, consent_evidence={"consent": "opted_in"}) for p in people]
    db.session.commit()
    return workspace, study, plan, rows


def test_enqueue_send_runs_through_a_worker_to_a_real_smtp_server_once(app, rconn, smtp):
    _, _, _, (first, second) = _people_and_study()
    assert invitations.enqueue_send([first.id, second.id, first.id]) == 2
    assert invitations.enqueue_send([first.id]) == 0  # already queued: not twice
    assert Queue("mail", connection=rconn).count == 2
    drain(app, rconn, ("mail",))
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["p0@example.org", "p1@example.org"]
    assert {fresh(Invitation, i.id).status for i in (first, second)} == {"sent"}
    assert Job.fetch(invitations.send_job_id(first.id), connection=rconn).return_value() == "sent"
    # Queued again after it finished: the job finds it sent and sends nothing.
    assert invitations.enqueue_send([first.id]) == 1
    drain(app, rconn, ("mail",))
    assert len(smtp.messages) == 2


def test_retries_end_in_a_failed_invitation_with_the_error(app, rconn, smtp):
    _, _, _, (bad, good) = _people_and_study()
    smtp.defer_recipients.add("p0@example.org")  # 450: "try again later"
    invitations.enqueue_send([bad.id, good.id])
    drain(app, rconn, ("mail",))
    bad = fresh(Invitation, bad.id)
    assert (bad.status, bad.send_attempts) == ("failed", 4)  # the first attempt and 3 retries
    assert "450" in bad.last_error and "mailbox busy" in bad.last_error
    assert bad.failure_cause == "mail" and bad.retry_at is not None  # tried again later
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.invitation_id == bad.id)) == 1  # retried, never duplicated
    job = Job.fetch(invitations.send_job_id(bad.id), connection=rconn)
    assert job.get_status() == "failed"
    assert fresh(Invitation, good.id).status == "sent"


def test_an_address_refused_for_good_is_not_retried_and_opens_no_incident(app, rconn, smtp):
    """550 no such user: one attempt, the invitation "failed" with the server's answer, never
    tried again (no retry_at), no "sending is failing" incident; the others are sent."""
    from models import Incident

    _, _, _, (bad, good) = _people_and_study()
    smtp.reject_recipients.add("p0@example.org")
    invitations.enqueue_send([bad.id, good.id])
    drain(app, rconn, ("mail",))
    bad = fresh(Invitation, bad.id)
    assert (bad.status, bad.send_attempts, bad.failure_cause, bad.retry_at) == ("failed", 1, "recipient", None)
    assert bad.last_error.startswith("The mail server refused this address:")
    assert "550" in bad.last_error and "no such user" in bad.last_error
    job = Job.fetch(invitations.send_job_id(bad.id), connection=rconn)
    assert (job.get_status(), job.return_value()) == ("finished", "refused")
    assert fresh(Invitation, good.id).status == "sent"
    assert db.session.scalar(select(func.count()).select_from(Incident)) == 0
    invitations.tick(utcnow() + timedelta(days=3))  # the retry pass leaves it alone
    assert fresh(Invitation, bad.id).status == "failed"


def test_without_a_public_address_the_workers_fail_visibly_once_and_send_everything_when_fixed(
        app, rconn, smtp, monkeypatch):
    from models import Incident
    workspace, _, _, rows = _people_and_study(n=3)
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", None)
    invitations.enqueue_send([r.id for r in rows])
    drain(app, rconn, ("mail",))
    failed = [fresh(Invitation, r.id) for r in rows]
    assert {(r.status, r.failure_cause, r.send_attempts) for r in failed} == {("failed", "links", 4)}
    assert all(r.last_error.startswith("PUBLIC_BASE_URL is not set") and r.retry_at for r in failed)
    assert smtp.messages == []
    [incident] = db.session.scalars(select(Incident).where(Incident.workspace_id == workspace.id)).all()
    assert (incident.subject_key, incident.occurrences, incident.closed_at) == ("invitations:links", 12, None)

    # Fixed; once their retry time has come the tick queues them and the workers send them.
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://research.example")
    result = invitations.tick(datetime.now(timezone.utc) + timedelta(hours=1, minutes=1))
    assert result.retried == 3 and len(result.sends) == 3
    drain(app, rconn, ("mail",))
    assert {fresh(Invitation, r.id).status for r in rows} == {"sent"}
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["p0@example.org", "p1@example.org", "p2@example.org"]
    assert "https://research.example/invite/" in smtp.messages[0].get_body(("plain",)).get_content()
    assert fresh(Incident, incident.id).closed_at is not None


def test_the_tick_is_registered_and_claims_each_reminder_once_across_schedulers(app, rconn, smtp):
    from jobs.scheduler import load_tasks

    assert "invitations.tick" in {t.name for t in load_tasks()}
    _, _, _, (inv, _) = _people_and_study()
    invitations.send(inv.id)
    row = fresh(Invitation, inv.id)
    row.sent_at = datetime.now(timezone.utc) - timedelta(days=3, minutes=1)
    row.next_reminder_at = row.sent_at + timedelta(days=3)
    db.session.commit()

    results, barrier = [], threading.Barrier(4)

    def scheduler():
        with app.app_context():
            barrier.wait()
            results.append(invitations.tick().reminders)
            db.session.remove()

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    drain(app, rconn, ("mail",))
    reminder_job = Job.fetch(invitations.reminder_job_id(inv.id, 1), connection=rconn)
    assert (reminder_job.get_status(), reminder_job.return_value()) == ("finished", "sent")
    assert [m["Subject"] for m in smtp.messages] == ["You're invited: Checkout study",
                                                     "Reminder: you're invited to Checkout study"]
    row = fresh(Invitation, inv.id)
    assert (row.reminders_sent, row.next_reminder_at) == (1, row.sent_at + timedelta(days=7))
    from jobs.invitations import tick
    assert tick() == {"expired": 0, "reminders": 0, "stopped": 0, "sends": 0, "retried": 0}


def test_the_tick_sends_what_the_daily_cap_held_back(app, rconn, smtp):
    workspace, _, _, (first, second) = _people_and_study()
    workspace.daily_invite_cap = 1
    db.session.commit()
    invitations.enqueue_send([first.id, second.id])
    drain(app, rconn, ("mail",))
    assert len(smtp.messages) == 1
    held = next(i for i in (fresh(Invitation, first.id), fresh(Invitation, second.id)) if i.status == "pending")
    assert held.last_error.startswith("Waiting: the workspace's daily limit of 1")
    held.created_at = held.created_at - timedelta(minutes=5)
    db.session.commit()
    assert invitations.tick().sends == []  # still today
    # As if the first message had gone out yesterday: today has room again.
    for message in db.session.scalars(select(OutboxMessage)):
        message.created_at = message.created_at - timedelta(days=1)
    db.session.commit()
    assert invitations.tick().sends == [held.id]
    drain(app, rconn, ("mail",))
    assert len(smtp.messages) == 2 and fresh(Invitation, held.id).status == "sent"


# --- invitations made by a real sync ---------------------------------------------------------------------

def _invite_plan(workspace, connection, study, researcher):
    plan = make_plan(workspace, connection, mapping=INVITE_MAPPING, action="invite_study",
                     target_study_id=study.id, reminder_days=[3, 7], created_by_id=researcher.id)
    plan.consent_confirmed_at = datetime.now(timezone.utc)
    plan.consent_confirmed_by_id = researcher.id
    plan.consent_confirmation_text = "I confirm these contacts can be invited to research."
    plan.consent_fingerprint = plans.consent_fingerprint(plan)
    db.session.commit()
    return plan


def sync_world(app, org):
    workspace = make_workspace(name="Acme Research")
    researcher = User(email="ada@acme.example", name="Ada Lovelace", password_hash="x")
    study = Study(workspace_id=workspace.id, name="Checkout study", description="Paying online.", status="open")
    db.session.add_all([researcher, study])
    db.session.commit()
    connection = make_connection(org, workspace)
    plan = _invite_plan(workspace, connection, study, researcher)
    return workspace, researcher, study, connection, plan


def test_a_synced_invitation_is_mailed_accepted_and_an_unsubscriber_is_never_invited_again(app, rconn, org, smtp,
                                                                                           client):
    workspace, researcher, study, connection, plan = sync_world(app, org)
    put(org, "Contact", {"FirstName": "Ann", "LastName": "Accepts", "Email": "ann@example.org",
                         "Consent_Status__c": "Granted", "SystemModstamp": stamp(1)})
    put(org, "Contact", {"FirstName": "Uma", "LastName": "Unsubscribes", "Email": "uma@example.org",
                         "Consent_Status__c": "Granted", "SystemModstamp": stamp(2)})
    put(org, "Contact", {"FirstName": "Nell", "LastName": "NoConsent", "Email": "nell@example.org",
                         "Consent_Status__c": "Withdrawn", "SystemModstamp": stamp(3)})
    run = runs.request_run(plan)
    drain(app, rconn, ("sync",))
    run = fresh(SyncRun, run.id)
    assert (run.status, run.imported, run.skipped, run.invited) == ("succeeded", 2, 1, 2)  # Nell opted out
    drain(app, rconn, ("mail",))
    by_rcpt = {e.rcpt_tos[0]: m for e, m in zip(smtp.envelopes, smtp.messages)}
    assert sorted(by_rcpt) == ["ann@example.org", "uma@example.org"]
    ann_text = by_rcpt["ann@example.org"].get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert ann_text.startswith("Hi Ann,\n\nAda Lovelace would like to invite you to take part in a research study, "
                               "Checkout study.")
    ann_inv = db.session.scalar(select(Invitation).join(Participant).where(Participant.email_key == "ann@example.org"))
    assert ann_inv.run_id == run.id and ann_inv.status == "sent"
    evidence = invitations.evidence_view(ann_inv)
    assert ("Consent_Status__c", "Granted") in evidence.values_seen
    assert evidence.confirmed_by == "Ada Lovelace" and evidence.source_object == "Contact"

    # Ann accepts from her message.
    link = LINK.search(ann_text).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(link).get_data(as_text=True)).group(1)
    assert 'id="accepted"' in client.post(link, data={"answer": "accept", "csrf_token": token}).get_data(as_text=True)
    assert fresh(Invitation, ann_inv.id).status == "accepted"
    assert ann_inv.participant_id in db.session.scalars(select(StudyParticipant.participant_id)
                                                        .where(StudyParticipant.study_id == study.id)).all()

    # Uma unsubscribes from hers.
    uma_text = by_rcpt["uma@example.org"].get_body(("plain",)).get_content()
    unsub = UNSUB.search(uma_text).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(unsub).get_data(as_text=True)).group(1)
    client.post(unsub, data={"csrf_token": token})
    assert db.session.scalar(select(SuppressionEntry.source).where(SuppressionEntry.email_key == "uma@example.org")) \
        == "unsubscribe"

    # A second study, invited by the next sync of a plan that still reads Uma as "Granted".
    second_study = Study(workspace_id=workspace.id, name="Returns study", status="open")
    db.session.add(second_study)
    db.session.commit()
    before = plans.snapshot(plan)
    plan.target_study_id = second_study.id
    plans.apply_change(plan, before)
    plan.consent_confirmed_at = datetime.now(timezone.utc)
    plan.consent_confirmed_by_id = researcher.id
    plan.consent_confirmation_text = "Confirmed again for the returns study."
    plan.consent_fingerprint = plans.consent_fingerprint(plan)
    db.session.commit()
    # The next sync reads Uma again (a second Salesforce record of hers, consent "Granted") and Bea.
    put(org, "Contact", {"FirstName": "Uma", "LastName": "Unsubscribes", "Email": "UMA@example.org",
                         "Consent_Status__c": "Granted", "SystemModstamp": stamp(10)})
    put(org, "Contact", {"FirstName": "Bea", "LastName": "New", "Email": "bea@example.org",
                         "Consent_Status__c": "Granted", "SystemModstamp": stamp(11)})
    second = runs.request_run(plan)
    drain(app, rconn, ("sync",))
    second = fresh(SyncRun, second.id)
    assert (second.status, second.reason, second.invited) == ("succeeded", None, 2)
    reasons = {(o.email_key, o.reason) for o in outcomes(second.id) if o.email_key == "uma@example.org"}
    assert ("uma@example.org", "Already imported; changed in Salesforce since the last run; "
                               "consent kept opted out: on the suppression list; "
                               "Not invited: the email is suppressed") in reasons
    drain(app, rconn, ("mail",))
    invited_second = db.session.scalars(select(Participant.email_key).join(Invitation).where(
        Invitation.study_id == second_study.id).order_by(Participant.email_key)).all()
    assert invited_second == ["ann@example.org", "bea@example.org"]
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes[2:]) == ["ann@example.org", "bea@example.org"]
    uma = db.session.scalar(select(Participant).where(Participant.email_key == "uma@example.org"))
    assert uma.consent_status == "opted_out"  # Salesforce's "Granted" does not undo the unsubscribe
    assert db.session.scalars(select(Invitation.status).where(Invitation.participant_id == uma.id)).all() == [
        "withdrawn"]


def test_a_refused_address_corrected_in_salesforce_is_invited_again_there_never_at_the_old_one(
        app, rconn, org, smtp, client):
    """550 for the address: the invitation fails (cause "recipient"). The Email is corrected in
    Salesforce: the next sync updates the participant, arms the invitation again (the run log says
    so) and it is sent to the new address through the queue; the old address gets nothing more.
    Changed back to the refused address, nothing is sent to it again."""
    workspace, researcher, study, connection, plan = sync_world(app, org)
    rid = put(org, "Contact", {"FirstName": "Rae", "LastName": "Refused", "Email": "rae@old.example",
                               "Consent_Status__c": "Granted", "SystemModstamp": stamp(1)})
    smtp.reject_recipients.add("rae@old.example")
    run = runs.request_run(plan)
    drain(app, rconn, ("sync",))
    assert fresh(SyncRun, run.id).invited == 1
    drain(app, rconn, ("mail",))
    inv = db.session.scalar(select(Invitation))
    assert (inv.status, inv.failure_cause, inv.retry_at) == ("failed", "recipient", None)
    assert smtp.envelopes == []
    assert db.session.scalar(select(OutboxMessage.status)) == "refused"

    # An update that does not change the email arms nothing.
    org.state.store.update("production", "Contact", rid, {"LastName": "Still", "SystemModstamp": stamp(5)},
                           validate=False)
    again = runs.request_run(plan)
    drain(app, rconn, ("sync",))
    assert [o.reason for o in outcomes(again.id)] == [f"{verdicts.ALREADY_IMPORTED_CHANGED}; Not invited: already invited"]
    assert fresh(Invitation, inv.id).status == "failed"

    org.state.store.update("production", "Contact", rid, {"Email": "rae@new.example", "SystemModstamp": stamp(10)},
                           validate=False)
    second = runs.request_run(plan)
    drain(app, rconn, ("sync",))
    rows = outcomes(second.id)
    assert [(o.outcome, o.reason, (o.detail or {}).get("invited_again")) for o in rows] == [
        ("updated", f"{verdicts.ALREADY_IMPORTED_CHANGED}; Invited again: the address changed", True)]
    inv = fresh(Invitation, inv.id)
    assert (inv.status, inv.failure_cause, inv.last_error) == ("pending", None, None)
    drain(app, rconn, ("mail",))
    assert [e.rcpt_tos for e in smtp.envelopes] == [["rae@new.example"]]
    inv = fresh(Invitation, inv.id)
    assert (inv.status, inv.failure_cause) == ("sent", None)
    assert sorted(db.session.scalars(select(OutboxMessage.to_addr + ":" + OutboxMessage.status)).all()) == [
        "rae@new.example:sent", "rae@old.example:refused"]
    body = smtp.messages[0].get_body(("plain",)).get_content()
    assert client.get(LINK.search(body).group(1)).status_code == 200  # the new message's link works

    # The new address is refused at a reminder; corrected back to the old, refused address:
    # reminders stay stopped, nothing goes to either refused address.
    smtp.reject_recipients.add("rae@new.example")
    result = invitations.tick(utcnow() + timedelta(days=3, minutes=1))
    assert [n for _, n in result.reminders] == [1]
    drain(app, rconn, ("mail",))
    inv = fresh(Invitation, inv.id)
    assert (inv.status, inv.failure_cause, inv.next_reminder_at, inv.reminders_sent) == ("sent", "recipient", None, 1)
    org.state.store.update("production", "Contact", rid, {"Email": "rae@old.example", "SystemModstamp": stamp(20)},
                           validate=False)
    third = runs.request_run(plan)
    drain(app, rconn, ("sync",))
    assert [o.reason for o in outcomes(third.id)] == [f"{verdicts.ALREADY_IMPORTED_CHANGED}; Not invited: already invited"]
    inv = fresh(Invitation, inv.id)
    assert (inv.failure_cause, inv.next_reminder_at) == ("recipient", None)

    # A third address: the stopped reminder resumes there (the tick claims and sends it).
    smtp.reject_recipients.clear()
    org.state.store.update("production", "Contact", rid, {"Email": "rae@third.example", "SystemModstamp": stamp(30)},
                           validate=False)
    fourth = runs.request_run(plan)
    drain(app, rconn, ("sync",))
    assert [o.reason for o in outcomes(fourth.id)] == [
        f"{verdicts.ALREADY_IMPORTED_CHANGED}; Invited again: the address changed"]
    inv = fresh(Invitation, inv.id)
    assert (inv.failure_cause, inv.reminders_sent) == (None, 0) and inv.next_reminder_at is not None
    result = invitations.tick(utcnow() + timedelta(minutes=1))
    assert [n for _, n in result.reminders] == [1]
    drain(app, rconn, ("mail",))
    assert [e.rcpt_tos for e in smtp.envelopes] == [["rae@new.example"], ["rae@third.example"]]
    inv = fresh(Invitation, inv.id)
    assert (inv.status, inv.reminders_sent, inv.failure_cause) == ("sent", 1, None)


def test_a_send_to_an_address_refused_before_is_not_attempted(app, rconn, smtp):
    """However the participant's address came back to one refused for this invitation, the send
    refuses it without asking the mail server."""
    _, _, _, (bad,) = _people_and_study(n=1)
    smtp.reject_recipients.add("p0@example.org")
    invitations.enqueue_send([bad.id])
    drain(app, rconn, ("mail",))
    person = db.session.get(Participant, fresh(Invitation, bad.id).participant_id)
    person.email, person.email_key = "p0-new@example.org", "p0-new@example.org"
    db.session.commit()
    assert invitations.rearm_refused(person.workspace_id, person.id) == [bad.id]
    person.email, person.email_key = "P0@example.org", "p0@example.org"
    db.session.commit()
    smtp.reject_recipients.clear()
    assert invitations.send(bad.id) == "refused"
    inv = fresh(Invitation, bad.id)
    assert (inv.status, inv.failure_cause) == ("failed", "recipient")
    assert "refused this address before" in inv.last_error
    assert smtp.envelopes == []
    assert invitations.rearm_refused(person.workspace_id, person.id) == []

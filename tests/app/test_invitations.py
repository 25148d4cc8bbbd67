"""Invitations: sending (outbox and a real SMTP server), signed links, the participant page,
accepting and declining, unsubscribing, send-time checks, the daily cap, reminders on a
controlled clock, final failures and the consent evidence shown."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import func, select

from core.extensions import db
from core.mail import MailError
from models import (Activity, ActivityParticipant, AuditEvent, Community, CommunityMember, ImportPlan, Invitation,
                    Membership, OutboxMessage, Participant, Study, StudyParticipant, SuppressionEntry, SyncRun, User,
                    Workspace)
from services import invitations
from services import suppression

T0 = datetime(2031, 3, 3, 9, 0, tzinfo=timezone.utc)  # a Monday morning in London (GMT)
LINK = re.compile(r"http://localhost(/invite/[A-Za-z0-9_.\-]+)")
UNSUB = re.compile(r"http://localhost(/unsubscribe/[A-Za-z0-9_.\-]+)")


@pytest.fixture
def world(app):
    ws = Workspace(name="Secret Workspace Name", timezone="Europe/London", daily_invite_cap=500)
    other_ws = Workspace(name="Other Workspace")
    db.session.add_all([ws, other_ws])
    db.session.flush()
    ada = User(email="ada@lab.example", name="Ada Lovelace", password_hash="x")
    grace = User(email="grace@lab.example", name="Grace Hopper", password_hash="x")
    db.session.add_all([ada, grace])
    db.session.flush()
    db.session.add(Membership(user_id=ada.id, workspace_id=ws.id, role="researcher"))
    study = Study(workspace_id=ws.id, name="Checkout study", description="Talk to us about paying online.",
                  status="open", created_by_id=ada.id)
    community = Community(workspace_id=ws.id, name="Power users", description="An ongoing panel.")
    hidden = Study(workspace_id=ws.id, name="Top secret roadmap study", status="open")
    db.session.add_all([study, community, hidden])
    db.session.flush()
    task = Activity(workspace_id=ws.id, study_id=study.id, name="Diary week 1", kind="diary")
    plan = ImportPlan(workspace_id=ws.id, name="UK customers", action="invite_study", target_study_id=study.id,
                      reminder_days=[3, 7], created_by_id=ada.id, consent_confirmed_at=T0 - timedelta(days=2),
                      consent_confirmed_by_id=grace.id,
                      consent_confirmation_text="I confirm these contacts agreed to research invitations.")
    db.session.add_all([task, plan])
    db.session.flush()
    run = SyncRun(workspace_id=ws.id, plan_id=plan.id, status="succeeded")
    db.session.add(run)
    people = []
    for i, (first, last) in enumerate([("Zoë", "Ng"), ("Bob", "Stone"), ("Cy", "Park")]):
        person = Participant(workspace_id=ws.id, first_name=first, last_name=last, email=f"p{i}@people.example",
                             email_key=f"p{i}@people.example", consent_status="opted_in")
        db.session.add(person)
        people.append(person)
    db.session.commit()
    return {"ws": ws, "other_ws": other_ws, "ada": ada, "grace": grace, "study": study, "community": community,
            "hidden": hidden, "task": task, "plan": plan, "run": run, "people": people}


def invite(world, person=0, target="study", **kw):
    participant = world["people"][person] if isinstance(person, int) else person
    evidence = invitations.consent_evidence_record(
        consent="opted_in", values_seen=[("Consent_Status__c", "Opted In"), ("HasOptedOutOfEmail", False)],
        org_id="00D000000000001EAA", object_name="Contact", record_id=f"003000000000{participant.id:03d}AAA",
        plan=world["plan"], run_id=world["run"].id, seen_at=T0 - timedelta(hours=1))
    row = invitations.new_invitation(world[target], participant, plan=kw.pop("plan", world["plan"]),
                                     run_id=world["run"].id, consent_evidence=evidence, **kw)
    db.session.commit()
    return row


def outbox(invitation_id=None):
    stmt = select(OutboxMessage).order_by(OutboxMessage.id)
    if invitation_id is not None:
        stmt = stmt.where(OutboxMessage.invitation_id == invitation_id)
    return db.session.scalars(stmt).all()


def path_of(text, pattern=LINK):
    match = pattern.search(text)
    assert match, text
    return match.group(1)


# --- sending and the message ---------------------------------------------------------------------------

def test_sending_records_the_message_with_personal_links_and_schedules_reminders(world):
    inv = invite(world)
    assert invitations.send(inv.id, now=T0) == "sent"
    db.session.refresh(inv)
    assert (inv.status, inv.sent_at, inv.send_attempts, inv.last_error) == ("sent", T0, 1, None)
    assert inv.expires_at == T0 + timedelta(days=30)
    assert (inv.reminders_sent, inv.next_reminder_at) == (0, T0 + timedelta(days=3))
    [message] = outbox(inv.id)
    assert (message.to_addr, message.status, message.workspace_id) == ("p0@people.example", "sent", world["ws"].id)
    assert message.subject == "You're invited: Checkout study"
    assert message.body_text.startswith("Hi Zoë,\n\nAda Lovelace would like to invite you to take part in a "
                                        "research study, Checkout study.")
    assert "Please reply by 2 April 2031." in message.body_text  # no closing date: the link's expiry
    accept = path_of(message.body_text)
    assert f'href="http://localhost{accept}"' in message.body_html
    assert path_of(message.body_text, UNSUB) in message.body_html
    assert invitations.invitation_for_token(accept.rsplit("/", 1)[1]).id == inv.id
    assert invitations.send(inv.id, now=T0) == "skipped"  # never a second first message
    assert len(outbox(inv.id)) == 1


def test_a_real_smtp_server_receives_text_and_html_and_the_link_opens_the_page(world, app, client, smtp_server,
                                                                                monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", smtp_server.port)
    invitations.save_template(world["study"], "invitation", subject="{{first_name}}, join {{study_name}}",
                              body_text="Reply: {{accept_link}}\nStop: {{unsubscribe_link}}",
                              body_html='<p>Hello <b>{{first_name}}</b></p><a href="{{accept_link}}">Reply</a> '
                                        '<a href="{{unsubscribe_link}}">Stop</a>')
    inv = invite(world)
    assert invitations.send(inv.id, now=T0) == "sent"
    [received] = smtp_server.messages
    assert received["Subject"] == "Zoë, join Checkout study"
    assert smtp_server.envelopes[0].rcpt_tos == ["p0@people.example"]
    text = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert "<p>Hello <b>Zoë</b></p>" in html
    page = client.get(path_of(text))
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<h1 id="target-name">Checkout study</h1>' in body and "Talk to us about paying online." in body
    assert 'value="accept"' in body and 'value="decline"' in body


def test_merge_values_use_the_task_deadline_and_the_study_closing_date(world):
    world["task"].due_at = datetime(2031, 6, 30, 22, 0, tzinfo=timezone.utc)  # 30 June 23:00 in London
    world["study"].closes_at = datetime(2031, 7, 31, 12, 0, tzinfo=timezone.utc)
    db.session.commit()
    task_inv = invite(world, 0, "task")
    study_inv = invite(world, 1, "study")
    task_msg = invitations.compose(task_inv, now=T0)
    assert task_msg.subject == "You're invited: Diary week 1"
    assert "Please reply by 30 June 2031." in task_msg.text
    assert "Please reply by 31 July 2031." in invitations.compose(study_inv, now=T0).text


# --- signed links and the participant page -------------------------------------------------------------------

def _sent(world, person=0, target="study"):
    inv = invite(world, person, target)
    invitations.send(inv.id, now=T0)
    message = outbox(inv.id)[0]
    return inv, path_of(message.body_text), path_of(message.body_text, UNSUB)


def test_the_participant_page_shows_only_the_invitation(world, client):
    inv, link, _ = _sent(world)
    body = client.get(link).get_data(as_text=True)
    assert "Checkout study" in body and "Hi Zoë" in body
    for leak in ("Secret Workspace Name", "Top secret roadmap study", "Bob", "Cy Park", "Grace Hopper",
                 "mainnav", "Sign out", "003000000000", "00D000000000001EAA", "UK customers"):
        assert leak not in body, leak
    # The consent it relied on, in words for the person, without internal ids or colleagues' names.
    assert "Your contact record said you agreed to be contacted about research" in body
    assert '<dt>Consent status</dt><dd class="evidence-value">Opted In</dd>' in body
    assert '<dt>Opted out of email</dt><dd class="evidence-value">No</dd>' in body  # named, in words


def test_field_and_value_words_for_participants():
    from core.labels import field_words, value_words
    assert field_words("HasOptedOutOfEmail") == "Opted out of email"
    assert field_words("Contact.DoNotCall") == "Do not call"
    assert field_words("Consent_Status__c") == "Consent status"
    assert field_words("Lead.Research_Consent__c") == "Research consent"
    assert field_words("MarketingOptIn") == "Marketing opt in"
    assert [value_words(v) for v in (True, "false", None, "", "Opted In")] == ["Yes", "No", "not set", "not set",
                                                                              "Opted In"]


def test_a_tampered_or_expired_link_is_a_plain_404(world, client, app, monkeypatch):
    inv, link, unsub = _sent(world)
    token = link.rsplit("/", 1)[1]
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "garbage", token + "x"):
        page = client.get(f"/invite/{bad}")
        body = page.get_data(as_text=True)
        assert page.status_code == 404
        assert "This link is invalid or has expired" in body
        assert "Checkout study" not in body and "Secret Workspace Name" not in body and "dashboard" not in body
    assert client.get(f"/unsubscribe/{token}").status_code == 404  # a respond token is no unsubscribe token
    assert client.get(unsub.replace("/unsubscribe/", "/invite/")).status_code == 404

    # Signed 31 days ago: expired (INVITATION_LINK_DAYS = 30).
    past = int((datetime.now(timezone.utc) - timedelta(days=31)).timestamp())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: past)
    old = invitations.respond_token(inv)
    monkeypatch.undo()
    assert client.get(f"/invite/{old}").status_code == 404
    assert invitations.invitation_for_token(old, now=datetime.fromtimestamp(past, timezone.utc) + timedelta(days=29)).id == inv.id
    assert invitations.invitation_for_token(token, now=T0 + timedelta(days=400)) is None


def test_a_link_never_opens_a_recreated_row_with_the_same_id(world, client):
    inv, link, _ = _sent(world)
    inv.created_at = inv.created_at - timedelta(days=1)  # as if the id were reused by another row
    db.session.commit()
    assert client.get(link).status_code == 404


def test_accepting_adds_the_person_to_the_study_once(world, client):
    inv, link, _ = _sent(world)
    assert client.get(link).status_code == 200
    assert db.session.scalar(select(func.count()).select_from(StudyParticipant)) == 0  # GET changes nothing
    page = client.post(link, data={"answer": "accept"})
    assert page.status_code == 400  # no CSRF token: refused
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(link).get_data(as_text=True)).group(1)
    page = client.post(link, data={"answer": "accept", "csrf_token": token})
    assert page.status_code == 200 and 'id="accepted"' in page.get_data(as_text=True)
    db.session.expire_all()
    assert (inv.status, inv.next_reminder_at) == ("accepted", None) and inv.responded_at is not None
    [member] = db.session.scalars(select(StudyParticipant)).all()
    assert (member.study_id, member.participant_id, member.added_via) == (world["study"].id, inv.participant_id,
                                                                         "invitation")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "invitation.accepted"))
    assert event.actor_label == "participant via invitation link"
    again = client.post(link, data={"answer": "decline", "csrf_token": token})
    assert 'id="accepted"' in again.get_data(as_text=True)  # answered already: stays accepted
    assert 'id="unchanged"' in again.get_data(as_text=True)  # and the page says this answer was not recorded
    same = client.post(link, data={"answer": "accept", "csrf_token": token})
    assert 'id="accepted"' in same.get_data(as_text=True) and 'id="unchanged"' not in same.get_data(as_text=True)
    db.session.expire_all()
    assert inv.status == "accepted"


def test_accepting_a_task_adds_the_activity_and_its_study_and_a_community_its_members(world):
    task_inv = invite(world, 0, "task")
    community_inv = invite(world, 1, "community")
    for inv in (task_inv, community_inv):
        invitations.send(inv.id, now=T0)
        assert invitations.respond(inv, "accept", now=T0 + timedelta(hours=1)) == "accepted"
    [activity_link] = db.session.scalars(select(ActivityParticipant)).all()
    assert (activity_link.activity_id, activity_link.participant_id, activity_link.added_via) == (
        world["task"].id, world["people"][0].id, "invitation")
    assert [(s.study_id, s.participant_id) for s in db.session.scalars(select(StudyParticipant))] == [
        (world["study"].id, world["people"][0].id)]
    [member] = db.session.scalars(select(CommunityMember)).all()
    assert (member.community_id, member.participant_id, member.added_via) == (
        world["community"].id, world["people"][1].id, "invitation")


def test_declining_and_a_closed_study(world, client):
    inv, link, _ = _sent(world, 0)
    assert invitations.respond(inv, "decline", now=T0) == "declined"
    assert db.session.scalar(select(func.count()).select_from(StudyParticipant)) == 0
    assert 'id="declined"' in client.get(link).get_data(as_text=True)
    other, other_link, _ = _sent(world, 1)
    world["study"].status = "closed"
    db.session.commit()
    assert invitations.respond(other, "accept", now=T0) == "closed"
    assert other.status == "sent" and db.session.scalar(select(func.count()).select_from(StudyParticipant)) == 0
    body = client.get(other_link).get_data(as_text=True)
    assert "no longer taking participants" in body and 'value="accept"' not in body


# --- unsubscribing --------------------------------------------------------------------------------------------

def test_unsubscribing_suppresses_opts_out_withdraws_and_is_audited(world, client):
    inv, link, unsub = _sent(world, 0)
    community_inv = invite(world, 0, "community")  # still pending
    accepted = invite(world, 0, "task")
    invitations.send(accepted.id, now=T0)
    invitations.respond(accepted, "accept", now=T0)
    page = client.get(unsub)
    assert page.status_code == 200 and "Stop research invitations?" in page.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(SuppressionEntry)) == 0  # GET changes nothing
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    done = client.post(unsub, data={"csrf_token": token})
    assert 'id="unsubscribed"' in done.get_data(as_text=True)
    db.session.expire_all()
    [entry] = db.session.scalars(select(SuppressionEntry)).all()
    assert (entry.workspace_id, entry.email_key, entry.source) == (world["ws"].id, "p0@people.example", "unsubscribe")
    assert world["people"][0].consent_status == "opted_out"
    assert (inv.status, inv.withdrawn_reason, inv.next_reminder_at) == (
        "withdrawn", "The participant unsubscribed", None)
    assert community_inv.status == "withdrawn"
    assert accepted.status == "accepted"  # an answer already given stands
    events = {e.action: e for e in db.session.scalars(select(AuditEvent).where(
        AuditEvent.actor_label == "participant via unsubscribe link"))}
    assert set(events) == {"suppression.added", "participant.consent_changed"}
    assert events["participant.consent_changed"].detail["before"] == "opted_in"
    # Twice is harmless; the accept link now says the invitation is over.
    client.post(unsub, data={"csrf_token": token})
    assert db.session.scalar(select(func.count()).select_from(SuppressionEntry)) == 1
    assert "This invitation is no longer open." in client.get(link).get_data(as_text=True)


def test_unsubscribing_with_an_address_email_validator_refuses_still_suppresses_the_person(world, client):
    """The signed link names the participant: they go on the list under the keys they are stored
    and matched under (the refused address's key and their phone), so neither a later sync's
    "opted in" nor a new invitation reaches them."""
    from sync.validate import normalize_email
    person = Participant(workspace_id=world["ws"].id, first_name="Dot", last_name="Dot", email="dot..dot@people.example",
                         email_key="dot..dot@people.example", phone_e164="+447700900123", phone_key="+447700900123",
                         consent_status="opted_in")
    db.session.add(person)
    db.session.commit()
    assert not normalize_email(person.email).valid
    inv = invite(world, person)
    unsub = f"/unsubscribe/{invitations.unsubscribe_token(person, inv)}"
    page = client.get(unsub)
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    done = client.post(unsub, data={"csrf_token": token})
    assert done.status_code == 200 and 'id="unsubscribed"' in done.get_data(as_text=True)
    db.session.expire_all()
    [entry] = db.session.scalars(select(SuppressionEntry)).all()
    assert (entry.email_key, entry.phone_key, entry.source) == ("dot..dot@people.example", "+447700900123", "unsubscribe")
    assert inv.status == "withdrawn" and person.consent_status == "opted_out"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "suppression.added")).detail[
        "participant_id"] == person.id
    # A sync that reads "opted in" again does not make them invitable: the list outranks it.
    person.consent_status = "opted_in"
    db.session.commit()
    assert invitations.suppression.find(world["ws"].id, person.email_key, person.phone_key) is entry
    again = invite(world, person, "community")
    invitations.send(again.id, now=T0)
    db.session.refresh(again)
    assert again.status != "sent" and "suppression list" in (again.last_error or again.withdrawn_reason or "")
    # Twice is harmless.
    client.post(unsub, data={"csrf_token": token})
    assert db.session.scalar(select(func.count()).select_from(SuppressionEntry)) == 1


# --- the answer forms' own CSRF token (no cookies needed) ----------------------------------------------------

FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_a_participant_whose_browser_keeps_no_cookies_can_accept_and_unsubscribe(world, app):
    inv, link, _ = _sent(world, 0)
    _, _, unsub = _sent(world, 1)
    browser = app.test_client(use_cookies=False)  # sends no cookie, keeps none
    page = browser.get(link)
    assert page.status_code == 200 and "Set-Cookie" not in page.headers  # the page needs no session
    token = FORM_TOKEN.search(page.get_data(as_text=True)).group(1)
    assert token == invitations.form_token(link.rsplit("/", 1)[1], "respond")
    answered = browser.post(link, data={"answer": "accept", "csrf_token": token})
    assert answered.status_code == 200 and 'id="accepted"' in answered.get_data(as_text=True)
    db.session.expire_all()
    assert inv.status == "accepted"
    page = browser.get(unsub)
    assert "Set-Cookie" not in page.headers
    done = browser.post(unsub, data={"csrf_token": FORM_TOKEN.search(page.get_data(as_text=True)).group(1)})
    assert done.status_code == 200 and 'id="unsubscribed"' in done.get_data(as_text=True)
    db.session.expire_all()
    assert world["people"][1].consent_status == "opted_out"


def test_the_answer_forms_refuse_a_missing_foreign_or_tampered_token_with_a_clear_page(world, app, client):
    inv, link, unsub = _sent(world, 0)
    other, other_link, other_unsub = _sent(world, 1)
    link_token, unsub_token = link.rsplit("/", 1)[1], unsub.rsplit("/", 1)[1]
    good = invitations.form_token(link_token, "respond")
    from flask_wtf.csrf import generate_csrf
    with app.test_request_context():
        session_token = generate_csrf()  # the signed-in app's kind of token: not this form's
    refused = {
        "none": None, "empty": "", "forged": "forged",
        "tampered": good[:-1] + ("0" if good[-1] != "0" else "1"),
        "another invitation's": invitations.form_token(other_link.rsplit("/", 1)[1], "respond"),
        "the unsubscribe form's of this link": invitations.form_token(link_token, "unsubscribe"),
        "a session CSRF token": session_token,
    }
    for name, token in refused.items():
        data = {"answer": "accept"} | ({} if token is None else {"csrf_token": token})
        page = client.post(link, data=data)
        body = page.get_data(as_text=True)
        assert page.status_code == 400, name
        assert 'id="form-refused"' in body and "Nothing was changed" in body, name
        assert f'href="{link}"' in body  # the way back: the page, from the same link
        assert "Checkout study" not in body and "Secret Workspace Name" not in body
        assert page.headers["Referrer-Policy"] == "no-referrer"
    unsub_refused = [None, "forged", invitations.form_token(unsub_token, "respond"),
                     invitations.form_token(other_unsub.rsplit("/", 1)[1], "unsubscribe")]
    for token in unsub_refused:
        page = client.post(unsub, data={} if token is None else {"csrf_token": token})
        assert page.status_code == 400 and 'id="form-refused"' in page.get_data(as_text=True), token
    db.session.expire_all()
    assert (inv.status, other.status) == ("sent", "sent")
    assert db.session.scalar(select(func.count()).select_from(StudyParticipant)) == 0
    assert db.session.scalar(select(func.count()).select_from(SuppressionEntry)) == 0
    assert world["people"][0].consent_status == "opted_in"
    # A tampered link is still the plain "invalid or expired" 404, even with a good form token.
    page = client.post(link[:-3] + "xyz", data={"answer": "accept", "csrf_token": good})
    assert page.status_code == 404 and "invalid or has expired" in page.get_data(as_text=True)
    # And the right token works from the same client.
    assert 'id="accepted"' in client.post(link, data={"answer": "accept", "csrf_token": good}).get_data(as_text=True)


def test_only_the_participant_answer_views_are_exempt_from_the_session_csrf_check(app):
    from core.extensions import csrf
    assert csrf._exempt_views == {"invite.views.respond", "invite.views.unsubscribe"}
    assert not csrf._exempt_blueprints


# --- checked again at send time ----------------------------------------------------------------------------------

@pytest.mark.parametrize("change, reason", [
    ("suppressed", "Not sent: the participant is on the suppression list"),
    ("opted_out", "Not sent: the participant opted out"),
    ("unknown", "Not sent: the participant's consent is no longer opted in"),
    ("closed", "Not sent: the study is closed"),
    ("closes_at", "Not sent: the study's closing date has passed"),
])
def test_nothing_is_sent_to_someone_who_may_no_longer_be_contacted(world, change, reason):
    inv = invite(world)
    person = world["people"][0]
    if change == "suppressed":
        suppression.add_entry(world["ws"], email="P0@People.example", reason="asked by phone")
    elif change in ("opted_out", "unknown"):
        person.consent_status = change
    elif change == "closed":
        world["study"].status = "closed"
    else:
        world["study"].closes_at = T0 - timedelta(minutes=1)
    db.session.commit()
    assert invitations.send(inv.id, now=T0) == "withdrawn"
    db.session.refresh(inv)
    assert (inv.status, inv.withdrawn_reason) == ("withdrawn", reason)
    assert outbox() == []


# --- the daily cap ------------------------------------------------------------------------------------------------

def test_sends_beyond_the_daily_cap_wait_for_the_next_day(world):
    world["ws"].daily_invite_cap = 2
    db.session.commit()
    now = datetime.now(timezone.utc)
    invs = [invite(world, i) for i in range(3)]
    assert [invitations.send(i.id, now=now) for i in invs] == ["sent", "sent", "deferred"]
    db.session.refresh(invs[2])
    assert invs[2].status == "pending"
    assert invs[2].last_error == ("Waiting: the workspace's daily limit of 2 invitation messages is reached; "
                                  "it will be sent the next day")
    for inv in invs:  # old enough for the tick to pick up
        inv.created_at = now - timedelta(minutes=5)
    db.session.commit()
    assert invitations.tick(now, enqueue=False).sends == []  # no room today
    tomorrow = now + timedelta(days=1)
    assert invitations.cap_room(world["ws"], tomorrow) == 2
    assert invitations.tick(tomorrow, enqueue=False).sends == [invs[2].id]


# --- reminders on a controlled clock --------------------------------------------------------------------------------

def test_reminders_follow_the_plans_days_and_are_sent_once_each(world):
    inv = invite(world)
    invitations.send(inv.id, now=T0)
    assert invitations.tick(T0 + timedelta(days=2, hours=23), enqueue=False).reminders == []
    day3 = T0 + timedelta(days=3)
    assert invitations.tick(day3, enqueue=False).reminders == [(inv.id, 1)]
    assert invitations.tick(day3 + timedelta(minutes=1), enqueue=False).reminders == []  # claimed already
    db.session.refresh(inv)
    assert (inv.reminders_sent, inv.next_reminder_at) == (1, T0 + timedelta(days=7))
    assert invitations.send_reminder(inv.id, 1, now=day3) == "sent"
    assert invitations.send_reminder(inv.id, 1, now=day3) == "sent"  # a retried job re-delivers the same row
    messages = outbox(inv.id)
    assert [m.subject for m in messages] == ["You're invited: Checkout study",
                                             "Reminder: you're invited to Checkout study"]
    assert messages[1].body_text.startswith("Hi Zoë,\n\nA quick reminder: Ada Lovelace invited you")
    assert invitations.send_reminder(inv.id, 2, now=day3) == "skipped"  # not claimed
    day7 = T0 + timedelta(days=7)
    assert invitations.tick(day7, enqueue=False).reminders == [(inv.id, 2)]
    assert invitations.send_reminder(inv.id, 2, now=day7) == "sent"
    db.session.refresh(inv)
    assert (inv.reminders_sent, inv.next_reminder_at) == (2, None)  # [3, 7]: no third
    assert invitations.tick(T0 + timedelta(days=20), enqueue=False).reminders == []
    assert len(outbox(inv.id)) == 3


def test_a_claim_is_taken_by_one_scheduler_only(world):
    inv = invite(world)
    invitations.send(inv.id, now=T0)
    stale = db.session.get(Invitation, inv.id)
    assert stale.reminders_sent == 0 and stale.plan_id == world["plan"].id and stale.sent_at == T0
    db.session.expunge(stale)  # what a second scheduler read before the first one claimed
    fresh = db.session.get(Invitation, inv.id)
    assert invitations.claim_reminder(fresh, T0 + timedelta(days=3)) == 1
    assert invitations.claim_reminder(stale, T0 + timedelta(days=3)) is None  # its UPDATE matches nothing
    db.session.refresh(fresh)
    assert (fresh.reminders_sent, fresh.next_reminder_at) == (1, T0 + timedelta(days=7))


@pytest.mark.parametrize("stop, expected_status", [
    ("accept", "accepted"), ("decline", "declined"), ("unsubscribe", "withdrawn"), ("suppress", "withdrawn"),
    ("close", "sent"), ("closes_at", "sent"),
])
def test_reminders_stop_for_a_response_an_opt_out_suppression_or_the_study_closing(world, stop, expected_status):
    inv = invite(world)
    invitations.send(inv.id, now=T0)
    day3 = T0 + timedelta(days=3)
    if stop in ("accept", "decline"):
        invitations.respond(inv, stop, now=T0 + timedelta(days=1))
    elif stop == "unsubscribe":
        invitations.unsubscribe(world["people"][0], inv)
    elif stop == "suppress":
        suppression.add_entry(world["ws"], email="p0@people.example")
    elif stop == "close":
        world["study"].status = "closed"
    else:
        world["study"].closes_at = T0 + timedelta(days=2)
    db.session.commit()
    result = invitations.tick(day3, enqueue=False)
    assert result.reminders == []
    db.session.refresh(inv)
    assert (inv.status, inv.next_reminder_at, inv.reminders_sent) == (expected_status, None, 0)
    assert invitations.tick(T0 + timedelta(days=8), enqueue=False).reminders == []
    assert len(outbox(inv.id)) == 1


def test_a_claimed_reminder_still_checks_at_send_time(world):
    inv = invite(world)
    invitations.send(inv.id, now=T0)
    day3 = T0 + timedelta(days=3)
    assert invitations.tick(day3, enqueue=False).reminders == [(inv.id, 1)]
    world["people"][0].consent_status = "opted_out"  # between the claim and the job
    db.session.commit()
    assert invitations.send_reminder(inv.id, 1, now=day3) == "stopped"
    db.session.refresh(inv)
    assert inv.status == "withdrawn" and len(outbox(inv.id)) == 1


def test_links_expire_with_the_invitation(world):
    inv = invite(world)
    invitations.send(inv.id, now=T0)
    assert invitations.tick(T0 + timedelta(days=30), enqueue=False).expired == 1
    db.session.refresh(inv)
    assert (inv.status, inv.next_reminder_at) == ("expired", None)


# --- failures -----------------------------------------------------------------------------------------------

def test_a_failed_send_is_retried_with_the_same_message_and_finally_marked_failed(world, app, smtp_server,
                                                                                   monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", smtp_server.port)
    smtp_server.defer_recipients.add("p0@people.example")  # 450: try later
    inv = invite(world)
    for attempt in (1, 2):
        with pytest.raises(MailError, match="450"):
            invitations.send(inv.id, now=T0, final_attempt=False)
        db.session.refresh(inv)
        assert (inv.status, inv.send_attempts) == ("pending", attempt)
    with pytest.raises(MailError):
        invitations.send(inv.id, now=T0, final_attempt=True)
    db.session.refresh(inv)
    assert inv.status == "failed" and inv.send_attempts == 3
    assert "450" in inv.last_error and "mailbox busy" in inv.last_error
    assert len(outbox(inv.id)) == 1 and outbox(inv.id)[0].status == "failed"
    ok = invite(world, 1)
    invitations.send(ok.id, now=T0)
    failures = invitations.failures_for_run(world["run"].id)
    assert [(i.id, p.email) for i, p in failures] == [(inv.id, "p0@people.example")]
    # The fragment the run page includes.
    from flask import render_template
    with app.test_request_context():
        html = render_template("invite/_run_failures.html", failures=failures)
    assert "Invitations that could not be sent (1)" in html
    assert f'<a href="/invitations/{inv.id}">Zoë Ng</a>' in html and "(450, b&#39;4.2.1 mailbox busy, try again later&#39;)" in html


def test_an_address_refused_for_good_is_failed_at_once_and_its_reminders_stop(world, app, smtp_server, monkeypatch):
    """A 5xx refusal of the recipient is not retried (the job returns, nothing raised): the
    invitation is "failed" with no retry time and the cause "recipient"; a reminder refused so
    stops the reminders. Neither opens an incident: sending itself works."""
    monkeypatch.setitem(app.config, "MAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", smtp_server.port)
    smtp_server.reject_recipients.add("p0@people.example")
    inv = invite(world)
    assert invitations.send(inv.id, now=T0, final_attempt=False) == "refused"
    db.session.refresh(inv)
    assert (inv.status, inv.send_attempts, inv.failure_cause, inv.retry_at) == ("failed", 1, "recipient", None)
    assert "550" in inv.last_error and inv.last_error.startswith("The mail server refused this address")
    assert invitations.tick(T0 + timedelta(days=2), enqueue=False).retried == 0
    assert _incidents(world) == []
    from flask import render_template
    with app.test_request_context():
        html = render_template("invite/_run_failures.html", failures=invitations.failures_for_run(world["run"].id))
    assert "Address refused (not retried)" in html
    # Listed under its own heading: not one of those "kept and sent again".
    assert "Addresses the mail server refused (1)" in html and "could not be sent" not in html
    assert "Each is kept and sent again" not in html

    smtp_server.reject_recipients.clear()
    sent, _, _ = _sent(world, 1)
    day3 = T0 + timedelta(days=3)
    assert invitations.tick(day3, enqueue=False).reminders == [(sent.id, 1)]
    smtp_server.reject_recipients.add(db.session.get(Participant, sent.participant_id).email)
    assert invitations.send_reminder(sent.id, 1, now=day3, final_attempt=False) == "stopped"
    db.session.expire_all()
    assert (sent.status, sent.next_reminder_at, sent.failure_cause) == ("sent", None, "recipient")
    assert sent.last_error.startswith("Reminder 1: the mail server refused this address")
    assert invitations.tick(day3 + timedelta(days=10), enqueue=False).reminders == []
    assert _incidents(world) == []


def test_the_run_page_lists_the_runs_invitations_that_finally_failed(world, client):
    from tests.support.web import sign_in
    sign_in(client, world["ada"], world["ws"].id)
    page = client.get(f"/operations/runs/{world['run'].id}").get_data(as_text=True)
    assert '<div id="invitation-failures">' in page and "could not be sent" not in page
    inv, sent = invite(world), invite(world, 1)
    inv.status, inv.send_attempts, inv.last_error = "failed", 3, "(550, b'5.1.1 no such user')"
    sent.status = "sent"
    db.session.commit()
    page = client.get(f"/operations/runs/{world['run'].id}").get_data(as_text=True)
    assert "Invitations that could not be sent (1)" in page
    assert f'<a href="/invitations/{inv.id}">Zoë Ng</a>' in page and "no such user" in page
    assert f'/invitations/{sent.id}"' not in page


def test_without_a_public_address_the_failure_says_so(world, app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", None)
    inv = invite(world)
    with pytest.raises(invitations.InvitationError):
        invitations.send(inv.id, now=T0)
    db.session.refresh(inv)
    assert (inv.status, inv.failure_cause) == ("failed", "links")
    assert inv.last_error.startswith("PUBLIC_BASE_URL is not set")


def _admin(world):
    """Grace as the workspace's admin: incidents are emailed to admins."""
    db.session.add(Membership(user_id=world["grace"].id, workspace_id=world["ws"].id, role="admin"))
    db.session.commit()


def _incidents(world):
    from models import Incident
    db.session.expire_all()
    return db.session.scalars(select(Incident).where(Incident.workspace_id == world["ws"].id)
                              .order_by(Incident.id)).all()


def _admin_mail(world):
    return [m for m in outbox() if m.invitation_id is None and m.to_addr == world["grace"].email]


def test_without_a_public_address_every_failure_shows_one_incident_opens_and_nothing_is_lost(world, app, client,
                                                                                          monkeypatch):
    _admin(world)
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", None)
    rows = [invite(world, i) for i in range(3)]
    for row in rows:
        with pytest.raises(invitations.LinkError):
            invitations.send(row.id, now=T0, final_attempt=False)
        with pytest.raises(invitations.LinkError):
            invitations.send(row.id, now=T0, final_attempt=True)
    db.session.expire_all()
    for row in rows:  # each failed send, with its reason; not sent, not counted, kept for later
        assert (row.status, row.failure_cause, row.send_attempts, row.sent_at) == ("failed", "links", 2, None)
        assert row.last_error.startswith("PUBLIC_BASE_URL is not set")
        assert row.retry_at == T0 + timedelta(minutes=60)
    assert [m for m in outbox() if m.invitation_id is not None] == []
    assert invitations.sent_today(world["ws"], T0) == 0
    # One incident for the cause, not one per email; the admins are emailed once.
    [incident] = _incidents(world)
    assert (incident.kind, incident.subject_key, incident.closed_at) == ("invitations_failing", "invitations:links", None)
    assert incident.occurrences == 6  # every failed attempt counted on it
    assert "PUBLIC_BASE_URL is not set" in incident.message and "Nothing is lost" in incident.message
    [mail] = _admin_mail(world)
    assert mail.subject == "Terapage: invitation emails cannot be sent" and incident.notified_at is not None
    # Where admins look: the run page lists each failed send with its reason, the banner the incident.
    from tests.support.web import sign_in
    sign_in(client, world["ada"], world["ws"].id)
    page = client.get(f"/operations/runs/{world['run'].id}").get_data(as_text=True)
    assert "Invitations that could not be sent (3)" in page
    assert page.count("PUBLIC_BASE_URL is not set") >= 3 and "No link can be made" in page
    assert 'data-incident="invitations:links"' in page
    detail = client.get(f"/invitations/{rows[0].id}").get_data(as_text=True)
    assert 'id="invitation-retry"' in detail and "PUBLIC_BASE_URL is not set" in detail

    # Fixed: the tick sends them again once their retry time comes; the first success closes it.
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://research.example")
    early = invitations.tick(T0 + timedelta(minutes=30), enqueue=False)
    assert (early.retried, early.sends) == (0, [])
    due = invitations.tick(T0 + timedelta(minutes=61), enqueue=False)
    assert due.retried == 3 and sorted(due.sends) == sorted(r.id for r in rows)
    for row in rows:
        assert invitations.send(row.id, now=T0 + timedelta(minutes=61)) == "sent"
    db.session.expire_all()
    assert {(r.status, r.failure_cause, r.last_error, r.retry_at) for r in rows} == {("sent", None, None, None)}
    [incident] = _incidents(world)
    assert incident.closed_at is not None
    assert len(_admin_mail(world)) == 1  # told once: no mail for the recovery, none per email
    assert "could not be sent" not in client.get(f"/operations/runs/{world['run'].id}").get_data(as_text=True)


def test_a_refusing_mail_server_keeps_the_invitation_and_the_failure_does_not_count_against_the_cap(
        world, app, smtp_server, monkeypatch):
    from tests.conftest_smtp import free_port
    world["ws"].daily_invite_cap = 1
    db.session.commit()
    monkeypatch.setitem(app.config, "MAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", free_port())  # the server refuses connections
    first, second = invite(world, 0), invite(world, 1)
    for row in (first, second):
        with pytest.raises(MailError):
            invitations.send(row.id, now=T0, final_attempt=True)
    db.session.expire_all()
    assert {(r.status, r.failure_cause) for r in (first, second)} == {("failed", "mail")}
    assert [m.status for m in outbox(first.id)] == ["failed"]
    assert invitations.sent_today(world["ws"], T0) == 0  # a failed message is not counted as sent
    [incident] = _incidents(world)
    assert (incident.subject_key, incident.occurrences) == ("invitations:mail", 2)
    assert "mail server did not accept them" in incident.message

    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", smtp_server.port)  # the server is back
    now = invitations.utcnow() + timedelta(minutes=2)
    first.status = "pending"  # as the tick releases it
    db.session.commit()
    assert invitations.send(first.id, now=now) == "sent"
    assert [m.status for m in outbox(first.id)] == ["sent"]  # the same recorded message, not a second
    [incident] = _incidents(world)
    assert incident.closed_at is not None
    # Sending works again: the other failed invitation is due now, not in an hour; the cap holds.
    db.session.expire_all()
    assert second.retry_at <= invitations.utcnow()
    result = invitations.tick(now, enqueue=False)
    assert result.retried == 1 and result.sends == []  # pending again, but today's one message went
    assert invitations.send(second.id, now=now) == "deferred"
    db.session.expire_all()
    assert second.status == "pending" and "daily limit" in second.last_error
    assert [e.rcpt_tos for e in smtp_server.envelopes] == [["p0@people.example"]]


def test_a_reminder_that_finally_fails_is_handed_back_and_sent_later(world, app, smtp_server, monkeypatch):
    from tests.conftest_smtp import free_port
    monkeypatch.setitem(app.config, "MAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", smtp_server.port)
    inv, _, _ = _sent(world)
    day3 = T0 + timedelta(days=3)
    assert invitations.tick(day3, enqueue=False).reminders == [(inv.id, 1)]
    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", free_port())
    with pytest.raises(MailError):
        invitations.send_reminder(inv.id, 1, now=day3, final_attempt=False)
    db.session.expire_all()
    assert (inv.reminders_sent, inv.failure_cause) == (1, "mail")  # still claimed: RQ retries it
    with pytest.raises(MailError):
        invitations.send_reminder(inv.id, 1, now=day3, final_attempt=True)
    db.session.expire_all()
    assert (inv.status, inv.reminders_sent, inv.next_reminder_at) == ("sent", 0, day3 + timedelta(minutes=60))
    assert inv.last_error.startswith("Reminder 1: ") and inv.failure_cause == "mail"
    [(listed, _)] = invitations.failures_for_run(world["run"].id)
    assert listed.id == inv.id
    from flask import render_template
    with app.test_request_context():
        html = render_template("invite/_run_failures.html", failures=invitations.failures_for_run(world["run"].id))
    assert "<td>Reminder 1</td>" in html and "retrying" in html
    [incident] = _incidents(world)
    assert incident.subject_key == "invitations:mail" and incident.closed_at is None

    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", smtp_server.port)
    later = day3 + timedelta(minutes=61)
    assert invitations.tick(later, enqueue=False).reminders == [(inv.id, 1)]
    assert invitations.send_reminder(inv.id, 1, now=later) == "sent"
    db.session.expire_all()
    assert (inv.reminders_sent, inv.failure_cause, inv.last_error) == (1, None, None)
    assert [m.status for m in outbox(inv.id)] == ["sent", "sent"]  # the failed reminder row, sent once
    assert [m["Subject"] for m in smtp_server.messages][-1] == "Reminder: you're invited to Checkout study"
    assert _incidents(world)[0].closed_at is not None
    assert invitations.failures_for_run(world["run"].id) == []


def test_a_finally_failed_send_waits_longer_each_round_at_most_a_day(world, app):
    inv = invite(world)
    for attempts, minutes in ((1, 60), (4, 60), (5, 120), (8, 120), (9, 240), (400, 24 * 60)):
        inv.send_attempts = attempts
        assert invitations.retry_delay(inv) == timedelta(minutes=minutes), attempts


# --- consent evidence ----------------------------------------------------------------------------------------

def test_evidence_view_reads_the_record_and_the_confirmation(world):
    inv = invite(world)
    view = invitations.evidence_view(inv)
    assert view.consent == "opted_in"
    assert view.values_seen == [("Consent_Status__c", "Opted In"), ("HasOptedOutOfEmail", "false")]
    assert (view.source_system, view.source_object, view.source_org_id) == ("salesforce", "Contact",
                                                                             "00D000000000001EAA")
    assert view.source_record_id == f"003000000000{world['people'][0].id:03d}AAA"
    assert view.confirmation_text == "I confirm these contacts agreed to research invitations."
    assert (view.confirmed_by, view.confirmed_at) == ("Grace Hopper", T0 - timedelta(days=2))
    assert (view.plan_name, view.seen_at) == ("UK customers", T0 - timedelta(hours=1))
    # A sparse record falls back to the plan's confirmation.
    sparse = invitations.new_invitation(world["community"], world["people"][1], plan=world["plan"],
                                        consent_evidence={"consent": "opted_in", "value_seen": "Granted",
                                                          "field": "Consent__c"})
    db.session.commit()
    view = invitations.evidence_view(sparse)
    assert view.values_seen == [("Consent__c", "Granted")]
    assert (view.confirmed_by, view.confirmation_text[:9]) == ("Grace Hopper", "I confirm")


def test_evidence_view_reads_the_sync_sinks_shape(world):
    """As services.sync_sink writes it: value_seen as a mapping, the record as text, the user id."""
    row = invitations.new_invitation(world["study"], world["people"][2], plan=world["plan"], consent_evidence={
        "consent": "opted_in", "value_seen": {"Consent_Status__c": "Opted In", "HasOptedOutOfEmail": False},
        "source_record": "Contact 003000000000009AAA", "confirmation_text": "Yes, they agreed.",
        "confirmed_by": world["grace"].id, "confirmed_at": "2031-03-01T09:00:00+00:00"})
    db.session.commit()
    view = invitations.evidence_view(row)
    assert view.values_seen == [("Consent_Status__c", "Opted In"), ("HasOptedOutOfEmail", "false")]
    assert (view.source_object, view.source_record_id) == ("Contact", "003000000000009AAA")
    assert (view.confirmation_text, view.confirmed_by, view.confirmed_at) == (
        "Yes, they agreed.", "Grace Hopper", datetime(2031, 3, 1, 9, 0, tzinfo=timezone.utc))


def test_the_invitation_page_shows_status_error_and_evidence_to_the_team(world, app):
    from tests.support.web import sign_in

    inv = invite(world)
    invitations.send(inv.id, now=T0)
    client = app.test_client()
    sign_in(client, world["ada"], world["ws"].id)
    body = client.get(f"/invitations/{inv.id}").get_data(as_text=True)
    assert '<span class="badge badge-sent" id="invitation-status">sent</span>' in body
    assert f'<code class="evidence-record">003000000000{world["people"][0].id:03d}AAA</code>' in body
    assert '<dd class="evidence-confirmation">I confirm these contacts agreed to research invitations.</dd>' in body
    assert "Grace Hopper on 01 Mar 2031 09:00 UTC" in body
    assert "You&#39;re invited: Checkout study" in body
    listing = client.get(f"/studies/{world['study'].id}/messages/invitation").get_data(as_text=True)
    assert f'href="/invitations/{inv.id}">Zoë Ng</a>' in listing
    other = Workspace(name="Elsewhere")
    db.session.add(other)
    db.session.commit()
    assert app.test_client().get(f"/invitations/{inv.id}").status_code == 302  # signed out: to the login page


def test_the_run_page_and_csv_say_invited_means_queued_and_how_the_invitations_stand(world, client):
    """"Invited" counts invitations queued, not messages sent: the run page says "Invited (queued)"
    and, next to it, how many were sent, are waiting, failed or were refused; the CSV's invited
    column says "queued" (or "queued again") and its invitation column the invitation's state.
    Failures that are retried and refused addresses are listed under their own headings."""
    import csv
    import io

    from models import RunOutcome
    from tests.support.web import sign_in
    sent, waiting, refused, failing = (invite(world, 0), invite(world, 1), invite(world, 2),
                                       invite(world, 0, target="community"))
    sent.status, sent.sent_at = "sent", T0
    refused.status, refused.failure_cause, refused.last_error = "failed", "recipient", "550 no such user"
    failing.status, failing.failure_cause, failing.retry_at = "failed", "mail", T0 + timedelta(hours=1)
    run = world["run"]
    run.invited = 4
    people = world["people"]
    for seq, (person, detail) in enumerate([(people[0], {"invited": True}), (people[1], {"invited": True}),
                                            (people[2], {"invited_again": True})], start=1):
        db.session.add(RunOutcome(workspace_id=world["ws"].id, run_id=run.id, seq=seq, object_name="Contact",
                                  record_id=f"003000000000{seq:03d}AAA", participant_id=person.id,
                                  outcome="updated", detail=detail))
    db.session.add(RunOutcome(workspace_id=world["ws"].id, run_id=run.id, seq=4, object_name="Contact",
                              record_id="003000000000004AAA", outcome="skipped", reason="Not invited: no valid email"))
    db.session.commit()
    sign_in(client, world["ada"], world["ws"].id)
    page = client.get(f"/operations/runs/{run.id}").get_data(as_text=True)
    assert "<dt>Invited (queued)</dt>" in page
    counts = re.search(r'<dd id="run-send-counts">([^<]*)</dd>', page).group(1)
    assert counts == "1 sent · 1 waiting to be sent · 1 failed (sent again later) · 1 address refused"
    assert "Invitations that could not be sent (1)" in page and "Addresses the mail server refused (1)" in page
    retried_table = page.split('id="invitation-failures-retried"')[1].split("</table>")[0]
    refused_table = page.split('id="invitation-failures-refused"')[1].split("</table>")[0]
    assert f'data-invitation="{failing.id}"' in retried_table and f'data-invitation="{refused.id}"' not in retried_table
    assert f'data-invitation="{refused.id}"' in refused_table and "sent when the email changes" in refused_table

    rows = list(csv.DictReader(io.StringIO(client.get(f"/operations/runs/{run.id}/outcomes.csv").get_data(as_text=True))))
    assert [(r["invited"], r["invitation"]) for r in rows] == [
        ("queued", "sent"), ("queued", "waiting"), ("queued again", "refused"), ("", "")]


def test_an_invite_plan_whose_confirmation_was_voided_says_it_is_not_inviting_where_people_look(world, client):
    """A filter change voids the consent confirmation (correct): the Imports list and the plan page
    say "Not inviting: confirm consent again" with a link to the schedule step, and a run that
    invited nobody for that reason says so at the top; confirmed again, all of it goes."""
    from models import Membership, RunOutcome
    from services import plans
    from tests.support.web import sign_in
    plan, run = world["plan"], world["run"]
    plan.status, plan.consent_fingerprint = "active", plans.consent_fingerprint(plan)
    db.session.add(Membership(user_id=world["grace"].id, workspace_id=world["ws"].id, role="admin"))
    db.session.commit()
    sign_in(client, world["grace"], world["ws"].id)
    schedule = f'href="/wizard/plans/{plan.id}/schedule"'

    def pages():
        return (client.get("/operations/").get_data(as_text=True),
                client.get(f"/operations/plans/{plan.id}/runs").get_data(as_text=True),
                client.get(f"/operations/runs/{run.id}").get_data(as_text=True))

    listing, plan_page, run_page = pages()
    assert "Not inviting" not in listing + plan_page and "No invitations were sent" not in run_page

    before = plans.snapshot(plan)
    plan.filters = {"op": "AND", "items": [{"field": "MailingCountry", "operator": "equals", "value": "UK"}]}
    plans.apply_change(plan, before)
    db.session.add(RunOutcome(workspace_id=world["ws"].id, run_id=run.id, seq=1, object_name="Contact",
                              record_id="003000000000001AAA", outcome="imported",
                              reason="Not invited: invitations for this plan are not confirmed"))
    run.imported = 1  # as the run's counters say of that record
    db.session.commit()
    assert plan.consent_confirmed_at is None
    listing, plan_page, run_page = pages()
    row = listing.split(f'id="plan-{plan.id}"')[1].split("</tr>")[0]
    assert "Not inviting:" in row and "confirm consent again</a>" in row and schedule in row
    assert 'id="plan-not-inviting"' in plan_page and schedule in plan_page
    top = run_page.split('id="run-live"')[0]
    assert "No invitations were sent by this run: the plan's consent confirmation was missing" in top
    assert schedule in top

    plan.consent_confirmed_at, plan.consent_confirmed_by_id = T0, world["grace"].id
    plan.consent_confirmation_text = "Confirmed again."
    plan.consent_fingerprint = plans.consent_fingerprint(plan)
    db.session.commit()
    listing, plan_page, run_page = pages()
    assert "Not inviting" not in listing + plan_page
    assert "No invitations were sent by this run" in run_page and "It has been confirmed since" in run_page

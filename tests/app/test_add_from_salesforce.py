""""Add participants" → Salesforce in an activity, a study and a community: pick a saved plan,
preview (the wizard's preview), invalid entries come unticked, add the ticked ones."""
import re

from core.extensions import db
from models import (Activity, ActivityParticipant, CommunityMember, Participant, ParticipantSource, StudyParticipant,
                    SyncRun)
from tests.support.wizard_steps import *  # noqa: F401,F403
from tests.support.wizard_steps import text_of

UK = {"op": "AND", "items": [{"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"}]}


def _records(wiz):
    base = {"MailingCountry": "United Kingdom", "Consent_Status__c": "Opted In"}
    ok1 = wiz.create("Contact", {**base, "FirstName": "Ola", "LastName": "One", "Email": "ola@x.example"})
    ok2 = wiz.create("Contact", {**base, "FirstName": "Tim", "LastName": "Two", "Email": "tim@x.example"})
    bad = wiz.create("Contact", {**base, "FirstName": "Bad", "LastName": "Mail", "Email": "not an email"})
    wiz.create("Contact", {"MailingCountry": "France", "LastName": "Away", "Email": "away@x.example"})
    return ok1, ok2, bad


def test_the_salesforce_tab_previews_a_saved_plan_and_adds_the_ticked_records(wiz):
    ok1, ok2, bad = _records(wiz)
    plan = wiz.plan(step="schedule", filters=UK, status="active", action="invite_study",
                    target_study_id=wiz.ids["study"])
    activity_id = wiz.ids["activity"]
    pool_page = text_of(wiz.get(f"/activities/{activity_id}/add-participants"))
    assert f"/activities/{activity_id}/add-participants/salesforce" in pool_page
    page = wiz.get(f"/activities/{activity_id}/add-participants/salesforce")
    assert page.status_code == 200 and "Wizard plan (Contact)" in text_of(page)
    html = text_of(wiz.get(f"/activities/{activity_id}/add-participants/salesforce?plan={plan.id}"))
    assert html.count('name="record_id"') == 3
    assert re.search(rf'value="{ok1}" checked', html) and not re.search(rf'value="{bad}" checked', html)
    assert "No valid email or phone number." in html

    r = wiz.post(f"/activities/{activity_id}/add-participants/salesforce",
                 {"plan": str(plan.id), "record_id": [ok1, ok2]})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/activities/{activity_id}")
    db.session.expire_all()
    linked = {s.record_id: s.participant_id for s in db.session.query(ParticipantSource).filter_by(plan_id=plan.id)}
    assert set(linked) == {ok1, ok2}
    members = {m.participant_id for m in db.session.query(ActivityParticipant).filter_by(activity_id=activity_id)}
    assert set(linked.values()) <= members
    study_id = db.session.get(Activity, activity_id).study_id
    added = db.session.query(StudyParticipant).filter(StudyParticipant.participant_id.in_(linked.values())).all()
    assert {a.study_id for a in added} == {study_id} and {a.added_via for a in added} == {"salesforce"}
    run = db.session.query(SyncRun).filter_by(plan_id=plan.id, trigger="add").one()
    assert run.status == "succeeded" and run.imported == 2 and run.invited == 0
    assert {p.status for p in db.session.query(Participant).filter(Participant.id.in_(linked.values()))} == {"active"}
    # the plan's own cursor is untouched by this one-off import
    assert plan.cursor_at is None

    # adding the same people to a community: found by their source link, nobody twice
    community_id = wiz.ids["community"]
    r = wiz.post(f"/communities/{community_id}/add-participants/salesforce",
                 {"plan": str(plan.id), "record_id": [ok1, ok2, bad]})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.query(Participant).filter(Participant.email_key.in_(["ola@x.example", "tim@x.example"])).count() == 2
    members = {m.participant_id for m in db.session.query(CommunityMember).filter_by(community_id=community_id)}
    assert set(linked.values()) <= members


def test_nothing_ticked_says_so(wiz):
    _records(wiz)
    plan = wiz.plan(step="schedule", filters=UK, status="active")
    study_id = wiz.ids["study"]
    r = wiz.post(f"/studies/{study_id}/add-participants/salesforce", {"plan": str(plan.id)})
    assert r.status_code == 302 and "plan=" in r.headers["Location"]
    assert db.session.query(SyncRun).filter_by(trigger="add").count() == 0

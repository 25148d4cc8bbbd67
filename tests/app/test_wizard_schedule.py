"""Step 6, Schedule and action, as plain form posts: schedules and next run in the workspace time
zone, actions and targets, the consent confirmation and its voiding, caps and the API estimate,
Save and Run now; and the review of records an Import only plan staged."""
import os
from datetime import datetime, timezone

import pytest
import redis
from sqlalchemy import func, select

from core.extensions import db
from models import (Activity, AuditEvent, Community, ImportPlan, Participant, ParticipantSource, PreviewTotals,
                    Study, SyncRun)
from services import plan_steps
from tests.support.wizard_steps import *  # noqa: F401,F403
from tests.support.wizard_steps import filter_form, text_of

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def url(plan, step="schedule"):
    return f"/wizard/plans/{plan.id}/{step}"


def form(**kw):
    data = {"schedule": "manual", "action_choice": "pool", "leaving_policy": "keep", "step_action": "save",
            "name": "UK contacts"}
    data.update(kw)
    return data


def fresh(plan):
    db.session.expire_all()
    return db.session.get(ImportPlan, plan.id)


def test_hourly_is_the_default_for_communities_and_recurring_studies(wiz):
    plan = wiz.plan(step="schedule", action="community")
    html = text_of(wiz.get(url(plan)))
    assert 'value="hourly" checked' in html
    study = db.session.get(Study, wiz.ids["study"])
    study.recurring = True
    plan2 = wiz.plan(step="schedule", action="invite_study", target_study_id=study.id)
    assert 'value="hourly" checked' in text_of(wiz.get(url(plan2)))
    plan3 = wiz.plan(step="schedule", action="pool")
    assert 'value="manual" checked' in text_of(wiz.get(url(plan3)))


def test_daily_time_in_the_workspace_time_zone_is_stored_with_next_run_in_utc(wiz):
    plan = wiz.plan(step="schedule")
    r = wiz.post(url(plan), form(schedule="daily", daily_time="07:30", leaving_policy="archive",
                                 per_run_api_cap="50", per_day_api_cap="500", reminder_days="7, 3"))
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/plans/{plan.id}/runs")
    saved = fresh(plan)
    assert (saved.status, saved.schedule, saved.daily_time) == ("active", "daily", "07:30")
    assert (saved.leaving_policy, saved.per_run_api_cap, saved.per_day_api_cap) == ("archive", 50, 500)
    assert saved.reminder_days == [3, 7] and saved.name == "UK contacts"
    nxt = saved.next_run_at.astimezone(timezone.utc)
    local = nxt.astimezone(__import__("zoneinfo").ZoneInfo("Europe/London"))
    assert (local.hour, local.minute) == (7, 30) and nxt > datetime.now(timezone.utc)
    bad = wiz.post(url(plan), form(schedule="daily", daily_time="7pm"))
    assert bad.status_code == 422 and "HH:MM" in text_of(bad)


def test_invite_needs_the_consent_confirmation_saved_with_who_when_and_fingerprint(wiz):
    study_id = wiz.ids["study"]
    plan = wiz.plan(step="schedule")
    html = text_of(wiz.get(url(plan)))
    assert plan_steps.CONSENT_CONFIRMATION_TEXT in html
    r = wiz.post(url(plan), form(action_choice="invite_study", target_study_id=str(study_id)))
    assert r.status_code == 422 and "Confirm the consent statement" in text_of(r)
    assert fresh(plan).status == "draft"
    r = wiz.post(url(plan), form(action_choice="invite_study"))  # no study chosen
    assert r.status_code == 422 and "Choose the study" in text_of(r)
    r = wiz.post(url(plan), form(action_choice="invite_study", target_study_id=str(study_id), confirm_consent="y"))
    assert r.status_code == 302
    saved = fresh(plan)
    assert saved.status == "active" and saved.target_study_id == study_id
    assert saved.consent_confirmation_text == plan_steps.CONSENT_CONFIRMATION_TEXT
    assert saved.consent_confirmed_by_id == wiz.user.id and saved.consent_confirmed_at is not None
    from services import plans
    assert saved.consent_fingerprint == plans.consent_fingerprint(saved)
    assert plans.to_spec(saved, wiz.workspace).invite_confirmation == plan_steps.CONSENT_CONFIRMATION_TEXT
    assert "Confirmed by" in text_of(wiz.get(url(plan)))


def test_confirmation_is_voided_when_filters_action_or_target_change(wiz):
    study_id = wiz.ids["study"]
    plan = wiz.plan(step="schedule")
    confirmed = form(action_choice="invite_study", target_study_id=str(study_id), confirm_consent="y")
    wiz.post(url(plan), confirmed)
    assert fresh(plan).consent_confirmed_at is not None
    # filters change -> void
    r = wiz.post(url(plan, "filters"), filter_form([("MailingCountry", "equals", "United Kingdom")]))
    assert r.status_code == 303
    assert fresh(plan).consent_confirmed_at is None
    html = text_of(wiz.get(url(plan)))
    assert 'name="confirm_consent"' in html and "Confirmed by" not in html
    # confirm again; another target or action needs its own confirmation: saving without one is
    # refused and changes nothing (the plan keeps its study and the confirmation given for it)
    wiz.post(url(plan), confirmed)
    confirmed_at = fresh(plan).consent_confirmed_at
    assert confirmed_at is not None
    other = Study(workspace_id=wiz.workspace.id, name="Other study")
    db.session.add(other)
    db.session.commit()
    r = wiz.post(url(plan), form(action_choice="invite_study", target_study_id=str(other.id)))
    assert r.status_code == 422 and fresh(plan).consent_confirmed_at == confirmed_at
    assert fresh(plan).target_study_id == study_id
    r = wiz.post(url(plan), form(action_choice="invite_task", target_activity_id=str(wiz.ids["activity"])))
    assert r.status_code == 422 and fresh(plan).consent_confirmed_at == confirmed_at
    assert fresh(plan).action == "invite_study"
    # the other target, confirmed: a new confirmation for it
    r = wiz.post(url(plan), form(action_choice="invite_study", target_study_id=str(other.id), confirm_consent="y"))
    assert r.status_code == 302 and fresh(plan).target_study_id == other.id
    assert plan_steps.confirmation_valid(fresh(plan))
    # pool clears it
    wiz.post(url(plan), form(action_choice="pool"))
    saved = fresh(plan)
    assert saved.action == "pool" and saved.consent_confirmation_text is None


_PLAN_STATE = ("status", "schedule", "action", "target_study_id", "target_activity_id", "target_community_id",
               "leaving_policy", "name", "consent_confirmed_at", "consent_confirmed_by_id",
               "consent_confirmation_text", "consent_fingerprint", "next_run_at", "reminder_days")


def _state(plan):
    saved = fresh(plan)
    return {name: getattr(saved, name) for name in _PLAN_STATE}


def test_a_refused_invite_save_persists_nothing(wiz):
    """Invite to study without the consent box ticked: refused, and neither the action, the
    target, the schedule nor any consent field reached the database (no half-save)."""
    study_id = wiz.ids["study"]
    plan = wiz.plan(step="schedule")
    before = _state(plan)
    assert before["action"] != "invite_study" and before["target_study_id"] is None
    r = wiz.post(url(plan), form(action_choice="invite_study", target_study_id=str(study_id), schedule="hourly",
                                 leaving_policy="archive", name="Renamed"))
    assert r.status_code == 422 and "Confirm the consent statement" in text_of(r)
    assert _state(plan) == before
    # the form still shows what was posted
    html = text_of(r)
    assert 'value="Renamed"' in html and 'value="hourly" checked' in html
    # an active pool plan: a refused switch to inviting leaves it the active pool plan it was
    assert wiz.post(url(plan), form()).status_code == 302
    before = _state(plan)
    assert before["status"] == "active" and before["action"] == "pool"
    r = wiz.post(url(plan), form(action_choice="invite_study", target_study_id=str(study_id)))
    assert r.status_code == 422 and _state(plan) == before


def test_activate_refuses_before_changing_anything(wiz):
    study_id = wiz.ids["study"]
    plan = wiz.plan(step="schedule", action="invite_study", target_study_id=study_id)
    # a confirmation given for something else (stale): activation is refused and leaves it be
    plan.consent_confirmed_at = datetime.now(timezone.utc)
    plan.consent_confirmation_text = plan_steps.CONSENT_CONFIRMATION_TEXT
    plan.consent_fingerprint = "given-for-another-target"
    db.session.commit()
    before = _state(plan)
    with pytest.raises(plan_steps.StepError):
        plan_steps.activate(plan, wiz.workspace)
    assert not db.session.dirty
    assert _state(plan) == before and before["status"] == "draft"


def test_api_estimate_uses_the_previews_count(wiz):
    plan = wiz.plan(step="schedule")
    db.session.add(PreviewTotals(workspace_id=wiz.workspace.id, plan_id=plan.id, fingerprint="x",
                                 status="done", estimate_total=4001))
    db.session.commit()
    html = text_of(wiz.post(url(plan), form(schedule="hourly", step_action="refresh")))
    assert "about 5 API calls per run" in html and "3 query pages" in html and "about 120 a day" in html
    # Another object: the old object's count is gone, never shown as this plan's estimate.
    from services import plans as plan_service
    assert plan_service.save_object(plan, "Lead", ["Contact", "Lead"]) == {}
    assert db.session.scalar(select(func.count()).select_from(PreviewTotals)
                             .where(PreviewTotals.plan_id == plan.id)) == 0


def test_run_now_requests_a_run_and_opens_its_page(app, wiz):
    conn = redis.Redis.from_url(REDIS_URL)
    try:
        conn.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"no Redis at {REDIS_URL} ({exc})", pytrace=False)
    conn.flushdb()
    old = app.config.get("REDIS_URL")
    app.config["REDIS_URL"] = REDIS_URL
    try:
        plan = wiz.plan(step="schedule")
        r = wiz.post(url(plan), form(step_action="run_now"))
        run = db.session.query(SyncRun).filter_by(plan_id=plan.id).one()
        assert r.status_code == 302 and r.headers["Location"].endswith(f"/runs/{run.id}")
        assert (run.trigger, run.triggered_by_id, run.status) == ("wizard", wiz.user.id, "queued")
    finally:
        app.config["REDIS_URL"] = old
        conn.flushdb()
        conn.close()


def test_import_only_staged_records_are_approved_or_discarded(wiz):
    plan = wiz.plan(step="schedule")
    wiz.post(url(plan), form(action_choice="import_only"))
    assert fresh(plan).action == "import_only"
    ws = wiz.workspace.id
    people = []
    for i in range(4):
        p = Participant(workspace_id=ws, first_name=f"S{i}", email=f"s{i}@x.example", email_key=f"s{i}@x.example",
                        status="staged")
        db.session.add(p)
        db.session.flush()
        db.session.add(ParticipantSource(workspace_id=ws, participant_id=p.id, plan_id=plan.id, org_id=wiz.org_id,
                                         object_name="Contact", record_id=f"0035g00000000{i:02d}AAA"))
        people.append(p.id)
    db.session.commit()
    html = text_of(wiz.get(url(plan, "staged")))
    assert html.count('name="participant_id"') == 4 and "Approve all 4" in html
    wiz.post(url(plan, "staged"), {"review": "approve_selected", "participant_id": [str(people[0])]})
    wiz.post(url(plan, "staged"), {"review": "discard_selected", "participant_id": [str(people[1])]})
    db.session.expire_all()
    status = {p.id: p.status for p in db.session.query(Participant).filter(Participant.id.in_(people))}
    assert status == {people[0]: "active", people[1]: "archived", people[2]: "staged", people[3]: "staged"}
    wiz.post(url(plan, "staged"), {"review": "approve_all"})
    db.session.expire_all()
    assert {p.status for p in db.session.query(Participant).filter(Participant.id.in_(people[2:]))} == {"active"}
    assert "Nothing is waiting for review." in text_of(wiz.get(url(plan, "staged")))
    assert db.session.query(AuditEvent).filter_by(action="plan.staged_approved").count() == 2


def test_a_cleared_import_name_is_a_field_error_and_nothing_is_saved(wiz):
    plan = wiz.plan(step="schedule")
    name_before, status_before = plan.name, plan.status
    for blank in ("", "   "):
        r = wiz.post(url(plan), form(name=blank))
        assert r.status_code == 422, r.status_code
        html = text_of(r)
        assert 'id="name-error"' in html and "Give this import a name" in html
        saved = fresh(plan)
        assert (saved.name, saved.status) == (name_before, status_before)
    r = wiz.post(url(plan), form(name="  Renamed  "))
    assert r.status_code == 302 and fresh(plan).name == "Renamed"


def test_run_now_while_a_run_is_queued_opens_that_run_and_says_so(app, wiz):
    """The wizard's Run now is services.operations.run_now: with a run of the plan already
    queued it starts no second one and does not claim to have started one."""
    plan = wiz.plan(step="schedule")
    queued = SyncRun(workspace_id=wiz.workspace.id, plan_id=plan.id, status="queued", trigger="schedule",
                     queued_at=datetime.now(timezone.utc))
    db.session.add(queued)
    db.session.commit()
    r = wiz.post(url(plan), form(step_action="run_now"))
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/runs/{queued.id}")
    assert db.session.query(SyncRun).filter_by(plan_id=plan.id).count() == 1
    html = text_of(wiz.get(r.headers["Location"]))
    assert "already queued or running" in html and "Saved and started" not in html

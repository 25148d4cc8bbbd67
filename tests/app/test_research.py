"""Studies, activities, communities and "Add participants" (idempotent, audited, workspace-bound)."""
from __future__ import annotations

from core.extensions import db
from models import (Activity, ActivityParticipant, AuditEvent, Community, CommunityMember, Participant, Study,
                    StudyParticipant)
from services import research
from tests.support.web import csrf_token, make_world, sign_in


def _client(app, world, who="researcher"):
    client = app.test_client()
    sign_in(client, world["users"][who], world["workspace_id"])
    return client, csrf_token(client)


def _people(world, n=5, **kw):
    ids = []
    for i in range(n):
        p = Participant(workspace_id=world["workspace_id"], first_name=f"Person{i}", email=f"p{i}@x.example",
                        email_key=f"p{i}@{world['workspace_id']}.x.example", **kw)
        db.session.add(p)
        db.session.flush()
        ids.append(p.id)
    db.session.commit()
    return ids


def test_an_open_study_cannot_close_in_the_past(app):
    world = make_world("Alpha")
    client, token = _client(app, world)
    r = client.post("/studies/new", data={"csrf_token": token, "name": "Late", "status": "open",
                                          "closes_on": "1999-01-01"})
    assert r.status_code in (200, 422) and "An open study cannot close in the past" in r.get_data(as_text=True)
    assert db.session.scalar(db.select(Study).where(Study.name == "Late")) is None
    r = client.post("/studies/new", data={"csrf_token": token, "name": "Archived", "status": "closed",
                                          "closes_on": "1999-01-01"})
    assert r.status_code == 302  # a closed study may have closed long ago


def test_create_and_edit_a_study_with_an_activity_and_a_community(app):
    world = make_world("Alpha")
    client, token = _client(app, world)
    r = client.post("/studies/new", data={"csrf_token": token, "name": "Onboarding", "status": "open",
                                          "closes_on": "2031-05-01", "recurring": "y"})
    study = db.session.scalar(db.select(Study).where(Study.name == "Onboarding"))
    assert r.headers["Location"] == f"/studies/{study.id}"
    assert study.recurring and study.workspace_id == world["workspace_id"]
    assert study.closes_at.isoformat() == "2031-05-01T22:59:59+00:00"  # end of day, Europe/London (BST)
    r = client.post(f"/studies/{study.id}/activities/new", data={"csrf_token": token, "name": "Week 1 diary",
                                                                 "kind": "diary"})
    activity = db.session.scalar(db.select(Activity).where(Activity.name == "Week 1 diary"))
    assert r.headers["Location"] == f"/activities/{activity.id}" and activity.study_id == study.id
    client.post(f"/activities/{activity.id}/edit", data={"csrf_token": token, "name": "Week 1 interview",
                                                        "kind": "interview"})
    client.post(f"/studies/{study.id}/edit", data={"csrf_token": token, "name": "Onboarding 2", "status": "closed"})
    db.session.expire_all()
    assert (activity.name, activity.kind) == ("Week 1 interview", "interview")
    assert (study.name, study.status, study.recurring) == ("Onboarding 2", "closed", False)
    assert "Week 1 interview" in client.get(f"/studies/{study.id}").get_data(as_text=True)
    r = client.post("/communities/new", data={"csrf_token": token, "name": "Power users"})
    community = db.session.scalar(db.select(Community).where(Community.name == "Power users"))
    assert r.headers["Location"] == f"/communities/{community.id}"
    assert "Power users" in client.get("/communities").get_data(as_text=True)
    invalid = client.post("/studies/new", data={"csrf_token": token, "name": ""})
    assert invalid.status_code == 200 and 'class="error"' in invalid.get_data(as_text=True)
    invalid = client.post(f"/studies/{study.id}/activities/new", data={"csrf_token": token, "name": "x",
                                                                      "kind": "podcast"})
    assert invalid.status_code == 200 and 'class="error"' in invalid.get_data(as_text=True)


def test_add_participants_to_a_study_is_idempotent_and_audited(app):
    world = make_world("Alpha")
    ids = _people(world)
    client, token = _client(app, world)
    study_id = world["ids"]["study"]
    url = f"/studies/{study_id}/add-participants"
    form = client.get(url).get_data(as_text=True)
    assert "Participant pool" in form and 'name="participant_id"' in form
    for _ in range(2):
        r = client.post(url, data={"csrf_token": token, "participant_id": [str(i) for i in ids[:3]]})
        assert r.headers["Location"] == f"/studies/{study_id}"
    assert client.get(f"/studies/{study_id}").status_code == 200
    members = set(db.session.scalars(db.select(StudyParticipant.participant_id).where(
        StudyParticipant.study_id == study_id)))
    assert members == {world["ids"]["participant"], *ids[:3]}
    events = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "participants.added")).all()
    assert [(e.detail["added"], e.detail["already"]) for e in events] == [(3, 0), (0, 3)]


def test_adding_to_an_activity_also_adds_to_its_study(app):
    world = make_world("Alpha")
    ids = _people(world, 2)
    client, token = _client(app, world)
    activity_id = world["ids"]["activity"]
    client.post(f"/activities/{activity_id}/add-participants", data={"csrf_token": token,
                                                                     "participant_id": [str(i) for i in ids]})
    client.post(f"/activities/{activity_id}/add-participants", data={"csrf_token": token,
                                                                     "participant_id": [str(ids[0])]})
    in_activity = db.session.scalars(db.select(ActivityParticipant.participant_id).where(
        ActivityParticipant.activity_id == activity_id)).all()
    in_study = db.session.scalars(db.select(StudyParticipant.participant_id).where(
        StudyParticipant.study_id == world["ids"]["study"])).all()
    assert sorted(in_activity) == sorted([world["ids"]["participant"], *ids])
    assert sorted(in_study) == sorted([world["ids"]["participant"], *ids])


def test_add_all_matching_to_a_community(app):
    world = make_world("Alpha")
    _people(world, 4, segments=["Panel"])
    client, token = _client(app, world)
    community_id = world["ids"]["community"]
    results = client.get(f"/communities/{community_id}/add-participants?segment=Panel",
                         headers={"HX-Request": "true"}).get_data(as_text=True)
    assert results.lstrip().startswith('<div id="add-results">') and "4 participants in the pool match" in results
    for _ in range(2):
        client.post(f"/communities/{community_id}/add-participants",
                    data={"csrf_token": token, "all_matching": "1", "segment": "Panel"})
    count = db.session.scalar(db.select(db.func.count()).select_from(CommunityMember).where(
        CommunityMember.community_id == community_id))
    assert count == 5  # the world's member + 4 in the segment, once each


def test_only_the_workspaces_active_pool_can_be_added(app):
    alpha, beta = make_world("Alpha"), make_world("Beta")
    staged = _people(alpha, 1, status="staged")
    result = research.add_participants(db.session.get(Study, alpha["ids"]["study"]),
                                       [beta["ids"]["participant"], *staged])
    assert (result.added, result.refused) == (0, 2)
    client, token = _client(app, alpha)
    r = client.post(f"/studies/{alpha['ids']['study']}/add-participants",
                    data={"csrf_token": token, "participant_id": [str(beta["ids"]["participant"])]})
    assert r.status_code == 302
    assert db.session.scalar(db.select(db.func.count()).select_from(StudyParticipant).where(
        StudyParticipant.participant_id == beta["ids"]["participant"])) == 1  # only Beta's own link


def test_the_source_selector_lists_the_pool_and_takes_more_sources(app):
    from flask import url_for
    from research import sources

    world = make_world("Alpha")
    client, _ = _client(app, world)
    extra = sources.AddSource("test-source", "Test source",
                              lambda kind, target: url_for("research.studies") + f"?from=test&{kind}={target.id}")
    sources.register_source(extra)
    try:
        html = client.get(f"/studies/{world['ids']['study']}/add-participants").get_data(as_text=True)
        assert 'aria-current="page">Participant pool</a>' in html
        assert f"?from=test&amp;study={world['ids']['study']}" in html and ">Test source</a>" in html
    finally:
        sources.SOURCES.remove(extra)

"""`flask seed-demo`: the demo workspace, its two users, a study, a community and a pool; twice is once."""
from core.cli import DEMO_ADMIN_PASSWORD, DEMO_RESEARCHER_PASSWORD
from models import Activity, Community, Membership, Participant, Study, User, Workspace


def test_seed_demo_is_idempotent_and_complete(app):
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["seed-demo"])
        assert result.exit_code == 0, result.output
    assert "admin@example.org / " + DEMO_ADMIN_PASSWORD in result.output
    assert "researcher@example.org / " + DEMO_RESEARCHER_PASSWORD in result.output

    [workspace] = Workspace.query.all()
    assert (workspace.name, workspace.default_phone_region, workspace.timezone) == \
        ("Demo Research", "GB", "Europe/London")
    admin = User.query.filter_by(email="admin@example.org").one()
    researcher = User.query.filter_by(email="researcher@example.org").one()
    assert admin.check_password(DEMO_ADMIN_PASSWORD) and admin.password_hash != DEMO_ADMIN_PASSWORD
    assert researcher.check_password(DEMO_RESEARCHER_PASSWORD)
    roles = {m.user_id: m for m in Membership.query.filter_by(workspace_id=workspace.id)}
    assert roles[admin.id].role == "admin"
    assert roles[researcher.id].role == "researcher"
    assert not roles[researcher.id].can_manage_integrations and not roles[researcher.id].can_manage_imports

    [study] = Study.query.all()
    assert study.name == "Customer onboarding interviews"
    assert [a.name for a in Activity.query.filter_by(study_id=study.id)] == ["Kick-off survey"]
    assert [c.name for c in Community.query.all()] == ["Product panel"]
    assert Participant.query.filter_by(workspace_id=workspace.id).count() == 25
    assert {p.consent_status for p in Participant.query} == {"opted_in", "unknown", "opted_out"}

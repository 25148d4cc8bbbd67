"""Operations against real services: the token health check through the emulator, Run now on the
real Redis queue, and the periodic jobs run by a real RQ worker."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.crypto import cipher
from core.extensions import db
from models import ImportPlan, Incident, OutboxMessage, SalesforceConnection, SyncRun
from services import operations as ops
from tests.app.wizard_support import emulator, make_admin, seed_connection, use_emulator
from tests.integration.sync_support import drain, rconn  # noqa: F401
from tests.support.web import make_world, post, sign_in


@pytest.fixture(scope="module")
def emu():
    with emulator() as server:
        yield server


@pytest.fixture
def conn(app, emu, monkeypatch):
    use_emulator(app, emu, monkeypatch)
    ws, _admin = make_admin()
    return seed_connection(ws, emu)


def test_token_check_records_the_check_and_api_usage(app, emu, conn):
    emu.admin.expire_sessions()  # the check refreshes an expired session like any call
    assert ops.check_token(conn) == "ok"
    db.session.expire_all()
    row = db.session.get(SalesforceConnection, conn.id)
    assert row.status == "connected" and row.last_token_check_at is not None
    assert row.api_max == 15000 and row.api_used >= 1
    assert db.session.scalars(select(Incident)).all() == []


def test_token_check_finds_a_revoked_token_before_a_sync_does(app, emu, conn):
    plan = ImportPlan(workspace_id=conn.workspace_id, connection_id=conn.id, name="Nightly", status="active",
                      object_name="Contact", mapping={}, filters={})
    db.session.add(plan)
    db.session.commit()
    refresh = cipher().decrypt(conn.refresh_token_enc)
    assert emu.http_session().post(emu.url + "/services/oauth2/revoke", data={"token": refresh}).status_code == 200

    assert ops.check_tokens() == {"needs_reconnect": 1}
    db.session.expire_all()
    row = db.session.get(SalesforceConnection, conn.id)
    assert row.status == "needs_reconnect" and row.last_token_check_at is not None
    assert db.session.get(ImportPlan, plan.id).status == "held"
    [incident] = db.session.scalars(select(Incident)).all()
    assert incident.kind == "needs_reconnect" and incident.notified_at is not None
    [mail] = db.session.scalars(select(OutboxMessage)).all()
    assert mail.to_addr.startswith("admin") and f"/operations/connections/{conn.id}" in mail.body_text
    # A connection needing reconnect is not checked again (nothing to check until it is reconnected).
    assert ops.check_tokens() == {}


def test_run_now_queues_one_run_and_a_second_click_shows_the_active_one(app, client, rconn):
    world = make_world("Alpha")
    plan = db.session.get(ImportPlan, world["ids"]["plan"])
    plan.status = "active"
    db.session.commit()
    sign_in(client, world["users"]["researcher + manage_imports"], world["workspace_id"])
    runs_before = db.session.scalar(select(func.count()).select_from(SyncRun))
    first = post(client, f"/operations/plans/{plan.id}/run")
    run = db.session.scalars(select(SyncRun).where(SyncRun.status == "queued")).one()
    assert first.headers["Location"] == f"/operations/runs/{run.id}"
    assert run.trigger == "manual" and run.job_id == f"sync-run-{run.id}"
    assert rconn.exists(f"rq:job:{run.job_id}")
    second = post(client, f"/operations/plans/{plan.id}/run")
    assert second.headers["Location"] == f"/operations/runs/{run.id}"
    # the second click records nothing: no skipped junk run
    assert db.session.scalar(select(func.count()).select_from(SyncRun)) == runs_before + 1


def test_periodic_jobs_run_on_a_worker(app, rconn):
    from jobs import operations as jobs

    world = make_world("Alpha")
    run = SyncRun(workspace_id=world["workspace_id"], plan_id=world["ids"]["plan"], status="failed",
                  reason="boom", finished_at=db.session.get(SyncRun, world["ids"]["run"]).finished_at)
    db.session.add(run)
    db.session.add(Incident(workspace_id=world["workspace_id"], kind="run_failed",
                            subject_key=f"plan:{world['ids']['plan']}", message="boom"))
    db.session.commit()
    assert jobs.enqueue_incident_sweep() == "operations-sweep-incidents"
    assert jobs.enqueue_incident_sweep() == "operations-sweep-incidents"  # once while queued
    assert rconn.llen("rq:queue:default") == 1
    jobs.enqueue_outcome_purge()
    drain(app, rconn, queues=("default",))
    db.session.expire_all()
    incident = db.session.scalars(select(Incident)).one()
    assert incident.notified_at is not None
    assert [m.to_addr for m in db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.subject.like("Terapage:%")))] == ["admin@alpha.example"]


def test_salesforce_page_links_each_connection_to_its_status(app, client):
    world = make_world("Alpha")
    sign_in(client, world["users"]["researcher"], world["workspace_id"])
    html = client.get("/admin/configuration/integrations/salesforce").get_data(as_text=True)
    assert f'href="/operations/connections/{world["ids"]["connection"]}"' in html


def test_participant_page_shows_the_invitations_consent_evidence(app, client):
    world = make_world("Alpha")
    sign_in(client, world["users"]["researcher"], world["workspace_id"])
    html = client.get(f"/participants/{world['ids']['participant']}").get_data(as_text=True)
    assert 'class="consent-evidence"' in html and "<dt>Consent</dt><dd>opted in</dd>" in html


def test_run_now_is_one_service_for_the_imports_page_and_the_wizard(app, rconn):
    """services.operations.run_now: a draft is refused and records nothing; the first call
    queues a run, the second hands back that run and says so."""
    world = make_world("Alpha")
    plan = db.session.get(ImportPlan, world["ids"]["plan"])
    user = world["users"]["researcher + manage_imports"]
    plan.status = "draft"
    db.session.commit()
    before = db.session.scalar(select(func.count()).select_from(SyncRun))
    with pytest.raises(ops.PlanStateError, match="is a draft"):
        ops.run_now(plan, "manual", user)
    assert db.session.scalar(select(func.count()).select_from(SyncRun)) == before
    plan.status = "active"
    db.session.commit()
    first = ops.run_now(plan, "wizard", user)
    assert first.started and first.message == "Started."
    assert (first.run.status, first.run.trigger, first.run.triggered_by_id) == ("queued", "wizard", user.id)
    again = ops.run_now(plan, "manual", user)
    assert not again.started and again.run.id == first.run.id
    assert "already queued or running" in again.message
    assert db.session.scalar(select(func.count()).select_from(SyncRun)) == before + 1


def test_a_second_run_now_on_the_imports_page_says_the_run_was_already_going(app, client, rconn):
    world = make_world("Alpha")
    plan = db.session.get(ImportPlan, world["ids"]["plan"])
    plan.status = "active"
    db.session.commit()
    sign_in(client, world["users"]["researcher + manage_imports"], world["workspace_id"])
    post(client, f"/operations/plans/{plan.id}/run")
    run = db.session.scalars(select(SyncRun).where(SyncRun.status == "queued")).one()
    page = post(client, f"/operations/plans/{plan.id}/run", follow_redirects=True).get_data(as_text=True)
    assert f"/operations/runs/{run.id}" in page
    assert "already queued or running" in page

"""client_for: an expired session is refreshed once at a time per connection, the new token is
stored encrypted, and a refused refresh marks the connection needs_reconnect."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, text

from core.crypto import cipher
from core.extensions import db
from models import ImportPlan, SalesforceConnection
from salesforce import oauth
from salesforce.errors import NeedsReconnect
from services import connections as connection_service
from tests.app.wizard_support import emulator, make_admin, seed_connection, use_emulator


@pytest.fixture(scope="module")
def emu():
    with emulator() as server:
        yield server


@pytest.fixture
def conn(app, emu, monkeypatch):
    use_emulator(app, emu, monkeypatch)
    ws, _user = make_admin()
    return seed_connection(ws, emu)


@pytest.fixture
def refresh_calls(monkeypatch):
    calls = []
    real = oauth.refresh_access_token

    def counted(*args, **kwargs):
        calls.append(time.monotonic())
        time.sleep(0.3)  # widen the window in which a second process would refresh too
        return real(*args, **kwargs)

    monkeypatch.setattr(oauth, "refresh_access_token", counted)
    return calls


def test_expired_session_is_refreshed_and_stored_encrypted(app, emu, conn, refresh_calls):
    old = cipher().decrypt(conn.access_token_enc)
    client = connection_service.client_for(conn)
    emu.admin.expire_sessions()
    names = [s.name for s in client.describe_global()]
    assert "Contact" in names and len(refresh_calls) == 1 and client.refreshes == 1
    db.session.expire_all()
    stored = db.session.get(SalesforceConnection, conn.id)
    new = cipher().decrypt(stored.access_token_enc)
    assert new != old and new == client.access_token
    with db.engine.connect() as raw:
        assert new not in repr(raw.execute(text("SELECT * FROM salesforce_connections")).all())
    assert stored.last_token_check_at is not None and stored.status == "connected"


def test_two_processes_refresh_once(app, emu, conn, refresh_calls):
    emu.admin.expire_sessions()
    results, errors = [], []
    start = threading.Barrier(2, timeout=30)
    conn_id = conn.id  # read here: the test's session must not be shared with the threads

    def worker():
        try:
            with app.app_context():
                row = db.session.get(SalesforceConnection, conn_id)
                client = connection_service.client_for(row)
                start.wait()
                results.append((len(client.describe_global()), client.access_token))
                db.session.remove()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(results) == 2 and results[0][0] > 0
    assert len(refresh_calls) == 1  # the second waited for the lock and used the new token
    assert results[0][1] == results[1][1]
    db.session.expire_all()
    assert cipher().decrypt(db.session.get(SalesforceConnection, conn_id).access_token_enc) == results[0][1]


def test_refused_refresh_marks_needs_reconnect_and_holds_plans(app, emu, conn):
    plan = ImportPlan(workspace_id=conn.workspace_id, connection_id=conn.id, name="p", status="active",
                      object_name="Contact", mapping={}, filters={})
    db.session.add(plan)
    db.session.commit()
    refresh = cipher().decrypt(conn.refresh_token_enc)
    assert emu.http_session().post(emu.url + "/services/oauth2/revoke", data={"token": refresh}).status_code == 200
    client = connection_service.client_for(conn)
    with pytest.raises(NeedsReconnect) as exc:
        client.describe_global()
    assert "invalid_grant" in exc.value.reason and "reconnect" in exc.value.reason
    db.session.expire_all()
    row = db.session.get(SalesforceConnection, conn.id)
    assert row.status == "needs_reconnect" and "reconnect the org" in row.status_reason
    assert row.access_token_enc is None
    assert db.session.get(ImportPlan, plan.id).status == "held"
    with pytest.raises(NeedsReconnect):
        connection_service.client_for(row)


def test_unreadable_token_means_needs_reconnect(app, emu, conn):
    conn.access_token_enc = b"not-a-fernet-token"
    db.session.commit()
    with pytest.raises(NeedsReconnect) as exc:
        connection_service.client_for(conn)
    assert "encryption key" in exc.value.reason
    assert db.session.get(SalesforceConnection, conn.id).status == "needs_reconnect"


def test_api_usage_is_recorded(app, emu, conn):
    client = connection_service.client_for(conn)
    client.limits()
    connection_service.record_usage(conn, client)
    db.session.expire_all()
    row = db.session.scalar(select(SalesforceConnection).where(SalesforceConnection.id == conn.id))
    assert row.api_max == 15000 and 0 < row.api_used <= 15000 and row.api_usage_at is not None


def test_a_refused_refresh_in_a_view_commits_nothing_the_view_had_pending(app, emu, conn):
    """The refusal is recorded (connection, held plan, incident, mail) in sessions of its own:
    the view's uncommitted change is neither committed nor thrown away by it."""
    from models import Incident, Workspace
    plan = ImportPlan(workspace_id=conn.workspace_id, connection_id=conn.id, name="p", status="active",
                      object_name="Contact", mapping={}, filters={})
    db.session.add(plan)
    db.session.commit()
    old_name = db.session.get(Workspace, conn.workspace_id).name
    refresh = cipher().decrypt(conn.refresh_token_enc)
    assert emu.http_session().post(emu.url + "/services/oauth2/revoke", data={"token": refresh}).status_code == 200
    with app.test_request_context("/wizard"):
        workspace = db.session.get(Workspace, conn.workspace_id)
        workspace.name = "Renamed by the view, never saved"
        with pytest.raises(NeedsReconnect):
            connection_service.client_for(conn).describe_global()
        assert workspace in db.session.dirty and workspace.name == "Renamed by the view, never saved"
        db.session.rollback()  # the view fails and saves nothing
    with db.engine.connect() as raw:
        assert raw.execute(select(Workspace.name).where(Workspace.id == conn.workspace_id)).scalar_one() == old_name
        assert raw.execute(select(SalesforceConnection.status).where(
            SalesforceConnection.id == conn.id)).scalar_one() == "needs_reconnect"
        assert raw.execute(select(ImportPlan.status).where(ImportPlan.id == plan.id)).scalar_one() == "held"
        assert raw.execute(select(Incident.kind).where(Incident.closed_at.is_(None))).scalars().all() == \
            ["needs_reconnect"]


def test_a_failing_status_hook_neither_hides_the_refusal_nor_drops_the_views_changes(app, emu, conn, monkeypatch):
    from models import Workspace
    from services import notifications

    def broken(connection):
        raise RuntimeError("mail server on fire")

    monkeypatch.setattr(notifications, "notify_connection_status", broken)
    refresh = cipher().decrypt(conn.refresh_token_enc)
    assert emu.http_session().post(emu.url + "/services/oauth2/revoke", data={"token": refresh}).status_code == 200
    with app.test_request_context("/wizard"):
        workspace = db.session.get(Workspace, conn.workspace_id)
        workspace.name = "Pending in the view"
        with pytest.raises(NeedsReconnect):
            connection_service.client_for(conn).describe_global()
        assert workspace in db.session.dirty  # not rolled back by the hook's failure
        db.session.rollback()
    with db.engine.connect() as raw:
        assert raw.execute(select(SalesforceConnection.status).where(
            SalesforceConnection.id == conn.id)).scalar_one() == "needs_reconnect"

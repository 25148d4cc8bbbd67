"""A connection's status changes tell the operations hooks (services.notifications), once: a
refused refresh opens one "needs reconnect" incident and mails the admins once, however many
callers see the refusal; a reconnect through the emulator's real pages closes it; a disconnect
closes it too."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core.crypto import cipher
from core.extensions import db
from models import ImportPlan, Incident, OutboxMessage, SalesforceConnection
from salesforce.errors import NeedsReconnect
from services import connections as connection_service
from services import runs
from tests.app.wizard_support import connect, emulator, finish, make_admin, salesforce_pages, use_emulator, web_client
from tests.support.web import csrf_token

RECONNECT_SUBJECT = "Terapage: a Salesforce connection needs reconnecting"


@pytest.fixture(scope="module")
def emu():
    with emulator() as server:
        yield server


@pytest.fixture
def world(app, emu, monkeypatch):
    use_emulator(app, emu, monkeypatch)
    ws, user = make_admin(integrations=True)
    client = web_client(app, user, ws)
    connect(client, emu)
    db.session.expire_all()
    conn = db.session.scalars(select(SalesforceConnection)).one()
    plan = ImportPlan(workspace_id=ws.id, connection_id=conn.id, name="Contacts", status="active",
                      object_name="Contact", mapping={}, filters={})
    db.session.add(plan)
    db.session.commit()
    return ws, user, client, conn, plan


def _incidents():
    db.session.expire_all()
    return db.session.scalars(select(Incident).order_by(Incident.id)).all()


def _mails():
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.subject == RECONNECT_SUBJECT)).all()


def _refuse_refresh(emu, conn):
    refresh = cipher().decrypt(conn.refresh_token_enc)
    assert emu.http_session().post(emu.url + "/services/oauth2/revoke", data={"token": refresh}).status_code == 200
    with pytest.raises(NeedsReconnect):
        connection_service.client_for(conn).describe_global()


def test_refused_refresh_opens_one_incident_mails_once_and_reconnect_closes_it(app, emu, world):
    ws, user, client, conn, plan = world
    _refuse_refresh(emu, conn)
    [incident] = _incidents()
    assert (incident.kind, incident.subject_key, incident.closed_at) == (
        "needs_reconnect", f"connection:{conn.id}", None)
    assert incident.notified_at is not None
    assert [m.to_addr for m in _mails()] == [user.email]
    assert f"/operations/connections/{conn.id}" in _mails()[0].body_text

    # The run that met the refusal reports it as well; the token check too: still one of each.
    runs.mark_needs_reconnect(conn.id, "Salesforce no longer accepts this connection's authorization")
    from services import operations
    assert operations.check_token(db.session.get(SalesforceConnection, conn.id)) == "needs_reconnect"
    assert len(_incidents()) == 1 and len(_mails()) == 1

    response = client.post(f"/integrations/salesforce/{conn.id}/reconnect", data={"csrf_token": csrf_token(client)})
    assert finish(client, salesforce_pages(emu, response.headers["Location"])).status_code == 303
    [incident] = _incidents()
    assert incident.closed_at is not None
    assert db.session.get(SalesforceConnection, conn.id).status == "connected"
    assert db.session.get(ImportPlan, plan.id).status == "active"
    assert len(_mails()) == 1


def test_disconnect_closes_the_incident(app, emu, world):
    ws, user, client, conn, plan = world
    _refuse_refresh(emu, conn)
    assert [i.closed_at for i in _incidents()] == [None]
    response = client.post(f"/integrations/salesforce/{conn.id}/disconnect", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 303
    [incident] = _incidents()
    assert incident.closed_at is not None and len(_mails()) == 1

"""Step 1, Connect: the OAuth web-server flow against the emulator, through its real login and
consent pages, and what is (and is not) stored after each way it can end."""
from __future__ import annotations

import json
import re
import socket
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, text

from core.crypto import cipher
from core.extensions import db
from models import ImportPlan, SalesforceConnection
from services import connections as connection_service
from tests.app.wizard_support import (add_member, connect, emulator, finish, make_admin, query, salesforce_pages,
                                      start_connect, use_emulator, web_client)
from tests.support.web import csrf_token


@pytest.fixture(scope="module")
def emu():
    with emulator() as server:
        yield server


@pytest.fixture
def world(app, emu, monkeypatch):
    app.extensions["test_state_store"] = use_emulator(app, emu, monkeypatch)
    ws, user = make_admin()
    return ws, user, web_client(app, user, ws)


def _connections():
    db.session.expire_all()
    return db.session.scalars(select(SalesforceConnection)).all()


def test_full_flow_stores_the_org_and_encrypted_tokens(app, emu, world):
    ws, user, client = world
    url = start_connect(client, emu=emu)
    q = query(url)
    assert url.startswith(emu.url + "/services/oauth2/authorize?")
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) >= 43
    assert q["redirect_uri"] == "http://localhost/integrations/salesforce/callback"
    assert q["client_id"] == emu.client_id and "client_secret" not in url and emu.client_secret not in url
    # The state data (PKCE verifier included) is kept server-side; the cookie only names it.
    with client.session_transaction() as session:
        key = f"_state_salesforce_{q['state']}"
        assert set(session[key]) == {"exp"}
    stored = json.loads(app.extensions["test_state_store"].get(f"terapage:oauth-state:{key}"))["data"]
    assert len(stored["code_verifier"]) >= 43 and stored["intent"]["login_url"] == emu.url
    response = finish(client, salesforce_pages(emu, url))
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/configuration/integrations/salesforce")

    [conn] = _connections()
    user_info = emu.users["admin@acme.example"]
    assert (conn.org_id, conn.org_name, conn.is_sandbox) == (user_info["org_id"], "Acme Research", False)
    assert (conn.sf_user_id, conn.sf_username, conn.sf_display_name) == (user_info["user_id"], "admin@acme.example",
                                                                         "Ada Admin")
    assert conn.instance_url == emu.url and conn.status == "connected" and conn.workspace_id == ws.id
    assert conn.name == "Production" and conn.environment == "mydomain" and conn.login_url == emu.url
    assert conn.connected_by_id == user.id and conn.connected_at is not None
    access = cipher().decrypt(conn.access_token_enc)
    refresh = cipher().decrypt(conn.refresh_token_enc)
    assert access.startswith(user_info["org_id"][:15] + "!") and refresh
    # At rest the tokens are ciphertext: a raw read of the table never shows them.
    with db.engine.connect() as raw:
        rows = raw.execute(text("SELECT * FROM salesforce_connections")).all()
    dump = repr(rows)
    assert access not in dump and refresh not in dump
    for row in rows:
        for value in row:
            if isinstance(value, (bytes, memoryview)):
                assert access.encode() not in bytes(value) and refresh.encode() not in bytes(value)
    # The state was used once: the same callback again is refused and changes nothing.
    again = finish(client, salesforce_pages(emu, url))
    assert again.status_code == 400
    assert len(_connections()) == 1


def test_sandbox_org_is_recorded_as_sandbox(app, emu, world):
    _ws, _user, client = world
    response = connect(client, emu, username="admin@acme-uat.example", name="UAT sandbox")
    assert response.status_code == 303
    [conn] = _connections()
    assert conn.is_sandbox is True and conn.org_name == "Acme Research (UAT)"


def test_tokens_never_rendered(app, emu, world):
    _ws, _user, client = world
    connect(client, emu)
    [conn] = _connections()
    access, refresh = cipher().decrypt(conn.access_token_enc), cipher().decrypt(conn.refresh_token_enc)
    for url in ("/integrations/salesforce/connect", "/wizard/new", "/admin/configuration/integrations/salesforce"):
        html = client.get(url).get_data(as_text=True)
        assert "Acme Research" in html, url
        assert access not in html and refresh not in html and emu.client_secret not in html, url


def test_denied_consent_shows_a_message_and_saves_nothing(app, emu, world):
    _ws, _user, client = world
    url = start_connect(client, emu=emu)
    callback = salesforce_pages(emu, url, decision="deny")
    assert query(callback)["error"] == "access_denied"
    response = finish(client, callback)
    html = response.get_data(as_text=True)
    assert response.status_code == 200  # the person's choice, not a bad request
    assert "Salesforce access was not approved" in html and "nothing was connected" in html
    assert _connections() == []


def test_reloading_the_callback_after_deny_shows_the_same_page_with_a_way_to_try_again(app, emu, world):
    _ws, _user, client = world
    callback = salesforce_pages(emu, start_connect(client, emu=emu), decision="deny")
    first = finish(client, callback)
    again = finish(client, callback)  # the state was used up by the first answer
    assert again.status_code == first.status_code == 200
    message = re.search(r'<div class="alert alert-error" role="alert" id="connect-error">.*?</div>',
                        again.get_data(as_text=True), re.S).group(0)
    assert message in first.get_data(as_text=True)
    assert "not approved" in message and "nothing was connected" in message and "try again" in message
    assert 'id="connect-form"' in again.get_data(as_text=True)
    assert _connections() == []


def test_the_callback_with_the_state_store_down_shows_the_connect_page(app, emu, world, monkeypatch):
    import redis as redis_lib
    _ws, _user, client = world
    callback = salesforce_pages(emu, start_connect(client, emu=emu), decision="deny")

    class Down:
        def get(self, key):
            raise redis_lib.ConnectionError("Error 111 connecting to 10.0.0.9:6379. Connection refused.")
        set = delete = get

    monkeypatch.setitem(app.extensions, "terapage_oauth_state_cache", lambda: Down())
    denied = finish(client, callback)
    assert denied.status_code == 200 and "not approved" in denied.get_data(as_text=True)
    approved = finish(client, callback.replace("error=access_denied", "code=abc"))
    html = approved.get_data(as_text=True)
    assert approved.status_code == 400 and 'id="connect-form"' in html and "Nothing was connected" in html
    assert "10.0.0.9" not in html and "Traceback" not in html
    assert _connections() == []


def test_state_mismatch_shows_a_message_and_saves_nothing(app, emu, world):
    _ws, _user, client = world
    url = start_connect(client, emu=emu)
    callback = salesforce_pages(emu, url)
    forged = callback.replace(f"state={query(url)['state']}", "state=forged-state")
    response = finish(client, forged)
    assert response.status_code == 400
    assert "could not be matched to one started here" in response.get_data(as_text=True)
    assert _connections() == []


def test_callback_in_another_browser_is_a_state_mismatch(app, emu, world):
    ws, _user, client = world
    url = start_connect(client, emu=emu)
    callback = salesforce_pages(emu, url)
    other = add_member(ws, "other@alpha.example", role="admin")
    response = finish(web_client(app, other, ws), callback)
    assert response.status_code == 400 and "could not be matched" in response.get_data(as_text=True)
    assert _connections() == []


def test_pkce_verifier_is_checked_by_the_token_endpoint(app, emu, world, monkeypatch):
    _ws, _user, client = world
    url = start_connect(client, emu=emu)
    callback = salesforce_pages(emu, url)
    # Swap the verifier kept server-side: the token endpoint must refuse the code.
    from authlib.integrations.base_client import FrameworkIntegration
    original = FrameworkIntegration.get_state_data

    def wrong_verifier(self, session, state):
        data = original(self, session, state)
        return {**data, "code_verifier": "x" * 64} if data else data

    monkeypatch.setattr(FrameworkIntegration, "get_state_data", wrong_verifier)
    response = finish(client, callback)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "Salesforce refused to issue access" in html
    assert _connections() == []


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_host_shows_a_message_and_saves_nothing(app, emu, world, monkeypatch):
    _ws, _user, client = world
    port = _closed_port()
    monkeypatch.setitem(app.config, "SALESFORCE_EXTRA_LOGIN_HOSTS", [f"127.0.0.1:{port}"])
    url = start_connect(client, my_domain=f"https://127.0.0.1:{port}")
    assert url.startswith(f"https://127.0.0.1:{port}/services/oauth2/authorize?")
    response = client.get(f"/integrations/salesforce/callback?code=aPrx123&state={query(url)['state']}")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f"Could not reach Salesforce at 127.0.0.1:{port}" in html and "Nothing was connected" in html
    assert _connections() == []


def test_org_without_api_access_shows_the_guide_words_and_saves_nothing(app, emu, world):
    _ws, _user, client = world
    response = connect(client, emu, username="admin@smallshop.example")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This Salesforce org does not allow API access, so nothing was connected." in html
    assert "ask your Salesforce administrator to enable API access" in html and "Connect again" in html
    for sentence in ("does not allow API access", "must allow API access", "cannot bypass Salesforce API restrictions"):
        assert html.count(sentence) <= 1, sentence  # said once
    assert _connections() == []


def test_token_endpoint_error_shows_a_message(app, emu, world, monkeypatch):
    _ws, _user, client = world
    url = start_connect(client, emu=emu)
    callback = salesforce_pages(emu, url)
    code = query(callback)["code"]
    # Spend the code first, so our exchange gets invalid_grant.
    emu.http_session().post(emu.token_url, data={"grant_type": "authorization_code", "code": code,
                                                 "client_id": emu.client_id, "client_secret": emu.client_secret,
                                                 "redirect_uri": query(url)["redirect_uri"],
                                                 "code_verifier": "y" * 50})
    response = finish(client, callback)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "Salesforce refused to issue access" in html and "invalid_grant" in html
    assert _connections() == []


def test_connection_name_must_be_unique_and_present(app, emu, world):
    _ws, _user, client = world
    connect(client, emu)
    taken = start_connect(client, emu=emu, expect_redirect=False)
    assert taken.status_code == 422 and "already has a connection named" in taken.get_data(as_text=True)
    empty = start_connect(client, emu=emu, name="", expect_redirect=False)
    assert empty.status_code == 422 and "Give the connection a name" in empty.get_data(as_text=True)


def test_same_org_twice_is_refused(app, emu, world):
    _ws, _user, client = world
    connect(client, emu)
    response = connect(client, emu, name="Second")
    assert response.status_code == 400 and "Use Reconnect on that connection" in response.get_data(as_text=True)
    assert len(_connections()) == 1


def _plan(conn, **kw):
    plan = ImportPlan(workspace_id=conn.workspace_id, connection_id=conn.id, name="Contacts", object_name="Contact",
                      mapping={}, filters={}, **kw)
    db.session.add(plan)
    db.session.commit()
    return plan


def test_reconnect_lands_on_the_same_org_and_keeps_plans_and_cursors(app, emu, world):
    _ws, _user, client = world
    connect(client, emu)
    [conn] = _connections()
    cursor = datetime(2024, 5, 1, tzinfo=timezone.utc)
    plan = _plan(conn, status="held", cursor_at=cursor, cursor_fingerprint="abc")
    old_access = cipher().decrypt(conn.access_token_enc)
    db.session.execute(db.update(SalesforceConnection).values(status="needs_reconnect", status_reason="revoked"))
    db.session.commit()

    response = client.post(f"/integrations/salesforce/{conn.id}/reconnect", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 303 and response.headers["Location"].startswith(emu.url)
    done = finish(client, salesforce_pages(emu, response.headers["Location"]))
    assert done.status_code == 303
    [again] = _connections()
    assert again.id == conn.id and again.status == "connected" and again.status_reason is None
    assert cipher().decrypt(again.access_token_enc) != old_access
    plan = db.session.get(ImportPlan, plan.id)
    assert plan.status == "active" and plan.cursor_at == cursor and plan.cursor_fingerprint == "abc"


def test_reconnect_to_another_org_is_refused_and_changes_nothing(app, emu, world):
    _ws, _user, client = world
    connect(client, emu)
    [conn] = _connections()
    before = (conn.org_id, conn.access_token_enc, conn.refresh_token_enc, conn.instance_url)
    plan = _plan(conn, status="active")
    response = client.post(f"/integrations/salesforce/{conn.id}/reconnect", data={"csrf_token": csrf_token(client)})
    done = finish(client, salesforce_pages(emu, response.headers["Location"], username="admin@acme-uat.example"))
    html = done.get_data(as_text=True)
    assert done.status_code == 400
    assert "You signed in to a different Salesforce org (Acme Research (UAT), 00D7S0000000001UAA)" in html
    assert "Nothing was changed" in html
    [after] = _connections()
    assert (after.org_id, after.access_token_enc, after.refresh_token_enc, after.instance_url) == before
    assert db.session.get(ImportPlan, plan.id).status == "active"


def test_disconnect_revokes_deletes_tokens_and_holds_plans(app, emu, world):
    _ws, _user, client = world
    connect(client, emu)
    [conn] = _connections()
    access = cipher().decrypt(conn.access_token_enc)
    active, draft = _plan(conn, status="active"), _plan(conn, status="draft")
    sf = emu.salesforce(token={"instance_url": conn.instance_url, "access_token": access})
    sf.restful("")  # the token works before
    response = client.post(f"/integrations/salesforce/{conn.id}/disconnect", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 303
    [after] = _connections()
    assert after.status == "disconnected" and after.access_token_enc is None and after.refresh_token_enc is None
    assert after.org_id == conn.org_id  # the org is remembered for a reconnect
    assert db.session.get(ImportPlan, active.id).status == "held"
    assert db.session.get(ImportPlan, draft.id).status == "draft"
    from simple_salesforce.exceptions import SalesforceExpiredSession
    with pytest.raises(SalesforceExpiredSession):
        sf.restful("")  # revoked at Salesforce


@pytest.mark.parametrize("who,status", [("researcher", 403), ("imports", 403), ("integrations", 200)])
def test_connect_needs_manage_integrations(app, emu, world, who, status):
    ws, _user, _client = world
    person = add_member(ws, f"{who}@alpha.example", imports=who == "imports", integrations=who == "integrations")
    client = web_client(app, person, ws)
    assert client.get("/integrations/salesforce/connect").status_code == status


def test_researchers_do_not_get_reconnect_or_disconnect(app, emu, world):
    ws, _user, client = world
    connect(client, emu)
    [conn] = _connections()
    person = add_member(ws, "builder@alpha.example", imports=True)
    builder = web_client(app, person, ws)
    html = builder.get("/wizard/new").get_data(as_text=True)
    assert "Acme Research" in html and "Reconnect" not in html and "Disconnect" not in html
    token = csrf_token(builder)
    for action in ("reconnect", "disconnect"):
        assert builder.post(f"/integrations/salesforce/{conn.id}/{action}", data={"csrf_token": token}).status_code == 403
    assert _connections()[0].status == "connected"


def test_another_workspace_cannot_touch_the_connection(app, emu, world):
    _ws, _user, client = world
    connect(client, emu)
    [conn] = _connections()
    other_ws, other = make_admin("Beta")
    intruder = web_client(app, other, other_ws)
    token = csrf_token(intruder)
    assert intruder.post(f"/integrations/salesforce/{conn.id}/disconnect", data={"csrf_token": token}).status_code == 404
    assert db.session.scalar(select(func.count()).select_from(SalesforceConnection)
                             .where(SalesforceConnection.status == "connected")) == 1


def test_emulator_settings_come_from_connected_app_json(app, emu, world):
    settings = connection_service.oauth_settings()
    assert (settings.client_id, settings.client_secret) == (emu.client_id, emu.client_secret)
    assert settings.ca_file == emu.ca_file
    assert settings.production_login == settings.sandbox_login == emu.url


def test_environment_choices_name_the_login_hosts_really_used(app, emu, world, monkeypatch):
    """Under the emulator both choices sign in at its host: the form says so, and which user logs
    in decides the org; with Salesforce's own hosts the labels name them and there is no note."""
    _, _, client = world
    host = emu.url.split("://", 1)[1]
    for url in ("/integrations/salesforce/connect", "/admin/configuration/integrations/salesforce/connect"):
        html = client.get(url).get_data(as_text=True)
        assert f">Production ({host})</option>" in html and f">Sandbox ({host})</option>" in html, url
        assert f"Production and sandbox both sign in at {host} here" in html, url
    monkeypatch.setitem(app.config, "SALESFORCE_EMULATOR_APP", None)
    monkeypatch.setitem(app.config, "SALESFORCE_LOGIN_URL", "https://login.salesforce.com")
    monkeypatch.setitem(app.config, "SALESFORCE_SANDBOX_LOGIN_URL", "https://test.salesforce.com")
    html = client.get("/integrations/salesforce/connect").get_data(as_text=True)
    assert ">Production (login.salesforce.com)</option>" in html
    assert ">Sandbox (test.salesforce.com)</option>" in html
    assert "both sign in at" not in html

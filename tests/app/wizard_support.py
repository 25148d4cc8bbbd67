"""Helpers for the wizard's tests: an emulator wired into the app, and the OAuth dance driven
with the Flask test client (our side) and requests (the person's browser on Salesforce's pages)."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from core.extensions import db
from models import Membership, User, Workspace
from tests.support.web import csrf_token, sign_in

# The test client's callback is http://localhost/integrations/salesforce/callback (no port).
CALLBACKS = ["http://localhost/*", "http://127.0.0.1:*/*", "http://localhost:*/*"]


def emulator(**kw):
    from emulator.testing import EmulatorServer
    return EmulatorServer(callback_urls=CALLBACKS, **kw)


class DictRedis:
    """The three Redis commands the OAuth state cache uses, in a dict (expiry recorded)."""

    def __init__(self):
        self.data: dict[str, bytes] = {}
        self.expiry: dict[str, int] = {}

    def get(self, key):
        return self.data.get(key)

    def set(self, key, value, ex=None):
        self.data[key] = value.encode() if isinstance(value, str) else value
        self.expiry[key] = ex

    def delete(self, key):
        self.data.pop(key, None)


def isolated_state_store(app, monkeypatch):
    """OAuth state in a store of this test alone, through the production cache class: the
    embedded Redis in STATE_DIR is shared with whatever else runs on the machine."""
    from services.connections import _RedisStateCache

    server = DictRedis()
    monkeypatch.setitem(app.extensions, "terapage_oauth_state_cache", lambda: _RedisStateCache(server))
    return server


def use_emulator(app, emu, monkeypatch) -> None:
    """Point the app's Salesforce settings at a running EmulatorServer."""
    store = isolated_state_store(app, monkeypatch)
    monkeypatch.setitem(app.config, "SALESFORCE_EMULATOR_APP", str(emu.state_dir / "connected-app.json"))
    monkeypatch.setitem(app.config, "SALESFORCE_EXTRA_LOGIN_HOSTS", [])
    return store


def make_admin(name: str = "Alpha", role: str = "admin", imports=False, integrations=False):
    ws = Workspace(name=name, default_phone_region="GB", timezone="Europe/London")
    db.session.add(ws)
    db.session.flush()
    slug = re.sub(r"\W+", "", name.lower())
    user = User(email=f"{role}{int(imports)}{int(integrations)}@{slug}.example", name=f"{role} of {name}",
                password_hash="x")
    db.session.add(user)
    db.session.flush()
    db.session.add(Membership(user_id=user.id, workspace_id=ws.id, role=role, can_manage_imports=imports,
                              can_manage_integrations=integrations))
    db.session.commit()
    return ws, user


def add_member(ws, email: str, role="researcher", imports=False, integrations=False):
    user = User(email=email, name=email.split("@")[0], password_hash="x")
    db.session.add(user)
    db.session.flush()
    db.session.add(Membership(user_id=user.id, workspace_id=ws.id, role=role, can_manage_imports=imports,
                              can_manage_integrations=integrations))
    db.session.commit()
    return user


def web_client(app, user, ws):
    client = app.test_client()
    sign_in(client, user, ws.id)
    return client


def start_connect(client, *, name="Production", environment="mydomain", my_domain=None, emu=None,
                  expect_redirect=True, **extra):
    """POST the connect form; return the authorization URL (or the response when refused)."""
    data = {"csrf_token": csrf_token(client), "name": name, "environment": environment,
            "my_domain": my_domain if my_domain is not None else (emu.url if emu else ""), **extra}
    response = client.post("/integrations/salesforce/connect", data=data)
    if not expect_redirect:
        return response
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return response.headers["Location"]


def salesforce_pages(emu, authorize_url, username="admin@acme.example", decision="allow") -> str:
    """Log in on the emulator's login page and answer its consent page; the callback URL."""
    browser = emu.http_session()
    page = browser.get(authorize_url, allow_redirects=False)
    assert page.status_code == 200, page.text[:500]
    rid = re.search(r'name="rid" value="([^"]+)"', page.text).group(1)
    if 'id="login_form"' in page.text:
        page = browser.post(emu.url + "/services/oauth2/authorize/login", allow_redirects=False,
                            data={"rid": rid, "username": username, "pw": emu.users[username]["password"]})
        assert 'id="consent_form"' in page.text, page.text[:500]
    response = browser.post(emu.url + "/services/oauth2/authorize/consent", data={"rid": rid, "decision": decision},
                            allow_redirects=False)
    assert response.status_code == 302
    return response.headers["Location"]


def finish(client, callback_url):
    parts = urlsplit(callback_url)
    return client.get(parts.path + "?" + parts.query)


def connect(client, emu, username="admin@acme.example", name="Production", **kw):
    """The whole flow; returns the callback response."""
    url = start_connect(client, name=name, emu=emu, **kw)
    return finish(client, salesforce_pages(emu, url, username=username))


def query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def seed_connection(ws, emu, username="admin@acme.example", name="Production"):
    """A connected SalesforceConnection made from the emulator's token (no browser flow)."""
    from core.crypto import cipher
    from models import SalesforceConnection
    from models.types import utcnow

    token = emu.token_for(username)
    user = emu.users[username]
    org = emu.orgs[user["org"]]
    conn = SalesforceConnection(
        workspace_id=ws.id, name=name, environment="mydomain", login_url=emu.url, instance_url=token["instance_url"],
        org_id=user["org_id"], org_name=org["name"], is_sandbox=org["is_sandbox"], sf_user_id=user["user_id"],
        sf_username=username, identity_url=token["id"], access_token_enc=cipher().encrypt(token["access_token"]),
        refresh_token_enc=cipher().encrypt(token["refresh_token"]), status="connected", connected_at=utcnow())
    db.session.add(conn)
    db.session.commit()
    return conn

"""A My Domain URL outside the allow-list is refused before any request: our client id and
secret never leave for a host we do not know."""
from __future__ import annotations

import pytest
import requests

from core.extensions import db
from models import SalesforceConnection
from services import connections as connection_service
from tests.app.wizard_support import isolated_state_store, make_admin, web_client
from tests.support.web import csrf_token

SECRET = "S3CRET-CONSUMER-SECRET-0123456789"
REFUSED = [
    "https://evil.example.com",
    "https://login.salesforce.com.evil.com",
    "https://acme.my.salesforce.com.evil.com",
    "http://acme.my.salesforce.com",
    "https://user:pw@acme.my.salesforce.com",
    "https://acme.my.salesforce.com/services/oauth2/authorize",
    "https://acme.my.salesforce.com:8443",
    "https://127.0.0.1:8443",
    "https://evil.example.com#.my.salesforce.com",
    "https://evil.example.com?x=.my.salesforce.com",
    "https://acme.my.salesforce.com%2f@evil.example.com",
    "javascript:alert(1)",
]


@pytest.fixture
def no_outbound(monkeypatch):
    calls = []

    def refuse(self, request, **kwargs):
        calls.append(request.url)
        raise AssertionError(f"outbound request to {request.url}")

    monkeypatch.setattr(requests.Session, "send", refuse)
    return calls


@pytest.fixture
def configured(app, monkeypatch):
    isolated_state_store(app, monkeypatch)
    monkeypatch.setitem(app.config, "SALESFORCE_CLIENT_ID", "3MVGclientid")
    monkeypatch.setitem(app.config, "SALESFORCE_CLIENT_SECRET", SECRET)
    monkeypatch.setitem(app.config, "SALESFORCE_EMULATOR_APP", None)
    monkeypatch.setitem(app.config, "SALESFORCE_EXTRA_LOGIN_HOSTS", [])
    monkeypatch.setitem(app.config, "SALESFORCE_LOGIN_URL", "https://login.salesforce.com")
    monkeypatch.setitem(app.config, "SALESFORCE_SANDBOX_LOGIN_URL", "https://test.salesforce.com")


@pytest.mark.parametrize("url", REFUSED)
def test_connect_form_refuses_host_outside_allow_list_without_a_request(app, configured, no_outbound, url):
    ws, user = make_admin()
    client = web_client(app, user, ws)
    response = client.post("/integrations/salesforce/connect", data={
        "csrf_token": csrf_token(client), "name": "Mine", "environment": "mydomain", "my_domain": url})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Location" not in response.headers and "HX-Redirect" not in response.headers
    assert SECRET not in html and "3MVGclientid" not in html
    assert 'class="error"' in html
    assert no_outbound == []
    with client.session_transaction() as session:
        assert not [k for k in session if k.startswith("_state_")]
    assert db.session.scalar(db.select(db.func.count()).select_from(SalesforceConnection)) == 0


@pytest.mark.parametrize("url", ["https://evil.example.com", "https://login.salesforce.com.evil.com"])
def test_service_refuses_before_any_request(app, configured, no_outbound, url):
    ws, user = make_admin()
    with app.test_request_context("/integrations/salesforce/connect"):
        with pytest.raises(connection_service.ConnectError) as exc:
            connection_service.begin_connect(ws, user, "Mine", "mydomain", url,
                                             redirect_uri="http://localhost/integrations/salesforce/callback")
    assert exc.value.code == "host_not_allowed" and exc.value.field == "my_domain"
    assert "is not a Salesforce login address" in exc.value.message
    assert no_outbound == []


@pytest.mark.parametrize("url,expected", [
    ("https://acme.my.salesforce.com", "https://acme.my.salesforce.com/services/oauth2/authorize?"),
    ("acme--uat.sandbox.my.salesforce.com", "https://acme--uat.sandbox.my.salesforce.com/services/oauth2/authorize?"),
])
def test_allowed_my_domain_redirects_without_a_request_from_us(app, configured, no_outbound, url, expected):
    ws, user = make_admin()
    client = web_client(app, user, ws)
    response = client.post("/integrations/salesforce/connect", data={
        "csrf_token": csrf_token(client), "name": "Mine", "environment": "mydomain", "my_domain": url})
    assert response.status_code == 303 and response.headers["Location"].startswith(expected)
    assert SECRET not in response.headers["Location"]
    assert no_outbound == []  # the browser goes there; the server sent nothing


def test_callback_never_sends_the_secret_to_an_instance_outside_the_allow_list(app, configured, monkeypatch):
    """A token response naming a foreign instance_url is refused before the access token is used."""
    ws, user = make_admin()
    client = web_client(app, user, ws)
    response = client.post("/integrations/salesforce/connect", data={
        "csrf_token": csrf_token(client), "name": "Mine", "environment": "production", "my_domain": ""})
    from tests.app.wizard_support import query
    state = query(response.headers["Location"])["state"]
    sent = []

    def fake_send(self, request, **kwargs):
        sent.append(request.url)
        assert request.url == "https://login.salesforce.com/services/oauth2/token"
        r = requests.Response()
        r.status_code = 200
        r.headers["Content-Type"] = "application/json"
        r._content = (b'{"access_token":"00Dxx!tok","refresh_token":"rt","instance_url":"https://evil.example.com",'
                      b'"id":"https://login.salesforce.com/id/00D000000000001EAA/005000000000001AAA",'
                      b'"token_type":"Bearer","issued_at":"1700000000000","signature":"x"}')
        r.url = request.url
        r.request = request
        return r

    monkeypatch.setattr(requests.Session, "send", fake_send)
    done = client.get(f"/integrations/salesforce/callback?code=abc&state={state}")
    assert done.status_code == 400 and "an address we do not trust" in done.get_data(as_text=True)
    # Only the token endpoint was called; the revoke of the unused token goes to the login host.
    assert all(u.startswith("https://login.salesforce.com/") for u in sent)
    assert db.session.scalar(db.select(db.func.count()).select_from(SalesforceConnection)) == 0

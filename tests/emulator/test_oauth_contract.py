"""OAuth web-server flow, driven through authlib and requests only."""
import base64
import hashlib
import hmac
import secrets
from urllib.parse import parse_qs, urlparse

import pytest
from authlib.integrations.base_client import OAuthError

from emulator.testing import EmulatorServer
from tests.emulator.emu_helpers import CALLBACK, browser_login, oauth_client, oauth_login

TOKEN_KEYS = ["access_token", "refresh_token", "signature", "scope", "instance_url", "id", "token_type", "issued_at"]


def _query(location):
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def test_pkce_flow_returns_salesforce_token_shape(emu):
    client = oauth_client(emu)
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(emu.authorize_url, code_verifier=verifier)
    location = browser_login(emu, url)
    assert location.startswith(CALLBACK + "?")
    q = _query(location)
    assert q["state"] == state
    token = client.fetch_token(emu.token_url, authorization_response=location, code_verifier=verifier)
    assert [k for k in TOKEN_KEYS if k not in token] == []
    assert "expires_in" not in token and token.get("expires_at") is None
    assert token["token_type"] == "Bearer"
    assert token["instance_url"] == emu.url
    org_id = emu.users["admin@acme.example"]["org_id"]
    user_id = emu.users["admin@acme.example"]["user_id"]
    assert token["id"] == f"{emu.url}/id/{org_id}/{user_id}"
    assert token["access_token"].startswith(org_id[:15] + "!")
    assert isinstance(token["issued_at"], str) and len(token["issued_at"]) == 13
    expected = base64.b64encode(hmac.new(emu.client_secret.encode(), (token["id"] + token["issued_at"]).encode(),
                                         hashlib.sha256).digest()).decode()
    assert token["signature"] == expected
    assert set(token["scope"].split()) == {"api", "refresh_token", "id"}


def test_token_endpoint_json_has_exact_keys(emu):
    """Raw requests: key set and no expires_in, with client auth in the form body."""
    client = oauth_client(emu)
    verifier = secrets.token_urlsafe(48)
    url, _ = client.create_authorization_url(emu.authorize_url, code_verifier=verifier)
    code = _query(browser_login(emu, url))["code"]
    r = emu.http_session().post(emu.token_url, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "client_id": emu.client_id,
        "client_secret": emu.client_secret, "code_verifier": verifier})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert sorted(r.json()) == sorted(TOKEN_KEYS)


def test_form_client_auth_also_works(emu):
    token = oauth_login(emu, auth_method="client_secret_post")
    assert token["access_token"]


def test_deny_redirects_with_access_denied(emu):
    client = oauth_client(emu)
    url, state = client.create_authorization_url(emu.authorize_url, code_verifier=secrets.token_urlsafe(48))
    location = browser_login(emu, url, decision="deny")
    assert "error=access_denied&error_description=end-user+denied+authorization" in location
    q = _query(location)
    assert q == {"error": "access_denied", "error_description": "end-user denied authorization", "state": state}


def test_wrong_password_shows_login_again(emu):
    client = oauth_client(emu)
    url, _ = client.create_authorization_url(emu.authorize_url, code_verifier=secrets.token_urlsafe(48))
    b = emu.http_session()
    page = b.get(url)
    import re
    rid = re.search(r'name="rid" value="([^"]+)"', page.text).group(1)
    r = b.post(emu.url + "/services/oauth2/authorize/login", data={"rid": rid, "username": "admin@acme.example",
                                                                   "pw": "wrong"})
    assert r.status_code == 200 and 'id="login_form"' in r.text and "check your username and password" in r.text


def test_unregistered_redirect_uri_is_an_error_page_not_a_redirect(emu):
    client = oauth_client(emu, redirect_uri="https://evil.example/cb")
    url, _ = client.create_authorization_url(emu.authorize_url)
    r = emu.http_session().get(url, allow_redirects=False)
    assert r.status_code == 400 and "redirect_uri_mismatch" in r.text


def test_unknown_client_id_is_an_error_page(emu):
    r = emu.http_session().get(emu.authorize_url, params={"response_type": "code", "client_id": "nope",
                                                          "redirect_uri": CALLBACK}, allow_redirects=False)
    assert r.status_code == 400 and "invalid_client_id" in r.text


def _code(emu, verifier=None):
    client = oauth_client(emu)
    url, _ = client.create_authorization_url(emu.authorize_url, code_verifier=verifier or secrets.token_urlsafe(48))
    return _query(browser_login(emu, url))["code"]


def _token_post(emu, **data):
    base = {"grant_type": "authorization_code", "redirect_uri": CALLBACK, "client_id": emu.client_id,
            "client_secret": emu.client_secret}
    base.update(data)
    return emu.http_session().post(emu.token_url, data={k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize("case,expected", [
    ("wrong_verifier", ("invalid_request", None)),
    ("missing_verifier", ("invalid_grant", None)),
    ("reused_code", ("invalid_grant", "authentication failure")),
    ("unknown_code", ("invalid_grant", "invalid authorization code")),
    ("wrong_secret", ("invalid_client", "invalid client credentials")),
    ("unknown_client", ("invalid_client_id", "client identifier invalid")),
    ("other_redirect", ("redirect_uri_mismatch", None)),
    ("bad_grant_type", ("unsupported_grant_type", None)),
])
def test_token_errors(emu, case, expected):
    verifier = secrets.token_urlsafe(48)
    code = _code(emu, verifier)
    kw = {"code": code, "code_verifier": verifier}
    if case == "wrong_verifier":
        kw["code_verifier"] = secrets.token_urlsafe(48)
    elif case == "missing_verifier":
        kw["code_verifier"] = None
    elif case == "reused_code":
        assert _token_post(emu, **kw).status_code == 200
    elif case == "unknown_code":
        kw["code"] = "aPrxNOPE=="
    elif case == "wrong_secret":
        kw["client_secret"] = "0" * 64
    elif case == "unknown_client":
        kw["client_id"] = "3MVG9unknown"
    elif case == "other_redirect":
        kw["redirect_uri"] = "http://127.0.0.1:5000/other"
    elif case == "bad_grant_type":
        kw["grant_type"] = "password"
    r = _token_post(emu, **kw)
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["error"] == expected[0]
    if expected[1]:
        assert body["error_description"] == expected[1]


def test_refresh_omits_refresh_token_and_authlib_keeps_the_old_one(emu):
    token = oauth_login(emu)
    client = oauth_client(emu)
    client.token = token
    raw = emu.http_session().post(emu.token_url, data={"grant_type": "refresh_token",
                                                        "refresh_token": token["refresh_token"]},
                                  auth=(emu.client_id, emu.client_secret))
    assert raw.status_code == 200
    assert "refresh_token" not in raw.json() and "expires_in" not in raw.json()
    new = client.refresh_token(emu.token_url, refresh_token=token["refresh_token"])
    assert new["access_token"] != token["access_token"]
    assert new["refresh_token"] == token["refresh_token"]
    sf = emu.salesforce(token=new)
    assert sf.restful("")["sobjects"].endswith("/sobjects")


def test_revoke_refresh_token_kills_its_sessions(emu):
    from simple_salesforce.exceptions import SalesforceExpiredSession
    token = oauth_login(emu)
    sf = emu.salesforce(token=token)
    sf.restful("")
    r = emu.http_session().post(emu.url + "/services/oauth2/revoke", data={"token": token["refresh_token"]})
    assert r.status_code == 200 and r.text == ""
    with pytest.raises(SalesforceExpiredSession):
        sf.restful("")
    client = oauth_client(emu)
    with pytest.raises(OAuthError) as e:
        client.refresh_token(emu.token_url, refresh_token=token["refresh_token"])
    assert e.value.error == "invalid_grant" and e.value.description == "expired access/refresh token"


def test_no_refresh_token_without_the_scope(emu):
    token = oauth_login(emu, scope="api id")
    assert "refresh_token" not in token


def test_identity_and_userinfo(emu):
    token = oauth_login(emu, username="admin@acme-uat.example")
    s = emu.http_session()
    ident = s.get(token["id"], headers={"Authorization": f"Bearer {token['access_token']}"},
                  params={"version": "62.0"}).json()
    user = emu.users["admin@acme-uat.example"]
    assert ident["user_id"] == user["user_id"] and ident["organization_id"] == user["org_id"]
    assert ident["username"] == "admin@acme-uat.example"
    assert ident["urls"]["rest"] == f"{emu.url}/services/data/v62.0/"
    assert user["org_id"] != emu.users["admin@acme.example"]["org_id"]
    info = s.get(emu.url + "/services/oauth2/userinfo",
                 headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    assert info["sub"] == token["id"] and info["organization_id"] == user["org_id"]
    assert s.get(token["id"], headers={"Authorization": "Bearer nope"}).status_code == 403


def test_the_user_decides_the_org(emu):
    prod = emu.salesforce(token=oauth_login(emu, username="admin@acme.example"))
    sandbox = emu.salesforce(token=oauth_login(emu, username="admin@acme-uat.example"))
    assert prod.is_sandbox() is False
    assert sandbox.is_sandbox() is True


def test_auto_approve_redirects_straight_back():
    with EmulatorServer(auto_approve=True) as server:
        client = oauth_client(server)
        verifier = secrets.token_urlsafe(48)
        url, state = client.create_authorization_url(server.authorize_url, code_verifier=verifier)
        r = server.http_session().get(url, allow_redirects=False)
        assert r.status_code == 302
        q = _query(r.headers["Location"])
        assert q["state"] == state and q["code"]
        token = client.fetch_token(server.token_url, authorization_response=r.headers["Location"],
                                   code_verifier=verifier)
        assert token["id"].endswith(server.users["admin@acme.example"]["user_id"])


def test_logged_in_browser_skips_the_login_page(emu):
    b = emu.http_session()
    client = oauth_client(emu)
    url, _ = client.create_authorization_url(emu.authorize_url, code_verifier=secrets.token_urlsafe(48))
    browser_login(emu, url, browser=b)
    url2, _ = client.create_authorization_url(emu.authorize_url, code_verifier=secrets.token_urlsafe(48))
    page = b.get(url2)
    assert 'id="consent_form"' in page.text and 'id="login_form"' not in page.text
    page = b.get(url2 + "&prompt=login")
    assert 'id="login_form"' in page.text

"""OAuth helpers for the emulator suite: authlib for the client side, requests as the browser."""
import re
import secrets

from authlib.integrations.requests_client import OAuth2Session

CALLBACK = "http://127.0.0.1:5000/integrations/salesforce/callback"


def oauth_client(emu, *, auth_method="client_secret_basic", scope="api refresh_token id", redirect_uri=CALLBACK):
    client = OAuth2Session(emu.client_id, emu.client_secret, scope=scope, redirect_uri=redirect_uri,
                           code_challenge_method="S256", token_endpoint_auth_method=auth_method)
    client.verify = emu.ca_file
    client.trust_env = False
    return client


def browser_login(emu, authorize_url, username="admin@acme.example", password=None, decision="allow",
                  browser=None):
    """Follow the login and consent pages like a browser; return the final redirect Location."""
    browser = browser or emu.http_session()
    page = browser.get(authorize_url, allow_redirects=False)
    assert page.status_code == 200, page.text
    rid = re.search(r'name="rid" value="([^"]+)"', page.text).group(1)
    if 'id="login_form"' in page.text:
        page = browser.post(emu.url + "/services/oauth2/authorize/login", allow_redirects=False, data={
            "rid": rid, "username": username,
            "pw": password if password is not None else emu.users[username]["password"]})
        assert page.status_code == 200
        assert 'id="consent_form"' in page.text, page.text
    resp = browser.post(emu.url + "/services/oauth2/authorize/consent", data={"rid": rid, "decision": decision},
                        allow_redirects=False)
    assert resp.status_code == 302
    return resp.headers["Location"]


def oauth_login(emu, username="admin@acme.example", **kw):
    """The full web-server flow with PKCE; returns the authlib token."""
    client = oauth_client(emu, **kw)
    verifier = secrets.token_urlsafe(48)
    url, _state = client.create_authorization_url(emu.authorize_url, code_verifier=verifier)
    location = browser_login(emu, url, username=username)
    return client.fetch_token(emu.token_url, authorization_response=location, code_verifier=verifier)

"""OAuth 2.0 web-server flow (authorization code + PKCE S256) with authlib, without Flask.

The web layer either registers authlib's Flask client with ``flask_registration(...)`` or uses
``authorization_request`` / ``exchange_code`` directly (it keeps ``state`` and ``code_verifier``
server-side between the two). Refresh and revoke run in workers too, so they use authlib's
requests client. Salesforce sends no ``expires_in``: expiry shows up as a 401 on a REST call, and
a refresh response carries no new refresh token (the old one stays valid and is kept).

Every failure is raised as a ``salesforce.errors`` class: a refused grant is ``NeedsReconnect``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import urlsplit

from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from .errors import OAuthFailed, classify, classify_oauth, classify_status

SCOPE = "api refresh_token id"
CODE_CHALLENGE_METHOD = "S256"
TOKEN_AUTH_METHOD = "client_secret_post"


@dataclass(frozen=True)
class OAuthEndpoints:
    authorize_url: str
    token_url: str
    revoke_url: str
    userinfo_url: str


def endpoints(login_url: str) -> OAuthEndpoints:
    """OAuth endpoints of a login host (already checked by ``hosts.normalize_login_url``)."""
    base = login_url.rstrip("/") + "/services/oauth2"
    return OAuthEndpoints(f"{base}/authorize", f"{base}/token", f"{base}/revoke", f"{base}/userinfo")


def _verify_kwargs(ca_file: str | None) -> dict[str, Any]:
    # REQUESTS_CA_BUNDLE would override session.verify (stack-notes §0).
    return {"verify": ca_file, "trust_env": False} if ca_file else {}


def flask_registration(login_url: str, client_id: str, client_secret: str,
                       ca_file: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``authlib.integrations.flask_client.OAuth.register(name, **kw)``."""
    ep = endpoints(login_url)
    return {
        "client_id": client_id,
        "client_secret": client_secret,
        "authorize_url": ep.authorize_url,
        "access_token_url": ep.token_url,
        "client_kwargs": {"scope": SCOPE, "code_challenge_method": CODE_CHALLENGE_METHOD,
                          "token_endpoint_auth_method": TOKEN_AUTH_METHOD, **_verify_kwargs(ca_file)},
    }


def _session(client_id: str, client_secret: str | None, ca_file: str | None, **kwargs: Any) -> OAuth2Session:
    s = OAuth2Session(client_id, client_secret, scope=SCOPE, token_endpoint_auth_method=TOKEN_AUTH_METHOD,
                      **kwargs)
    if ca_file:
        s.verify = ca_file
        s.trust_env = False
    return s


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str
    redirect_uri: str


def authorization_request(login_url: str, client_id: str, redirect_uri: str, *,
                          prompt: str | None = None) -> AuthorizationRequest:
    """The URL to send the browser to, plus the state and PKCE verifier to keep server-side."""
    verifier = generate_token(48)
    s = OAuth2Session(client_id, scope=SCOPE, redirect_uri=redirect_uri, code_challenge_method=CODE_CHALLENGE_METHOD)
    extra = {"prompt": prompt} if prompt else {}
    url, state = s.create_authorization_url(endpoints(login_url).authorize_url, code_verifier=verifier, **extra)
    return AuthorizationRequest(url=url, state=state, code_verifier=verifier, redirect_uri=redirect_uri)


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    instance_url: str
    id_url: str
    org_id: str
    user_id: str
    issued_at: datetime | None
    scope: str | None = None
    token_type: str = "Bearer"


def parse_token_response(data: Mapping[str, Any], previous_refresh_token: str | None = None) -> TokenSet:
    """Salesforce's token response → TokenSet. ``issued_at`` is milliseconds as a string; the
    identity URL's last two path segments are the 18-character org ID and user ID."""
    try:
        access_token = str(data["access_token"])
        instance_url = str(data["instance_url"]).rstrip("/")
        id_url = str(data["id"])
    except (KeyError, TypeError):
        raise OAuthFailed("the token response lacks access_token, instance_url or id",
                          code="INVALID_TOKEN_RESPONSE") from None
    parts = [p for p in urlsplit(id_url).path.split("/") if p]
    if len(parts) < 3 or parts[-3] != "id":
        raise OAuthFailed(f"unexpected identity URL {id_url!r}", code="INVALID_TOKEN_RESPONSE")
    issued_at = None
    raw = data.get("issued_at")
    if raw not in (None, ""):
        try:
            issued_at = datetime.fromtimestamp(int(str(raw)) / 1000, tz=timezone.utc)
        except ValueError:
            issued_at = None
    return TokenSet(
        access_token=access_token,
        refresh_token=data.get("refresh_token") or previous_refresh_token,
        instance_url=instance_url,
        id_url=id_url,
        org_id=parts[-2],
        user_id=parts[-1],
        issued_at=issued_at,
        scope=data.get("scope"),
        token_type=data.get("token_type") or "Bearer",
    )


def exchange_code(token_url: str, client_id: str, client_secret: str, code: str, redirect_uri: str,
                  code_verifier: str, *, ca_file: str | None = None, timeout: Any = (5, 30)) -> TokenSet:
    """Authorization code → tokens (POST grant_type=authorization_code with the PKCE verifier)."""
    s = _session(client_id, client_secret, ca_file, redirect_uri=redirect_uri)
    try:
        token = s.fetch_token(token_url, code=code, code_verifier=code_verifier, grant_type="authorization_code",
                              timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        raise classify(exc) from exc
    return parse_token_response(token)


def refresh_access_token(token_url: str, client_id: str, client_secret: str, refresh_token: str, *,
                         ca_file: str | None = None, timeout: Any = (5, 30)) -> TokenSet:
    """A new access token; the refresh token is kept when Salesforce sends none (it usually
    doesn't). A refused grant raises ``NeedsReconnect``."""
    s = _session(client_id, client_secret, ca_file,
                 token={"access_token": "", "refresh_token": refresh_token, "token_type": "Bearer"})
    try:
        token = s.refresh_token(token_url, refresh_token=refresh_token, timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        raise classify(exc) from exc
    return parse_token_response(token, previous_refresh_token=refresh_token)


def revoke(revoke_url: str, token: str, *, ca_file: str | None = None, timeout: Any = (5, 30)) -> None:
    """Revoke a refresh token (and the access tokens issued from it) or an access token."""
    from .client import make_session

    session = make_session(ca_file, timeout)
    try:
        response = session.post(revoke_url, data={"token": token})
    except Exception as exc:  # noqa: BLE001
        raise classify(exc) from exc
    if response.status_code >= 300:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and "error" in body:
            raise classify_oauth(body.get("error"), body.get("error_description"), response.status_code)
        raise classify_status(response.status_code, response.content)


@dataclass(frozen=True)
class Identity:
    org_id: str
    user_id: str
    username: str
    display_name: str
    email: str | None


def fetch_identity(id_url: str, access_token: str, *, ca_file: str | None = None,
                   timeout: Any = (5, 30)) -> Identity:
    """GET the identity URL (the token response's ``id``) with the access token."""
    from .client import make_session

    session = make_session(ca_file, timeout)
    try:
        response = session.get(id_url, headers={"Authorization": f"Bearer {access_token}"})
    except Exception as exc:  # noqa: BLE001
        raise classify(exc) from exc
    if response.status_code >= 300:
        raise classify_status(response.status_code, response.content)
    try:
        data = response.json()
        return Identity(org_id=str(data["organization_id"]), user_id=str(data["user_id"]),
                        username=str(data["username"]),
                        display_name=str(data.get("display_name") or data["username"]),
                        email=data.get("email"))
    except (ValueError, KeyError, TypeError) as exc:
        raise classify(exc if isinstance(exc, ValueError) else response) from exc

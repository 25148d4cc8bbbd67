"""A workspace's Salesforce connections: connect (OAuth web-server flow), reconnect, disconnect,
and an API client per connection that refreshes its token once at a time.

Connect, in two requests
------------------------
``begin_connect(workspace, user, name, environment, mydomain_url, *, redirect_uri,
reconnect=None, return_to=None) -> str``
    Checks the name and the login host (``salesforce.hosts``) *before any request*: a refused
    host raises ``ConnectError(field="my_domain")`` and never sees our client id or secret.
    Then registers authlib's Flask client for that login host (authorize and token URLs built
    from the allow-listed login URL; PKCE S256; client_secret_post), creates the authorization
    URL and saves the state data (redirect URI, PKCE ``code_verifier``, and what is being
    connected) through authlib's ``cache=`` in Redis: the session cookie only carries the
    state's key and expiry, never the verifier. Returns the URL to send the browser to.

``complete_connect(workspace, user, args) -> ConnectResult(connection, reconnected, return_to)``
    ``args`` are the callback's query parameters. Checks the state (one use), then exchanges
    the code (with the verifier), checks the instance URL against the allow-list, reads the
    identity and the Organization (name, sandbox), and writes org ID, org name, sandbox flag,
    connected user and username, instance URL and the encrypted tokens, status connected, in
    one transaction. Denied consent, a state mismatch, an unreachable host, an org without API
    access and a token error raise ``ConnectError`` with a message to show; nothing is saved
    (a token already issued is revoked, best effort). A reconnect must land on the same org ID
    (another org is refused; plans and cursors stay); held plans resume.

``disconnect(connection, user) -> str | None``
    Revokes the refresh token at Salesforce (best effort: returns a warning when Salesforce
    could not be reached), deletes both tokens, status disconnected, and holds the workspace's
    active or paused plans on that connection (status held).

Clients
-------
``client_for(connection, **client_kwargs) -> SalesforceClient``
    Raises ``NeedsReconnect`` when the connection is not connected or its token cannot be
    decrypted. Its ``token_refresher`` refreshes at most once at a time per connection across
    web and worker processes: it locks the connection's row (an UPDATE of the row in its own
    transaction: a row lock on PostgreSQL, the write lock on SQLite), re-reads the token
    (another process may have refreshed while we waited, then that token is used), refreshes,
    stores the new access token encrypted and commits. A refused grant (invalid_grant...) marks
    the connection needs_reconnect with a readable reason and re-raises ``NeedsReconnect``.
``notify_status(connection)``  the operations hook (``services.notifications``) after every status
    change here: needs reconnect opens the connection's incident and mails the admins once;
    a reconnect or a disconnect closes it.
``record_usage(connection, client)``  stores ``client.api_usage`` (used / max) and commits.
``connections_for(workspace)``, ``get_connection(workspace, id)``
``oauth_settings() -> OAuthSettings`` (client id/secret, CA file, extra login hosts; from
    config or from SALESFORCE_EMULATOR_APP's connected-app.json and its ca.pem)
``login_url_for(environment, mydomain_url) -> str``  (raises ``LoginHostNotAllowed``)

Tokens are never logged, rendered or put in an exception message.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.crypto import TokenDecryptError, cipher
from core.extensions import db
from models import ImportPlan, SalesforceConnection
from models.integrations import (CONNECTION_CONNECTED, CONNECTION_DISCONNECTED, CONNECTION_NEEDS_RECONNECT,
                                 ENVIRONMENTS)
from models.plans import PLAN_ACTIVE, PLAN_HELD, PLAN_PAUSED
from models.types import utcnow
from salesforce import hosts, oauth
from salesforce.client import SalesforceClient
from services import notifications
from salesforce.errors import (ApiDisabled, NeedsReconnect, OAuthFailed, SalesforceError, Transient,
                               classify)

log = logging.getLogger(__name__)

OAUTH_NAME = "salesforce"
STATE_TTL_SECONDS = 15 * 60
ACCESS_DENIED = ("Salesforce access was not approved (Deny was chosen on Salesforce's page), so nothing was "
                 "connected. Click Connect to try again.")
API_DISABLED = ("This Salesforce org does not allow API access, so nothing was connected. Terapage cannot bypass "
                "Salesforce API restrictions on a client’s org: ask your Salesforce administrator to enable API "
                "access (an edition that includes it, and the “API Enabled” permission for the user who "
                "connects), then click Connect again.")


class ConnectError(Exception):
    """A connect or reconnect that did not happen; ``message`` is shown to the person,
    ``field`` names the form field it belongs to (or None), ``code`` is a stable slug."""

    def __init__(self, message: str, *, code: str = "connect_failed", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


# --- settings --------------------------------------------------------------------------------

@dataclass(frozen=True)
class OAuthSettings:
    client_id: str | None
    client_secret: str | None
    ca_file: str | None
    extra_hosts: tuple[str, ...] = ()
    production_login: str = hosts.PRODUCTION_LOGIN
    sandbox_login: str = hosts.SANDBOX_LOGIN
    api_version: str = "62.0"
    timeout: Any = field(default=(5, 30))


def _host_entry(url: str) -> str | None:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    return parts.netloc.lower() or None


def oauth_settings() -> OAuthSettings:
    from flask import current_app

    cfg = current_app.config
    client_id, client_secret = cfg.get("SALESFORCE_CLIENT_ID"), cfg.get("SALESFORCE_CLIENT_SECRET")
    ca_file = cfg.get("SALESFORCE_CA_FILE")
    extra = list(cfg.get("SALESFORCE_EXTRA_LOGIN_HOSTS") or [])
    production = cfg.get("SALESFORCE_LOGIN_URL") or hosts.PRODUCTION_LOGIN
    sandbox = cfg.get("SALESFORCE_SANDBOX_LOGIN_URL") or hosts.SANDBOX_LOGIN
    app_file = cfg.get("SALESFORCE_EMULATOR_APP")
    if app_file:
        path = Path(app_file)
        data = json.loads(path.read_text())
        client_id, client_secret = data["client_id"], data["client_secret"]
        if (path.parent / "ca.pem").exists():
            ca_file = str(path.parent / "ca.pem")
        # The emulator serves every org from one host: production and sandbox both sign in there.
        production = sandbox = data["login_url"].rstrip("/")
    # Operator-configured login URLs are trusted: their hosts join the allow-list.
    for url in (production, sandbox):
        if not hosts.is_allowed_login_url(url, extra):
            entry = _host_entry(url)
            if entry:
                extra.append(entry)
    return OAuthSettings(client_id=client_id, client_secret=client_secret, ca_file=ca_file,
                         extra_hosts=tuple(extra), production_login=production.rstrip("/"),
                         sandbox_login=sandbox.rstrip("/"),
                         api_version=cfg.get("SALESFORCE_API_VERSION") or "62.0")


def environment_labels(settings: OAuthSettings | None = None) -> tuple[dict[str, str], str | None]:
    """The Connect form's environment choices, labelled with the login hosts this deployment
    really uses, and a note when production and sandbox sign in at one host (the demo's emulator:
    there the Salesforce user who logs in decides the org)."""
    settings = settings or oauth_settings()
    production, sandbox = _host_entry(settings.production_login), _host_entry(settings.sandbox_login)
    labels = {"production": f"Production ({production})", "sandbox": f"Sandbox ({sandbox})",
              "mydomain": "My Domain (your own login address)"}
    note = (f"Production and sandbox both sign in at {production} here: the org connected is the one "
            "of the Salesforce user you log in as.") if production == sandbox else None
    return labels, note


def login_url_for(environment: str, mydomain_url: str | None, settings: OAuthSettings | None = None) -> str:
    """The login base URL for an environment; raises ``hosts.LoginHostNotAllowed``."""
    settings = settings or oauth_settings()
    environment = (environment or "").strip().lower()
    if environment == "production":
        return settings.production_login
    if environment == "sandbox":
        return settings.sandbox_login
    return hosts.normalize_login_url(environment, mydomain_url, settings.extra_hosts)


# --- OAuth state kept server-side ------------------------------------------------------------

class _RedisStateCache:
    """authlib's ``cache=`` interface over Redis: the state data (PKCE verifier included)
    stays on the server; the session cookie only names it."""

    prefix = "terapage:oauth-state:"

    def __init__(self, connection=None):
        if connection is None:
            from core.queues import redis_connection
            connection = redis_connection()
        self.redis = connection

    def get(self, key):
        return self.redis.get(self.prefix + key)

    def set(self, key, value, timeout=None):
        self.redis.set(self.prefix + key, value, ex=int(timeout or STATE_TTL_SECONDS))

    def delete(self, key):
        self.redis.delete(self.prefix + key)


def _state_cache():
    from flask import current_app

    factory = current_app.extensions.get("terapage_oauth_state_cache")  # tests may swap it
    return factory() if factory else _RedisStateCache()


def _framework():
    from authlib.integrations.flask_client.integration import FlaskIntegration

    framework = FlaskIntegration(OAUTH_NAME, cache=_state_cache())
    framework.expires_in = STATE_TTL_SECONDS
    return framework


def _oauth_client(login_url: str, settings: OAuthSettings, framework=None):
    """authlib's Flask OAuth 2 client registered for one login host (per request)."""
    from authlib.integrations.flask_client.apps import FlaskOAuth2App

    kwargs = oauth.flask_registration(login_url, settings.client_id, settings.client_secret, settings.ca_file)
    if not settings.ca_file:
        kwargs["client_kwargs"]["trust_env"] = True
    kwargs["client_kwargs"]["timeout"] = settings.timeout
    return FlaskOAuth2App(framework or _framework(), name=OAUTH_NAME, **kwargs)


# --- connect -----------------------------------------------------------------------------------

def connections_for(workspace) -> list[SalesforceConnection]:
    return list(db.session.scalars(select(SalesforceConnection)
                                   .where(SalesforceConnection.workspace_id == workspace.id)
                                   .order_by(SalesforceConnection.is_sandbox, SalesforceConnection.name)))


def get_connection(workspace, connection_id) -> SalesforceConnection | None:
    try:
        connection_id = int(connection_id)
    except (TypeError, ValueError):
        return None
    return db.session.scalar(select(SalesforceConnection).where(
        SalesforceConnection.id == connection_id, SalesforceConnection.workspace_id == workspace.id))


def begin_connect(workspace, user, name: str, environment: str, mydomain_url: str | None, *,
                  redirect_uri: str, reconnect: SalesforceConnection | None = None,
                  return_to: str | None = None) -> str:
    """Validate, then return the Salesforce authorization URL (see the module docstring)."""
    from flask import session

    settings = oauth_settings()
    name = (name or "").strip()
    environment = (environment or "").strip().lower()
    if reconnect is not None:
        if reconnect.workspace_id != workspace.id:
            raise ConnectError("That connection belongs to another workspace.", code="not_found")
        name, environment, login_url = reconnect.name, reconnect.environment, reconnect.login_url
        # The stored login URL passed the allow-list when it was connected; check it again.
        if not (hosts.is_allowed_login_url(login_url, settings.extra_hosts)
                or login_url in (settings.production_login, settings.sandbox_login)):
            raise ConnectError(f"{login_url} is no longer an allowed Salesforce login address.",
                               code="host_not_allowed", field="my_domain")
    else:
        if not name:
            raise ConnectError("Give the connection a name, e.g. “Production” or “UAT sandbox”.",
                               code="name_missing", field="name")
        if len(name) > 100:
            raise ConnectError("Keep the name under 100 characters.", code="name_too_long", field="name")
        if environment not in ENVIRONMENTS:
            raise ConnectError("Choose production, sandbox or a My Domain address.", code="environment",
                               field="environment")
        taken = db.session.scalar(select(SalesforceConnection.id).where(
            SalesforceConnection.workspace_id == workspace.id, SalesforceConnection.name == name))
        if taken is not None:
            raise ConnectError(f"This workspace already has a connection named “{name}”. Choose another "
                               "name, or use Reconnect on that connection.", code="name_taken", field="name")
        try:
            login_url = login_url_for(environment, mydomain_url, settings)
        except hosts.LoginHostNotAllowed as exc:
            raise ConnectError(str(exc), code="host_not_allowed", field="my_domain") from None
    if not settings.client_id or not settings.client_secret:
        raise ConnectError("Salesforce is not configured on this server (no connected app client ID and "
                           "secret). Ask your Terapage administrator.", code="not_configured")

    client = _oauth_client(login_url, settings)
    rv = client.create_authorization_url(redirect_uri)  # no request: the URLs are known
    client.save_authorize_data(
        redirect_uri=redirect_uri, **rv,
        intent={"workspace_id": workspace.id, "user_id": getattr(user, "id", None), "name": name,
                "environment": environment, "login_url": login_url,
                "connection_id": reconnect.id if reconnect is not None else None, "return_to": return_to})
    session.modified = True
    return rv["url"]


@dataclass(frozen=True)
class ConnectResult:
    connection: SalesforceConnection
    reconnected: bool
    return_to: str | None = None  # what begin_connect was given (e.g. "wizard")


def complete_connect(workspace, user, args: Mapping[str, str]) -> ConnectResult:
    """Finish the flow from the callback's query parameters (see the module docstring)."""
    from flask import session

    error = args.get("error")
    state = args.get("state") or ""
    try:
        framework = _framework()
        data = framework.get_state_data(session, state) if state else None
        if data:
            framework.clear_state_data(session, state)  # one use, whatever happens next
    except RedisError as exc:
        # The state store is unreachable: the sign-in cannot be matched, so nothing is connected;
        # the person gets the page that says so, never an error page.
        log.warning("OAuth callback: the state store is unreachable (%s)", exc)
        data = None
        if error != "access_denied":
            raise ConnectError("Terapage could not check this Salesforce sign-in (a temporary problem on our "
                               "side). Nothing was connected; click Connect to try again.",
                               code="state_unavailable") from None
    if data is None:
        if error == "access_denied":
            # Also a reload of the callback after Deny (the state was used up the first time):
            # the same answer, whatever the state.
            raise ConnectError(ACCESS_DENIED, code="access_denied")
        raise ConnectError("This Salesforce sign-in could not be matched to one started here (it expired, "
                           "was already used, or began in another browser). Nothing was connected; "
                           "click Connect to start again.", code="state_mismatch")
    intent = data.get("intent") or {}
    if intent.get("workspace_id") != workspace.id or intent.get("user_id") != getattr(user, "id", None):
        raise ConnectError("This Salesforce sign-in was started in another workspace or by someone else. "
                           "Nothing was connected.", code="state_mismatch")
    if error:
        if error == "access_denied":
            raise ConnectError(ACCESS_DENIED, code="access_denied")
        description = args.get("error_description") or ""
        raise ConnectError(f"Salesforce did not authorise Terapage ({error}{': ' + description if description else ''}). "
                           "Nothing was connected.", code="authorization_error")
    code = args.get("code")
    if not code:
        raise ConnectError("Salesforce came back without an authorisation code. Nothing was connected.",
                           code="no_code")

    settings = oauth_settings()
    login_url = intent["login_url"]
    reconnect = None
    if intent.get("connection_id"):
        reconnect = get_connection(workspace, intent["connection_id"])
        if reconnect is None:
            raise ConnectError("The connection being reconnected no longer exists.", code="not_found")

    client = _oauth_client(login_url, settings, framework)
    try:
        token = client.fetch_access_token(code=code, code_verifier=data.get("code_verifier"),
                                          redirect_uri=data.get("redirect_uri"))
        tokens = oauth.parse_token_response(token)
    except Exception as exc:  # noqa: BLE001 - classified and explained right here
        raise _connect_error(classify(exc), login_url) from None

    try:
        connection = _store_connection(workspace, user, intent, tokens, settings, reconnect)
    except Exception:
        db.session.rollback()
        _revoke_quietly(login_url, tokens.refresh_token or tokens.access_token, settings)
        raise
    notify_status(connection)  # a reconnect closes the connection's incident
    return ConnectResult(connection, reconnect is not None, intent.get("return_to"))


def _connect_error(err: SalesforceError, login_url: str) -> ConnectError:
    host = urlsplit(login_url).netloc
    if isinstance(err, ApiDisabled):
        return ConnectError(API_DISABLED, code="api_disabled")
    if err.code == "TLS_ERROR":
        return ConnectError(f"Could not verify the certificate of {host}; nothing was connected.", code="tls_error")
    if isinstance(err, Transient):
        return ConnectError(f"Could not reach Salesforce at {host} ({err.reason}). Nothing was connected; "
                            "check the address and try again.", code="unreachable")
    if isinstance(err, (NeedsReconnect, OAuthFailed)):
        detail = f" ({err.code}{': ' + err.message if err.message else ''})"
        return ConnectError("Salesforce refused to issue access for this sign-in" + detail
                            + ". Nothing was connected; click Connect to try again.", code="token_error")
    return ConnectError(f"Salesforce answered with an error: {err.reason} Nothing was connected.",
                        code="salesforce_error")


def _store_connection(workspace, user, intent, tokens: oauth.TokenSet, settings: OAuthSettings,
                      reconnect: SalesforceConnection | None) -> SalesforceConnection:
    try:
        instance_url = hosts.check_instance_url(tokens.instance_url, settings.extra_hosts)
        id_origin = "https://" + urlsplit(tokens.id_url).netloc
        hosts.check_instance_url(id_origin, settings.extra_hosts)
    except hosts.LoginHostNotAllowed as exc:
        raise ConnectError(f"Salesforce sent us to an address we do not trust ({exc}). Nothing was connected.",
                           code="instance_not_allowed") from None
    try:
        identity = oauth.fetch_identity(tokens.id_url, tokens.access_token, ca_file=settings.ca_file)
        api = SalesforceClient(instance_url, tokens.access_token, api_version=settings.api_version,
                               ca_file=settings.ca_file, retries=1, backoff=(0.2,))
        org = api.organization()
    except Exception as exc:  # noqa: BLE001
        raise _connect_error(classify(exc), intent["login_url"]) from None
    if identity.org_id != tokens.org_id:
        raise ConnectError("Salesforce's identity answer named another org than the token. Nothing was connected.",
                           code="identity_mismatch")

    if reconnect is not None:
        if reconnect.org_id and reconnect.org_id != identity.org_id:
            raise ConnectError(
                f"You signed in to a different Salesforce org ({org.name}, {identity.org_id}). "
                f"“{reconnect.name}” is connected to {reconnect.org_name or 'another org'} ({reconnect.org_id}); "
                "sign in to that org to reconnect it. Nothing was changed.", code="different_org")
        connection = reconnect
    else:
        existing = db.session.scalar(select(SalesforceConnection).where(
            SalesforceConnection.workspace_id == workspace.id, SalesforceConnection.org_id == identity.org_id))
        if existing is not None:
            raise ConnectError(f"This org ({org.name}, {identity.org_id}) is already connected to this workspace as "
                               f"“{existing.name}”. Use Reconnect on that connection instead.", code="org_taken")
        connection = SalesforceConnection(workspace_id=workspace.id, name=intent["name"],
                                          environment=intent["environment"], login_url=intent["login_url"])
        db.session.add(connection)

    c = cipher()
    now = utcnow()
    connection.instance_url = instance_url
    connection.org_id = identity.org_id
    connection.org_name = org.name
    connection.is_sandbox = org.is_sandbox
    connection.sf_user_id = identity.user_id
    connection.sf_username = identity.username
    connection.sf_display_name = identity.display_name
    connection.identity_url = tokens.id_url
    connection.access_token_enc = c.encrypt(tokens.access_token)
    connection.refresh_token_enc = c.encrypt(tokens.refresh_token)
    connection.token_issued_at = tokens.issued_at or now
    connection.status = CONNECTION_CONNECTED
    connection.status_reason = None
    connection.connected_by_id = getattr(user, "id", None)
    connection.connected_at = now
    connection.last_token_check_at = now
    if api.api_usage:
        connection.api_used, connection.api_max = api.api_usage
        connection.api_usage_at = now
    db.session.flush()
    if reconnect is not None:
        for plan in db.session.scalars(select(ImportPlan).where(ImportPlan.connection_id == connection.id,
                                                                ImportPlan.status == PLAN_HELD)):
            plan.status = PLAN_ACTIVE
            plan.status_reason = None
    db.session.commit()
    return connection


def _revoke_quietly(login_url: str, token: str | None, settings: OAuthSettings) -> bool:
    if not token:
        return True
    try:
        oauth.revoke(oauth.endpoints(login_url).revoke_url, token, ca_file=settings.ca_file)
        return True
    except Exception as exc:  # noqa: BLE001 - best effort; never log the token
        log.warning("revoking a Salesforce token at %s failed: %s", urlsplit(login_url).netloc,
                    type(exc).__name__)
        return False


# --- disconnect ------------------------------------------------------------------------------

def disconnect(connection: SalesforceConnection, user=None) -> str | None:
    """Revoke, delete the tokens, mark disconnected, hold the plans. Returns a warning to show
    when Salesforce could not be told (the tokens are deleted here all the same)."""
    settings = oauth_settings()
    c = cipher()
    token = None
    try:
        token = c.decrypt(connection.refresh_token_enc) or c.decrypt(connection.access_token_enc)
    except TokenDecryptError:
        token = None
    warning = None
    if token and not _revoke_quietly(connection.login_url, token, settings):
        warning = ("Salesforce could not be reached to revoke the access; the tokens were deleted here. "
                   "You can also remove Terapage under Connected Apps OAuth Usage in Salesforce.")
    connection.access_token_enc = None
    connection.refresh_token_enc = None
    connection.status = CONNECTION_DISCONNECTED
    who = getattr(user, "name", None)
    connection.status_reason = f"Disconnected by {who}." if who else "Disconnected."
    hold_plans(connection, "The Salesforce connection was disconnected; reconnect it to resume.")
    db.session.commit()
    notify_status(connection)  # someone chose to: its incident, if any, closes
    return warning


def notify_status(connection: SalesforceConnection, *, own_session: bool = False) -> None:
    """The operations hook after ``connection``'s status changed (incident opened and the admins
    mailed once, or closed). Telling never undoes or hides the change itself: on failure the
    notifications sweep catches up.

    ``own_session``: for a change made outside the caller's session (a refused refresh, met in
    the middle of whatever a view or job was doing). The hook commits, so it runs in a session of
    its own (a fresh application context is a fresh Flask-SQLAlchemy session scope): the caller's
    pending changes are neither committed nor rolled back by it."""
    if own_session:
        connection_id = connection.id
        with current_app.app_context():
            try:
                row = db.session.get(SalesforceConnection, connection_id)
                if row is not None:
                    notify_status(row)
            except Exception:  # noqa: BLE001
                log.warning("connection %s: notifying its status failed; the notifications sweep retries",
                            connection_id, exc_info=True)
            finally:
                db.session.remove()
        return
    try:
        notifications.notify_connection_status(connection)
    except Exception:  # noqa: BLE001
        log.warning("connection %s: notifying its status failed; the notifications sweep retries",
                    connection.id, exc_info=True)
        db.session.rollback()


def hold_plans(connection: SalesforceConnection, reason: str) -> int:
    """Hold the active and paused plans on ``connection`` (not committed)."""
    held = 0
    for plan in db.session.scalars(select(ImportPlan).where(
            ImportPlan.connection_id == connection.id, ImportPlan.status.in_((PLAN_ACTIVE, PLAN_PAUSED)))):
        plan.status = PLAN_HELD
        plan.status_reason = reason
        held += 1
    return held


# --- clients and the one-at-a-time refresh ---------------------------------------------------

def client_for(connection: SalesforceConnection, **client_kwargs) -> SalesforceClient:
    """A REST client for ``connection`` whose expired sessions refresh once at a time."""
    if connection.status != CONNECTION_CONNECTED:
        raise NeedsReconnect(reason=connection.status_reason
                             or f"The Salesforce connection “{connection.name}” is {connection.status.replace('_', ' ')}.")
    try:
        access_token = cipher().decrypt(connection.access_token_enc)
    except TokenDecryptError:
        _mark_needs_reconnect(connection.id, "The stored Salesforce token cannot be read with the current "
                                             "encryption key; reconnect the org.")
        db.session.refresh(connection)
        raise NeedsReconnect(reason=connection.status_reason) from None
    if not access_token:
        raise NeedsReconnect(reason="The connection has no Salesforce token; reconnect the org.")
    settings = oauth_settings()
    client_kwargs.setdefault("api_version", settings.api_version)
    client_kwargs.setdefault("ca_file", settings.ca_file)
    client: SalesforceClient | None = None
    connection_id = connection.id

    def refresher() -> str:
        stale = client.access_token if client is not None else access_token
        return refresh_token(connection_id, stale)

    client = SalesforceClient(connection.instance_url, access_token, token_refresher=refresher, **client_kwargs)
    return client


def refresh_token(connection_id: int, stale_access_token: str | None) -> str:
    """A fresh access token for the connection, refreshing at most once at a time.

    Runs in its own session and transaction: the row lock (UPDATE of the row) serialises
    refreshers in every process; whoever waited re-reads the token and uses the new one.
    """
    c = cipher()
    settings = oauth_settings()
    with Session(bind=db.engine, expire_on_commit=False) as s:
        s.execute(update(SalesforceConnection).where(SalesforceConnection.id == connection_id)
                  .values(last_token_check_at=SalesforceConnection.last_token_check_at)
                  .execution_options(synchronize_session=False))
        row = s.get(SalesforceConnection, connection_id, populate_existing=True)
        if row is None:
            s.rollback()
            raise NeedsReconnect(reason="The Salesforce connection no longer exists.")
        if row.status != CONNECTION_CONNECTED:
            reason = row.status_reason or "The Salesforce connection needs to be reconnected."
            s.rollback()
            raise NeedsReconnect(reason=reason)
        try:
            current = c.decrypt(row.access_token_enc)
            refresh = c.decrypt(row.refresh_token_enc)
        except TokenDecryptError:
            current = refresh = None
        if current and current != stale_access_token:
            s.rollback()  # another process refreshed while we waited for the lock
            return current
        if not refresh:
            _set_needs_reconnect(s, row, "There is no refresh token for this connection; reconnect the org.")
            s.commit()
            notify_status(row, own_session=True)
            raise NeedsReconnect(reason=row.status_reason)
        try:
            tokens = oauth.refresh_access_token(oauth.endpoints(row.login_url).token_url, settings.client_id,
                                                settings.client_secret, refresh, ca_file=settings.ca_file)
        except NeedsReconnect as exc:
            _set_needs_reconnect(s, row, "Salesforce no longer accepts this connection's authorization "
                                         f"({exc.code}); an administrator needs to reconnect the org.")
            s.commit()
            notify_status(row, own_session=True)
            raise NeedsReconnect(exc.message, code=exc.code, status=exc.status, reason=row.status_reason) from None
        except Exception:
            s.rollback()
            raise
        now = utcnow()
        row.access_token_enc = c.encrypt(tokens.access_token)
        if tokens.refresh_token and tokens.refresh_token != refresh:
            row.refresh_token_enc = c.encrypt(tokens.refresh_token)
        row.token_issued_at = tokens.issued_at or now
        row.last_token_check_at = now
        s.commit()
        return tokens.access_token


def _set_needs_reconnect(s: Session, row: SalesforceConnection, reason: str) -> None:
    row.status = CONNECTION_NEEDS_RECONNECT
    row.status_reason = reason
    row.access_token_enc = None
    for plan in s.scalars(select(ImportPlan).where(ImportPlan.connection_id == row.id,
                                                   ImportPlan.status.in_((PLAN_ACTIVE, PLAN_PAUSED)))):
        plan.status = PLAN_HELD
        plan.status_reason = reason


def _mark_needs_reconnect(connection_id: int, reason: str) -> None:
    with Session(bind=db.engine) as s:
        row = s.get(SalesforceConnection, connection_id)
        if row is not None:
            _set_needs_reconnect(s, row, reason)
            s.commit()
            notify_status(row, own_session=True)


def record_usage(connection: SalesforceConnection, client: SalesforceClient, *, commit: bool = True) -> None:
    """Keep the org's API usage (used of max) seen by ``client`` on the connection."""
    if not client.api_usage:
        return
    connection.api_used, connection.api_max = client.api_usage
    connection.api_usage_at = utcnow()
    if commit:
        db.session.commit()

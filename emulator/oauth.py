"""OAuth 2.0 web-server flow: login and consent pages, token, revoke, identity, userinfo."""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import time
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

from flask import Blueprint, Response, current_app, redirect, request

from .clock import sf_datetime
from .state import DEFAULT_SCOPES, KNOWN_SCOPES, EmulatorState

bp = Blueprint("oauth", __name__)
PENDING_LIFETIME = 30 * 60
COOKIE = "emu_sid"


def st() -> EmulatorState:
    return current_app.config["EMULATOR"]


def _json(body, status=200, headers=None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {},
                    content_type="application/json;charset=UTF-8")


def token_error(error: str, description: str, status: int = 400) -> Response:
    return _json({"error": error, "error_description": description}, status)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;background:#f3f3f3;margin:0}}
main{{max-width:380px;margin:60px auto;background:#fff;padding:28px;border-radius:6px;
box-shadow:0 1px 3px rgba(0,0,0,.2)}}h1{{font-size:20px}}label{{display:block;margin:12px 0 4px}}
input[type=text],input[type=password]{{width:100%;padding:8px;box-sizing:border-box}}
button{{margin-top:16px;padding:8px 18px}}.error{{color:#c23934}}.note{{color:#666;font-size:12px}}</style>
</head><body><main>{body}<p class="note">Salesforce emulator &middot; not a real org</p></main></body></html>"""


def page(title: str, body: str, status: int = 200) -> Response:
    return Response(PAGE.format(title=html.escape(title), body=body), status=status,
                    content_type="text/html;charset=UTF-8")


def error_page(code: str, text: str) -> Response:
    return page("Error", f'<h1>Remote access application error</h1><p class="error" id="error">'
                         f'error={html.escape(code)}</p><p id="error_description">{html.escape(text)}</p>', 400)


def with_params(uri: str, params: dict) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def login_form(rid: str, error: str = "", username: str = "") -> Response:
    err = f'<p class="error" id="error">{html.escape(error)}</p>' if error else ""
    return page("Login | Salesforce", f"""<h1>Log in to your org</h1>{err}
<form method="post" action="/services/oauth2/authorize/login" id="login_form">
<input type="hidden" name="rid" value="{html.escape(rid)}">
<label for="username">Username</label><input type="text" id="username" name="username" value="{html.escape(username)}" autocomplete="username">
<label for="password">Password</label><input type="password" id="password" name="pw" autocomplete="current-password">
<button type="submit" id="Login" name="Login">Log In</button></form>""")


def consent_form(rid: str, pending: dict) -> Response:
    user = pending["user"]
    org = st().orgs[user.org_key]
    scopes = "".join(f"<li>{html.escape(s)}</li>" for s in pending["scope"])
    return page("Allow Access?", f"""<h1>Allow Access?</h1>
<p><strong>{html.escape(st().config.app_name)}</strong> is asking to access
<strong>{html.escape(user.username)}</strong> in <strong>{html.escape(org.name)}</strong>
({'sandbox' if org.is_sandbox else 'production'}). It wants to:</p><ul>{scopes}</ul>
<form method="post" action="/services/oauth2/authorize/consent" id="consent_form">
<input type="hidden" name="rid" value="{html.escape(rid)}">
<button type="submit" name="decision" value="deny" id="oaapprove_deny">Deny</button>
<button type="submit" name="decision" value="allow" id="oaapprove">Allow</button></form>""")


def _pending(rid: str) -> dict | None:
    p = st().pending.get(rid or "")
    if p is None or p["expires"] < time.time():
        return None
    return p


def _finish(pending: dict, user) -> Response:
    code = st().issue_code(user, pending)
    return redirect(with_params(pending["redirect_uri"], {"code": code, "state": pending.get("state")}), 302)


@bp.route("/services/oauth2/authorize", methods=["GET", "POST"])
def authorize():
    s = st()
    args = request.values
    client_id = args.get("client_id", "")
    redirect_uri = args.get("redirect_uri", "")
    if client_id != s.config.client_id:
        return error_page("invalid_client_id", "client identifier invalid")
    if not s.callback_allowed(redirect_uri):
        return error_page("redirect_uri_mismatch", "redirect_uri must match configuration")
    state = args.get("state")

    def fail(error, desc):
        return redirect(with_params(redirect_uri, {"error": error, "error_description": desc, "state": state}), 302)

    if args.get("response_type") != "code":
        return fail("unsupported_response_type", "response type not supported")
    method = args.get("code_challenge_method")
    if args.get("code_challenge") and method not in (None, "", "S256", "plain"):
        return fail("invalid_request", "invalid code challenge method")
    scope = (args.get("scope") or "").split() or list(DEFAULT_SCOPES)
    unknown = [x for x in scope if x not in KNOWN_SCOPES]
    if unknown:
        return fail("invalid_scope", "the requested scope is not allowed")
    rid = secrets.token_urlsafe(18)
    pending = {"client_id": client_id, "redirect_uri": redirect_uri, "state": state, "scope": scope,
               "code_challenge": args.get("code_challenge"), "code_challenge_method": method,
               "expires": time.time() + PENDING_LIFETIME, "user": None}
    with s.lock:
        s.pending[rid] = pending
    if s.config.auto_approve:
        return _finish(pending, s.users[s.config.default_user.lower()])
    prompt = (args.get("prompt") or "").split()
    browser_user = s.browser_sessions.get(request.cookies.get(COOKIE, ""))
    if browser_user is not None and "login" not in prompt:
        pending["user"] = browser_user
        return consent_form(rid, pending)
    if args.get("immediate") == "true":
        return fail("immediate_unsuccessful", "immediate unsuccessful")
    return login_form(rid, username=args.get("login_hint", ""))


@bp.post("/services/oauth2/authorize/login")
def login():
    s = st()
    rid = request.form.get("rid", "")
    pending = _pending(rid)
    if pending is None:
        return page("Error", '<h1>Your login attempt has timed out.</h1><p class="error" id="error">'
                             'Start again from the application.</p>', 400)
    username = request.form.get("username", "")
    user = s.authenticate(username, request.form.get("pw", ""))
    if user is None:
        return login_form(rid, "Please check your username and password. If you still can't log in, "
                               "contact your Salesforce administrator.", username)
    pending["user"] = user
    sid = secrets.token_urlsafe(24)
    with s.lock:
        s.browser_sessions[sid] = user
    resp = consent_form(rid, pending)
    resp.set_cookie(COOKIE, sid, secure=True, httponly=True, samesite="Lax")
    return resp


@bp.post("/services/oauth2/authorize/consent")
def consent():
    rid = request.form.get("rid", "")
    pending = _pending(rid)
    if pending is None or pending["user"] is None:
        return page("Error", '<h1>Your login attempt has timed out.</h1>', 400)
    with st().lock:
        st().pending.pop(rid, None)
    if request.form.get("decision") != "allow":
        return redirect(with_params(pending["redirect_uri"], {
            "error": "access_denied", "error_description": "end-user denied authorization",
            "state": pending.get("state")}), 302)
    return _finish(pending, pending["user"])


def _client_credentials() -> tuple[str, str]:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            cid, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
            return cid, secret
        except (ValueError, UnicodeDecodeError):
            return "", ""
    return request.form.get("client_id", ""), request.form.get("client_secret", "")


@bp.post("/services/oauth2/token")
def token():
    s = st()
    grant_type = request.form.get("grant_type", "")
    cid, secret = _client_credentials()
    if grant_type not in ("authorization_code", "refresh_token"):
        return token_error("unsupported_grant_type", "grant type not supported")
    if cid != s.config.client_id:
        return token_error("invalid_client_id", "client identifier invalid")
    if not hmac.compare_digest(secret, s.config.client_secret):
        return token_error("invalid_client", "invalid client credentials")

    if grant_type == "refresh_token":
        g = s.grants.get(request.form.get("refresh_token", ""))
        if g is None or g.revoked:
            return token_error("invalid_grant", "expired access/refresh token")
        if not g.user.active:
            return token_error("invalid_grant", "inactive user")
        sess = s.new_session(g.user, g.scope, g)
        return _json(s.token_response(sess, None))

    code = request.form.get("code", "")
    with s.lock:
        entry = s.codes.get(code)
        if entry is None:
            return token_error("invalid_grant", "invalid authorization code")
        if entry["used"] or entry["expires"] < time.time():
            return token_error("invalid_grant", "authentication failure")
        entry["used"] = True
    if entry["client_id"] != cid:
        return token_error("invalid_grant", "authentication failure")
    if request.form.get("redirect_uri", "") != entry["redirect_uri"]:
        return token_error("redirect_uri_mismatch", "redirect_uri must match configuration")
    if entry["challenge"]:
        verifier = request.form.get("code_verifier")
        if not verifier:
            return token_error("invalid_grant", "invalid code verifier")
        if entry["method"] == "S256":
            computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        else:
            computed = verifier
        if not hmac.compare_digest(computed, entry["challenge"]):
            return token_error("invalid_request", "invalid code verifier")
    scope = entry["scope"]
    grant = s.new_grant(entry["user"], scope) if ({"refresh_token", "offline_access"} & set(scope)) else None
    sess = s.new_session(entry["user"], scope, grant)
    return _json(s.token_response(sess, grant))


@bp.route("/services/oauth2/revoke", methods=["GET", "POST"])
def revoke():
    tok = request.values.get("token", "")
    if not tok:
        return token_error("unsupported_token_type", "this token type is not supported")
    if not st().revoke(tok):
        return token_error("invalid_token", "invalid token")
    return Response("", 200)


def _bearer():
    auth = request.headers.get("Authorization", "")
    parts = auth.split(None, 1)
    if len(parts) == 2 and parts[0].lower() in ("bearer", "oauth"):
        return st().session_for(parts[1].strip())
    tok = request.args.get("oauth_token")
    return st().session_for(tok) if tok else None


def _urls(sess, version: str) -> dict:
    base = st().url
    org15 = sess.org.id15
    v = version
    return {
        "enterprise": f"{base}/services/Soap/c/{v}/{org15}", "metadata": f"{base}/services/Soap/m/{v}/{org15}",
        "partner": f"{base}/services/Soap/u/{v}/{org15}", "rest": f"{base}/services/data/v{v}/",
        "sobjects": f"{base}/services/data/v{v}/sobjects/", "search": f"{base}/services/data/v{v}/search/",
        "query": f"{base}/services/data/v{v}/query/", "recent": f"{base}/services/data/v{v}/recent/",
        "tooling_soap": f"{base}/services/Soap/T/{v}/{org15}", "tooling_rest": f"{base}/services/data/v{v}/tooling/",
        "profile": f"{base}/{sess.user.id}", "feeds": f"{base}/services/data/v{v}/chatter/feeds",
        "groups": f"{base}/services/data/v{v}/chatter/groups", "users": f"{base}/services/data/v{v}/chatter/users",
        "feed_items": f"{base}/services/data/v{v}/chatter/feed-items",
        "feed_elements": f"{base}/services/data/v{v}/chatter/feed-elements", "custom_domain": base,
    }


def _version_param() -> str:
    v = request.args.get("version", "{version}")
    return "62.0" if v == "latest" else v


def _photos() -> dict:
    return {"picture": f"{st().url}/profilephoto/005/F", "thumbnail": f"{st().url}/profilephoto/005/T"}


@bp.get("/id/<org_id>/<user_id>")
def identity(org_id, user_id):
    sess = _bearer()
    if sess is None:
        return Response("Bad_OAuth_Token", 403, content_type="text/plain;charset=UTF-8")
    u = sess.user
    if user_id[:15] != u.id[:15] or org_id[:15] != sess.org.id15:
        return Response("Bad_Id", 403, content_type="text/plain;charset=UTF-8")
    return _json({
        "id": st().identity_url(u), "asserted_user": True, "user_id": u.id, "organization_id": sess.org.id18,
        "username": u.username, "nick_name": u.username.split("@")[0], "display_name": u.name,
        "email": u.email, "email_verified": True, "first_name": u.first_name, "last_name": u.last_name,
        "timezone": u.timezone, "photos": _photos(),
        "addr_street": None, "addr_city": None, "addr_state": None, "addr_country": "US", "addr_zip": None,
        "mobile_phone": None, "mobile_phone_verified": False, "is_lightning_login_user": False,
        "status": {"created_date": None, "body": None}, "urls": _urls(sess, _version_param()),
        "active": u.active, "user_type": "STANDARD", "language": "en_US", "locale": "en_US",
        "utcOffset": -28800000, "last_modified_date": sf_datetime(st().clock.now())[:19] + "Z",
        "is_app_installed": True,
    })


@bp.get("/services/oauth2/userinfo")
def userinfo():
    sess = _bearer()
    if sess is None:
        return Response("Bad_OAuth_Token", 403, content_type="text/plain;charset=UTF-8")
    u = sess.user
    return _json({
        "sub": st().identity_url(u), "user_id": u.id, "organization_id": sess.org.id18,
        "preferred_username": u.username, "nickname": u.username.split("@")[0], "name": u.name,
        "email": u.email, "email_verified": True, "given_name": u.first_name, "family_name": u.last_name,
        "zoneinfo": u.timezone, "photos": _photos(), "profile": f"{st().url}/{u.id}",
        "picture": _photos()["picture"], "address": {"country": "US"}, "is_salesforce_integration_user": False,
        "urls": _urls(sess, _version_param()), "active": u.active, "user_type": "STANDARD",
        "language": "en_US", "locale": "en_US", "utcOffset": -28800000,
        "updated_at": sf_datetime(st().clock.now())[:19] + "Z", "is_app_installed": True,
    })


@bp.get("/.well-known/openid-configuration")
def openid_configuration():
    base = st().url
    return _json({
        "issuer": base, "authorization_endpoint": f"{base}/services/oauth2/authorize",
        "token_endpoint": f"{base}/services/oauth2/token", "revocation_endpoint": f"{base}/services/oauth2/revoke",
        "userinfo_endpoint": f"{base}/services/oauth2/userinfo", "jwks_uri": f"{base}/id/keys",
        "scopes_supported": sorted(KNOWN_SCOPES), "response_types_supported": ["code"],
        "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
        "display_values_supported": ["page", "popup", "touch"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "code_challenge_methods_supported": ["S256", "plain"],
    })

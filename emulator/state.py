"""Everything one running emulator knows: config, orgs, store, OAuth grants, sessions, cursors, limits."""
from __future__ import annotations

import base64
import re
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from .clock import Clock
from .faults import Faults
from .ids import make_id
from .orgs import Org, User, default_orgs
from .store import Store

DEFAULT_CALLBACKS = ["http://127.0.0.1:*/*", "http://localhost:*/*"]
DEFAULT_SCOPES = ["api", "id", "refresh_token"]
KNOWN_SCOPES = {"api", "id", "refresh_token", "offline_access", "full", "web", "openid", "profile", "email",
                "address", "phone", "chatter_api", "custom_permissions", "visualforce", "lightning", "content"}
CODE_LIFETIME = 15 * 60
# Issued refresh and access tokens live in the store's SQLite file as well, so an emulator restarted
# on the same state dir with --keep-data still honours them (a fresh store forgets them with the data).
TOKENS_SQL = """
CREATE TABLE IF NOT EXISTS oauth_token (token TEXT PRIMARY KEY, kind TEXT NOT NULL, username TEXT NOT NULL,
  scope TEXT NOT NULL, issued REAL, grant_token TEXT, revoked INTEGER NOT NULL DEFAULT 0);
"""
CURSOR_LIFETIME = 2 * 24 * 3600
MAX_CURSORS = 500


@dataclass
class Config:
    client_id: str = ""
    client_secret: str = ""
    callback_urls: list[str] = field(default_factory=lambda: list(DEFAULT_CALLBACKS))
    any_callback: bool = False
    auto_approve: bool = False
    default_user: str = "admin@acme.example"
    password: str = "emulator-pass-1"
    session_lifetime: int = 2 * 3600        # seconds
    api_limit: int = 15000
    admin_key: str = ""
    app_name: str = "Participant Import (emulated connected app)"

    def __post_init__(self):
        self.client_id = self.client_id or "3MVG9" + secrets.token_urlsafe(60).replace("-", "A").replace("_", "B")[:80]
        self.client_secret = self.client_secret or secrets.token_hex(32).upper()
        self.admin_key = self.admin_key or secrets.token_urlsafe(24)


@dataclass
class Grant:
    """A refresh token: the user's approval of the app."""
    token: str
    user: User
    org: Org
    scope: list[str]
    revoked: bool = False


@dataclass
class Session:
    """An access token (Salesforce's session id)."""
    token: str
    user: User
    org: Org
    scope: list[str]
    issued: float               # emulator-clock epoch seconds
    grant: Grant | None = None
    revoked: bool = False


@dataclass
class Cursor:
    locator: str
    org_key: str
    user: User
    result: object
    ids: list
    created: float
    query_all: bool


class EmulatorState:
    def __init__(self, config: Config, db_path: str, *, orgs: list[Org] | None = None, fresh: bool = True):
        self.config = config
        self.clock = Clock()
        self.orgs = {o.key: o for o in (orgs or default_orgs(config.password))}
        self.users = {u.username.lower(): u for o in self.orgs.values() for u in o.users}
        self.store = Store(db_path, list(self.orgs.values()), self.clock, fresh=fresh)
        self.faults = Faults()
        self.url = ""                                  # set once the server is bound
        self.lock = threading.RLock()
        self.stopping = threading.Event()              # set by the server's stop(): waits end early
        self.codes: dict[str, dict] = {}
        self.pending: dict[str, dict] = {}
        self.browser_sessions: dict[str, User] = {}
        self.sessions: dict[str, Session] = {}
        self.grants: dict[str, Grant] = {}
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._cursor_n = 0
        self.api_usage: dict[str, int] = {k: 0 for k in self.orgs}
        self._usage_day = self.clock.now().date()
        self._load_tokens()

    # -- persisted tokens ----------------------------------------------------------------------
    def _load_tokens(self):
        """Read back the grants and sessions issued before a restart (unknown users are skipped,
        sessions already past their lifetime are dropped)."""
        db = self.store.db
        with self.store.write_lock:
            db.executescript(TOKENS_SQL)
            now = self.now_epoch()
            db.execute("DELETE FROM oauth_token WHERE kind = 'session' AND issued <= ?",
                       (now - self.config.session_lifetime,))
        rows = db.execute("SELECT token, kind, username, scope, issued, grant_token, revoked FROM oauth_token "
                          "ORDER BY kind").fetchall()        # 'grant' before 'session'
        for token, kind, username, scope, issued, grant_token, revoked in rows:
            user = self.users.get(username.lower())
            if user is None:
                continue
            org = self.orgs[user.org_key]
            scopes = scope.split()
            if kind == "grant":
                self.grants[token] = Grant(token, user, org, scopes, bool(revoked))
            else:
                grant = self.grants.get(grant_token) if grant_token else None
                if grant_token and grant is None:
                    continue
                self.sessions[token] = Session(token, user, org, scopes, issued, grant, bool(revoked))

    def _save_token(self, kind: str, token: str, user: User, scope: list[str], issued: float | None = None,
                    grant: Grant | None = None):
        with self.store.write_lock:
            self.store.db.execute(
                "INSERT OR REPLACE INTO oauth_token (token, kind, username, scope, issued, grant_token, revoked) "
                "VALUES (?, ?, ?, ?, ?, ?, 0)",
                (token, kind, user.username, " ".join(scope), issued, grant.token if grant else None))

    def _save_revoked(self, tokens: list[str]):
        if not tokens:
            return
        with self.store.write_lock:
            self.store.db.executemany("UPDATE oauth_token SET revoked = 1 WHERE token = ?", [(t,) for t in tokens])

    # -- callbacks -----------------------------------------------------------------------------
    def callback_allowed(self, uri: str) -> bool:
        """Exact match against a registered callback; in a pattern ``:*`` is any port and any other
        ``*`` any run of path characters."""
        if not uri:
            return False
        if self.config.any_callback:
            return uri.startswith(("http://", "https://"))
        return any(callback_pattern(p).fullmatch(uri) for p in self.config.callback_urls)

    # -- OAuth ---------------------------------------------------------------------------------
    def now_epoch(self) -> float:
        return self.clock.now().timestamp()

    def authenticate(self, username: str, password: str) -> User | None:
        u = self.users.get((username or "").strip().lower())
        if u and u.active and hmac.compare_digest(u.password, password or ""):
            return u
        return None

    def issue_code(self, user: User, params: dict) -> str:
        code = "aPrx" + base64.b64encode(secrets.token_bytes(64)).decode()
        with self.lock:
            self.codes[code] = {"user": user, "client_id": params["client_id"],
                                "redirect_uri": params["redirect_uri"], "scope": params["scope"],
                                "challenge": params.get("code_challenge"),
                                "method": params.get("code_challenge_method") or "plain",
                                "expires": time.time() + CODE_LIFETIME, "used": False}
        return code

    def identity_url(self, user: User) -> str:
        org = self.orgs[user.org_key]
        return f"{self.url}/id/{org.id18}/{user.id}"

    def new_session(self, user: User, scope: list[str], grant: Grant | None) -> Session:
        org = self.orgs[user.org_key]
        token = f"{org.id15}!" + secrets.token_urlsafe(72).replace("-", ".").replace("_", "x")
        s = Session(token, user, org, scope, self.now_epoch(), grant)
        with self.lock:
            self.sessions[token] = s
        self._save_token("session", token, user, scope, s.issued, grant)
        return s

    def new_grant(self, user: User, scope: list[str]) -> Grant:
        g = Grant("5Aep861" + secrets.token_urlsafe(64).replace("-", ".").replace("_", "9"), user,
                  self.orgs[user.org_key], scope)
        with self.lock:
            self.grants[g.token] = g
        self._save_token("grant", g.token, user, scope)
        return g

    def token_response(self, s: Session, grant: Grant | None) -> dict:
        issued = str(int(time.time() * 1000))
        ident = self.identity_url(s.user)
        sig = base64.b64encode(hmac.new(self.config.client_secret.encode(), (ident + issued).encode(),
                                        hashlib.sha256).digest()).decode()
        body = {"access_token": s.token}
        if grant is not None:
            body["refresh_token"] = grant.token
        body.update({"signature": sig, "scope": " ".join(s.scope), "instance_url": self.url, "id": ident,
                     "token_type": "Bearer", "issued_at": issued})
        return body

    def session_for(self, token: str) -> Session | None:
        s = self.sessions.get(token)
        if s is None or s.revoked or (s.grant is not None and s.grant.revoked):
            return None
        if self.now_epoch() - s.issued >= self.config.session_lifetime:
            return None
        return s

    def expire_sessions(self, org_key: str | None = None) -> int:
        expired = []
        with self.lock:
            for s in self.sessions.values():
                if not s.revoked and (org_key is None or s.org.key == org_key):
                    s.revoked = True
                    expired.append(s.token)
        self._save_revoked(expired)
        return len(expired)

    def revoke(self, token: str) -> bool:
        revoked = []
        with self.lock:
            if token in self.grants:
                g = self.grants[token]
                g.revoked = True
                revoked.append(token)
                for s in self.sessions.values():
                    if s.grant is g:
                        s.revoked = True
                        revoked.append(s.token)
            elif token in self.sessions:
                self.sessions[token].revoked = True
                revoked.append(token)
        self._save_revoked(revoked)
        return bool(revoked)

    # -- API usage -----------------------------------------------------------------------------
    def _roll_day(self):
        today = self.clock.now().date()
        if today != self._usage_day:
            self._usage_day = today
            self.api_usage = {k: 0 for k in self.orgs}

    def count_call(self, org_key: str) -> tuple[bool, int]:
        """Count one API call; False when the daily limit is already used up (the call is refused)."""
        with self.lock:
            self._roll_day()
            used = self.api_usage[org_key]
            if used >= self.config.api_limit:
                return False, used
            self.api_usage[org_key] = used + 1
            return True, used + 1

    def reset_limits(self, org_key: str | None = None, used: int = 0):
        with self.lock:
            for k in self.orgs:
                if org_key is None or k == org_key:
                    self.api_usage[k] = used

    # -- query cursors -------------------------------------------------------------------------
    def new_cursor(self, org_key: str, user: User, result, ids, query_all: bool) -> Cursor:
        with self.lock:
            self._cursor_n += 1
            locator = make_id("0r8", self.orgs[org_key].pod, self._cursor_n)
            c = Cursor(locator, org_key, user, result, ids, self.now_epoch(), query_all)
            self.cursors[locator] = c
            while len(self.cursors) > MAX_CURSORS:
                self.cursors.popitem(last=False)
        return c

    def cursor(self, locator: str, org_key: str) -> Cursor | None:
        c = self.cursors.get(locator)
        if c is None or c.org_key != org_key or self.now_epoch() - c.created > CURSOR_LIFETIME:
            return None
        return c

    def public_config(self) -> dict:
        """What connected-app.json holds."""
        c = self.config
        return {
            "client_id": c.client_id, "client_secret": c.client_secret,
            "callback_urls": c.callback_urls, "any_callback": c.any_callback,
            "login_url": self.url, "instance_url": self.url,
            "authorize_url": f"{self.url}/services/oauth2/authorize",
            "token_url": f"{self.url}/services/oauth2/token",
            "revoke_url": f"{self.url}/services/oauth2/revoke",
            "userinfo_url": f"{self.url}/services/oauth2/userinfo",
            "default_scopes": " ".join(DEFAULT_SCOPES),
            "auto_approve": c.auto_approve, "default_user": c.default_user,
            "session_lifetime_seconds": c.session_lifetime, "api_limit": c.api_limit,
            "admin_key": c.admin_key, "admin_url": f"{self.url}/__emulator",
            "users": [u.public() | {"org": u.org_key} for o in self.orgs.values() for u in o.users],
            "orgs": [o.public() for o in self.orgs.values()],
        }


def session_lifetime(text: str) -> int:
    """'7200', '90s', '15m', '2h' -> seconds."""
    t = str(text).strip().lower()
    mult = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(t[-1:], None)
    return int(float(t[:-1]) * mult) if mult else int(float(t))


def callback_pattern(pattern: str) -> "re.Pattern":
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith(":*", i):
            out.append(r":\d{1,5}")
            i += 2
        elif pattern[i] == "*":
            out.append(r"[^?#]*")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))

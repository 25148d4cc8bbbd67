"""Run the emulator in a thread on a free port, for tests.

    with EmulatorServer() as sf_org:
        sf_org.url, sf_org.ca_file, sf_org.client_id, sf_org.client_secret, sf_org.users
        token = sf_org.token_for("admin@acme.example")      # skip the browser flow
        cid = sf_org.create("Contact", {"LastName": "Doe", "Email": "a@example.org"})
        sf_org.touch(cid)                                    # system update: SystemModstamp only
        sf_org.admin.add_fault(type="error", status=503, nth=1)

Clients must trust ``ca_file``: this machine exports REQUESTS_CA_BUNDLE, which overrides
``session.verify`` unless ``session.trust_env = False`` (see :meth:`EmulatorServer.http_session`).
"""
from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from .state import DEFAULT_CALLBACKS, Config, EmulatorState


class Admin:
    """Fault and time control for one running emulator (in-process; no HTTP needed)."""

    def __init__(self, state: EmulatorState):
        self._state = state

    def add_fault(self, spec: dict | None = None, **kw) -> dict:
        return self._state.faults.add({**(spec or {}), **kw})

    def clear_faults(self, org: str | None = None):
        self._state.faults.clear(org)

    def faults(self) -> list[dict]:
        return self._state.faults.list()

    def expire_sessions(self, org: str | None = None) -> int:
        return self._state.expire_sessions(org)

    def reset_limits(self, org: str | None = None, used: int = 0):
        self._state.reset_limits(org, used)

    def api_usage(self, org: str = "production") -> int:
        return self._state.api_usage[org]

    def advance_clock(self, seconds: float):
        self._state.clock.advance(seconds)

    def set_clock(self, when: datetime | None, frozen: bool = False):
        self._state.clock.set(when, frozen)

    def now(self) -> datetime:
        return self._state.clock.now()

    def set_api_limit(self, limit: int):
        self._state.config.api_limit = limit

    def set_session_lifetime(self, seconds: int):
        self._state.config.session_lifetime = seconds


class EmulatorServer:
    def __init__(self, *, host: str = "127.0.0.1", state_dir: str | Path | None = None,
                 auto_approve: bool = False, callback_urls: list[str] | None = None, any_callback: bool = False,
                 session_lifetime: int = 7200, api_limit: int = 15000, password: str = "emulator-pass-1",
                 client_id: str = "", client_secret: str = "", data: list[str | Path] = (), generate: int = 0,
                 seed: int = 1, org: str = "production", keep_data: bool = False):
        """``keep_data``: reopen the store already in ``state_dir`` (records and issued tokens kept,
        client id/secret and admin key taken from its connected-app.json unless given), like
        ``serve --keep-data``."""
        self._own_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="sf-emulator-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        prev = {}
        if keep_data:
            import json
            try:
                prev = json.loads((self.state_dir / "connected-app.json").read_text())
            except (OSError, ValueError):
                prev = {}
        self.config = Config(client_id=client_id or prev.get("client_id", ""),
                             client_secret=client_secret or prev.get("client_secret", ""),
                             callback_urls=list(callback_urls or DEFAULT_CALLBACKS), any_callback=any_callback,
                             auto_approve=auto_approve, password=password, session_lifetime=session_lifetime,
                             api_limit=api_limit, admin_key=prev.get("admin_key", ""))
        self.state = EmulatorState(self.config, str(self.state_dir / "store.sqlite"), fresh=not keep_data)
        self.admin = Admin(self.state)
        self._server = None
        if data:
            self.load(*data, org=org)
        if generate:
            self.generate(generate, seed=seed, org=org)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "EmulatorServer":
        import json
        from .server import HttpsServer, load_or_create_ca
        ca, self.ca_file = load_or_create_ca(self.state_dir)
        self.ca_file = str(self.ca_file)
        self._server = HttpsServer(self.state, self.host, 0, ca)
        self._server.start()
        (self.state_dir / "connected-app.json").write_text(json.dumps(self.state.public_config(), indent=2))
        return self

    def stop(self):
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what clients need ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.state.url

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        return self.config.client_secret

    @property
    def admin_key(self) -> str:
        return self.config.admin_key

    @property
    def users(self) -> dict[str, dict]:
        """username -> {"username", "password", "user_id", "name", "org", "org_id", "hidden_fields"}."""
        return {u.username: {**u.public(), "org": u.org_key, "org_id": self.state.orgs[u.org_key].id18}
                for o in self.state.orgs.values() for u in o.users}

    @property
    def orgs(self) -> dict[str, dict]:
        return {k: o.public() for k, o in self.state.orgs.items()}

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/services/oauth2/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.url}/services/oauth2/token"

    def http_session(self):
        """A requests.Session that trusts the emulator's CA despite REQUESTS_CA_BUNDLE."""
        import requests
        s = requests.Session()
        s.trust_env = False
        s.verify = self.ca_file
        return s

    def token_for(self, username: str = "admin@acme.example", scope: str = "api refresh_token id") -> dict:
        """A token response as the token endpoint would send it, without the browser flow."""
        user = self.state.users[username.lower()]
        scopes = scope.split()
        grant = self.state.new_grant(user, scopes) if {"refresh_token", "offline_access"} & set(scopes) else None
        return self.state.token_response(self.state.new_session(user, scopes, grant), grant)

    def salesforce(self, username: str = "admin@acme.example", version: str = "62.0", token: dict | None = None):
        """A simple_salesforce.Salesforce connected as ``username`` (tests only)."""
        from simple_salesforce import Salesforce
        token = token or self.token_for(username)
        return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                          version=version, session=self.http_session())

    # -- changing the org directly -------------------------------------------------------------
    def create(self, obj: str, fields: dict, org: str = "production", validate: bool = False) -> str:
        return self.state.store.insert(org, obj, fields, validate=validate)

    def update(self, obj: str, record_id: str, fields: dict, org: str = "production", validate: bool = False) -> dict:
        return self.state.store.update(org, obj, record_id, fields, validate=validate)

    def delete(self, obj: str, record_id: str, org: str = "production"):
        self.state.store.delete(org, obj, record_id)

    def touch(self, record_id: str, org: str = "production") -> str:
        """System update: bump SystemModstamp, leave LastModifiedDate. Returns the new SystemModstamp."""
        return self.state.store.system_touch(org, record_id)["SystemModstamp"]

    def convert_lead(self, lead_id: str, org: str = "production", contact_id: str | None = None,
                     account_id: str | None = None) -> dict:
        return self.state.store.convert_lead(org, lead_id, contact_id=contact_id, account_id=account_id)

    def get(self, record_id: str, org: str = "production", include_deleted: bool = True) -> dict | None:
        return self.state.store.get(org, record_id, include_deleted=include_deleted)

    def count(self, obj: str, org: str = "production", include_deleted: bool = False) -> int:
        return self.state.store.count(org, obj, include_deleted)

    def load(self, *paths, org: str = "production") -> dict:
        from .loader import load_paths
        return load_paths(self.state.store, org, [str(p) for p in paths])

    def generate(self, n: int, seed: int = 1, org: str = "production") -> dict:
        from .generator import generate
        return generate(self.state.store, org, n, seed=seed)

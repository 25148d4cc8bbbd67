"""The Flask app and the HTTPS server around it (certificate from the emulator's own CA)."""
from __future__ import annotations

import json
import os
import ssl
import threading
from pathlib import Path

import trustme
from flask import Flask, Response
from werkzeug.serving import WSGIRequestHandler, make_server

from . import admin, oauth, rest
from .state import EmulatorState

_TRAILING_SLASH_ROOTS = ("/services/data/v", "/services/oauth2/", "/id/")


class _StripTrailingSlash:
    """Salesforce accepts a trailing slash on every REST resource; simple-salesforce relies on it."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if len(path) > 1 and path.endswith("/") and path.startswith(_TRAILING_SLASH_ROOTS):
            environ["PATH_INFO"] = path.rstrip("/")
        return self.app(environ, start_response)


def create_app(state: EmulatorState) -> Flask:
    app = Flask("emulator")
    app.config["EMULATOR"] = state
    app.url_map.strict_slashes = False
    app.register_blueprint(oauth.bp)
    app.register_blueprint(rest.bp)
    app.register_blueprint(admin.bp)

    @app.get("/")
    def home():
        return Response(f"<!doctype html><title>Salesforce emulator</title><h1>Salesforce emulator</h1>"
                        f"<p>Orgs: {', '.join(o.name for o in state.orgs.values())}</p>",
                        content_type="text/html;charset=UTF-8")

    @app.errorhandler(404)
    def not_found(e):
        return Response(json.dumps([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
                        404, content_type="application/json;charset=UTF-8")

    @app.errorhandler(405)
    def not_allowed(e):
        return Response(json.dumps([{"errorCode": "METHOD_NOT_ALLOWED", "message": "HTTP Method not allowed"}]),
                        405, content_type="application/json;charset=UTF-8")

    app.wsgi_app = _StripTrailingSlash(app.wsgi_app)
    return app


def load_or_create_ca(state_dir: Path) -> tuple[trustme.CA, Path]:
    """One CA per state dir, reused across restarts so a browser that trusted it keeps trusting it."""
    ca_file = state_dir / "ca.pem"
    key_file = state_dir / "ca.key"
    if ca_file.exists() and key_file.exists():
        try:
            return trustme.CA.from_pem(ca_file.read_bytes(), key_file.read_bytes()), ca_file
        except ValueError:  # unreadable: make a fresh one
            pass
    ca = trustme.CA(organization_name="Salesforce emulator (local test CA)")
    ca.cert_pem.write_to_path(str(ca_file))
    ca.private_key_pem.write_to_path(str(key_file))
    os.chmod(key_file, 0o600)
    return ca, ca_file


def ssl_context(ca: trustme.CA, hosts: list[str]) -> ssl.SSLContext:
    cert = ca.issue_cert(*hosts)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


class _InFlight:
    """Counts the requests being answered, so ``stop()`` can let them finish before the store
    closes; once stopping, requests still arriving (a client's kept-alive connection) get a 503
    without reaching the app."""

    def __init__(self, app, stopping: threading.Event):
        self.app = app
        self.stopping = stopping
        self.count = 0
        self._cond = threading.Condition()

    def __call__(self, environ, start_response):
        with self._cond:
            if self.stopping.is_set():
                start_response("503 SERVICE UNAVAILABLE", [("Content-Type", "application/json;charset=UTF-8"),
                                                          ("Connection", "close")])
                return [json.dumps([{"errorCode": "SERVER_UNAVAILABLE",
                                     "message": "Server Unavailable"}]).encode()]
            self.count += 1
        try:
            result = self.app(environ, start_response)
            try:  # the body is built while counted (the app's responses are small and eager)
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            with self._cond:
                self.count -= 1
                self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count == 0, timeout)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class HttpsServer:
    """werkzeug's threaded server with TLS, runnable in the foreground or in a daemon thread."""

    def __init__(self, state: EmulatorState, host: str, port: int, ca: trustme.CA, log_requests: bool = False):
        hosts = sorted({host, "127.0.0.1", "localhost"})
        self.app = create_app(state)
        self.in_flight = _InFlight(self.app, state.stopping)
        self.httpd = make_server(host, port, self.in_flight, threaded=True, ssl_context=ssl_context(ca, hosts),
                                 request_handler=None if log_requests else _QuietHandler)
        self.port = self.httpd.server_port
        self.host = host
        state.url = f"https://{host}:{self.port}"
        self.state = state
        self._thread: threading.Thread | None = None

    def serve_forever(self):
        self.httpd.serve_forever()

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="sf-emulator", daemon=True)
        self._thread.start()

    def stop(self):
        """Stop accepting, cut fault delays short, let the requests being answered finish, then
        close the store: no request thread outlives the server to find its store gone."""
        self.state.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self.in_flight.wait_idle(timeout=30)
        self.state.store.close()

"""Security headers on every page the app serves (every GET route as the admin, their htmx
fragments, the anonymous pages, errors, static files) and the cookie flags: HttpOnly and
SameSite=Lax always, Secure under the production config."""
from __future__ import annotations

import pytest
from flask import url_for

from core import create_app
from tests.support.web import login, make_world, sign_in, url_args

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def check_headers(response, where: str, hsts: bool = False) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    assert csp.startswith("default-src 'self'"), f"{where}: CSP {csp!r}"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, f"{where}: CSP {csp!r}"
    assert "frame-ancestors 'none'" in csp or response.headers.get("X-Frame-Options") == "DENY", where
    expected = dict(HEADERS)
    if " /invite/" in where or " /unsubscribe/" in where:  # the signed link is in the URL: it must not travel in a Referer
        expected["Referrer-Policy"] = "no-referrer"
    for name, value in expected.items():
        assert response.headers.get(name) == value, f"{where}: {name} {response.headers.get(name)!r}"
    assert ("Strict-Transport-Security" in response.headers) is hsts, where


def test_every_page_and_fragment_carries_the_security_headers(app):
    world = make_world("Alpha")
    client = app.test_client()
    sign_in(client, world["users"]["admin"], world["workspace_id"])
    walked = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or rule.endpoint == "auth.logout":
            continue
        with app.test_request_context():
            url = url_for(rule.endpoint, **url_args(rule, world["ids"]))
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            response.get_data()  # run streamed bodies (the CSV export) to their end
            check_headers(response, f"GET {url} {headers}")
            walked += 1
    anonymous = app.test_client()
    for url in ("/login", "/", "/no-such-page", "/static/css/app.css", "/invite/not-a-signed-token"):
        check_headers(anonymous.get(url), f"anonymous GET {url}")
        walked += 1
    # A refused POST (no CSRF token) and a 403 are pages too.
    check_headers(client.post("/communities/new", data={"name": "x"}), "POST without a token")
    researcher = app.test_client()
    sign_in(researcher, world["users"]["researcher"], world["workspace_id"])
    forbidden = researcher.get("/admin/members")
    assert forbidden.status_code == 403
    check_headers(forbidden, "403")
    assert walked > 80


@pytest.fixture
def production(app, database_url):
    """The production config (TERAPAGE_ENV=production) on the test database."""
    return create_app("production", {"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "prod-secret",
                                     "TOKEN_ENCRYPTION_KEY": "test-token-encryption-key",
                                     "REDIS_URL": app.config.get("REDIS_URL")})


def _cookies(response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def test_production_cookies_are_secure_httponly_and_lax(app, production):
    world = make_world("Alpha")
    assert production.config["ENV_NAME"] == "production"
    client = production.test_client()
    response = login(client, world["users"]["admin"].email)
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    cookies = _cookies(response)
    session = cookies["session"]
    flags = {part.strip().lower() for part in session.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax"} <= flags, session
    assert "remember_token" not in cookies  # sign-in never sets a remember cookie
    check_headers(client.get("/login"), "production /login", hsts=True)
    cfg = production.config
    assert (cfg["SESSION_COOKIE_SECURE"], cfg["SESSION_COOKIE_HTTPONLY"], cfg["SESSION_COOKIE_SAMESITE"]) == \
        (True, True, "Lax")
    assert (cfg["REMEMBER_COOKIE_SECURE"], cfg["REMEMBER_COOKIE_HTTPONLY"], cfg["REMEMBER_COOKIE_SAMESITE"]) == \
        (True, True, "Lax")


def test_test_config_cookies_are_httponly_and_lax_without_secure(app):
    world = make_world("Alpha")
    response = login(app.test_client(), world["users"]["admin"].email)
    session = _cookies(response)["session"]
    flags = {part.strip().lower() for part in session.split(";")[1:]}
    assert {"httponly", "samesite=lax"} <= flags and "secure" not in flags, session

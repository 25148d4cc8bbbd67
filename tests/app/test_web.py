"""Page or fragment from one URL, security headers, error pages."""
from __future__ import annotations

from core import create_app
from models import Participant
from core.extensions import db
from tests.support.web import make_world, sign_in


def _signed_in(app):
    world = make_world("Alpha")
    client = app.test_client()
    sign_in(client, world["users"]["admin"], world["workspace_id"])
    return client, world


def test_htmx_gets_the_fragment_and_everyone_else_the_page(app):
    client, _ = _signed_in(app)
    page = client.get("/participants/")
    fragment = client.get("/participants/", headers={"HX-Request": "true"})
    boosted = client.get("/participants/", headers={"HX-Request": "true", "HX-Boosted": "true"})
    restore = client.get("/participants/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    for response in (page, fragment, boosted, restore):
        assert response.status_code == 200
        assert "HX-Request" in response.headers.get("Vary", "")
    assert "<html" in page.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and body.strip().startswith('<div id="pool-results">')
    assert "<html" in boosted.get_data(as_text=True)
    assert "<html" in restore.get_data(as_text=True)


def test_security_headers_on_every_response(app):
    client, _ = _signed_in(app)
    for url in ("/", "/login", "/static/css/app.css", "/no-such-page"):
        response = client.get(url)
        headers = response.headers
        assert headers["Content-Security-Policy"].startswith("default-src 'self'"), url
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in headers  # test config: cookies not secure
    assert client.get("/").headers["Cache-Control"] == "no-store"


def test_hsts_when_cookies_are_secure(database_url):
    secure = create_app("test", {"SQLALCHEMY_DATABASE_URI": database_url, "SESSION_COOKIE_SECURE": True})
    response = secure.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_pages_have_no_inline_script_or_style(app):
    client, world = _signed_in(app)
    for url in ("/", "/participants/", f"/participants/{world['ids']['participant']}", "/studies",
                f"/studies/{world['ids']['study']}/add-participants", "/suppression", "/admin/members",
                "/admin/configuration/integrations/"):
        html = client.get(url).get_data(as_text=True)
        assert "<style" not in html and " style=" not in html, url
        assert "<script>" not in html and " on" + "click=" not in html, url
        for tag in html.split("<script")[1:]:
            assert "src=" in tag.split(">")[0], f"inline script on {url}"


def test_body_carries_the_csrf_header_for_htmx(app):
    client, _ = _signed_in(app)
    html = client.get("/").get_data(as_text=True)
    assert "hx-headers='{\"X-CSRFToken\": \"" in html
    assert "/static/vendor/htmx-2.0.11.min.js" in html


def test_htmx_config_forbids_eval_and_settles_at_once(app):
    """No eval or swapped-in scripts; controls swapped in are wired up at once (a 20 ms settle
    delay left a visible select dead: a change made in that gap sent nothing)."""
    import json
    import re
    client, _ = _signed_in(app)
    html = client.get("/").get_data(as_text=True)
    config = json.loads(re.search(r'<meta name="htmx-config" content=\'([^\']*)\'>', html).group(1))
    assert config == {"includeIndicatorStyles": False, "allowEval": False, "allowScriptTags": False,
                      "defaultSettleDelay": 0}


def test_error_pages(app):
    client, world = _signed_in(app)
    not_found = client.get("/studies/999999")
    assert not_found.status_code == 404 and "Page not found" in not_found.get_data(as_text=True)
    researcher = app.test_client()
    sign_in(researcher, world["users"]["researcher"], world["workspace_id"])
    forbidden = researcher.get("/admin/configuration/integrations/salesforce/connect")
    assert forbidden.status_code == 403 and "do not have permission" in forbidden.get_data(as_text=True)


def test_navigation_names_the_guides_places(app):
    client, _ = _signed_in(app)
    admin = client.get("/admin").get_data(as_text=True)
    assert "Workspace Administration" in admin and "Configuration" in admin
    config = client.get("/admin/configuration").get_data(as_text=True)
    assert "Integrations" in config
    catalogue = client.get("/admin/configuration/integrations/").get_data(as_text=True)
    assert "Salesforce" in catalogue and ">Connect<" in catalogue


def test_dashboard_counts_and_recent_runs(app):
    client, world = _signed_in(app)
    db.session.add(Participant(workspace_id=world["workspace_id"], first_name="Staged", status="staged"))
    db.session.commit()
    html = client.get("/").get_data(as_text=True)
    assert 'id="count-participants">1<' in html
    assert "Alpha contacts" in html and "succeeded" in html

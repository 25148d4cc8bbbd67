"""Workspace Administration: integrations catalogue and Salesforce status, settings, members."""
from __future__ import annotations

from core.extensions import db
from models import AuditEvent, Membership, SalesforceConnection
from tests.support.web import csrf_token, make_world, sign_in


def _client(app, world, who):
    client = app.test_client()
    sign_in(client, world["users"][who], world["workspace_id"])
    return client


def test_catalogue_lists_salesforce_with_status_and_connect_for_managers(app):
    world = make_world("Alpha")
    for who, sees_connect in (("admin", True), ("researcher + manage_integrations", True), ("researcher", False),
                              ("researcher + manage_imports", False)):
        html = _client(app, world, who).get("/admin/configuration/integrations/").get_data(as_text=True)
        assert "Salesforce" in html and "Connected (1 org)" in html, who
        assert (">Connect</a>" in html) is sees_connect, who


def test_salesforce_page_lists_connections_with_status_read_only_for_researchers(app):
    world = make_world("Alpha")
    db.session.add(SalesforceConnection(workspace_id=world["workspace_id"], name="UAT sandbox", is_sandbox=True,
                                        login_url="https://test.salesforce.com", status="needs_reconnect",
                                        status_reason="refresh token revoked"))
    db.session.commit()
    html = _client(app, world, "researcher").get("/admin/configuration/integrations/salesforce").get_data(as_text=True)
    for text in ("Production", "00D000000000001EAA", "ops@alpha.example", "connected", "UAT sandbox",
                 ">Needs reconnect</span>", "refresh token revoked", "Needs reconnect"):
        assert text in html, text
    assert ">Connect</a>" not in html
    researcher = _client(app, world, "researcher")
    assert researcher.get("/admin/configuration/integrations/salesforce/connect").status_code == 403
    integrator = _client(app, world, "researcher + manage_integrations")
    page = integrator.get("/admin/configuration/integrations/salesforce/connect").get_data(as_text=True)
    assert "approve access for your own Salesforce org" in page


def test_settings_validate_region_and_time_zone(app):
    world = make_world("Alpha")
    admin = _client(app, world, "admin")
    token = csrf_token(admin)
    bad = admin.post("/admin/configuration/settings", data={"csrf_token": token, "name": "Alpha",
                                                            "default_phone_region": "XX", "timezone": "Mars/Olympus"})
    assert bad.status_code == 200 and bad.get_data(as_text=True).count('class="error"') >= 2
    good = admin.post("/admin/configuration/settings", data={"csrf_token": token, "name": "Alpha Research",
                                                             "default_phone_region": "US",
                                                             "timezone": "America/New_York"})
    assert good.status_code == 302
    db.session.expire_all()
    ws = world["workspace"]
    assert (ws.name, ws.default_phone_region, ws.timezone) == ("Alpha Research", "US", "America/New_York")
    assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "workspace.settings_changed"))


def test_admins_grant_permissions_and_keep_one_admin(app):
    world = make_world("Alpha")
    admin = _client(app, world, "admin")
    token = csrf_token(admin)
    researcher_membership = world["memberships"]["researcher"]
    r = admin.post(f"/admin/members/{researcher_membership.id}", data={
        "csrf_token": token, "role": "researcher", "manage_integrations": "y"})
    assert r.status_code == 302
    db.session.expire_all()
    assert researcher_membership.can_manage_integrations and not researcher_membership.can_manage_imports
    researcher = _client(app, world, "researcher")
    assert researcher.get("/admin/configuration/integrations/salesforce/connect").status_code == 200
    # The only admin cannot step down.
    admin_membership = world["memberships"]["admin"]
    r = admin.post(f"/admin/members/{admin_membership.id}", data={"csrf_token": token, "role": "researcher"})
    assert r.status_code == 200 and "at least one admin" in r.get_data(as_text=True)
    db.session.expire_all()
    assert admin_membership.role == "admin"


def test_admins_add_members_new_or_existing(app):
    world = make_world("Alpha")
    other = make_world("Beta")
    admin = _client(app, world, "admin")
    token = csrf_token(admin)
    r = admin.post("/admin/members", data={"csrf_token": token, "email": "new@alpha.example", "name": "New",
                                           "password": "first-password", "role": "researcher",
                                           "manage_imports": "y"})
    assert r.status_code == 302
    r = admin.post("/admin/members", data={"csrf_token": token, "email": other["users"]["admin"].email,
                                           "role": "researcher"})
    assert r.status_code == 302
    r = admin.post("/admin/members", data={"csrf_token": token, "email": "nobody@alpha.example",
                                           "role": "researcher"})
    assert r.status_code == 200 and "give a first password" in r.get_data(as_text=True)
    rows = db.session.scalars(db.select(Membership).where(Membership.workspace_id == world["workspace_id"])).all()
    assert len(rows) == 6
    html = admin.get("/admin/members").get_data(as_text=True)
    assert "new@alpha.example" in html and "member.added" in html


def test_outbox_shows_the_workspaces_messages_to_admins(app):
    world = make_world("Alpha")
    make_world("Beta")
    admin = _client(app, world, "admin")
    html = admin.get("/admin/outbox").get_data(as_text=True)
    assert "Invitation from Alpha" in html and "Invitation from Beta" not in html
    message = admin.get(f"/admin/outbox/{world['ids']['outbox_message']}").get_data(as_text=True)
    assert "pat@alpha.example" in message and "Hello" in message

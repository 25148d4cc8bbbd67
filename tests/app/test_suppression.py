"""The do-not-contact list: add one, CSV upload with bad rows, removal with confirmation, audit."""
from __future__ import annotations

import io

from core.extensions import db
from models import AuditEvent, SuppressionEntry
from services import suppression
from tests.support.web import csrf_token, make_world, sign_in


def _client(app, world, who="researcher"):
    client = app.test_client()
    sign_in(client, world["users"][who], world["workspace_id"])
    return client


def test_add_one_normalises_and_is_audited(app):
    world = make_world("Alpha")
    client = _client(app, world)
    token = csrf_token(client)
    r = client.post("/suppression", data={"csrf_token": token, "email": "  Someone@Example.ORG ", "reason": "asked"})
    assert r.status_code == 302
    r = client.post("/suppression", data={"csrf_token": token, "phone": "020 7946 0018"})  # GB default region
    assert r.status_code == 302
    r = client.post("/suppression", data={"csrf_token": token, "email": "someone@example.org"})
    assert r.status_code == 302  # already there: no second row
    entries = db.session.scalars(db.select(SuppressionEntry).where(
        SuppressionEntry.workspace_id == world["workspace_id"], SuppressionEntry.source == "manual")).all()
    keys = sorted((e.email_key or "", e.phone_key or "") for e in entries)
    assert ("", "+442079460018") in keys and ("someone@example.org", "") in keys
    assert ("no@alpha.example", "") in keys and len(entries) == 3
    page = client.get("/suppression").get_data(as_text=True)
    assert "someone@example.org" in page.lower() and "+442079460018" in page
    assert "suppression.added" in page and "asked" in page


def test_add_one_refuses_invalid_values(app):
    world = make_world("Alpha")
    client = _client(app, world)
    token = csrf_token(client)
    for data in ({"email": "not an email"}, {"phone": "12"}, {}):
        r = client.post("/suppression", data={"csrf_token": token, **data})
        assert r.status_code == 200 and 'class="error"' in r.get_data(as_text=True), data


def test_the_error_sits_on_the_field_it_is_about(app):
    world = make_world("Alpha")
    client = _client(app, world)
    token = csrf_token(client)
    html = client.post("/suppression", data={"csrf_token": token, "phone": "+44 7700 90"}).get_data(as_text=True)
    assert 'id="phone-error"' in html and 'id="email-error"' not in html
    html = client.post("/suppression", data={"csrf_token": token, "email": "nope@"}).get_data(as_text=True)
    assert 'id="email-error"' in html and 'id="phone-error"' not in html


def test_csv_upload_keeps_good_rows_and_reports_bad_ones_by_line(app):
    world = make_world("Alpha")
    client = _client(app, world)
    csv_text = ("Email,Phone,Reason\n"
                "good@example.org,,unsubscribed\n"          # line 2
                "bad-email,,\n"                             # line 3
                ",+44 20 7946 0999,called us\n"             # line 4
                ",12,\n"                                    # line 5
                "GOOD@example.org,,duplicate in file\n"     # line 6: already (same key)
                ",,just a reason\n"                         # line 7
                "\n"                                        # blank: ignored
                "no@alpha.example,,\n")                     # line 9: already on the list
    r = client.post("/suppression/upload", data={"csrf_token": csrf_token(client),
                                                 "file": (io.BytesIO(csv_text.encode()), "list.csv")},
                    content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "2 added, 2 already on the list, 3 rows with problems" in html
    assert "<td>3</td>" in html and "<td>5</td>" in html and "<td>7</td>" in html
    keys = set(db.session.scalars(db.select(SuppressionEntry.email_key).where(SuppressionEntry.source == "csv")))
    assert keys == {"good@example.org", None}
    phones = set(db.session.scalars(db.select(SuppressionEntry.phone_key).where(SuppressionEntry.source == "csv")))
    assert "+442079460999" in phones
    actions = [e.action for e in db.session.scalars(db.select(AuditEvent).where(
        AuditEvent.workspace_id == world["workspace_id"]))]
    assert actions.count("suppression.added") == 2 and actions.count("suppression.csv_uploaded") == 1


def test_csv_without_a_header_is_refused_whole(app):
    world = make_world("Alpha")
    with app.test_request_context():
        try:
            suppression.upload_csv(world["workspace"], b"a@b.example,reason\n")
        except suppression.SuppressionError as exc:
            assert "header" in str(exc)
        else:  # pragma: no cover
            raise AssertionError("a file without a header was accepted")


def test_removal_asks_for_confirmation_is_admin_only_and_audited(app):
    world = make_world("Alpha")
    entry_id = world["ids"]["suppression_entry"]
    researcher = _client(app, world)
    assert researcher.get(f"/suppression/{entry_id}/remove").status_code == 403
    admin = _client(app, world, "admin")
    confirm = admin.get(f"/suppression/{entry_id}/remove")
    assert confirm.status_code == 200 and "Remove no@alpha.example" in confirm.get_data(as_text=True)
    assert db.session.get(SuppressionEntry, entry_id) is not None  # GET changes nothing
    r = admin.post(f"/suppression/{entry_id}/remove", data={"csrf_token": csrf_token(admin)})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(SuppressionEntry, entry_id) is None
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "suppression.removed"))
    assert event.detail["email"] == "no@alpha.example" and event.actor_user_id == world["users"]["admin"].id
    assert "suppression.removed" in admin.get("/suppression").get_data(as_text=True)

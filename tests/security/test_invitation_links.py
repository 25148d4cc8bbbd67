"""The participant pages (invite blueprint: respond and unsubscribe, GET and POST) with tampered,
forged, crossed, expired or future-dated signatures: a plain 404 that shows nothing of any
workspace (names, emails, study), and changes nothing (invitation, memberships, suppression,
consent, audit)."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from core.extensions import db
from models import AuditEvent, Invitation, Participant, StudyParticipant, SuppressionEntry
from services import invitations
from tests.support.web import csrf_token, make_world


def _snapshot():
    db.session.expire_all()
    count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
    return (count(StudyParticipant), count(SuppressionEntry), count(AuditEvent),
            sorted(db.session.execute(select(Invitation.id, Invitation.status)).all()),
            sorted(db.session.execute(select(Participant.id, Participant.consent_status)).all()))


def _signed_at(monkeypatch, when: datetime, make):
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(when.timestamp()))
    try:
        return make()
    finally:
        monkeypatch.undo()


def _flip(token: str, index: int) -> str:
    char = token[index]
    return token[:index] + ("A" if char != "A" else "B") + token[index + 1:]


@pytest.fixture
def worlds(app):
    alpha, beta = make_world("Alpha"), make_world("Beta")
    return alpha, beta


def secrets_of(world) -> list[str]:
    ws = world["workspace"]
    person = db.session.get(Participant, world["ids"]["participant"])
    return [ws.name, person.email, person.last_name, person.company, f"{ws.name} study",
            *(u.email for u in world["users"].values())]


def bad_links(app, monkeypatch, alpha, beta) -> dict[str, str]:
    inv_b = db.session.get(Invitation, beta["ids"]["invitation"])
    inv_a = db.session.get(Invitation, alpha["ids"]["invitation"])
    person_b = db.session.get(Participant, beta["ids"]["participant"])
    respond_b = invitations.respond_token(inv_b)
    unsub_b = invitations.unsubscribe_token(person_b, inv_b)
    payload, _, rest = respond_b.partition(".")
    # Alpha's payload under Beta's signature, and Beta's id in a payload signed with another key.
    crossed = invitations.respond_token(inv_a).partition(".")[0] + "." + rest
    foreign_key = URLSafeTimedSerializer("not-our-secret", salt=invitations.RESPOND_SALT).dumps(
        {"i": inv_b.id, "b": "0" * 16, "n": "x"})
    raw = json.dumps({"i": inv_b.id, "b": "0" * 16, "n": "x"}).encode()
    unsigned = base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + rest
    now = datetime.now(timezone.utc)
    links = {
        "respond: signature flipped": f"/invite/{_flip(respond_b, len(respond_b) - 3)}",
        "respond: payload flipped": f"/invite/{_flip(respond_b, 2)}",
        "respond: truncated": f"/invite/{respond_b[:-5]}",
        "respond: crossed payload and signature": f"/invite/{crossed}",
        "respond: signed with another key": f"/invite/{foreign_key}",
        "respond: forged payload, old signature": f"/invite/{unsigned}",
        "respond: expired (31 days)": "/invite/" + _signed_at(
            monkeypatch, now - timedelta(days=31), lambda: invitations.respond_token(inv_b)),
        "respond: signed in the future": "/invite/" + _signed_at(
            monkeypatch, now + timedelta(days=2), lambda: invitations.respond_token(inv_b)),
        "respond: an unsubscribe token": f"/invite/{unsub_b}",
        "unsubscribe: signature flipped": f"/unsubscribe/{_flip(unsub_b, len(unsub_b) - 3)}",
        "unsubscribe: payload flipped": f"/unsubscribe/{_flip(unsub_b, 2)}",
        "unsubscribe: a respond token": f"/unsubscribe/{respond_b}",
        "unsubscribe: signed in the future": "/unsubscribe/" + _signed_at(
            monkeypatch, now + timedelta(days=2), lambda: invitations.unsubscribe_token(person_b, inv_b)),
        "unsubscribe: expired": "/unsubscribe/" + _signed_at(
            monkeypatch, now - timedelta(days=3650), lambda: invitations.unsubscribe_token(person_b, inv_b)),
        "garbage": "/invite/..",
    }
    assert len(set(links.values())) == len(links)
    return links


def test_bad_signatures_answer_404_leak_nothing_and_change_nothing(app, worlds, monkeypatch):
    alpha, beta = worlds
    client = app.test_client()
    # The real link works and shows Beta's study: the leak checks below look for the right words.
    good = client.get("/invite/" + invitations.respond_token(db.session.get(Invitation, beta["ids"]["invitation"])))
    assert good.status_code == 200 and "Beta study" in good.get_data(as_text=True)

    leaks = secrets_of(alpha) + secrets_of(beta)
    before = _snapshot()
    token = csrf_token(client)
    checked = 0
    for name, url in bad_links(app, monkeypatch, alpha, beta).items():
        for method in ("GET", "POST"):
            if method == "GET":
                response = client.get(url)
            else:
                response = client.post(url, data={"csrf_token": token, "answer": "accept", "confirm": "yes"})
            body = response.get_data(as_text=True)
            assert response.status_code == 404, f"{method} {url} ({name}): {response.status_code}"
            shown = [s for s in leaks if s and s in body]
            assert not shown, f"{method} {name} shows {shown}"
            assert response.headers.get("Referrer-Policy") == "no-referrer"
            checked += 1
    assert checked == 30
    assert _snapshot() == before


def test_a_signed_in_member_of_another_workspace_gets_the_same_404(app, worlds, monkeypatch):
    """Being signed in elsewhere changes nothing: the link alone decides."""
    from tests.support.web import sign_in
    alpha, beta = worlds
    client = app.test_client()
    sign_in(client, alpha["users"]["admin"], alpha["workspace_id"])
    links = bad_links(app, monkeypatch, alpha, beta)
    for name in ("respond: crossed payload and signature", "respond: expired (31 days)"):
        response = client.get(links[name])
        assert response.status_code == 404, name
        body = response.get_data(as_text=True)
        assert not [s for s in secrets_of(beta) if s in body]

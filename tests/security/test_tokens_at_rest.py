"""OAuth tokens never appear in clear: not in the database (every table, every text, blob and JSON
column, and on SQLite the raw file bytes), not in the logs (everything at DEBUG during a real
connect, a sync and a token refresh), not in any page of the app."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from flask import url_for
from sqlalchemy import make_url, select

from core.crypto import cipher
from core.extensions import db
from models import SalesforceConnection, SyncRun
from services import runs
from tests.app.wizard_support import connect, emulator, use_emulator, web_client
from tests.integration.sync_support import CONTACT_MAPPING, make_plan, rconn
from tests.support.web import make_world, url_args

pytestmark = [pytest.mark.redis]
__all__ = ["rconn"]


@pytest.fixture
def emu():
    with emulator() as server:
        yield server


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [s[:12] + "..." for s in secrets if s in text]


def test_tokens_are_encrypted_at_rest_and_never_logged_or_rendered(app, emu, rconn, monkeypatch, caplog,
                                                                    database_url):
    caplog.set_level(logging.DEBUG)
    use_emulator(app, emu, monkeypatch)
    world = make_world("Alpha")
    client = web_client(app, world["users"]["admin"], world["workspace"])
    for n in range(3):
        emu.create("Contact", {"LastName": f"Person{n}", "Email": f"p{n}@example.org"})

    # A real connect through the emulator's login and consent pages.
    done = connect(client, emu, name="Emulator org")
    assert done.status_code in (200, 302, 303), done.get_data(as_text=True)[:500]
    conn = db.session.execute(select(SalesforceConnection).where(
        SalesforceConnection.name == "Emulator org")).scalar_one()
    first_access = cipher().decrypt(conn.access_token_enc)
    refresh = cipher().decrypt(conn.refresh_token_enc)
    assert first_access and refresh and first_access != refresh

    # A sync whose session has expired: the token is refreshed once and stored again.
    plan = make_plan(world["workspace"], conn, mapping=CONTACT_MAPPING)
    emu.admin.expire_sessions()
    run = runs.run_inline(plan.id)
    assert (run.status, run.imported) == ("succeeded", 3)
    db.session.expire_all()
    conn = db.session.get(SalesforceConnection, conn.id)
    second_access = cipher().decrypt(conn.access_token_enc)
    assert second_access != first_access
    secrets = [first_access, second_access, refresh]
    # The stored forms are ciphertexts that do not contain the tokens either.
    for stored in (conn.access_token_enc, conn.refresh_token_enc):
        assert not _leaks(bytes(stored).decode("latin-1"), secrets)

    # Logs: every record of every logger, message and arguments.
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    assert not _leaks(logged + caplog.text, secrets)

    # Pages: every GET route of the app as the workspace's admin (the new connection's id).
    ids = {**world["ids"], "connection": conn.id, "plan": plan.id, "run": run.id}
    walked = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or rule.endpoint in ("static", "auth.logout"):
            continue
        with app.test_request_context():
            url = url_for(rule.endpoint, **url_args(rule, ids))
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            assert response.status_code < 500, f"GET {url}: {response.status_code}"
            body = response.get_data(as_text=True) + json.dumps(dict(response.headers))
            assert not _leaks(body, secrets), f"GET {url} shows a token"
            walked += 1
    assert walked > 40

    # The database: every column of every row of every table.
    db.session.commit()
    scanned = 0
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(select(table)).mappings():
            for column, value in row.items():
                if value is None:
                    continue
                if isinstance(value, (bytes, bytearray, memoryview)):
                    text = bytes(value).decode("latin-1")
                elif isinstance(value, (dict, list)):
                    text = json.dumps(value)
                else:
                    text = str(value)
                scanned += 1
                assert not _leaks(text, secrets), f"{table.name}.{column} holds a token"
    assert scanned > 100
    assert db.session.scalar(select(SyncRun.status).where(SyncRun.id == run.id)) == "succeeded"

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        db.session.remove()
        with db.engine.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(FULL)")
        path = Path(url.database)
        files = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists()]
        raw = b"".join(p.read_bytes() for p in files)
        assert len(raw) > 10_000
        for secret in secrets:
            assert secret.encode() not in raw, f"the SQLite file holds a token ({secret[:12]}...)"

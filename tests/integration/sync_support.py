"""Shared fixtures of the end-to-end sync tests: the emulator org, a connection row holding its
tokens, plans, real Redis (db 15, flushed per test) and RQ workers.

Import the fixtures into a test module with ``from tests.integration.sync_support import *``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from emulator.testing import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ADMIN = "admin@acme.example"
START = datetime(2024, 5, 1, tzinfo=timezone.utc)

CONTACT_MAPPING = {
    "fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"],
               "phone": ["Phone", "MobilePhone"], "company": ["Account.Name"], "external_id": ["Id"]},
    "country": ["MailingCountry"],
    "consent_rule": {"opt_out_flags": ["HasOptedOutOfEmail"]},
}
LEAD_MAPPING = {
    "fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"],
               "phone": ["Phone", "MobilePhone"], "company": ["Company"], "external_id": ["Id"]},
    "consent_rule": {"opt_out_flags": ["HasOptedOutOfEmail"]},
}


def stamp(seconds: float) -> str:
    """A SystemModstamp ``seconds`` after 2024-05-01T00:00:00Z."""
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@pytest.fixture
def rconn(app):
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"no Redis at {REDIS_URL} ({exc}); start one or set TEST_REDIS_URL", pytrace=False)
    connection.flushdb()
    old = app.config.get("REDIS_URL")
    app.config["REDIS_URL"] = REDIS_URL
    yield connection
    app.config["REDIS_URL"] = old
    connection.flushdb()
    connection.close()


def start_org(app, **kwargs) -> EmulatorServer:
    server = EmulatorServer(**kwargs).start()
    app.config.update(SALESFORCE_CLIENT_ID=server.client_id, SALESFORCE_CLIENT_SECRET=server.client_secret,
                      SALESFORCE_CA_FILE=server.ca_file, SALESFORCE_BACKOFF=(0.0,))
    return server


@pytest.fixture
def org(app):
    server = start_org(app)
    yield server
    server.stop()


def make_workspace(name="Research", region="US", tz="Europe/London"):
    from core.extensions import db
    from models import Workspace
    workspace = Workspace(name=name, default_phone_region=region, timezone=tz)
    db.session.add(workspace)
    db.session.commit()
    if region is None:  # the column's default would fill an explicit None in on insert
        workspace.default_phone_region = None
        db.session.commit()
    return workspace


def make_connection(server: EmulatorServer, workspace, username=ADMIN, name="Production"):
    from core.crypto import cipher
    from core.extensions import db
    from models import SalesforceConnection
    token = server.token_for(username)
    connection = SalesforceConnection(
        workspace_id=workspace.id, name=name, login_url=server.url, instance_url=token["instance_url"],
        org_id=server.users[username]["org_id"], status="connected",
        access_token_enc=cipher().encrypt(token["access_token"]),
        refresh_token_enc=cipher().encrypt(token.get("refresh_token")))
    db.session.add(connection)
    db.session.commit()
    return connection


def make_plan(workspace, connection, object_name="Contact", mapping=None, filters=None, **values):
    from core.extensions import db
    from models import ImportPlan
    values.setdefault("status", "active")
    values.setdefault("action", "pool")
    plan = ImportPlan(workspace_id=workspace.id, connection_id=connection.id, object_name=object_name,
                      mapping=mapping if mapping is not None else CONTACT_MAPPING, filters=filters or {},
                      **values)
    db.session.add(plan)
    db.session.commit()
    return plan


def drain(app, conn, queues=("sync",)) -> None:
    """Work the queues in this process until empty (RQ SimpleWorker, burst)."""
    from jobs.worker import make_worker
    make_worker(app, list(queues), connection=conn, simple=True).work(burst=True)


def fresh(model, id_):
    from core.extensions import db
    db.session.expire_all()
    return db.session.get(model, id_)


def participant_count(workspace_id: int) -> int:
    from core.extensions import db
    from models import Participant
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(Participant)
                              .where(Participant.workspace_id == workspace_id)).scalar_one()


def distinct_email_keys(workspace_id: int) -> int:
    from core.extensions import db
    from models import Participant
    return db.session.execute(select(func.count(func.distinct(Participant.email_key)))
                              .where(Participant.workspace_id == workspace_id)).scalar_one()


def participant_for(record_id: str):
    from core.extensions import db
    from models import Participant, ParticipantSource
    db.session.expire_all()
    return db.session.execute(select(Participant).join(ParticipantSource).where(
        ParticipantSource.record_id == record_id)).scalars().one_or_none()


def source_for(record_id: str):
    from core.extensions import db
    from models import ParticipantSource
    db.session.expire_all()
    return db.session.execute(select(ParticipantSource).where(
        ParticipantSource.record_id == record_id)).scalars().one_or_none()


def outcomes(run_id: int) -> list:
    from services.runs import tail
    rows, after = [], 0
    while True:
        page = tail(run_id, after, limit=5000)
        if not page:
            return rows
        rows += page
        after = page[-1].seq


def counts_add_up(run) -> bool:
    return run.fetched == (run.imported + run.updated + run.unchanged + run.skipped + run.failed + run.excluded)


def worker_env(app, database_url: str, **extra) -> dict:
    env = {**os.environ, "TERAPAGE_ENV": "test", "REDIS_URL": REDIS_URL, "TEST_REDIS_URL": REDIS_URL,
           "FLASK_APP": "wsgi", "PYTHONUNBUFFERED": "1", "TEST_DATABASE_URL": database_url,
           "SALESFORCE_CLIENT_ID": app.config["SALESFORCE_CLIENT_ID"],
           "SALESFORCE_CLIENT_SECRET": app.config["SALESFORCE_CLIENT_SECRET"],
           "SALESFORCE_CA_FILE": app.config["SALESFORCE_CA_FILE"]}
    env.update(extra)
    return env


def start_worker(app, database_url: str, *args: str, **env) -> subprocess.Popen:
    """A real ``flask worker`` on the sync queue, in its own process group."""
    return subprocess.Popen([sys.executable, "-m", "flask", "worker", "--queues", "sync", *args],
                            cwd=ROOT, env=worker_env(app, database_url, **env), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def put(server: EmulatorServer, obj: str, fields: dict, record_id: str | None = None) -> str:
    """Insert a record as a data load would (any Id, any SystemModstamp, no validation)."""
    return server.state.store.insert("production", obj, fields, record_id=record_id, validate=False)


def load_people(server: EmulatorServer, n: int, **extra) -> list[str]:
    """C13/C16/C17's generated contacts: Test PersonN, pNNNNN@example.org, Consent Granted,
    SystemModstamp 2024-05-01T00:00:00Z + (n - 1) seconds."""
    return [put(server, "Contact", {"FirstName": "Test", "LastName": f"Person{n_}",
                                    "Email": f"p{n_:05d}@example.org", "Consent_Status__c": "Granted",
                                    "SystemModstamp": stamp(n_ - 1), **extra})
            for n_ in range(1, n + 1)]


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (an RQ work horse sits in its own process group)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def stop_worker(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    """Stop a worker started by ``start_worker``: warm shutdown, then kill it and its horse."""
    import signal
    if proc is None or proc.poll() is not None:
        return
    horses = child_pids(proc.pid)
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    for pid in horses + child_pids(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

"""Runs tell the operations hooks (services.notifications) after they finish, through the emulator,
RQ and the database: a plan failing three runs in a row mails the workspace admins once and
counts three occurrences; a success closes the incident. A refresh refused in the middle of a run
opens one connection incident, mailed once."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core.crypto import cipher
from core.extensions import db
from models import Incident, ImportPlan, Membership, OutboxMessage, SyncRun, User
from services import runs
from services.sync_sink import DatabaseSink
from tests.integration.sync_support import (drain, fresh, load_people, make_connection, make_plan, make_workspace,
                                            org, rconn)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]


def _admin(workspace) -> User:
    user = User(email="boss@example.org", name="Boss", password_hash="x")
    db.session.add(user)
    db.session.flush()
    db.session.add(Membership(user_id=user.id, workspace_id=workspace.id, role="admin"))
    db.session.commit()
    return user


def _sync(app, rconn, plan) -> SyncRun:
    run = runs.request_run(plan)
    drain(app, rconn)
    return fresh(SyncRun, run.id)


def _mails(subject: str) -> list[OutboxMessage]:
    db.session.expire_all()
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.subject == subject)).all()


def test_three_failed_runs_mail_once_count_three_and_a_success_closes(app, rconn, org):
    load_people(org, 3)
    workspace = make_workspace()
    _admin(workspace)
    connection = make_connection(org, workspace)
    plan = make_plan(workspace, connection, name="Contacts")
    good = plan.mapping
    plan.mapping = {**good, "fields": {**good["fields"], "segment": ["Gone_Field__c"]}}
    db.session.commit()

    failed = [_sync(app, rconn, plan) for _ in range(3)]
    assert [r.status for r in failed] == ["failed"] * 3
    [incident] = db.session.scalars(select(Incident)).all()
    assert (incident.kind, incident.subject_key, incident.occurrences, incident.closed_at) == (
        "run_failed", f"plan:{plan.id}", 3, None)
    [mail] = _mails("Terapage: an import is failing")
    assert mail.to_addr == "boss@example.org" and "Gone_Field__c" in mail.body_text

    plan = fresh(ImportPlan, plan.id)
    plan.mapping = good
    db.session.commit()
    assert _sync(app, rconn, plan).status == "succeeded"
    incident = fresh(Incident, incident.id)
    assert incident.closed_at is not None and incident.occurrences == 3
    assert len(_mails("Terapage: an import is failing")) == 1


def test_refresh_refused_mid_run_opens_one_connection_incident_mailed_once(app, rconn, org, monkeypatch):
    app.config["SYNC_PAGE_SIZE"] = 500
    try:
        load_people(org, 1500)
        workspace = make_workspace()
        _admin(workspace)
        connection = make_connection(org, workspace)
        plan = make_plan(workspace, connection, name="Contacts")
        real, done = DatabaseSink.commit_page, []

        def commit_page(self, changes):
            ids = real(self, changes)
            if not done:
                done.append(1)
                org.state.revoke(cipher().decrypt(connection.refresh_token_enc))
                org.admin.expire_sessions()
            return ids

        monkeypatch.setattr(DatabaseSink, "commit_page", commit_page)
        run = _sync(app, rconn, plan)
    finally:
        app.config["SYNC_PAGE_SIZE"] = 2000
    assert run.status == "failed"
    incidents = {i.subject_key: i for i in db.session.scalars(select(Incident))}
    assert set(incidents) == {f"connection:{connection.id}", f"plan:{plan.id}"}
    assert incidents[f"connection:{connection.id}"].kind == "needs_reconnect"
    assert len(_mails("Terapage: a Salesforce connection needs reconnecting")) == 1
    assert len(_mails("Terapage: an import is failing")) == 1

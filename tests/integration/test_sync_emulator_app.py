"""Every Salesforce client is built by services.connections.client_for, which reads the client id,
secret and CA from the settings or from SALESFORCE_EMULATOR_APP (the connected-app.json the run
command uses): a run configured only by that file refreshes an expired session mid-run."""
from __future__ import annotations

import pytest

from core.crypto import cipher
from models import SalesforceConnection, SyncRun
from services import runs
from services.sync_sink import DatabaseSink
from tests.integration.sync_support import (drain, fresh, load_people, make_connection, make_plan, make_workspace,
                                            org, participant_count, rconn)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]


def test_a_run_configured_only_by_the_emulator_app_file_refreshes_mid_run(app, rconn, org, monkeypatch):
    for name in ("SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET", "SALESFORCE_CA_FILE"):
        monkeypatch.setitem(app.config, name, None)
    monkeypatch.setitem(app.config, "SALESFORCE_EMULATOR_APP", str(org.state_dir / "connected-app.json"))
    monkeypatch.setitem(app.config, "SYNC_PAGE_SIZE", 500)
    load_people(org, 1500)
    workspace = make_workspace()
    connection = make_connection(org, workspace)
    token_before = cipher().decrypt(connection.access_token_enc)
    plan = make_plan(workspace, connection)
    real, done = DatabaseSink.commit_page, []

    def commit_page(self, changes):
        ids = real(self, changes)
        if not done:
            done.append(1)
            org.admin.expire_sessions()
        return ids

    monkeypatch.setattr(DatabaseSink, "commit_page", commit_page)
    run = runs.request_run(plan)
    drain(app, rconn)
    run = fresh(SyncRun, run.id)
    assert (run.status, run.reason, run.imported) == ("succeeded", None, 1500)
    connection = fresh(SalesforceConnection, connection.id)
    assert connection.status == "connected" and cipher().decrypt(connection.access_token_enc) != token_before
    assert participant_count(workspace.id) == 1500

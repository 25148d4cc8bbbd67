"""Salesforce failures in the middle of real runs: session expiry (refresh once, succeed), a
refused refresh (failed, needs reconnect, plans held), an expired query locator (restart from the
committed cursor once), a malformed query (failed with Salesforce's message). The daily limit
mid-run is C16 (test_case_c16_e2e)."""
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.crypto import cipher
from core.extensions import db
from models import ImportPlan, Incident, SalesforceConnection, SyncRun
from services import runs
from services.sync_sink import DatabaseSink
from tests.integration.sync_support import (distinct_email_keys, drain, fresh, load_people, make_connection,
                                            make_plan, make_workspace, org, participant_count, rconn, START)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]


@pytest.fixture
def small_pages(app):
    app.config["SYNC_PAGE_SIZE"] = 500
    yield
    app.config["SYNC_PAGE_SIZE"] = 2000


def setup(org, n=1200, **plan_values):
    load_people(org, n)
    workspace = make_workspace()
    connection = make_connection(org, workspace)
    return workspace, connection, make_plan(workspace, connection, **plan_values)


def sync(app, rconn, plan) -> SyncRun:
    run = runs.request_run(plan)
    drain(app, rconn)
    assert read_ahead_threads() == []  # every way a run ends stops its read-ahead thread
    return fresh(SyncRun, run.id)


def read_ahead_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sync-read-ahead")]


def after_first_page(monkeypatch, action):
    real = DatabaseSink.commit_page
    done = []

    def commit_page(self, changes):
        ids = real(self, changes)
        if not done:
            done.append(1)
            action()
        return ids

    monkeypatch.setattr(DatabaseSink, "commit_page", commit_page)


# Pages of 500 and five of them, so requests remain after the first commit even when the source
# fetches a page or two ahead.
N = 2500


def test_session_expiry_mid_run_refreshes_once_and_succeeds(app, rconn, org, small_pages, monkeypatch):
    workspace, connection, plan = setup(org, n=N)
    token_before = cipher().decrypt(connection.access_token_enc)
    after_first_page(monkeypatch, lambda: org.admin.expire_sessions())
    run = sync(app, rconn, plan)
    assert (run.status, run.reason, run.fetched, run.imported) == ("succeeded", None, N, N)
    connection = fresh(SalesforceConnection, connection.id)
    assert connection.status == "connected"
    assert cipher().decrypt(connection.access_token_enc) != token_before
    assert participant_count(workspace.id) == N


def test_refused_refresh_fails_the_run_and_holds_the_plans(app, rconn, org, small_pages, monkeypatch):
    workspace, connection, plan = setup(org, n=N, schedule="hourly")

    def revoke_everything():
        org.state.revoke(cipher().decrypt(connection.refresh_token_enc))
        org.admin.expire_sessions()

    after_first_page(monkeypatch, revoke_everything)
    run = sync(app, rconn, plan)
    assert run.status == "failed" and "reconnect" in run.reason
    assert run.fetched % 500 == 0 and 500 <= run.fetched < N
    assert participant_count(workspace.id) == run.fetched
    connection = fresh(SalesforceConnection, connection.id)
    assert connection.status == "needs_reconnect"
    plan = fresh(ImportPlan, plan.id)
    assert (plan.status, plan.cursor_at) == ("held", START + timedelta(seconds=run.fetched - 1))
    kinds = sorted(db.session.execute(select(Incident.kind)).scalars())
    assert kinds == ["needs_reconnect", "run_failed"]
    # A held plan's next request fails at once with the reason; nothing is read.
    again = sync(app, rconn, plan)
    assert (again.status, again.fetched, again.api_calls) == ("failed", 0, 0)
    assert again.reason == "Salesforce needs reconnecting before this plan can sync"


def test_expired_query_locator_restarts_from_the_committed_cursor_once(app, rconn, org, small_pages):
    workspace, _, plan = setup(org)
    org.admin.add_fault(type="invalid_locator", page=2, times=1)
    run = sync(app, rconn, plan)
    assert (run.status, run.reason) == ("succeeded", None)
    # Page 1 (500) committed; the query restarts at its newest record, which comes back unchanged.
    assert (run.fetched, run.imported, run.unchanged) == (1201, 1200, 1)
    assert participant_count(workspace.id) == distinct_email_keys(workspace.id) == 1200

    org.admin.add_fault(type="invalid_locator", page=2)  # every time: restart once, then give up
    plan = fresh(ImportPlan, plan.id)
    plan.cursor_at = None
    db.session.commit()
    second = sync(app, rconn, plan)
    assert second.status == "partial"
    assert second.reason == ("Salesforce unavailable: Salesforce's paging cursor expired; the run "
                             "restarts from its last saved position.")
    assert second.fetched == 1000


def test_malformed_query_fails_with_salesforces_message(app, rconn, org):
    workspace, _, plan = setup(org, n=3, filters={"op": "AND", "items": [
        {"field": "Email", "operator": "equals", "value": "x@example.org"}]})
    # A field the describe offered but the org no longer has: Salesforce refuses the query.
    plan.mapping = {**plan.mapping, "fields": {**plan.mapping["fields"], "segment": ["Gone_Field__c"]}}
    db.session.commit()
    run = sync(app, rconn, plan)
    assert run.status == "failed"
    assert run.reason.startswith("Salesforce refused the query: ")
    assert "Gone_Field__c" in run.reason
    assert participant_count(workspace.id) == 0


def test_pages_are_fetched_ahead_in_one_thread_of_their_own(app, rconn, org, small_pages, monkeypatch):
    """Every page (the query and each nextRecordsUrl) is fetched by the read-ahead thread, never by
    the worker's own thread; a session refresh happens there too, with the application's settings."""
    from salesforce.client import SalesforceClient
    workspace, connection, plan = setup(org, n=N)
    fetchers = []
    real = SalesforceClient._call

    def call(self, fn, **kwargs):
        fetchers.append(threading.current_thread().name)
        return real(self, fn, **kwargs)

    monkeypatch.setattr(SalesforceClient, "_call", call)
    after_first_page(monkeypatch, lambda: org.admin.expire_sessions())
    run = sync(app, rconn, plan)
    assert (run.status, run.fetched, run.imported) == ("succeeded", N, N)
    reads = [name for name in fetchers if name.startswith("sync-read-ahead")]
    assert reads == [f"sync-read-ahead-{run.id}"] * 5  # the query and 4 more pages
    assert fresh(SalesforceConnection, connection.id).status == "connected"  # refreshed in the thread


def test_without_read_ahead_the_run_is_the_same(app, rconn, org, small_pages, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_READ_AHEAD", False)
    workspace, _, plan = setup(org, n=N)
    org.admin.add_fault(type="limit_exceeded", path="/query/", nth=3)  # page 4
    run = sync(app, rconn, plan)
    assert (run.status, run.fetched, run.imported) == ("partial", 1500, 1500)
    assert fresh(ImportPlan, plan.id).cursor_at == START + timedelta(seconds=1499)


def test_a_daily_limit_met_ahead_ends_the_run_after_the_pages_before_it(app, rconn, org, small_pages):
    workspace, _, plan = setup(org, n=N)
    org.admin.add_fault(type="limit_exceeded", path="/query/", nth=3)  # page 4
    run = sync(app, rconn, plan)
    assert (run.status, run.reason, run.fetched, run.imported) == (
        "partial", "Salesforce API daily limit reached; will resume", 1500, 1500)
    assert fresh(ImportPlan, plan.id).cursor_at == START + timedelta(seconds=1499)
    assert participant_count(workspace.id) == 1500


def test_a_run_that_breaks_mid_page_leaves_no_thread_and_a_safe_cursor(app, rconn, org, small_pages,
                                                                      monkeypatch):
    workspace, _, plan = setup(org, n=N)
    real = DatabaseSink.commit_page
    commits = []

    def commit_page(self, changes):
        commits.append(1)
        if len(commits) == 2:
            raise RuntimeError("the worker broke")
        return real(self, changes)

    monkeypatch.setattr(DatabaseSink, "commit_page", commit_page)
    run = sync(app, rconn, plan)  # asserts that no read-ahead thread is left
    assert run.status == "failed" and run.reason.startswith("Internal error: RuntimeError")
    assert fresh(ImportPlan, plan.id).cursor_at == START + timedelta(seconds=499)
    assert participant_count(workspace.id) == 500

"""The emulator's faults during real syncs (RQ, the emulator, the database): each run ends with the
right result, or as a clear partial or failed run whose cursor is safe (never past the last
committed record); no run is left "running"; a rerun without faults converges to exactly the
expected participants.

700 Contacts in pages of 250: page 1 is the ``query`` answer, pages 2 and 3 ``nextRecordsUrl``
fetches. "Safe" is checked the strong way: every record at or before the saved cursor is a
participant, and the cursor is the SystemModstamp of the last committed record.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import ImportPlan, ParticipantSource, SyncRun
from services import runs
from services.sync_sink import DatabaseSink
from tests.integration.sync_support import (START, distinct_email_keys, drain, fresh, load_people, make_connection,
                                            make_plan, make_workspace, org, participant_count, rconn)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]

N = 700
PAGE = 250
NOT_DELIVERED = "Salesforce said more records follow but did not deliver them. "
FIVE_HUNDRED = ("Salesforce is temporarily unavailable. Salesforce said: An unexpected error occurred. Please "
                "include this ErrorId if you contact support: 1234567890-12345 (-1234567890)")
LIMIT = "Salesforce API daily limit reached; will resume"

# name -> (fault rules, expected (status, reason, fetched, imported), records committed by the run).
# A later page that fails after the retries ends the run "failed" (issue 5: a page that never
# arrives -> failed, cursor safe); the daily limit ends it "partial" (the next run resumes).
SCENARIOS = {
    "one 503 on page 2 is retried": (
        [dict(type="error", status=503, path="/query/", nth=1)],
        ("succeeded", None, N, N), N),
    "500 from page 2 on": (
        [dict(type="error", status=500, path="/query/", from_call=1)],
        ("failed", NOT_DELIVERED + f"(page 2 never arrived after 2 attempts ({FIVE_HUNDRED}))", PAGE, PAGE), PAGE),
    "503 on the first query every time": (
        [dict(type="error", status=503, path="/query", from_call=1)],
        ("failed", "Salesforce unavailable: Salesforce is temporarily unavailable. Salesforce said: Server "
                   "Unavailable", 0, 0), 0),
    "daily limit on page 3": (
        [dict(type="limit_exceeded", path="/query/", nth=2)],
        ("partial", LIMIT, 2 * PAGE, 2 * PAGE), 2 * PAGE),
    "query locator expired once": (  # restarts from the committed cursor; its newest record comes back
        [dict(type="invalid_locator", page=2, times=1)],
        ("succeeded", None, N + 1, N), N),
    "cut-off page every time": (
        [dict(type="truncate_page", page=2)],
        ("failed", NOT_DELIVERED + "(the response body was cut off or was not JSON)", PAGE, PAGE), PAGE),
    "a page that never comes": (
        [dict(type="page_timeout", page=2, seconds=2)],
        ("failed", NOT_DELIVERED + "(page 2 never arrived after 2 attempts (Salesforce did not answer in time.))",
         PAGE, PAGE), PAGE),
    "done false without a next link": (  # page 2's own records are good and kept; page 3 has no link
        [dict(type="done_without_next", page=2)],
        ("failed", NOT_DELIVERED + "(page 2 said more records follow but gave no link to them)", 2 * PAGE,
         2 * PAGE), 2 * PAGE),
    "the mix: 503s, slow pages, a cut-off page, an expired locator": (
        [dict(type="error", status=503, share=0.15, seed=8),
         dict(type="slow", seconds=0.1, path="/query/"),
         dict(type="truncate_page", page=2, nth=2),  # page 2 of the query restarted after the locator
         dict(type="invalid_locator", page=2, times=1)],
        ("succeeded", None, N + 1, N), N),
}


@pytest.fixture
def settings(app, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_PAGE_SIZE", PAGE)
    # A read timeout well under the emulator's never-coming page; one retry, no sleeping.
    monkeypatch.setitem(app.config, "SALESFORCE_TIMEOUT", (5, 1.0))
    monkeypatch.setitem(app.config, "SALESFORCE_RETRIES", 1)
    monkeypatch.setitem(app.config, "SALESFORCE_BACKOFF", (0.0,))


def linked(workspace_id) -> set[str]:
    db.session.expire_all()
    return set(db.session.execute(select(ParticipantSource.record_id).where(
        ParticipantSource.workspace_id == workspace_id)).scalars())


def no_run_active() -> bool:
    return db.session.execute(select(func.count()).select_from(SyncRun).where(
        SyncRun.status.in_(("running", "queued")))).scalar_one() == 0


def sync(app, rconn, plan) -> SyncRun:
    run = runs.request_run(plan)
    drain(app, rconn)
    return fresh(SyncRun, run.id)


def test_faults_during_syncs_end_clearly_with_a_safe_cursor_and_reruns_converge(app, rconn, org, settings):
    """One workspace and plan per scenario, over the same 700 Salesforce records."""
    ids = load_people(org, N)
    for name, (faults, expected, committed) in SCENARIOS.items():
        workspace = make_workspace(name=name[:60])
        plan = make_plan(workspace, make_connection(org, workspace))
        org.admin.clear_faults()
        for rule in faults:
            org.admin.add_fault(**rule)

        run = sync(app, rconn, plan)
        assert (run.status, run.reason, run.fetched, run.imported) == expected, name
        assert [rule["fired"] > 0 for rule in org.admin.faults()] == [True] * len(faults), name  # each happened
        assert run.finished_at is not None and no_run_active(), name
        # The cursor is exactly the newest committed record, and nothing at or before it is missing.
        cursor = fresh(ImportPlan, plan.id).cursor_at
        assert cursor == (START + timedelta(seconds=committed - 1) if committed else None), name
        assert linked(workspace.id) == set(ids[:committed]), name
        assert participant_count(workspace.id) == committed, name

        org.admin.clear_faults()
        again = sync(app, rconn, plan)
        assert (again.status, again.reason, again.imported) == ("succeeded", None, N - committed), name
        assert no_run_active(), name
        assert participant_count(workspace.id) == distinct_email_keys(workspace.id) == org.count("Contact") == N, name
        assert linked(workspace.id) == set(ids), name
        assert fresh(ImportPlan, plan.id).cursor_at == START + timedelta(seconds=N - 1), name


def test_expired_sessions_mid_run_with_503s_refresh_and_succeed(app, rconn, org, settings, monkeypatch):
    """An expired session after page 1, and 503s on the following fetches: refreshed once, retried."""
    ids = load_people(org, N)
    workspace = make_workspace()
    plan = make_plan(workspace, make_connection(org, workspace))
    real = DatabaseSink.commit_page
    pages = []

    def commit_page(self, changes):
        result = real(self, changes)
        pages.append(1)
        if len(pages) == 1:
            org.admin.expire_sessions()
            org.admin.add_fault(type="error", status=503, path="/query/", nth=1)
        return result

    monkeypatch.setattr(DatabaseSink, "commit_page", commit_page)
    run = sync(app, rconn, plan)
    assert (run.status, run.reason, run.fetched, run.imported) == ("succeeded", None, N, N)
    assert [rule["fired"] for rule in org.admin.faults()] == [1]
    assert no_run_active()
    assert linked(workspace.id) == set(ids)
    assert participant_count(workspace.id) == distinct_email_keys(workspace.id) == N

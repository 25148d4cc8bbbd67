"""A real ``flask worker`` SIGKILLed at several points of one import, then a rerun: no record lost,
none duplicated, every killed run ``interrupted`` ("worker lost"), no run left "running".

Points: the kill lands while the worker waits for the first page, while it waits for a later page
(the fetch hangs), or free-running (every page a little slow, killed a moment after a page was
committed, so anywhere in fetching, validating or committing). After every kill the cursor is
checked to be safe: every Salesforce record at or before it is a participant.

CI size: 3 points over 3,000 records. By hand, the whole run:
    RELIABILITY_KILL_POINTS=10 RELIABILITY_KILL_RECORDS=20000 pytest tests/reliability/test_worker_kills.py
"""
from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import ImportPlan, Participant, ParticipantSource, SyncRun
from services import runs
from tests.support.workers import kill_worker
from tests.integration.sync_support import (START, distinct_email_keys, fresh, load_people, make_connection,
                                            make_plan, make_workspace, org, participant_count, rconn, start_worker,
                                            wait_for)

pytestmark = [pytest.mark.redis, pytest.mark.slow]
__all__ = ["org", "rconn"]

POINTS = int(os.environ.get("RELIABILITY_KILL_POINTS", "3"))
RECORDS = int(os.environ.get("RELIABILITY_KILL_RECORDS", str(max(3000, 1000 * POINTS))))
PAGE = 500
LOST_AFTER = 2  # seconds without a heartbeat before a running run is "worker lost"

# (how, pages committed by this run before the kill, extra delay after that)
KINDS = [("hang before the first page", 0, 0.0), ("hang on a later page", 1, 0.0),
         ("free-running", 1, 0.12), ("hang on a later page", 2, 0.0), ("free-running", 2, 0.05),
         ("free-running", 1, 0.3)]


def kill_points(n: int) -> list[tuple[str, int, float]]:
    return [KINDS[i % len(KINDS)] for i in range(n)]


def linked_record_ids(workspace_id: int) -> list[str]:
    db.session.expire_all()
    return list(db.session.execute(select(ParticipantSource.record_id).where(
        ParticipantSource.workspace_id == workspace_id)).scalars())


def assert_cursor_safe(plan_id: int, workspace_id: int, ids_by_second: list[str]) -> None:
    """Every record whose SystemModstamp is at or before the saved cursor is linked."""
    cursor = fresh(ImportPlan, plan_id).cursor_at
    if cursor is None:
        return
    behind = (cursor - START).total_seconds()
    assert behind == int(behind)
    expected = set(ids_by_second[:int(behind) + 1])
    missing = expected - set(linked_record_ids(workspace_id))
    assert not missing, f"{len(missing)} records at or before the cursor {cursor} are not participants"


@pytest.fixture
def lost_fast(app, monkeypatch):
    monkeypatch.setitem(app.config, "WORKER_LOST_AFTER_SECONDS", LOST_AFTER)
    monkeypatch.setitem(app.config, "SYNC_PAGE_SIZE", PAGE)


def test_sigkilled_worker_at_several_points_loses_and_duplicates_nothing(app, rconn, org, database_url, lost_fast):
    assert RECORDS >= 1000 * POINTS  # enough left for every kill to land mid-import
    ids = load_people(org, RECORDS)
    workspace = make_workspace()
    plan = make_plan(workspace, make_connection(org, workspace))
    env = {"SYNC_PAGE_SIZE": str(PAGE), "WORKER_LOST_AFTER_SECONDS": str(LOST_AFTER)}
    killed: list[int] = []
    workers = []
    try:
        for how, pages, delay in kill_points(POINTS):
            org.admin.clear_faults()
            if how == "hang before the first page":
                org.admin.add_fault(type="slow", seconds=30, path="/query", times=1)
            elif how == "hang on a later page":
                org.admin.add_fault(type="slow", seconds=0.2, path="/query")
                org.admin.add_fault(type="slow", seconds=30, path="/query/", nth=pages)
            else:
                org.admin.add_fault(type="slow", seconds=0.2, path="/query")
            worker = start_worker(app, database_url, "--no-scheduler", **env)
            workers.append(worker)
            run = runs.request_run(plan, trigger="schedule")
            assert run.status == "queued", (how, run.reason)
            wait_for(lambda: (r := fresh(SyncRun, run.id)).status == "running" and r.fetched >= pages * PAGE,
                     timeout=60, interval=0.02)
            time.sleep(delay)
            assert fresh(SyncRun, run.id).status == "running", f"{how}: the run ended before the kill"
            kill_worker(worker)
            killed.append(run.id)

            # Committed pages stay; the cursor never runs ahead of them.
            assert_cursor_safe(plan.id, workspace.id, ids)
            assert participant_count(workspace.id) == distinct_email_keys(workspace.id) == \
                len(set(linked_record_ids(workspace.id))) == len(linked_record_ids(workspace.id))

            time.sleep(LOST_AFTER + 0.5)
            assert runs.sweep_lost_runs() == [run.id]

        org.admin.clear_faults()
        worker = start_worker(app, database_url, "--no-scheduler", **env)
        workers.append(worker)
        last = runs.request_run(plan, trigger="schedule")
        wait_for(lambda: fresh(SyncRun, last.id).status in runs.FINISHED, timeout=120)
        last = fresh(SyncRun, last.id)
        assert (last.status, last.reason) == ("succeeded", None)
        assert last.full_read is False  # resumed from the cursor the killed runs left
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)

    # Zero lost: one participant per matching Salesforce person; zero duplicated.
    assert org.count("Contact") == RECORDS
    assert participant_count(workspace.id) == distinct_email_keys(workspace.id) == RECORDS
    linked = linked_record_ids(workspace.id)
    assert sorted(linked) == sorted(ids)
    emails = set(db.session.execute(select(Participant.email).where(
        Participant.workspace_id == workspace.id)).scalars())
    assert emails == {f"p{n:05d}@example.org" for n in range(1, RECORDS + 1)}
    # Every killed run is interrupted, with the reason; none is left running or queued.
    db.session.expire_all()
    rows = db.session.execute(select(SyncRun.id, SyncRun.status, SyncRun.reason).where(
        SyncRun.plan_id == plan.id).order_by(SyncRun.id)).all()
    assert [(i, s, r) for i, s, r in rows if i in killed] == [(i, "interrupted", "worker lost") for i in killed]
    assert [s for i, s, r in rows if i not in killed] == ["succeeded"]
    assert db.session.execute(select(func.count()).select_from(SyncRun).where(
        SyncRun.status.in_(("running", "queued")))).scalar_one() == 0
    assert fresh(ImportPlan, plan.id).cursor_at == START + timedelta(seconds=RECORDS - 1)

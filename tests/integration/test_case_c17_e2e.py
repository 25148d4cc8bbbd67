"""C17 end to end: a real `flask worker` is SIGKILLed after 500 records are committed. The run
becomes interrupted ("worker lost") once its heartbeat is older than WORKER_LOST_AFTER_SECONDS;
the next sync, on a second idle worker, is not refused and completes with no duplicates."""
import os
import signal
import time

import pytest

from models import ImportPlan, SyncRun
from services import runs
from tests.conftest import load_case
from tests.integration.sync_support import (distinct_email_keys, fresh, load_people, make_connection, make_plan,
                                            make_workspace, org, participant_count, rconn, start_worker, stop_worker,
                                            wait_for, child_pids)

pytestmark = [pytest.mark.redis, pytest.mark.slow]
__all__ = ["org", "rconn"]
CASE = load_case("C17")


def test_c17_killed_worker_becomes_worker_lost_and_the_next_sync_completes(app, rconn, org, database_url):
    expected = CASE["expected"]
    load_people(org, 2150)
    workspace = make_workspace()
    plan = make_plan(workspace, make_connection(org, workspace))
    # Pages of 500; the fetch of page 2 hangs, so the worker is mid-run when it dies.
    org.admin.add_fault(type="slow", seconds=30, path="/query/", times=1)
    doomed = start_worker(app, database_url, "--no-scheduler", SYNC_PAGE_SIZE="500")
    idle = None
    try:
        r1 = runs.request_run(plan, trigger="schedule")
        wait_for(lambda: fresh(SyncRun, r1.id).fetched >= 500, timeout=60)
        idle = start_worker(app, database_url, "--no-scheduler")
        # Out of memory: the worker and its children die (RQ puts the work horse in its own group).
        horses = child_pids(doomed.pid)
        assert horses  # the work horse (and RQ's own scheduler process)
        for pid in horses:
            os.kill(pid, signal.SIGKILL)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
        killed_at = time.monotonic()
        assert fresh(SyncRun, r1.id).status == "running"
        assert fresh(ImportPlan, plan.id).cursor_at.isoformat() == "2024-05-01T00:08:19+00:00"

        # Within the bound (seconds in tests) the periodic sweep calls it lost.
        bound = app.config["WORKER_LOST_AFTER_SECONDS"]
        wait_for(lambda: time.monotonic() - killed_at > bound + 1, timeout=bound + 5)
        from jobs.sync import sweep_lost_runs
        assert sweep_lost_runs() == [r1.id]
        lost = fresh(SyncRun, r1.id)
        assert (lost.status, lost.reason) == (expected["R1"]["final_status"], expected["R1"]["reason"])
        assert (lost.fetched, lost.imported) == (500, 500)
        assert fresh(ImportPlan, plan.id).cursor_at.isoformat() <= "2024-05-01T00:08:19+00:00"

        org.admin.clear_faults()
        r2 = runs.request_run(plan, trigger="schedule")
        assert r2.status == "queued"  # not refused as "already running"
        wait_for(lambda: fresh(SyncRun, r2.id).status in runs.FINISHED, timeout=90)
        r2 = fresh(SyncRun, r2.id)
        assert (r2.status, r2.full_read) == (expected["next_sync"]["status"], False)
        assert (r2.imported, r2.unchanged) == (1650, 1)
        assert participant_count(workspace.id) == distinct_email_keys(workspace.id) == \
            expected["next_sync"]["participants_total"]
    finally:
        stop_worker(doomed)
        stop_worker(idle)

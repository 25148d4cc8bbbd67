"""C16 end to end: the daily API limit mid-sync makes the run partial, nobody sleeps, the
connection stays connected, and the next day's run resumes from the cursor."""
import time

import pytest

from models import ImportPlan, SalesforceConnection, SyncRun
from services import runs
from tests.conftest import load_case
from tests.integration.sync_support import (distinct_email_keys, drain, fresh, load_people, make_connection,
                                            make_plan, make_workspace, org, participant_count, rconn)

pytestmark = [pytest.mark.redis, pytest.mark.slow]
__all__ = ["org", "rconn"]
CASE = load_case("C16")


def test_c16_limit_mid_sync_partial_then_resume(app, rconn, org):
    expected = CASE["expected"]
    load_people(org, 2150)
    workspace = make_workspace()
    connection = make_connection(org, workspace)
    plan = make_plan(workspace, connection)
    # Page 2 (a query-more call) and every call after it that day: REQUEST_LIMIT_EXCEEDED.
    org.admin.add_fault(type="limit_exceeded", path="/query/", from_call=1)
    started = time.monotonic()
    run = runs.request_run(plan)
    drain(app, rconn)
    elapsed = time.monotonic() - started
    run = fresh(SyncRun, run.id)
    assert (run.status, run.reason) == (expected["run_1"]["status"], expected["run_1"]["reason_shown"])
    assert (run.fetched, run.imported) == (2000, expected["run_1"]["participants_committed"])
    assert [f["fired"] for f in org.admin.faults()] == [expected["run_1"]["api_calls_after_the_403_max"]]
    assert elapsed < 20  # no worker sleeping on it
    assert fresh(ImportPlan, plan.id).cursor_at.isoformat() == "2024-05-01T00:33:19+00:00"
    assert fresh(SalesforceConnection, connection.id).status == "connected"
    assert fresh(ImportPlan, plan.id).status == "active"

    org.admin.clear_faults()  # the next day
    second = runs.request_run(plan)
    drain(app, rconn)
    second = fresh(SyncRun, second.id)
    assert (second.status, second.full_read, second.imported, second.unchanged) == ("succeeded", False, 150, 1)
    assert participant_count(workspace.id) == distinct_email_keys(workspace.id) == expected["run_2"]["participants_total"]

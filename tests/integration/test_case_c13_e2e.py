"""C13 end to end: 2,150 records over two pages; a page that never arrives; done:false without a
link. The emulator serves the pages, a real run writes the database."""
import pytest

from models import ImportPlan, SyncRun
from services import runs
from tests.integration.sync_support import (distinct_email_keys, drain, fresh, load_people, make_connection,
                                            make_plan, make_workspace, org, participant_count, rconn)

pytestmark = [pytest.mark.redis, pytest.mark.slow]
__all__ = ["org", "rconn"]
PAGE_1_NEWEST = "2024-05-01T00:33:19+00:00"


def setup_plan(org):
    load_people(org, 2150)
    workspace = make_workspace()
    return workspace, make_plan(workspace, make_connection(org, workspace))


def run_once(app, rconn, plan) -> SyncRun:
    run = runs.request_run(plan)
    drain(app, rconn)
    return fresh(SyncRun, run.id)


def test_c13_a_follows_next_records_url(app, rconn, org):
    workspace, plan = setup_plan(org)
    run = run_once(app, rconn, plan)
    assert (run.status, run.fetched, run.imported) == ("succeeded", 2150, 2150)
    assert participant_count(workspace.id) == 2150
    assert fresh(ImportPlan, plan.id).cursor_at.isoformat() == "2024-05-01T00:35:49+00:00"


def test_c13_b_page_two_never_arrives_then_the_next_run_completes(app, rconn, org):
    app.config["SALESFORCE_TIMEOUT"] = (5, 0.5)
    try:
        workspace, plan = setup_plan(org)
        org.admin.add_fault(type="page_timeout", page=2, seconds=2)
        run = run_once(app, rconn, plan)
        assert (run.status, run.fetched, run.imported) == ("failed", 2000, 2000)
        assert run.reason.startswith("Salesforce said more records follow but did not deliver them. "
                                     "(page 2 never arrived after 4 attempts")
        assert fresh(ImportPlan, plan.id).cursor_at.isoformat() == PAGE_1_NEWEST
        assert participant_count(workspace.id) == 2000
        org.admin.clear_faults()
        second = run_once(app, rconn, plan)
        assert (second.status, second.imported, second.unchanged) == ("succeeded", 150, 1)
        assert participant_count(workspace.id) == distinct_email_keys(workspace.id) == 2150
    finally:
        app.config.pop("SALESFORCE_TIMEOUT", None)


def test_c13_c_done_false_without_a_link_never_succeeds(app, rconn, org):
    workspace, plan = setup_plan(org)
    org.admin.add_fault(type="done_without_next", page=1)
    run = run_once(app, rconn, plan)
    assert (run.status, run.fetched) == ("failed", 2000)
    assert run.reason == ("Salesforce said more records follow but did not deliver them. "
                          "(page 1 said more records follow but gave no link to them)")
    assert fresh(ImportPlan, plan.id).cursor_at.isoformat() == PAGE_1_NEWEST

"""C10 end to end: international prefixes and regions, one workspace per default region."""
import pytest
from sqlalchemy import select

from core.extensions import db
from models import RunOutcome, SyncRun
from services import runs
from tests.conftest import load_case
from tests.integration.sync_support import (drain, fresh, make_connection, make_plan, make_workspace, org,
                                            participant_for, put, rconn, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]
CASE = load_case("C10")


def test_c10_phones_parsed_in_the_workspace_region_or_flagged(app, rconn, org):
    results = CASE["expected"]["results"]
    regions = {r["default_region"] for r in results}
    by_region = {}
    for region in sorted(regions, key=str):
        label = region or "NONE"
        workspace = make_workspace(name=f"WS {label}", region=region)
        plan = make_plan(workspace, make_connection(org, workspace, name=f"Org {label}"), filters={
            "op": "AND", "items": [{"field": "Department", "operator": "equals", "value": label}]})
        by_region[region] = plan
    ids = []
    for i, row in enumerate(results):
        ids.append(put(org, "Contact", {"LastName": f"Row{i}", "Email": f"row{i}@example.org",
                                        "Phone": row["value"], "Department": row["default_region"] or "NONE",
                                        "SystemModstamp": stamp(i)}))
    run_ids = [runs.request_run(plan).id for plan in by_region.values()]
    drain(app, rconn)
    assert [fresh(SyncRun, r).status for r in run_ids] == ["succeeded"] * len(run_ids)
    assert sum(fresh(SyncRun, r).imported for r in run_ids) == len(results)
    for record_id, row in zip(ids, results):
        person = participant_for(record_id)
        assert person is not None, row  # flagged rows stay importable on their other fields
        assert person.phone_e164 == row["e164"], row
        outcome = db.session.execute(select(RunOutcome).where(RunOutcome.record_id == record_id)).scalars().one()
        flags = [f["code"] for f in (outcome.detail or {}).get("flags", [])]
        assert flags == ([row["flag"]] if row["flag"] else []), row
        if row["flag"]:
            assert outcome.detail["flags"][0]["raw"] == row["value"]
            assert outcome.reason is None and outcome.outcome == "imported"

"""C12 end to end: junk emails are flagged, never stored or used as keys, never multiply."""
import pytest
from sqlalchemy import select

from core.extensions import db
from models import Participant, RunOutcome, SyncRun
from services import runs
from tests.conftest import load_case
from tests.integration.sync_support import (drain, fresh, make_connection, make_plan, make_workspace, org,
                                            participant_count, put, rconn, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]
CASE = load_case("C12")


def test_c12_invalid_emails_flagged_twice_and_count_stable(app, rconn, org):
    expected = CASE["expected"]
    for i, record in enumerate(CASE["input"]["records"]):
        put(org, "Contact", {"LastName": record["LastName"], "Email": record["Email"],
                             "SystemModstamp": stamp(i)}, record_id=record["Id"])
    workspace = make_workspace()
    plan = make_plan(workspace, make_connection(org, workspace))
    first = runs.request_run(plan)
    drain(app, rconn)
    after_first = participant_count(workspace.id)
    second = runs.request_run(plan)
    drain(app, rconn)
    first, second = fresh(SyncRun, first.id), fresh(SyncRun, second.id)
    assert (first.status, first.imported, first.skipped) == ("succeeded", 1, 5)
    # The cursor (look-back 0) brings back the newest record only; it is V6, unchanged.
    assert (second.status, second.fetched, second.unchanged) == ("succeeded", 1, 1)
    assert after_first == participant_count(workspace.id) == 1
    for run_id in (first.id,):
        rows = db.session.execute(select(RunOutcome).where(RunOutcome.run_id == run_id)
                                  .order_by(RunOutcome.seq)).scalars().all()
        flagged = [r.record_id for r in rows if any(f["code"] == "invalid_email"
                                                    for f in (r.detail or {}).get("flags", []))]
        assert flagged == expected["invalid_email_flag"]
        for r in rows[:5]:
            assert r.outcome == "skipped" and r.email_key is None
            assert r.reason.endswith("No valid email or phone number.") and len(r.reason) > 40
    person = db.session.execute(select(Participant)).scalars().one()
    valid_id, valid_email = next(iter(expected["valid"].items()))
    assert person.email == valid_email
    keys = {v for row in db.session.execute(select(Participant.email, Participant.email_key)) for v in row}
    keys |= set(db.session.execute(select(RunOutcome.email_key)).scalars())
    assert not keys & set(expected["never_stored_or_used_as_dedup_key"])

"""C09 end to end: phone extensions through the emulator, a real run and the database."""
import pytest
from sqlalchemy import select

from core.extensions import db
from models import Participant, SyncRun
from services import runs
from tests.conftest import load_case
from tests.integration.sync_support import (drain, fresh, make_connection, make_plan, make_workspace, org,
                                            participant_for, put, rconn, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]
CASE = load_case("C09")


def test_c09_extensions_kept_apart_and_the_two_ames_rows_merge(app, rconn, org):
    inp, expected = CASE["input"], CASE["expected"]
    for i, record in enumerate(inp["records_without_email"]):
        put(org, "Contact", {"LastName": record["LastName"], "Phone": record["Phone"],
                             "SystemModstamp": stamp(i)}, record_id=record["Id"])
    workspace = make_workspace(region=inp["default_region"])
    plan = make_plan(workspace, make_connection(org, workspace))
    run = runs.request_run(plan)
    drain(app, rconn)
    run = fresh(SyncRun, run.id)
    # the second Ames is merged (linked to the first's participant), so not "skipped"
    assert (run.status, run.imported, run.updated, run.unchanged, run.skipped) == ("succeeded", 3, 0, 1, 0)
    assert db.session.execute(select(Participant)).scalars().all().__len__() == expected["participants_after_sync"]
    for record_id, want in expected["parsed"].items():
        person = participant_for(record_id)
        assert (person.phone_e164, person.phone_ext) == (want["e164"], want["extension"])
    a, b = expected["merged_pairs"][0]
    assert participant_for(a).id == participant_for(b).id
    stored = {v for row in db.session.execute(select(Participant.phone_e164, Participant.phone_key)) for v in row}
    assert not stored & set(expected["never_stored_as"])
    assert {p.phone_key for p in db.session.execute(select(Participant)).scalars()} == {
        "+12015550123;ext=42", "+12015550123;ext=43", "+12015550123"}

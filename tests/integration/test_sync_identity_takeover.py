"""A shared phone never hands one person's record to another (the identity takeover), and a
skipped record stays findable by its email: end to end through the emulator and the database."""
import pytest
from sqlalchemy import select

from core.extensions import db
from models import Participant, ParticipantSource, SyncRun
from services import operations, runs
from tests.integration.sync_support import (drain, fresh, make_connection, make_plan, make_workspace, org,
                                            outcomes, participant_for, put, rconn, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]

INGRID = "0035g0000000020AAA"
AROHA = "0035g0000000021AAA"
PHONE = "+1 201 555 0177"


def _person(pid):
    db.session.expire_all()
    p = db.session.get(Participant, pid)
    return (p.first_name, p.last_name, p.email_key, p.phone_key, p.consent_status, p.status)


def test_a_shared_phone_never_links_or_updates_another_person(app, rconn, org):
    put(org, "Contact", {"FirstName": "Ingrid", "LastName": "Novak", "Phone": PHONE,
                         "SystemModstamp": stamp(1)}, record_id=INGRID)
    put(org, "Contact", {"FirstName": "Aroha", "LastName": "Costa", "Email": "Aroha.Costa@example.org",
                         "Phone": PHONE, "HasOptedOutOfEmail": True, "SystemModstamp": stamp(2)},
        record_id=AROHA)
    workspace = make_workspace()
    plan = make_plan(workspace, make_connection(org, workspace))

    first = runs.request_run(plan)
    drain(app, rconn)
    first = fresh(SyncRun, first.id)
    assert (first.status, first.imported, first.skipped) == ("succeeded", 1, 1), first.reason
    ingrid = participant_for(INGRID)
    before = _person(ingrid.id)
    assert before[:4] == ("Ingrid", "Novak", None, "+12015550177")
    row = next(r for r in outcomes(first.id) if r.record_id == AROHA)
    assert (row.outcome, row.reason, row.participant_id) == ("skipped", "Opted out in Salesforce", None)
    assert db.session.execute(select(ParticipantSource).where(
        ParticipantSource.record_id == AROHA)).scalars().all() == []

    # "Why isn't this person here?": found by the raw email, any case, with the reason.
    found = operations.lookup(workspace, "AROHA.COSTA@example.org")
    assert [(t.outcome.record_id, t.outcome.outcome, t.outcome.reason) for t in found.touches] == [
        (AROHA, "skipped", "Opted out in Salesforce")]
    assert found.touches[0].outcome.email == "Aroha.Costa@example.org"
    assert found.touches[0].outcome.email_key == "aroha.costa@example.org"
    assert found.touches[0].outcome.phone_key == "+12015550177"

    org.update("Contact", AROHA, {"FirstName": "Aroha2", "HasOptedOutOfEmail": False})
    second = runs.request_run(plan)
    drain(app, rconn)
    second = fresh(SyncRun, second.id)
    assert second.status == "succeeded", second.reason
    assert _person(ingrid.id) == before  # Ingrid is unchanged
    aroha = participant_for(AROHA)
    assert aroha is not None and aroha.id != ingrid.id
    assert (aroha.first_name, aroha.email_key) == ("Aroha2", "aroha.costa@example.org")
    assert participant_for(INGRID).id == ingrid.id
    assert db.session.query(Participant).filter_by(workspace_id=workspace.id).count() == 2

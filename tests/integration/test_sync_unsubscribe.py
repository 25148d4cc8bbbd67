"""An unsubscribe outranks Salesforce: a person who unsubscribed in the product (consent opted out,
email on the suppression list) stays opted out when Salesforce still says "Granted", and no
invite plan invites them, through the emulator, RQ and the database."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from models import Invitation, Participant, RunOutcome, Study, SuppressionEntry, SyncRun, User
from services import invitations, runs
from tests.integration.sync_support import (drain, fresh, make_connection, make_plan, make_workspace, org,
                                            participant_for, put, rconn, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]

MAPPING = {"fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"],
                      "external_id": ["Id"]},
           "consent_rule": {"path": "Consent_Status__c", "opted_in": ["Granted"], "opted_out": ["Withdrawn"],
                            "opt_out_flags": ["HasOptedOutOfEmail"]}}


def _reason(run_id: int, record_id: str) -> str | None:
    return db.session.execute(select(RunOutcome.reason).where(
        RunOutcome.run_id == run_id, RunOutcome.record_id == record_id)).scalar_one()


def test_unsubscribe_survives_a_resync_that_still_says_granted(app, rconn, org):
    ann = put(org, "Contact", {"FirstName": "Ann", "LastName": "A", "Email": "Ann@Example.org",
                               "Consent_Status__c": "Granted", "SystemModstamp": stamp(0)})
    bob = put(org, "Contact", {"FirstName": "Bob", "LastName": "B", "Email": "bob@example.org",
                               "Consent_Status__c": "Granted", "SystemModstamp": stamp(1)})
    workspace = make_workspace()
    connection = make_connection(org, workspace)
    pool = make_plan(workspace, connection, mapping=MAPPING, action="pool", name="Pool")

    first = runs.request_run(pool)
    drain(app, rconn)
    assert fresh(SyncRun, first.id).status == "succeeded"
    person = participant_for(ann)
    assert person.consent_status == "opted_in"

    invitations.unsubscribe(person)
    assert db.session.scalar(select(SuppressionEntry.email_key)) == "ann@example.org"

    # Salesforce still says Granted and the record changes, so the next sync reads it again.
    org.update("Contact", ann, {"FirstName": "Annie", "Consent_Status__c": "Granted"})
    org.update("Contact", bob, {"FirstName": "Bobby"})
    again = runs.request_run(pool)
    drain(app, rconn)
    again = fresh(SyncRun, again.id)
    assert (again.status, again.updated) == ("succeeded", 2)
    person = participant_for(ann)
    assert (person.first_name, person.consent_status) == ("Annie", "opted_out")
    assert _reason(again.id, ann) == ("Already imported; changed in Salesforce since the last run; "
                                      "consent kept opted out: on the suppression list")
    assert participant_for(bob).consent_status == "opted_in"
    assert _reason(again.id, bob) == "Already imported; changed in Salesforce since the last run"

    # An invite plan over the same records invites Bob, never Ann.
    user = User(email="r@example.org", name="Researcher", password_hash="x")
    study = Study(workspace_id=workspace.id, name="Checkout interviews")
    db.session.add_all([user, study])
    db.session.commit()
    invite = make_plan(workspace, connection, mapping=MAPPING, action="invite_study", name="Invite",
                       target_study_id=study.id, consent_confirmation_text="They agreed.",
                       consent_confirmed_by_id=user.id, consent_confirmed_at=again.finished_at)
    try:
        from services.plans import consent_fingerprint
        invite.consent_fingerprint = consent_fingerprint(invite)
        db.session.commit()
    except ImportError:
        pass
    third = runs.request_run(invite)
    drain(app, rconn)
    third = fresh(SyncRun, third.id)
    assert (third.status, third.invited) == ("succeeded", 1)
    assert _reason(third.id, ann) == ("Already imported; changed in Salesforce since the last run; "
                                      "consent kept opted out: on the suppression list; "
                                      "Not invited: the email is suppressed")
    invited = db.session.execute(select(Invitation.participant_id)).scalars().all()
    assert invited == [participant_for(bob).id]
    assert db.session.get(Participant, person.id).consent_status == "opted_out"

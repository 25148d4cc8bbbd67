"""Invite plans end to end: eligible people (opted in by the plan's consent rule, valid email, not
suppressed, not already invited) are added to the study and get a pending invitation that records
the consent it saw and the confirmation it relied on; everyone else has a reason."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from core.extensions import db
from models import Invitation, RunOutcome, Study, StudyParticipant, SuppressionEntry, SyncRun, User
from services import runs
from tests.integration.sync_support import (drain, fresh, make_connection, make_plan, make_workspace, org,
                                            participant_for, put, rconn, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]
MAPPING = {"fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"],
                      "phone": ["Phone"], "external_id": ["Id"]},
           "consent_rule": {"path": "Consent_Status__c", "opted_in": ["Granted"], "opted_out": ["Withdrawn"],
                            "opt_out_flags": ["HasOptedOutOfEmail"]}}
CONFIRMATION = "I confirm these contacts agreed to be invited to research studies."


def test_invite_study_plan_invites_only_the_eligible(app, rconn, org):
    people = {
        "ann": put(org, "Contact", {"FirstName": "Ann", "LastName": "A", "Email": "ann@example.org",
                                    "Consent_Status__c": "Granted", "SystemModstamp": stamp(0)}),
        "bob": put(org, "Contact", {"FirstName": "Bob", "LastName": "B", "Email": "bob@example.org",
                                    "Consent_Status__c": "Granted", "SystemModstamp": stamp(1)}),
        "cat": put(org, "Contact", {"FirstName": "Cat", "LastName": "C", "Email": "cat@example.org",
                                    "SystemModstamp": stamp(2)}),
        "dan": put(org, "Contact", {"FirstName": "Dan", "LastName": "D", "Email": "dan@example.org",
                                    "Consent_Status__c": "Withdrawn", "SystemModstamp": stamp(3)}),
        "eve": put(org, "Contact", {"FirstName": "Eve", "LastName": "E", "Email": "eve(at)example.org",
                                    "Phone": "+1 201 555 0199", "Consent_Status__c": "Granted",
                                    "SystemModstamp": stamp(4)}),
    }
    workspace = make_workspace(region="US")
    user = User(email="r@example.org", name="Researcher", password_hash="x")
    study = Study(workspace_id=workspace.id, name="Checkout interviews")
    db.session.add_all([user, study, SuppressionEntry(workspace_id=workspace.id, email="bob@example.org",
                                                      email_key="bob@example.org")])
    db.session.commit()
    confirmed_at = datetime(2025, 2, 3, 10, 0, tzinfo=timezone.utc)
    plan = make_plan(workspace, make_connection(org, workspace), mapping=MAPPING, action="invite_study",
                     target_study_id=study.id, consent_confirmation_text=CONFIRMATION,
                     consent_confirmed_by_id=user.id, consent_confirmed_at=confirmed_at)
    try:  # the wizard's confirmation is only valid for the plan version it saw
        from services.plans import consent_fingerprint
        plan.consent_fingerprint = consent_fingerprint(plan)
        db.session.commit()
    except ImportError:
        pass

    run = runs.request_run(plan)
    drain(app, rconn)
    run = fresh(SyncRun, run.id)
    assert (run.status, run.imported, run.skipped, run.invited) == ("succeeded", 4, 1, 1)
    reasons = dict(db.session.execute(select(RunOutcome.record_id, RunOutcome.reason)
                                      .where(RunOutcome.run_id == run.id)).all())
    assert reasons == {
        people["ann"]: None,
        people["bob"]: "consent set to opted out: on the suppression list; Not invited: the email is suppressed",
        people["cat"]: "Not invited: consent is unknown",
        people["dan"]: "Opted out in Salesforce",
        people["eve"]: "Not invited: no valid email",
    }
    ann = participant_for(people["ann"])
    invitation = db.session.execute(select(Invitation)).scalars().one()
    assert (invitation.participant_id, invitation.target_type, invitation.target_key, invitation.study_id) == \
        (ann.id, "study", f"study:{study.id}", study.id)
    assert (invitation.plan_id, invitation.run_id, invitation.status) == (plan.id, run.id, "pending")
    assert invitation.consent_evidence == {
        "consent": "opted_in",
        "value_seen": {"Consent_Status__c": "Granted", "HasOptedOutOfEmail": False},
        "source_record": f"Contact {people['ann']}",
        "confirmation_text": CONFIRMATION,
        "confirmed_by": user.id,
        "confirmed_at": "2025-02-03T10:00:00+00:00",
    }
    members = db.session.execute(select(StudyParticipant.participant_id, StudyParticipant.added_via)).all()
    assert members == [(ann.id, "salesforce")]
    assert ann.consent_status == "opted_in" and ann.status == "active"

    org.update("Contact", people["ann"], {"FirstName": "Annie"})
    again = runs.request_run(plan)
    drain(app, rconn)
    again = fresh(SyncRun, again.id)
    assert (again.updated, again.invited) == (1, 0)
    assert db.session.execute(select(RunOutcome.reason).where(
        RunOutcome.run_id == again.id, RunOutcome.record_id == people["ann"])).scalar_one() == \
        "Already imported; changed in Salesforce since the last run; Not invited: already invited"
    assert len(db.session.execute(select(Invitation)).scalars().all()) == 1

"""The main job on real input: the emulator loaded with the coral-cloud and easy-spaces-lwc data
plans and with the generated (deliberately messy) demo org. Every record lands once, every skip
has a reason, the counts add up, and a second full read changes nothing."""
import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import Participant, ParticipantSource, RunOutcome, SyncRun
from services import runs
from sync.validate import normalize_email
from tests.conftest import shared_path
from tests.integration.sync_support import (CONTACT_MAPPING, LEAD_MAPPING, counts_add_up, drain, fresh,
                                            make_connection, make_plan, make_workspace, participant_count,
                                            rconn, start_org)

pytestmark = [pytest.mark.redis, pytest.mark.slow]
__all__ = ["rconn"]
PERSON_MAPPING = {"fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"],
                             "phone": ["Phone", "MobilePhone"], "external_id": ["Id"]},
                  "consent_rule": {"opt_out_flags": ["HasOptedOutOfEmail"]}}


def records(server, obj):
    return list(server.state.store.scan("production", obj, False))


def sync(app, rconn, plan, kind="sync") -> SyncRun:
    run = runs.request_run(plan, kind=kind)
    drain(app, rconn)
    return fresh(SyncRun, run.id)


def check_run(run: SyncRun, expected_fetched: int) -> None:
    assert run.status == "succeeded", run.reason
    assert run.fetched == expected_fetched
    assert counts_add_up(run)
    rows = db.session.execute(select(RunOutcome.outcome, RunOutcome.reason, RunOutcome.record_id)
                              .where(RunOutcome.run_id == run.id)).all()
    assert len(rows) == run.fetched
    assert len({r.record_id for r in rows}) == run.fetched  # each record once
    assert all(r.reason for r in rows if r.outcome in ("skipped", "failed"))


def linked_once() -> bool:
    dupes = db.session.execute(select(ParticipantSource.record_id).group_by(
        ParticipantSource.workspace_id, ParticipantSource.org_id, ParticipantSource.object_name,
        ParticipantSource.record_id).having(func.count() > 1)).all()
    return dupes == []


def distinct_valid_emails(rows) -> int:
    return len({normalize_email(r.get("Email")).key for r in rows if normalize_email(r.get("Email")).key})


@pytest.mark.parametrize("plan_file", ["coral-cloud/data-plan.json", "easy-spaces-lwc/Plan2.json"])
def test_sample_data_plans_land_every_contact_once(app, rconn, plan_file):
    server = start_org(app, data=[shared_path("fixtures", "sfdx-data", *plan_file.split("/"))])
    try:
        contacts = records(server, "Contact")
        workspace = make_workspace(region="US")
        plan = make_plan(workspace, make_connection(server, workspace))
        run = sync(app, rconn, plan)
        check_run(run, len(contacts))
        assert run.imported == participant_count(workspace.id) == distinct_valid_emails(contacts)
        assert run.skipped == len(contacts) - run.imported and run.failed == 0
        assert linked_once()
        again = sync(app, rconn, plan, kind="reconcile")
        check_run(again, len(contacts))
        assert (again.imported, again.updated, again.unchanged, again.left) == (0, 0, run.imported, 0)
    finally:
        server.stop()


def test_coral_cloud_numbers(app, rconn):
    server = start_org(app, data=[shared_path("fixtures", "sfdx-data", "coral-cloud", "data-plan.json")])
    try:
        workspace = make_workspace(region="US")
        run = sync(app, rconn, make_plan(workspace, make_connection(server, workspace)))
        assert (run.fetched, run.imported, run.skipped) == (156, 156, 0)
        frayda = db.session.execute(select(Participant).where(
            Participant.email_key == "fraydadowsing@example.com")).scalars().one()
        assert (frayda.first_name, frayda.last_name, frayda.phone_e164) == ("Frayda", "Dowsing", "+17074908673")
    finally:
        server.stop()


def test_generated_demo_org_contacts_leads_and_campaign_members(app, rconn):
    server = start_org(app, generate=400, seed=7)
    try:
        workspace = make_workspace(region="GB")
        connection = make_connection(server, workspace)
        plans = [make_plan(workspace, connection, "Contact", CONTACT_MAPPING, name="Contacts"),
                 make_plan(workspace, connection, "Lead", LEAD_MAPPING, name="Leads"),
                 make_plan(workspace, connection, "CampaignMember", PERSON_MAPPING, name="Members")]
        total_imported = 0
        for plan in plans:
            run = sync(app, rconn, plan)
            check_run(run, len(records(server, plan.object_name)))
            # a plan's first run: nothing was linked by the plan, so nothing can leave it (an
            # opted-out record matching another plan's participant is not a departure)
            assert run.left == 0, plan.name
            total_imported += run.imported
        assert participant_count(workspace.id) == total_imported
        assert linked_once()
        # No two participants are one person by email key.
        assert db.session.execute(select(func.count(func.distinct(Participant.email_key)))).scalar_one() == \
            db.session.execute(select(func.count(Participant.email_key))).scalar_one()
        # Every converted lead is its contact's participant.
        converted = [r for r in records(server, "Lead") if r.get("IsConverted") and r.get("ConvertedContactId")]
        assert converted
        both = 0
        for lead in converted:
            lead_link = db.session.execute(select(ParticipantSource.participant_id).where(
                ParticipantSource.record_id == lead["Id"])).scalar_one_or_none()
            contact_link = db.session.execute(select(ParticipantSource.participant_id).where(
                ParticipantSource.record_id == lead["ConvertedContactId"])).scalar_one_or_none()
            if lead_link is not None and contact_link is not None:
                assert lead_link == contact_link
                both += 1
        assert both > 0
        # A second full read of every plan lands nobody new. The only updates: records skipped as
        # opted-out new people the first time that are now known through another plan's record
        # (never linked before, so they did not "leave the plan").
        for plan in plans:
            again = sync(app, rconn, plan, kind="reconcile")
            check_run(again, len(records(server, plan.object_name)))
            assert again.imported == 0
            reasons = set(db.session.execute(select(RunOutcome.reason).where(
                RunOutcome.run_id == again.id, RunOutcome.outcome == "updated")).scalars())
            assert reasons <= {"Matched an existing participant by email",
                               "Matched an existing participant by phone",
                               "Matched an existing participant by email; opted out in Salesforce",
                               "Matched an existing participant by phone; opted out in Salesforce",
                               "Opted out in Salesforce; policy: keep"}
        assert participant_count(workspace.id) == total_imported
    finally:
        server.stop()

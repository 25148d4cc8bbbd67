"""C19 end to end: Contact, then Lead, then CampaignMember plans through the emulator give two
participants: the converted lead is Ana's contact, the lead-type member is Tom."""
import pytest
from sqlalchemy import select

from core.extensions import db
from models import Participant, RunOutcome, SyncRun
from services import runs
from tests.conftest import load_case
from tests.integration.sync_support import (CONTACT_MAPPING, LEAD_MAPPING, drain, fresh, make_connection,
                                            make_plan, make_workspace, org, participant_for, put, rconn, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]
CASE = load_case("C19")
PERSON_MAPPING = {"fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"],
                             "external_id": ["Id"]}}


def test_c19_contact_lead_campaign_member_one_person_one_participant(app, rconn, org):
    inp, expected = CASE["input"], CASE["expected"]
    ana_contact = inp["contacts"][0]
    account = put(org, "Account", {"Name": ana_contact["Account"]["Name"]})
    put(org, "Contact", {"FirstName": "Ana", "LastName": "Ruiz", "Email": ana_contact["Email"],
                         "AccountId": account, "SystemModstamp": stamp(0)}, record_id=ana_contact["Id"])
    for i, lead in enumerate(inp["leads"]):
        put(org, "Lead", {k: lead[k] for k in ("FirstName", "LastName", "Email", "Company", "IsConverted",
                                                "ConvertedContactId") if lead[k] is not None}
            | {"Status": "Open - Not Contacted", "SystemModstamp": stamp(1 + i)}, record_id=lead["Id"])
    campaign = inp["campaign_members"][0]["CampaignId"]
    put(org, "Campaign", {"Name": "Spring research panel"}, record_id=campaign)
    for i, member in enumerate(inp["campaign_members"]):
        put(org, "CampaignMember", {"CampaignId": campaign, "LeadId": member["LeadId"],
                                    "ContactId": member["ContactId"], "Status": "Sent",
                                    "SystemModstamp": stamp(5 + i)}, record_id=member["Id"])

    workspace = make_workspace()
    connection = make_connection(org, workspace)
    plans = [make_plan(workspace, connection, "Contact", CONTACT_MAPPING, name="Contacts"),
             make_plan(workspace, connection, "Lead", LEAD_MAPPING, name="Leads"),
             make_plan(workspace, connection, "CampaignMember", PERSON_MAPPING, name="Campaign", filters={
                 "op": "AND", "items": [{"field": "CampaignId", "operator": "equals", "value": campaign}]})]
    statuses = []
    for plan in plans:  # the import order of the case
        run = runs.request_run(plan)
        drain(app, rconn)
        run = fresh(SyncRun, run.id)
        statuses.append((run.status, run.fetched, run.imported, run.updated, run.unchanged, run.skipped))
    assert statuses == [("succeeded", 1, 1, 0, 0, 0), ("succeeded", 2, 1, 0, 1, 0),
                        ("succeeded", 2, 0, 2, 0, 0)]
    people = db.session.execute(select(Participant)).scalars().all()
    assert len(people) == expected["participants_total"]
    ana, tom = participant_for(ana_contact["Id"]), participant_for("00QDn00000Ld7KQMAZ")
    assert (ana.first_name, ana.email, ana.company) == ("Ana", "ana.ruiz@example.org", "Ruiz Design")
    assert (tom.first_name, tom.email, tom.company) == ("Tom", "tom.berg@example.net", "Berg Studio")
    assert participant_for("00QDn00000Ld7KpMAJ").id == ana.id
    assert participant_for("00vDn00000Mb1XyIAJ").id == ana.id
    assert participant_for("00vDn00000Mb1XzIAJ").id == tom.id
    converted = db.session.execute(select(RunOutcome).where(
        RunOutcome.record_id == "00QDn00000Ld7KpMAJ")).scalars().one()
    assert (converted.outcome, converted.reason) == (
        "unchanged", "Converted lead; the person continues as Contact 003Dn00000Ct1AaIAJ")
    assert sum(1 for p in people if not p.email and not p.first_name and not p.last_name) == \
        expected["participants_with_empty_name_and_email"]

"""A small org for the SOQL engine tests: recorded describes plus hand-built ones, known records.

Imported by the other test_soql_* modules; it holds no tests of its own except a sanity check.
"""
import copy
import json
from datetime import datetime, timezone

from emulator.soql import MemoryDataSource
from emulator.soql.ids import to18
from tests.conftest import shared_path

NOW = datetime(2024, 5, 15, 12, 30, 0, tzinfo=timezone.utc)  # a Wednesday


def fixture(name):
    return json.loads(shared_path("fixtures", "salesforce", name).read_text())


def fld(name, type_, reference_to=None, relationship=None, **extra):
    f = {"name": name, "type": type_, "referenceTo": reference_to or [], "relationshipName": relationship,
         "filterable": True, "sortable": type_ not in ("textarea", "multipicklist", "address"),
         "compoundFieldName": None, "label": name, "nillable": True, "custom": name.endswith("__c")}
    f.update(extra)
    return f


def describe(name, prefix, fields, children=()):
    return {"name": name, "keyPrefix": prefix, "custom": name.endswith("__c"),
            "fields": [fld("Id", "id", filterable=True), fld("IsDeleted", "boolean")] + fields,
            "childRelationships": [{"childSObject": c, "field": f, "relationshipName": r} for c, f, r in children]}


def rid(prefix, n):
    """A valid 18-character id with the given prefix and sequence number."""
    return to18(f"{prefix}Dn00000{n:05d}A"[:15])


CONTACT_UPPER = "003Dn00000QxRtAIAV"
CONTACT_LOWER = "003Dn00000QxrtAIAR"
USER1, USER2 = rid("005", 1), rid("005", 2)
QUEUE = rid("00G", 1)
ACME, PROMO, PROMOX, GLOBEX = (rid("001", n) for n in (1, 2, 3, 4))
C_OBRIEN, C_SMITH, C_NULLS, C_DELETED = (rid("003", n) for n in (1, 2, 3, 4))
L1, L2, L3, L4 = (rid("00Q", n) for n in (1, 2, 3, 4))
CAMPAIGN1, CAMPAIGN2 = rid("701", 1), rid("701", 2)
OPP1 = rid("006", 1)
EVT1, EVT2 = rid("00U", 1), rid("00U", 2)
P1, P2, P3, P4 = (rid("a0R", n) for n in (1, 2, 3, 4))
STUDY = rid("a0S", 1)


def describes():
    account = fixture("describe-Account.json")
    account["fields"].append(fld("Customer_Tier__c", "picklist", picklistValues=[
        {"value": "Enterprise", "label": "Enterprise", "active": True},
        {"value": "Growth", "label": "Growth", "active": True},
        {"value": "Starter", "label": "Starter", "active": True}]))
    contact = fixture("describe-Contact.json")
    contact["fields"].append(fld("HasOptedOutOfEmail", "boolean", nillable=False))
    lead = fixture("describe-Lead.json")
    member = fixture("describe-CampaignMember.SYNTHETIC.json")
    user = describe("User", "005", [fld("Username", "string"), fld("Email", "email"), fld("Name", "string"),
                                    fld("IsActive", "boolean"),
                                    fld("ManagerId", "reference", ["User"], "Manager")])
    group = describe("Group", "00G", [fld("Name", "string"), fld("Email", "email"), fld("Type", "picklist")])
    campaign = describe("Campaign", "701", [fld("Name", "string"), fld("IsActive", "boolean")],
                        children=[("CampaignMember", "CampaignId", "CampaignMembers")])
    opportunity = describe("Opportunity", "006", [
        fld("Name", "string"), fld("Amount", "currency"), fld("CloseDate", "date"),
        fld("AccountId", "reference", ["Account"], "Account"),
        fld("ContactId", "reference", ["Contact"], "Contact")])
    event = describe("Event", "00U", [
        fld("WhoId", "reference", ["Contact", "Lead"], "Who"),
        fld("WhatId", "reference", ["Account", "Opportunity"], "What"),
        fld("Subject", "combobox"), fld("DurationInMinutes", "int"), fld("ActivityDateTime", "datetime")])
    study = describe("Study__c", "a0S", [fld("Name", "string"), fld("Description__c", "textarea", filterable=False)],
                     children=[("Research_Participant__c", "Study__c", "Participants__r")])
    participant = describe("Research_Participant__c", "a0R", [
        fld("Name", "string"), fld("Email__c", "email"),
        fld("Persona__c", "multipicklist", picklistValues=[
            {"value": v, "label": v, "active": True} for v in ("Designer", "Researcher", "Engineer")]),
        fld("Consent_Status__c", "picklist"), fld("Score__c", "double"),
        fld("Study__c", "reference", ["Study__c"], "Study__r"),
        fld("Contact__c", "reference", ["Contact"], "Contact__r"),
        fld("Enrolled__c", "date"), fld("SystemModstamp", "datetime")])
    return [account, contact, lead, member, user, group, campaign, opportunity, event, study, participant]


def dt(s):
    return s  # values are stored exactly as Salesforce renders them


def records():
    return {
        "User": [
            {"Id": USER1, "Username": "ada@example.org", "Email": "ada@example.org", "Name": "Ada Admin",
             "IsActive": True, "ManagerId": USER2, "IsDeleted": False},
            {"Id": USER2, "Username": "boss@example.org", "Email": "boss@example.org", "Name": "Big Boss",
             "IsActive": True, "ManagerId": None, "IsDeleted": False},
        ],
        "Group": [{"Id": QUEUE, "Name": "Lead Queue", "Email": "queue@example.org", "Type": "Queue",
                   "IsDeleted": False}],
        "Account": [
            {"Id": ACME, "Name": "Acme\nLabs", "Industry": "Biotechnology", "NumberOfEmployees": 120,
             "AnnualRevenue": 5000000.0, "OwnerId": USER1, "ParentId": None, "Customer_Tier__c": "Enterprise",
             "Phone": "123456", "CreatedDate": "2024-01-10T08:00:00.000+0000", "IsDeleted": False},
            {"Id": PROMO, "Name": "Promo 50%_off Ltd", "Industry": None, "NumberOfEmployees": 5,
             "AnnualRevenue": None, "OwnerId": USER2, "ParentId": ACME, "Customer_Tier__c": "Starter",
             "Phone": None, "CreatedDate": "2024-05-14T23:59:59.000+0000", "IsDeleted": False},
            {"Id": PROMOX, "Name": "Promo 50Xoff Ltd", "Industry": "Retail", "NumberOfEmployees": None,
             "AnnualRevenue": 12.5, "OwnerId": USER1, "ParentId": None, "Customer_Tier__c": None,
             "Phone": None, "CreatedDate": "2024-05-15T00:00:00.000+0000", "IsDeleted": False},
            {"Id": GLOBEX, "Name": "Globex", "Industry": "retail", "NumberOfEmployees": 40000,
             "AnnualRevenue": 1.2e7, "OwnerId": USER2, "ParentId": PROMO, "Customer_Tier__c": "Growth",
             "Phone": "555", "CreatedDate": "2023-12-31T23:00:00.000+0000", "IsDeleted": False},
        ],
        "Contact": [
            {"Id": C_OBRIEN, "FirstName": "Siobhan", "LastName": "O'Brien", "Email": "s.obrien@example.org",
             "AccountId": ACME, "OwnerId": USER1, "Birthdate": "1990-02-28", "HasOptedOutOfEmail": False,
             "MailingCity": "Cork", "MailingAddress": {"city": "Cork", "country": "IE"},
             "SystemModstamp": "2024-05-01T10:15:30.000+0000", "IsDeleted": False},
            {"Id": C_SMITH, "FirstName": "x\\", "LastName": "Smith", "Email": "SMITH@Example.org",
             "AccountId": PROMO, "OwnerId": USER2, "Birthdate": None, "HasOptedOutOfEmail": True,
             "MailingCity": None, "MailingAddress": None,
             "SystemModstamp": "2024-05-15T12:00:00.000+0000", "IsDeleted": False},
            {"Id": C_NULLS, "FirstName": None, "LastName": "Nobody", "Email": None,
             "AccountId": None, "OwnerId": USER1, "Birthdate": "1985-07-01", "HasOptedOutOfEmail": False,
             "MailingCity": None, "MailingAddress": None,
             "SystemModstamp": "2024-04-30T23:59:59.000+0000", "IsDeleted": False},
            {"Id": C_DELETED, "FirstName": "Gone", "LastName": "Deleted", "Email": "gone@example.org",
             "AccountId": ACME, "OwnerId": USER1, "Birthdate": None, "HasOptedOutOfEmail": False,
             "MailingCity": None, "MailingAddress": None,
             "SystemModstamp": "2024-05-10T00:00:00.000+0000", "IsDeleted": True},
            {"Id": CONTACT_UPPER, "FirstName": "Upper", "LastName": "Case", "Email": "upper@example.org",
             "AccountId": GLOBEX, "OwnerId": USER2, "Birthdate": None, "HasOptedOutOfEmail": False,
             "MailingCity": None, "MailingAddress": None,
             "SystemModstamp": "2024-03-01T00:00:00.000+0000", "IsDeleted": False},
            {"Id": CONTACT_LOWER, "FirstName": "Lower", "LastName": "Case", "Email": "lower@example.org",
             "AccountId": GLOBEX, "OwnerId": USER2, "Birthdate": None, "HasOptedOutOfEmail": False,
             "MailingCity": None, "MailingAddress": None,
             "SystemModstamp": "2024-03-02T00:00:00.000+0000", "IsDeleted": False},
        ],
        "Lead": [
            {"Id": L1, "FirstName": "Lena", "LastName": "Queue", "Company": "Q Corp", "Email": "lena@example.org",
             "Status": "Open - Not Contacted", "OwnerId": QUEUE, "IsConverted": False, "ConvertedContactId": None,
             "City": "Berlin", "Address": {"city": "Berlin"}, "CreatedDate": "2024-05-13T09:00:00.000+0000",
             "IsDeleted": False},
            {"Id": L2, "FirstName": "Lars", "LastName": "User", "Company": "U Corp", "Email": None,
             "Status": "Closed - Converted", "OwnerId": USER1, "IsConverted": True, "ConvertedContactId": C_SMITH,
             "City": None, "Address": None, "CreatedDate": "2024-04-01T00:00:00.000+0000", "IsDeleted": False},
            {"Id": L3, "FirstName": "Lou", "LastName": "Late", "Company": "L Corp", "Email": "lou@example.org",
             "Status": "Working - Contacted", "OwnerId": USER2, "IsConverted": False, "ConvertedContactId": None,
             "City": None, "Address": None, "CreatedDate": "2023-06-01T00:00:00.000+0000", "IsDeleted": False},
            {"Id": L4, "FirstName": "Lia", "LastName": "Binned", "Company": "B Corp", "Email": "lia@example.org",
             "Status": "Open - Not Contacted", "OwnerId": USER2, "IsConverted": False, "ConvertedContactId": None,
             "City": None, "Address": None, "CreatedDate": "2024-05-15T01:00:00.000+0000", "IsDeleted": True},
        ],
        "Campaign": [
            {"Id": CAMPAIGN1, "Name": "Spring study", "IsActive": True, "IsDeleted": False},
            {"Id": CAMPAIGN2, "Name": "Autumn study", "IsActive": False, "IsDeleted": False},
        ],
        "CampaignMember": [
            {"Id": rid("00v", 1), "CampaignId": CAMPAIGN1, "ContactId": C_OBRIEN, "LeadId": None,
             "Status": "Sent", "IsDeleted": False},
            {"Id": rid("00v", 2), "CampaignId": CAMPAIGN1, "ContactId": C_SMITH, "LeadId": L2,
             "Status": "Responded", "IsDeleted": False},
            {"Id": rid("00v", 3), "CampaignId": CAMPAIGN2, "ContactId": CONTACT_UPPER, "LeadId": None,
             "Status": "Sent", "IsDeleted": False},
            {"Id": rid("00v", 4), "CampaignId": CAMPAIGN1, "ContactId": None, "LeadId": L1,
             "Status": "Sent", "IsDeleted": False},
        ],
        "Opportunity": [
            {"Id": OPP1, "Name": "Big Deal", "Amount": 1000.0, "CloseDate": "2024-06-30",
             "AccountId": ACME, "ContactId": C_OBRIEN, "IsDeleted": False},
        ],
        "Event": [
            {"Id": EVT1, "WhoId": C_OBRIEN, "WhatId": None, "Subject": "Interview",
             "DurationInMinutes": 60, "ActivityDateTime": "2024-11-07T07:00:00.000+0000", "IsDeleted": False},
            {"Id": EVT2, "WhoId": L1, "WhatId": ACME, "Subject": "Call",
             "DurationInMinutes": 30, "ActivityDateTime": "2024-11-08T07:00:00.000+0000", "IsDeleted": False},
        ],
        "Study__c": [{"Id": STUDY, "Name": "Checkout usability", "Description__c": "Long text",
                      "IsDeleted": False}],
        "Research_Participant__c": [
            {"Id": P1, "Name": "P-1", "Email__c": "p1@example.org", "Persona__c": "Designer",
             "Consent_Status__c": "Granted", "Score__c": 1.5, "Study__c": STUDY, "Contact__c": C_OBRIEN,
             "Enrolled__c": "2024-05-15", "SystemModstamp": "2024-05-15T12:00:00.000+0000", "IsDeleted": False},
            {"Id": P2, "Name": "P-2", "Email__c": "p2@example.org", "Persona__c": "Researcher;Designer",
             "Consent_Status__c": "Granted", "Score__c": 2.0, "Study__c": STUDY, "Contact__c": None,
             "Enrolled__c": "2024-05-14", "SystemModstamp": "2024-05-14T12:00:00.000+0000", "IsDeleted": False},
            {"Id": P3, "Name": "P-3", "Email__c": None, "Persona__c": "Engineer",
             "Consent_Status__c": None, "Score__c": None, "Study__c": None, "Contact__c": None,
             "Enrolled__c": "2024-04-30", "SystemModstamp": "2024-04-30T12:00:00.000+0000", "IsDeleted": False},
            {"Id": P4, "Name": "P-4", "Email__c": None, "Persona__c": None,
             "Consent_Status__c": "Withdrawn", "Score__c": -3.0, "Study__c": STUDY, "Contact__c": None,
             "Enrolled__c": None, "SystemModstamp": "2023-01-01T00:00:00.000+0000", "IsDeleted": False},
        ],
    }


def make_org(api_version="62.0"):
    return MemoryDataSource(describes(), copy.deepcopy(records()), api_version=api_version)


def test_org_ids_carry_valid_checksums():
    org = make_org()
    for name in ("Account", "Contact", "Lead", "Research_Participant__c"):
        for rec in org.scan(name, True):
            assert to18(rec["Id"][:15]) == rec["Id"]

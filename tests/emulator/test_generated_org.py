"""The generated demo org is deterministic and carries the mess it promises."""
import re
from collections import Counter

import pytest

from emulator.ids import is_valid18
from emulator.testing import EmulatorServer

DT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000\+0000$")


@pytest.fixture(scope="module")
def emu():
    with EmulatorServer(generate=3000, seed=42) as server:
        yield server


@pytest.fixture(scope="module")
def sf(emu):
    return emu.salesforce()


@pytest.fixture(scope="module")
def contacts(sf):
    return sf.query_all("SELECT Id, Email, Phone, MobilePhone, MailingCountry, HasOptedOutOfEmail, "
                        "Consent_Status__c, Persona__c, SystemModstamp, LastModifiedDate, CreatedDate, "
                        "Account.Customer_Tier__c FROM Contact", include_deleted=True)["records"]


def test_same_seed_same_data():
    with EmulatorServer(generate=200, seed=5) as a, EmulatorServer(generate=200, seed=5) as b:
        qa = a.salesforce().query_all("SELECT Id, Email, Phone FROM Contact ORDER BY Id")["records"]
        qb = b.salesforce().query_all("SELECT Id, Email, Phone FROM Contact ORDER BY Id")["records"]
        assert qa == qb and len(qa) > 50


def test_messy_emails(contacts):
    emails = [c["Email"] for c in contacts]
    assert any(e is None for e in emails)
    assert any(e and e != e.strip() for e in emails)
    assert any(e and e.strip() != e.strip().lower() for e in emails)
    assert any(e and (e.count("@") != 1 or "." not in e.split("@")[-1]) for e in emails)


def test_phones_and_countries_from_many_places(contacts):
    phones = [c["Phone"] for c in contacts if c["Phone"]]
    assert any(p.startswith("+44") for p in phones) and any(p.startswith("0") for p in phones)
    assert any("x" in p or "ext" in p for p in phones)
    assert any(p[0].isdigit() and not p.startswith("0") for p in phones)   # country code without +
    countries = Counter(c["MailingCountry"] for c in contacts)
    assert {"US", "United States", "UK", "Germany"} & set(countries) and len(countries) > 10


def test_consent_mix(contacts):
    consent = Counter(c["Consent_Status__c"] for c in contacts)
    assert consent[None] > 0 and consent["Opted Out"] > 0 and consent["Opted In"] > 0
    assert any(c["HasOptedOutOfEmail"] for c in contacts)
    assert any(c["Persona__c"] and ";" in c["Persona__c"] for c in contacts)
    assert any(c["Account"] and c["Account"]["Customer_Tier__c"] == "Enterprise" for c in contacts)


def test_timestamps_shared_stamps_and_system_updates(contacts):
    stamps = Counter(c["SystemModstamp"] for c in contacts)
    assert stamps.most_common(1)[0][1] > 50
    assert all(DT.match(c[k]) for c in contacts for k in ("SystemModstamp", "LastModifiedDate", "CreatedDate"))
    assert all(c["SystemModstamp"] >= c["LastModifiedDate"] >= c["CreatedDate"] for c in contacts)
    assert any(c["SystemModstamp"] > c["LastModifiedDate"] for c in contacts)
    assert all(is_valid18(c["Id"]) for c in contacts)


def test_deleted_records_only_in_query_all(sf):
    live = sf.query("SELECT COUNT() FROM Contact")["totalSize"]
    everything = sf.query_all("SELECT Id FROM Contact", include_deleted=True)["totalSize"]
    deleted = sf.query_all("SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True)["totalSize"]
    assert deleted > 0 and live + deleted == everything


def test_converted_leads_and_their_campaign_members(sf):
    converted = sf.query_all("SELECT Id, Email, ConvertedContactId, ConvertedDate FROM Lead "
                             "WHERE IsConverted = true")["records"]
    assert converted and all(r["ConvertedContactId"] and r["ConvertedDate"] for r in converted)
    members = sf.query_all("SELECT Id, LeadId, ContactId, Type FROM CampaignMember "
                           "WHERE LeadId != null AND ContactId != null")["records"]
    assert members
    converted_ids = {r["Id"] for r in converted}
    assert all(m["LeadId"] in converted_ids and m["Type"] == "Contact" for m in members)
    lead_members = sf.query("SELECT COUNT() FROM CampaignMember WHERE ContactId = null")["totalSize"]
    contact_members = sf.query("SELECT COUNT() FROM CampaignMember WHERE LeadId = null")["totalSize"]
    assert lead_members > 0 and contact_members > 0


def test_same_person_as_lead_and_contact(sf, contacts):
    contact_emails = {c["Email"].strip().lower() for c in contacts if c["Email"]}
    leads = sf.query_all("SELECT Email FROM Lead WHERE IsConverted = false")["records"]
    assert sum(1 for r in leads if r["Email"] and r["Email"].strip().lower() in contact_emails) > 10


def test_campaign_member_semi_join(sf):
    camp = sf.query("SELECT Id, NumberOfContacts FROM Campaign ORDER BY NumberOfContacts DESC LIMIT 1")["records"][0]
    res = sf.query_all("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM CampaignMember "
                       f"WHERE CampaignId = '{camp['Id']}')")
    assert res["totalSize"] > 0

"""The SQLite-backed store answers exactly as the in-memory engine does, whether SQLite filters and
sorts (pushdown), Python does, or the ids spill to disk (SPILL_AT made tiny here)."""
import json

import pytest

from emulator.soql import engine, execute, parse
from emulator.soql.datasource import MemoryDataSource
from emulator.store import SpilledIds
from emulator.testing import EmulatorServer

DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
OBJECTS = ["Contact", "Lead", "Account", "CampaignMember", "Campaign", "User"]


@pytest.fixture(scope="module")
def sources():
    with EmulatorServer(generate=1500, seed=7) as server:
        st = server.state
        view = st.store.view("production", st.orgs["production"].users[0], "62.0")
        describes = [view.describe(n) for n in view.catalog.names()]
        records = {o: list(view.scan(o, True)) for o in OBJECTS}
        memory = MemoryDataSource(describes, records, api_version="62.0")
        memory.object_for_id = view.object_for_id
        yield view, memory, st.clock.now()


def _stamp(view, obj, k):
    rows = sorted(r["SystemModstamp"] for r in view.scan(obj, False))
    return rows[k][:19] + "Z"


def _id(view, obj, k):
    return sorted(r["Id"] for r in view.scan(obj, False))[k]


def queries(view):
    mid = _stamp(view, "Contact", 300)
    cid = _id(view, "Contact", 400)
    acc = next(r["AccountId"] for r in view.scan("Contact", False) if r.get("AccountId"))
    return [
        f"SELECT Id, Email, SystemModstamp FROM Contact WHERE SystemModstamp >= {mid} ORDER BY SystemModstamp, Id",
        f"SELECT Id FROM Contact WHERE SystemModstamp < {mid} ORDER BY SystemModstamp DESC",
        "SELECT Id, CreatedDate FROM Contact ORDER BY CreatedDate DESC NULLS LAST, Id",
        "SELECT Id FROM Contact WHERE HasOptedOutOfEmail = true ORDER BY Id",
        "SELECT Id FROM Contact WHERE HasOptedOutOfEmail != false AND Email != null ORDER BY LastModifiedDate",
        "SELECT Id FROM Contact WHERE CreatedDate = LAST_N_DAYS:30",
        "SELECT Id FROM Contact WHERE CreatedDate != LAST_N_DAYS:3 ORDER BY SystemModstamp",
        "SELECT Id FROM Contact WHERE CreatedDate > LAST_N_DAYS:400 AND CreatedDate <= TODAY",
        f"SELECT Id FROM Contact WHERE Id > '{cid}' ORDER BY Id LIMIT 50",
        f"SELECT Id FROM Contact WHERE Id <= '{cid[:15]}' ORDER BY Id DESC LIMIT 30 OFFSET 5",
        f"SELECT Id FROM Contact WHERE Id = '{cid[:15]}'",
        f"SELECT Id FROM Contact WHERE Id != '{cid.lower()}' AND IsDeleted = false",
        "SELECT Id FROM Contact WHERE AccountId = null",
        "SELECT Id, AccountId FROM Contact WHERE AccountId != null ORDER BY AccountId, Id",
        f"SELECT Id FROM Contact WHERE AccountId = '{acc[:15]}'",
        f"SELECT Id FROM Contact WHERE AccountId != '{acc}' ORDER BY AccountId NULLS LAST",
        "SELECT Id, LastName FROM Contact ORDER BY LastName, Id",
        "SELECT Id FROM Contact ORDER BY Consent_Status__c DESC NULLS FIRST, Id",
        "SELECT Id FROM Contact ORDER BY Email NULLS LAST LIMIT 100 OFFSET 10",
        "SELECT Id, Name FROM Contact",
        "SELECT Id FROM Contact LIMIT 20 OFFSET 3",
        f"SELECT COUNT() FROM Contact WHERE SystemModstamp > {mid}",
        f"SELECT COUNT() FROM Contact WHERE SystemModstamp > {mid} LIMIT 5",
        "SELECT COUNT() FROM Contact WHERE Email LIKE '%a%' AND HasOptedOutOfEmail = false",
        "SELECT COUNT(Id), COUNT(Email) FROM Contact WHERE DoNotCall = false",
        "SELECT Id, Account.Name, Account.Customer_Tier__c FROM Contact WHERE IsDeleted = false "
        "ORDER BY CreatedDate",
        "SELECT Id, Email FROM Contact WHERE Email LIKE '%example%' AND SystemModstamp > 2000-01-01T00:00:00Z "
        "ORDER BY SystemModstamp, Id",
        "SELECT Id FROM Contact WHERE (HasOptedOutOfEmail = true OR DoNotCall = true) ORDER BY Id",
        "SELECT Id, ConvertedDate FROM Lead WHERE IsConverted = true ORDER BY ConvertedDate DESC, Id",
        "SELECT Id FROM Lead WHERE ConvertedDate = null ORDER BY ConvertedDate, LastModifiedDate DESC",
        "SELECT Id, Name FROM Account ORDER BY Customer_Tier__c, Name",
        "SELECT Id, NumberOfEmployees FROM Account WHERE NumberOfEmployees > 10 ORDER BY NumberOfEmployees DESC",
        "SELECT Id FROM Account WHERE NumberOfEmployees != 5 ORDER BY NumberOfEmployees",
        "SELECT Id, ContactId, LeadId FROM CampaignMember WHERE ContactId != null ORDER BY LeadId NULLS LAST, Id",
        "SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM CampaignMember) ORDER BY SystemModstamp",
        "SELECT Id, (SELECT Id FROM Contacts ORDER BY CreatedDate) FROM Account ORDER BY CreatedDate LIMIT 40",
    ]


@pytest.mark.parametrize("spill_at", [7, 50_000])
@pytest.mark.parametrize("query_all", [False, True])
def test_store_answers_as_memory(sources, monkeypatch, spill_at, query_all):
    view, memory, now = sources
    monkeypatch.setattr(engine, "SPILL_AT", spill_at)
    spilled = plain = 0
    for soql in queries(view):
        a = execute(parse(soql), view, include_deleted=query_all, now=now)
        b = execute(parse(soql), memory, include_deleted=query_all, now=now)
        assert (a.total_size, a.is_count, a.aggregate_records) == (b.total_size, b.is_count, b.aggregate_records), soql
        assert list(a.ids) == list(b.ids), soql
        spilled += isinstance(a.ids, SpilledIds)
        assert a.render(a.ids[:300]) == b.render(b.ids[:300]), soql
        texts = a.render_json(a.ids[:300])
        if texts is not None:
            assert "[" + ",".join(texts) + "]" == DUMPS(b.render(b.ids[:300])), soql
            plain += 1
        if len(a.ids) > 40:
            assert a.render(a.ids[17:40]) == b.render(b.ids[17:40]), soql
    assert spilled > 10 if spill_at == 7 else spilled == 0
    assert plain > 20


def test_json_records_keep_unicode_and_numbers(sources):
    view, _, now = sources
    store = view.store
    rid = store.insert("production", "Account", {"Name": "Caf\u00e9 \"Zoë\" \\ / \u2603", "AnnualRevenue": 1.5e20,
                                                 "NumberOfEmployees": 7})
    res = execute(parse(f"SELECT Id, Name, AnnualRevenue, NumberOfEmployees, BillingAddress, Description "
                        f"FROM Account WHERE Id = '{rid}'"), view, now=now)
    assert "[" + ",".join(res.render_json(res.ids)) + "]" == DUMPS(res.render(res.ids))

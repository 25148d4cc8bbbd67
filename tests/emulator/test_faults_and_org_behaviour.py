"""Every error class the product must handle, the admin endpoint, and org behaviour over time."""
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from simple_salesforce.exceptions import (SalesforceExpiredSession, SalesforceGeneralError,
                                          SalesforceMalformedRequest, SalesforceRefusedRequest)

from emulator.testing import EmulatorServer


@pytest.fixture(scope="module")
def emu():
    with EmulatorServer() as server:
        for i in range(450):
            server.create("Lead", {"LastName": f"Fault{i:03d}", "Company": "Acme", "Email": f"f{i}@example.org"})
        yield server


@pytest.fixture
def sf(emu):
    return emu.salesforce()


PAGED = "SELECT Id FROM Lead WHERE LastName LIKE 'Fault%'"
SMALL_PAGES = {"Sforce-Query-Options": "batchSize=200"}


def test_nth_call_fails_with_503_then_recovers(emu, sf):
    emu.admin.add_fault(type="error", status=503, nth=2)
    sf.restful("")
    with pytest.raises(SalesforceGeneralError) as e:
        sf.restful("")
    assert e.value.status == 503
    assert e.value.content == [{"message": "Server Unavailable", "errorCode": "SERVER_UNAVAILABLE"}]
    sf.restful("")


def test_500_unknown_exception(emu, sf):
    emu.admin.add_fault(type="error", status=500, nth=1)
    with pytest.raises(SalesforceGeneralError) as e:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert e.value.status == 500 and e.value.content[0]["errorCode"] == "UNKNOWN_EXCEPTION"


def test_share_of_calls_fails(emu, sf):
    emu.admin.add_fault(type="error", status=503, share=0.5, seed=3)
    outcomes = []
    for _ in range(40):
        try:
            sf.restful("")
            outcomes.append(True)
        except SalesforceGeneralError:
            outcomes.append(False)
    assert 5 < outcomes.count(False) < 35


def test_request_limit_exceeded_from_call_n(emu, sf):
    emu.admin.add_fault(type="limit_exceeded", from_call=3)
    sf.restful("")
    sf.restful("")
    for _ in range(2):
        with pytest.raises(SalesforceRefusedRequest) as e:
            sf.restful("")
        assert e.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def test_daily_api_counter_and_reset():
    with EmulatorServer(api_limit=5) as server:
        sf = server.salesforce()
        for i in range(5):
            sf.restful("")
        assert sf.api_usage["api-usage"].used == 5 and sf.api_usage["api-usage"].total == 5
        with pytest.raises(SalesforceRefusedRequest) as e:
            sf.restful("")
        assert e.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        r = requests.post(server.url + "/__emulator/reset-limits", headers={"X-Emulator-Admin-Key": server.admin_key},
                          verify=server.ca_file, json={})
        assert r.status_code == 200
        sf.restful("")
        assert sf.limits()["DailyApiRequests"] == {"Max": 5, "Remaining": 3}


def test_expire_all_sessions_then_refresh(emu):
    token = emu.token_for()
    sf = emu.salesforce(token=token)
    sf.restful("")
    emu.admin.expire_sessions()
    with pytest.raises(SalesforceExpiredSession):
        sf.restful("")
    r = emu.http_session().post(emu.token_url, data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"],
                                                     "client_id": emu.client_id, "client_secret": emu.client_secret})
    assert r.status_code == 200
    emu.salesforce(token=r.json() | {"refresh_token": token["refresh_token"]}).restful("")


def test_invalid_query_locator(emu, sf):
    first = sf.query(PAGED, headers=SMALL_PAGES)
    emu.admin.add_fault(type="invalid_locator", nth=1)
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=SMALL_PAGES)
    assert e.value.content == [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]
    again = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=SMALL_PAGES)
    assert len(again["records"]) == 200


def test_unknown_locator(sf):
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.query_more("/services/data/v62.0/query/0r85g0000000ZZZAAA-2000", identifier_is_url=True)
    assert e.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_slow_responses(emu, sf):
    emu.admin.add_fault(type="slow", seconds=0.4, nth=1)
    t = time.monotonic()
    sf.restful("")
    assert time.monotonic() - t >= 0.4


def test_page_that_always_times_out(emu):
    emu.admin.add_fault(type="page_timeout", page=2, seconds=1.5)
    s = emu.http_session()
    s.headers.update({"Authorization": "Bearer " + emu.token_for()["access_token"], **SMALL_PAGES})
    first = s.get(emu.url + "/services/data/v62.0/query", params={"q": PAGED}, timeout=1).json()
    for _ in range(2):  # a retry of the same page times out again
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.get(emu.url + first["nextRecordsUrl"], timeout=0.5)


def test_page_cut_off_mid_body(emu, sf):
    emu.admin.add_fault(type="truncate_page", page=2, times=1)
    first = sf.query(PAGED, headers=SMALL_PAGES)
    with pytest.raises(ValueError):
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=SMALL_PAGES)
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=SMALL_PAGES)
    assert len(second["records"]) == 200


def test_done_false_without_next_records_url(emu, sf):
    emu.admin.add_fault(type="done_without_next", page=1, times=1)
    res = sf.query(PAGED)
    assert res["done"] is False and "nextRecordsUrl" not in res


def test_admin_endpoint_needs_the_admin_key(emu):
    s = emu.http_session()
    url = emu.url + "/__emulator/faults"
    assert s.post(url, json={"type": "error", "status": 503}).status_code == 403
    token = emu.token_for()["access_token"]
    assert s.post(url, json={"type": "error"}, headers={"Authorization": f"Bearer {token}"}).status_code == 403
    assert s.get(url, headers={"X-Emulator-Admin-Key": "wrong"}).status_code == 403
    key = {"X-Emulator-Admin-Key": emu.admin_key}
    r = s.post(url, json={"type": "error", "status": 503, "nth": 1, "org": "sandbox"}, headers=key)
    assert r.status_code == 201 and r.json()["rules"][0]["org"] == "sandbox"
    assert s.post(url, json={"type": "bogus"}, headers=key).status_code == 400
    emu.salesforce().restful("")   # production untouched by a sandbox rule
    with pytest.raises(SalesforceGeneralError):
        emu.salesforce("admin@acme-uat.example").restful("")
    assert s.delete(url, headers=key).json() == {"rules": []}


def test_admin_clock_moves_time(emu):
    s = emu.http_session()
    key = {"X-Emulator-Admin-Key": emu.admin_key}
    before = emu.admin.now()
    r = s.post(emu.url + "/__emulator/clock", json={"advance": 86400}, headers=key)
    assert r.status_code == 200
    assert emu.admin.now() - before >= timedelta(days=1)


def test_api_disabled_edition(emu):
    sf = emu.salesforce("admin@smallshop.example")
    with pytest.raises(SalesforceRefusedRequest) as e:
        sf.query("SELECT Id FROM Contact")
    assert e.value.content == [{"message": "The REST API is not enabled for this Organization.",
                                "errorCode": "API_DISABLED_FOR_ORG"}]
    with pytest.raises(SalesforceRefusedRequest):
        sf.describe()


def test_person_account_org(emu):
    sf = emu.salesforce("admin@pinecone.example")
    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert {"IsPersonAccount", "PersonEmail", "PersonMobilePhone", "PersonHasOptedOutOfEmail"} <= set(fields)
    assert "Customer_Tier__c" in fields
    assert not any(n.count("__") > 1 for n in fields)
    rid = sf.Account.create({"LastName": "Person", "FirstName": "Pat", "PersonEmail": "pat@example.org"})["id"]
    assert sf.Account.get(rid)["PersonEmail"] == "pat@example.org"
    prod_fields = {f["name"] for f in emu.salesforce().Account.describe()["fields"]}
    assert "PersonEmail" not in prod_fields


def test_person_account_org_generates_person_accounts_with_their_contacts():
    """--generate in the Person Account org: person accounts (IsPersonAccount, Person* fields,
    PersonContactId) next to business accounts, each with the Contact behind it; an Account created
    with a LastName is a person account named like a Contact."""
    with EmulatorServer(generate=100, seed=2, org="personaccounts") as server:
        sf = server.salesforce("admin@pinecone.example")
        people = sf.query_all("SELECT Id, Name, FirstName, LastName, PersonEmail, PersonMobilePhone, "
                              "PersonHasOptedOutOfEmail, PersonContactId FROM Account WHERE IsPersonAccount = true")
        assert people["totalSize"] >= 25
        assert sf.query("SELECT COUNT() FROM Account WHERE IsPersonAccount = false")["totalSize"] > 0
        assert any(r["PersonEmail"] for r in people["records"])
        assert any(r["PersonMobilePhone"] for r in people["records"])
        for r in people["records"][:5]:
            assert r["Name"] == " ".join(x for x in (r["FirstName"], r["LastName"]) if x)
            c = sf.query(f"SELECT IsPersonAccount, AccountId, Email FROM Contact WHERE Id = '{r['PersonContactId']}'")
            rec = c["records"][0]
            assert rec["IsPersonAccount"] is True and rec["AccountId"] == r["Id"] and rec["Email"] == r["PersonEmail"]
        assert sf.query("SELECT COUNT() FROM Contact WHERE IsPersonAccount = true")["totalSize"] == people["totalSize"]
        rid = sf.Account.create({"FirstName": "Pat", "LastName": "Person", "PersonEmail": "pat@example.org"})["id"]
        assert (sf.Account.get(rid)["IsPersonAccount"], sf.Account.get(rid)["Name"]) == (True, "Pat Person")
        rid = sf.Account.create({"Name": "Pinecone Supplies"})["id"]
        assert sf.Account.get(rid)["IsPersonAccount"] is False
        assert "IsPersonAccount" not in {f["name"] for f in server.salesforce().Account.describe()["fields"]}


def test_a_person_account_created_over_rest_gets_the_contact_behind_it_and_keeps_it_in_step(emu):
    """As on Salesforce: creating a person account creates its Contact (IsPersonAccount, AccountId,
    the Person* fields as the Contact's own) and names it in PersonContactId; updating the account's
    Person* fields updates that Contact, whose stamps move (so an incremental sync of Contacts sees it)."""
    sf = emu.salesforce("admin@pinecone.example")
    rid = sf.Account.create({"FirstName": "Rae", "LastName": "Quill", "PersonEmail": "rae@example.org",
                             "PersonMobilePhone": "+44 7700 900123", "PersonMailingCountry": "United Kingdom",
                             "PersonHasOptedOutOfEmail": True})["id"]
    account = sf.Account.get(rid)
    contact = sf.Contact.get(account["PersonContactId"])
    assert (contact["AccountId"], contact["IsPersonAccount"], contact["Name"]) == (rid, True, "Rae Quill")
    assert (contact["Email"], contact["MobilePhone"], contact["MailingCountry"], contact["HasOptedOutOfEmail"]) == (
        "rae@example.org", "+44 7700 900123", "United Kingdom", True)
    assert sf.query(f"SELECT COUNT() FROM Contact WHERE AccountId = '{rid}'")["totalSize"] == 1
    before = contact["SystemModstamp"]
    emu.admin.advance_clock(5)
    sf.Account.update(rid, {"PersonEmail": "rae.quill@example.org", "PersonHasOptedOutOfEmail": False})
    contact = sf.Contact.get(account["PersonContactId"])
    assert (contact["Email"], contact["HasOptedOutOfEmail"]) == ("rae.quill@example.org", False)
    assert contact["SystemModstamp"] > before
    business = sf.Account.create({"Name": "Quill Supplies"})["id"]
    assert sf.Account.get(business)["PersonContactId"] is None
    assert sf.query(f"SELECT COUNT() FROM Contact WHERE AccountId = '{business}'")["totalSize"] == 0


def test_update_moves_both_stamps_and_system_update_only_systemmodstamp(emu, sf):
    emu.admin.set_clock(datetime(2026, 1, 10, 12, 0, 0, tzinfo=timezone.utc), frozen=True)
    cid = sf.Contact.create({"LastName": "Stamp"})["id"]
    created = sf.Contact.get(cid)
    assert created["CreatedDate"] == created["LastModifiedDate"] == created["SystemModstamp"] == \
        "2026-01-10T12:00:00.000+0000"
    emu.admin.advance_clock(90.7)
    sf.Contact.update(cid, {"Title": "Dr"})
    updated = sf.Contact.get(cid)
    assert updated["LastModifiedDate"] == updated["SystemModstamp"] == "2026-01-10T12:01:30.000+0000"
    emu.admin.advance_clock(60)
    assert emu.touch(cid) == "2026-01-10T12:02:30.000+0000"
    touched = sf.Contact.get(cid)
    assert touched["LastModifiedDate"] == "2026-01-10T12:01:30.000+0000"
    assert touched["SystemModstamp"] == "2026-01-10T12:02:30.000+0000"
    res = sf.query("SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-10T12:02:00Z AND LastName = 'Stamp'")
    assert [r["Id"] for r in res["records"]] == [cid]


def test_get_updated_and_deleted(emu, sf):
    emu.admin.set_clock(datetime(2026, 2, 1, 9, 0, 0, tzinfo=timezone.utc), frozen=True)
    keep = sf.Contact.create({"LastName": "Window"})["id"]
    gone = sf.Contact.create({"LastName": "Window2"})["id"]
    emu.admin.advance_clock(120)
    sf.Contact.delete(gone)
    emu.admin.advance_clock(120)
    start = datetime(2026, 2, 1, 8, 59, tzinfo=timezone.utc)
    end = datetime(2026, 2, 1, 9, 10, tzinfo=timezone.utc)
    updated = sf.Contact.updated(start, end)
    assert keep in updated["ids"] and gone not in updated["ids"]
    assert updated["latestDateCovered"] == "2026-02-01T09:04:00.000+0000"
    deleted = sf.Contact.deleted(start, end)
    assert deleted["deletedRecords"] == [{"id": gone, "deletedDate": "2026-02-01T09:02:00.000+0000"}]
    assert set(deleted) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}


def test_lead_conversion(emu, sf):
    camp = sf.Campaign.create({"Name": "Panel"})["id"]
    lead = sf.Lead.create({"LastName": "Convert", "FirstName": "Cory", "Company": "Acme", "Email": "cory@example.org"})["id"]
    member = sf.CampaignMember.create({"CampaignId": camp, "LeadId": lead, "Status": "Sent"})["id"]
    assert sf.CampaignMember.get(member)["Email"] == "cory@example.org"
    out = emu.convert_lead(lead)
    converted = sf.Lead.get(lead)
    assert converted["IsConverted"] is True and converted["ConvertedContactId"] == out["contactId"]
    assert converted["ConvertedDate"] == emu.admin.now().strftime("%Y-%m-%d")
    m = sf.CampaignMember.get(member)
    assert m["ContactId"] == out["contactId"] and m["LeadId"] == lead and m["Type"] == "Contact"
    assert sf.Contact.get(out["contactId"])["Email"] == "cory@example.org"
    with pytest.raises(SalesforceMalformedRequest):
        sf.Lead.update(lead, {"Title": "x"})


def test_faults_off_by_default_and_sessions_expired_per_org_over_http():
    """A fresh emulator has no fault rules; POST /__emulator/expire-sessions with an org ends only that
    org's sessions (401 INVALID_SESSION_ID), a refresh brings a new working one."""
    with EmulatorServer() as server:
        s = server.http_session()
        key = {"X-Emulator-Admin-Key": server.admin_key}
        assert s.get(server.url + "/__emulator/faults", headers=key).json() == {"rules": []}
        prod_token = server.token_for()
        prod, sandbox = server.salesforce(token=prod_token), server.salesforce("admin@acme-uat.example")
        for _ in range(20):
            prod.restful("")
        r = s.post(server.url + "/__emulator/expire-sessions", json={"org": "sandbox"}, headers=key)
        assert r.status_code == 200 and r.json()["expired"] >= 1
        prod.restful("")
        with pytest.raises(SalesforceExpiredSession) as e:
            sandbox.restful("")
        assert e.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        assert s.post(server.url + "/__emulator/expire-sessions", json={}, headers=key).json()["expired"] >= 1
        with pytest.raises(SalesforceExpiredSession):
            prod.restful("")
        refreshed = s.post(server.token_url, data={"grant_type": "refresh_token",
                                                    "refresh_token": prod_token["refresh_token"]},
                           auth=(server.client_id, server.client_secret)).json()
        server.salesforce(token=refreshed).restful("")


# ---- every fault type set over the admin HTTP endpoint ------------------------------------------------

def _post_rule(emu, rule):
    r = emu.http_session().post(emu.url + "/__emulator/faults", json=rule,
                                headers={"X-Emulator-Admin-Key": emu.admin_key})
    assert r.status_code == 201, r.text
    return r.json()["rules"][-1]


def _expect_error(call, exc, status, code):
    with pytest.raises(exc) as e:
        call()
    assert e.value.status == status and e.value.content[0]["errorCode"] == code


def _drive_error_500(emu, sf):
    _expect_error(lambda: sf.restful(""), SalesforceGeneralError, 500, "UNKNOWN_EXCEPTION")


def _drive_error_503(emu, sf):
    _expect_error(lambda: sf.restful(""), SalesforceGeneralError, 503, "SERVER_UNAVAILABLE")


def _drive_limit_exceeded(emu, sf):
    _expect_error(lambda: sf.restful(""), SalesforceRefusedRequest, 403, "REQUEST_LIMIT_EXCEEDED")


def _drive_slow(emu, sf):
    t = time.monotonic()
    sf.restful("")
    assert time.monotonic() - t >= 0.3


def _drive_invalid_locator(emu, sf):
    first = sf.query(PAGED, headers=SMALL_PAGES)
    _expect_error(lambda: sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=SMALL_PAGES),
                  SalesforceMalformedRequest, 400, "INVALID_QUERY_LOCATOR")


def _drive_page_timeout(emu, sf):
    s = emu.http_session()
    s.headers.update({"Authorization": "Bearer " + sf.session_id, **SMALL_PAGES})
    first = s.get(emu.url + "/services/data/v62.0/query", params={"q": PAGED}, timeout=5).json()
    with pytest.raises(requests.exceptions.ReadTimeout):
        s.get(emu.url + first["nextRecordsUrl"], timeout=0.3)


def _drive_truncate_page(emu, sf):
    first = sf.query(PAGED, headers=SMALL_PAGES)
    with pytest.raises(ValueError):
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=SMALL_PAGES)


def _drive_done_without_next(emu, sf):
    res = sf.query(PAGED)
    assert res["done"] is False and "nextRecordsUrl" not in res


def _drive_expire_sessions(emu, sf):
    sf.restful("")                                            # call 1 of the rule: not yet
    with pytest.raises(SalesforceExpiredSession) as e:        # call 2: every session of the org lapses now
        sf.restful("")
    assert e.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    with pytest.raises(SalesforceExpiredSession):             # and stays lapsed
        sf.restful("")


FAULT_CASES = {
    "error_500": ({"type": "error", "status": 500, "nth": 1}, _drive_error_500),
    "error_503": ({"type": "error", "status": 503, "nth": 1}, _drive_error_503),
    "limit_exceeded": ({"type": "limit_exceeded", "nth": 1}, _drive_limit_exceeded),
    "slow": ({"type": "slow", "seconds": 0.3, "nth": 1}, _drive_slow),
    "invalid_locator": ({"type": "invalid_locator", "nth": 1}, _drive_invalid_locator),
    "page_timeout": ({"type": "page_timeout", "page": 2, "seconds": 1, "times": 1}, _drive_page_timeout),
    "truncate_page": ({"type": "truncate_page", "page": 2, "times": 1}, _drive_truncate_page),
    "done_without_next": ({"type": "done_without_next", "page": 1, "times": 1}, _drive_done_without_next),
    "expire_sessions": ({"type": "expire_sessions", "nth": 2}, _drive_expire_sessions),
}


def test_fault_cases_cover_every_fault_type():
    from emulator.faults import TYPES
    assert {rule["type"] for rule, _ in FAULT_CASES.values()} == TYPES


@pytest.mark.parametrize("case", sorted(FAULT_CASES))
def test_every_fault_type_set_over_the_admin_endpoint(emu, case):
    rule, drive = FAULT_CASES[case]
    token = emu.token_for()
    sf = emu.salesforce(token=token)
    listed = _post_rule(emu, {**rule, "org": "production"})
    assert listed["type"] == rule["type"] and listed["org"] == "production"
    drive(emu, sf)
    emu.salesforce("admin@acme-uat.example").query("SELECT Id FROM Lead LIMIT 1")  # another org: untouched
    if rule["type"] == "expire_sessions":
        r = emu.http_session().post(emu.token_url, data={"grant_type": "refresh_token",
                                                         "refresh_token": token["refresh_token"]},
                                    auth=(emu.client_id, emu.client_secret))
        assert r.status_code == 200
        emu.salesforce(token=r.json()).restful("")


def test_admin_bodies_are_json_whatever_the_content_type_and_bad_values_are_400s():
    """``curl -d '{...}'`` sends form encoding: the body is still read as JSON, never silently
    ignored (an ignored {"org": "sandbox"} used to expire production's sessions). Bad values are a
    400 with a JSON reason, never a 500."""
    with EmulatorServer() as server:
        s = server.http_session()
        key = {"X-Emulator-Admin-Key": server.admin_key, "Content-Type": "application/x-www-form-urlencoded"}
        prod = server.salesforce(token=server.token_for())
        r = s.post(server.url + "/__emulator/faults", data='{"type":"error","status":503,"share":0.2}', headers=key)
        assert r.status_code == 201 and r.json()["rules"][0]["share"] == 0.2
        s.delete(server.url + "/__emulator/faults", headers=key)
        r = s.post(server.url + "/__emulator/expire-sessions", data='{"org":"sandbox"}', headers=key)
        assert r.status_code == 200
        prod.restful("")  # production's session still works
        before = s.get(server.url + "/__emulator/clock", headers=key).json()
        r = s.post(server.url + "/__emulator/clock", data='{"advance":3600}', headers=key)
        assert r.status_code == 200 and r.json() != before
        for path, body in [("/__emulator/faults", '{"type":"error","status":500,"nth":"x"}'),
                           ("/__emulator/faults", '{"type":"slow","seconds":"long"}'),
                           ("/__emulator/clock", '{"set":"yesterday"}'),
                           ("/__emulator/clock", "not json"),
                           ("/__emulator/faults", ""),
                           ("/__emulator/expire-sessions", "[1, 2]")]:
            r = s.post(server.url + path, data=body, headers=key)
            assert r.status_code == 400, (path, body, r.status_code, r.text[:200])
            assert r.json()["error"] in ("invalid_request", "invalid_fault") and r.json()["error_description"]

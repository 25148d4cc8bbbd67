"""REST contract, driven through simple-salesforce (and requests where the library hides the wire)."""
import re

import pytest
from simple_salesforce.exceptions import (SalesforceExpiredSession, SalesforceMalformedRequest,
                                          SalesforceResourceNotFound)

from emulator.ids import is_valid18
from emulator.testing import EmulatorServer


@pytest.fixture(scope="module")
def emu():
    with EmulatorServer() as server:
        for i in range(2500):
            server.create("Contact", {"LastName": f"Paged{i:04d}", "Email": f"paged{i}@example.org"})
        yield server


@pytest.fixture
def sf(emu):
    return emu.salesforce()


def test_versions_need_no_auth_and_list_oldest_first(emu):
    r = emu.http_session().get(emu.url + "/services/data/")
    assert r.status_code == 200
    versions = r.json()
    assert versions[0]["version"] < versions[-1]["version"]
    v59 = next(v for v in versions if v["version"] == "59.0")
    assert v59 == {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}
    assert any(v["version"] == "62.0" and v["label"] == "Winter '25" for v in versions)
    assert "Sforce-Limit-Info" not in r.headers


def test_resources_and_limit_header(sf):
    res = sf.restful("")
    assert res["sobjects"] == "/services/data/v62.0/sobjects"
    assert res["identity"].startswith("https://")
    assert sf.api_usage["api-usage"].total == 15000
    assert sf.api_usage["api-usage"].used >= 1


def test_unknown_version_is_not_found(emu):
    token = emu.token_for()
    r = emu.http_session().get(emu.url + "/services/data/v99.0/sobjects",
                               headers={"Authorization": "Bearer " + token["access_token"]})
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "NOT_FOUND"


def test_describe_global_and_object(sf):
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Lead", "Contact", "Account", "Campaign", "CampaignMember", "User", "Organization",
            "Research_Participant__c", "Panel_Member__c", "Customer_Profile__c", "Community_Member__c"} <= names
    d = sf.Contact.describe()
    fields = {f["name"]: f for f in d["fields"]}
    assert fields["HasOptedOutOfEmail"]["type"] == "boolean" and fields["HasOptedOutOfEmail"]["nillable"] is False
    assert fields["Persona__c"]["type"] == "multipicklist"
    assert fields["MailingCity"]["compoundFieldName"] == "MailingAddress"
    assert fields["MailingAddress"]["type"] == "address"
    assert d["urls"]["describe"] == "/services/data/v62.0/sobjects/Contact/describe"
    rp = sf.Research_Participant__c.describe()
    contact = next(f for f in rp["fields"] if f["name"] == "Contact__c")
    assert contact["relationshipName"] == "Contact__r" and contact["referenceTo"] == ["Contact"]
    assert next(f for f in rp["fields"] if f["name"] == "External_Id__c")["externalId"] is True
    tier = next(f for f in sf.Account.describe()["fields"] if f["name"] == "Customer_Tier__c")
    assert [p["value"] for p in tier["picklistValues"]] == ["Enterprise", "Mid-Market", "SMB"]
    assert sf.Contact.metadata()["objectDescribe"]["keyPrefix"] == "003"


def test_unknown_object_is_404_not_found(sf):
    with pytest.raises(SalesforceResourceNotFound) as e:
        sf.Xyzzy__c.describe()
    assert e.value.content == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


def test_create_get_update_delete(sf, emu):
    res = sf.Contact.create({"LastName": "Lovelace", "FirstName": "Ada", "Email": "ada@example.org",
                             "Persona__c": "Researcher;Engineer"})
    assert res["success"] is True and res["errors"] == [] and is_valid18(res["id"])
    cid = res["id"]
    assert cid.startswith("003")
    rec = sf.Contact.get(cid)
    assert rec["attributes"] == {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{cid}"}
    assert rec["Name"] == "Ada Lovelace" and rec["HasOptedOutOfEmail"] is False and rec["Phone"] is None
    assert sf.Contact.update(cid, {"HasOptedOutOfEmail": True}) == 204
    assert sf.Contact.get(cid)["HasOptedOutOfEmail"] is True
    assert sf.Contact.delete(cid) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get(cid)
    live = sf.query(f"SELECT Id FROM Contact WHERE Id = '{cid}'")
    everything = sf.query_all(f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{cid}'", include_deleted=True)
    assert live["totalSize"] == 0
    assert everything["records"][0]["IsDeleted"] is True


def test_create_errors(sf):
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.Contact.create({"FirstName": "No last name"})
    assert e.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert e.value.content[0]["fields"] == ["LastName"]
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.Contact.create({"LastName": "x", "Nope__c": 1})
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_query_pages_over_2000_records(sf):
    first = sf.query("SELECT Id, LastName FROM Contact WHERE LastName LIKE 'Paged%'")
    assert first["totalSize"] == 2500 and first["done"] is False
    assert len(first["records"]) == 2000
    url = first["nextRecordsUrl"]
    assert url.startswith("/services/data/v62.0/query/0r8") and url.endswith("-2000")
    assert is_valid18(url.split("/")[-1].split("-")[0])
    second = sf.query_more(url, identifier_is_url=True)
    assert second["totalSize"] == 2500 and second["done"] is True and "nextRecordsUrl" not in second
    assert len(second["records"]) == 500
    ids = [r["Id"] for r in first["records"] + second["records"]]
    assert len(set(ids)) == 2500
    assert len(list(sf.query_all_iter("SELECT Id FROM Contact WHERE LastName LIKE 'Paged%'"))) == 2500


def test_batch_size_header(sf):
    pages = []
    res = sf.query("SELECT Id FROM Contact WHERE LastName LIKE 'Paged%'",
                   headers={"Sforce-Query-Options": "batchSize=500"})
    pages.append(len(res["records"]))
    while not res["done"]:
        res = sf.query_more(res["nextRecordsUrl"], identifier_is_url=True,
                            headers={"Sforce-Query-Options": "batchSize=500"})
        pages.append(len(res["records"]))
    assert pages == [500] * 5


def test_count_queries(sf):
    assert sf.query("SELECT COUNT() FROM Contact WHERE LastName LIKE 'Paged%'") == {
        "totalSize": 2500, "done": True, "records": []}
    agg = sf.query("SELECT COUNT(Id) FROM Contact WHERE LastName LIKE 'Paged%'")
    assert agg["records"][0]["expr0"] == 2500 and agg["records"][0]["attributes"] == {"type": "AggregateResult"}


def test_query_errors(sf, emu):
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.query("SELECT Id, Nope FROM Lead")
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.query("SELECT Id FROM XYZZY")
    assert e.value.content[0]["errorCode"] == "INVALID_TYPE"
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.query("SELECT Id FROM Contact WHERE LastName = 'a' AND Email = 'b' OR Email = 'c'")
    assert e.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    r = emu.http_session().get(emu.url + "/services/data/v62.0/query",
                               headers={"Authorization": "Bearer " + emu.token_for()["access_token"]})
    assert r.status_code == 400
    assert r.json() == [{"message": "SOQL statements cannot be empty or null", "errorCode": "MALFORMED_QUERY"}]


def test_trailing_slash_is_optional(emu):
    s = emu.http_session()
    s.headers["Authorization"] = "Bearer " + emu.token_for()["access_token"]
    for path in ("sobjects", "sobjects/", "limits", "limits/", "sobjects/Contact/describe",
                 "sobjects/Contact/describe/", "query?q=SELECT+Id+FROM+Lead", "query/?q=SELECT+Id+FROM+Lead"):
        r = s.get(f"{emu.url}/services/data/v62.0/{path}")
        assert r.status_code == 200, path
        assert r.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_limit_header_on_error_responses_too(emu):
    """Sforce-Limit-Info rides on every response of an authenticated call, errors included (400, 404,
    403 REQUEST_LIMIT_EXCEEDED); a 401 has no session, so no usage to report."""
    s = emu.http_session()
    s.headers["Authorization"] = "Bearer " + emu.token_for()["access_token"]
    base = f"{emu.url}/services/data/v62.0/"
    for path, status in (("query?q=SELECT+Nope+FROM+Lead", 400), ("sobjects/Nope/describe", 404),
                         ("sobjects/Contact/003000000000000AAA", 404)):
        r = s.get(base + path)
        assert r.status_code == status and re.fullmatch(r"api-usage=\d+/15000", r.headers["Sforce-Limit-Info"])
    emu.admin.add_fault(type="limit_exceeded", nth=1)
    r = s.get(base + "limits")
    assert r.status_code == 403 and r.headers["Sforce-Limit-Info"].startswith("api-usage=")
    r = s.get(base + "limits", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "Sforce-Limit-Info" not in r.headers


def test_invalid_session_is_401_array(emu):
    r = emu.http_session().get(emu.url + "/services/data/v62.0/sobjects",
                               headers={"Authorization": "Bearer 00Dxx!garbage"})
    assert r.status_code == 401
    assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_sessions_expire_after_the_lifetime():
    with EmulatorServer(session_lifetime=60) as server:
        sf = server.salesforce()
        sf.restful("")
        server.admin.advance_clock(61)
        with pytest.raises(SalesforceExpiredSession) as e:
            sf.restful("")
        assert e.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_limits_and_record_count(sf, emu):
    lim = sf.limits()
    assert lim["DailyApiRequests"]["Max"] == 15000
    assert lim["DailyApiRequests"]["Remaining"] == 15000 - emu.admin.api_usage()
    counts = sf.restful("limits/recordCount", params={"sObjects": "Contact,Lead,Nope"})
    assert counts == {"sObjects": [{"count": emu.count("Contact"), "name": "Contact"}]}


def test_fls_hides_fields_for_restricted_user(emu):
    sf = emu.salesforce("restricted@acme.example")
    names = {f["name"] for f in sf.Contact.describe()["fields"]}
    assert "Phone" not in names and "MobilePhone" not in names and "Email" in names
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.query("SELECT Id, Phone FROM Contact")
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD"
    admin_names = {f["name"] for f in emu.salesforce().Contact.describe()["fields"]}
    assert "Phone" in admin_names


def test_query_all_pages_over_2000_with_deleted_rows(sf):
    gone = [sf.Contact.create({"LastName": f"Gone{i:02d}"})["id"] for i in range(30)]
    for cid in gone:
        assert sf.Contact.delete(cid) == 204
    soql = "SELECT Id, IsDeleted FROM Contact WHERE LastName LIKE 'Paged%' OR LastName LIKE 'Gone%'"
    first = sf.query(soql, include_deleted=True)
    assert first["totalSize"] == 2530 and first["done"] is False and len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/0r8")   # under /query/ even for queryAll
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, include_deleted=True)
    assert rest["done"] is True and len(rest["records"]) == 530
    rows = first["records"] + rest["records"]
    assert len({r["Id"] for r in rows}) == 2530
    assert {r["Id"] for r in rows if r["IsDeleted"]} == set(gone)
    assert sf.query(soql)["totalSize"] == 2500

"""Salesforce CLI data-tree plans load and answer relationship queries through simple-salesforce."""
import pytest

from emulator.ids import is_valid18
from emulator.loader import UnresolvableRefsError
from emulator.testing import EmulatorServer
from tests.conftest import shared_path


def data(*parts):
    return str(shared_path("fixtures", "sfdx-data", *parts))


@pytest.fixture(scope="module")
def emu():
    with EmulatorServer() as server:
        server.load(data("coral-cloud", "data-plan.json"))
        server.load(data("easy-spaces-lwc", "Plan1.json"), data("easy-spaces-lwc", "Plan2.json"))
        server.load(data("coral-cloud", "data-plan-large.json"), org="sandbox")
        yield server


def test_coral_cloud_relationship_query(emu):
    sf = emu.salesforce()
    res = sf.query("SELECT Id, Name, Rating__c, Contact__r.Email, Experience__r.Name FROM Guest_Review__c")
    assert res["totalSize"] == 10
    for rec in res["records"]:
        assert is_valid18(rec["Id"]) and rec["Id"].startswith(sf.Guest_Review__c.describe()["keyPrefix"])
        assert rec["Contact__r"]["attributes"]["type"] == "Contact"
        assert rec["Contact__r"]["Email"].endswith("@example.com")
        assert rec["Experience__r"]["Name"]
        assert isinstance(rec["Rating__c"], float)
    assert sf.query("SELECT COUNT() FROM Contact WHERE Email LIKE '%@example.com'")["totalSize"] == 156


def test_synthesised_describes_infer_types(emu):
    sf = emu.salesforce()
    exp = {f["name"]: f for f in sf.Experience__c.describe()["fields"]}
    assert exp["Price__c"]["type"] == "currency"
    assert exp["Default_Start_Time__c"]["type"] == "time"
    assert exp["Picture_URL__c"]["type"] == "url"
    review = {f["name"]: f for f in sf.Guest_Review__c.describe()["fields"]}
    assert review["Contact__c"]["type"] == "reference"
    assert review["Contact__c"]["referenceTo"] == ["Contact"]
    assert review["Contact__c"]["relationshipName"] == "Contact__r"
    contact = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert contact["External_Id__c"]["type"] == "string"
    assert contact["Preferred_Name__c"]["custom"] is True
    space = {f["name"]: f for f in sf.Space__c.describe()["fields"]}
    assert space["Type__c"]["type"] == "multipicklist"
    keys = set(sf.Contact.describe()["fields"][0])
    assert all(set(f) == keys for f in review.values())


def test_easy_spaces_loads_and_joins(emu):
    sf = emu.salesforce()
    res = sf.query("SELECT Id, Contact__r.Email, Contact__r.Account.Name, Market__r.Name FROM Reservation__c")
    assert res["totalSize"] == 2
    assert all(r["Contact__r"]["Account"]["Name"] for r in res["records"])
    assert sf.query("SELECT COUNT() FROM Space__c")["totalSize"] == 132
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 11
    spaces = sf.query("SELECT Name FROM Space__c WHERE Type__c INCLUDES ('Outdoor')")
    assert 0 < spaces["totalSize"] < 132


def test_large_plan_goes_into_the_sandbox_org_only(emu):
    assert emu.count("Contact", org="sandbox") == 992
    sandbox = emu.salesforce("admin@acme-uat.example")
    res = sandbox.query_all("SELECT Id, Contact__r.LastName FROM Guest_Review__c")
    assert res["totalSize"] == 10


def test_nested_children_and_refs_across_files():
    with EmulatorServer() as server:
        server.load(data("plugin-data", "data-project-data", "accounts-contacts-plan.json"))
        sf = server.salesforce()
        res = sf.query("SELECT Name, (SELECT LastName FROM Contacts) FROM Account WHERE Name = 'SampleAccount'")
        assert res["records"][0]["Contacts"]["totalSize"] == 3


def test_legacy_plan_shape_and_record_type_by_name():
    with EmulatorServer() as server:
        counts = server.load(data("plugin-data", "api-tree-test-files", "accounts-contacts-plan.json"),
                             data("plugin-data", "api-tree-test-files", "travel-expense.json"))
        assert counts["Contact"] == 6 and counts["Travel_Expense__c"] == 3
        sf = server.salesforce()
        res = sf.query("SELECT Name, RecordType.Name FROM Travel_Expense__c ORDER BY Name")
        assert [(r["Name"], r["RecordType"]["Name"]) for r in res["records"]] == [
            ("BOI-STX", "flights"), ("dinner", "food"), ("lunch", "food")]
        assert sf.query("SELECT COUNT() FROM RecordType")["totalSize"] == 2


def test_self_references_resolve():
    with EmulatorServer() as server:
        server.load(data("plugin-data", "data-project-data", "self-referencing", "Account-plan.json"))
        sf = server.salesforce()
        res = sf.query("SELECT Name, Parent.Name, Parent.Parent.Name FROM Account WHERE Name = 'Grandchild'")
        assert res["records"][0]["Parent"]["Parent"]["Name"]


def test_unresolvable_refs_fail_before_writing():
    with EmulatorServer() as server:
        with pytest.raises(UnresolvableRefsError, match="@AccountRef2000"):
            server.load(data("plugin-data", "data-project-data", "missingRef", "Account-Opportunity-plan.json"))
        with pytest.raises(UnresolvableRefsError, match="@ContactRef1"):
            server.load(data("easy-spaces-lwc", "Reservation__c-plan.json"))
        assert server.count("Account") == 0


def test_synthesised_describes_cover_every_inferred_type(tmp_path):
    """A data-tree file written here: each kind of value gets its type and a label made from its name."""
    import json
    (tmp_path / "gadgets.json").write_text(json.dumps({"records": [
        {"attributes": {"type": "Contact", "referenceId": "C1"}, "LastName": "Owner", "Email": "o@example.org"},
        *({"attributes": {"type": "Gadget__c", "referenceId": f"G{i}"}, "Name": f"Gadget {i}",
           "Support_Email__c": f"help{i}@example.org", "Backup_Phone__c": f"+44 20 7946 09{i:02d}",
           "Launch_Date__c": f"2024-01-{i + 1:02d}", "Last_Seen_At__c": f"2024-02-0{i % 9 + 1}T10:15:00.000Z",
           "Is_Active__c": i % 2 == 0, "Weight_Kg__c": 1.5 + i, "Unit_Count__c": i,
           "Status__c": ["New", "Used"][i % 2], "Contact__c": "@C1"} for i in range(6))]}))
    with EmulatorServer() as server:
        assert server.load(tmp_path / "gadgets.json")["Gadget__c"] == 6
        sf = server.salesforce()
        fields = {f["name"]: f for f in sf.Gadget__c.describe()["fields"]}
        got = {n: (fields[n]["type"], fields[n]["label"]) for n in (
            "Support_Email__c", "Backup_Phone__c", "Launch_Date__c", "Last_Seen_At__c", "Is_Active__c",
            "Weight_Kg__c", "Unit_Count__c", "Status__c", "Contact__c")}
        assert got == {"Support_Email__c": ("email", "Support Email"), "Backup_Phone__c": ("phone", "Backup Phone"),
                       "Launch_Date__c": ("date", "Launch Date"), "Last_Seen_At__c": ("datetime", "Last Seen At"),
                       "Is_Active__c": ("boolean", "Is Active"), "Weight_Kg__c": ("double", "Weight Kg"),
                       "Unit_Count__c": ("double", "Unit Count"), "Status__c": ("picklist", "Status"),
                       "Contact__c": ("reference", "Contact")}
        assert [p["value"] for p in fields["Status__c"]["picklistValues"]] == ["New", "Used"]
        assert fields["Contact__c"]["referenceTo"] == ["Contact"] and fields["Contact__c"]["relationshipName"] == "Contact__r"
        assert fields["Weight_Kg__c"]["scale"] == 1
        res = sf.query("SELECT Name, Is_Active__c, Weight_Kg__c, Launch_Date__c, Last_Seen_At__c, Contact__r.Email "
                       "FROM Gadget__c WHERE Launch_Date__c > 2024-01-04 AND Is_Active__c = true ORDER BY Name")
        assert [(r["Name"], r["Is_Active__c"], r["Weight_Kg__c"], r["Launch_Date__c"], r["Contact__r"]["Email"])
                for r in res["records"]] == [("Gadget 4", True, 5.5, "2024-01-05", "o@example.org")]
        assert res["records"][0]["Last_Seen_At__c"] == "2024-02-05T10:15:00.000+0000"

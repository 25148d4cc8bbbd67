"""SELECT FIELDS(ALL | STANDARD | CUSTOM): the describe's fields the user can see, in describe order;
ALL and CUSTOM are unbounded sets, so Salesforce wants a LIMIT of at most 200 (at each query level);
a field selected twice is INVALID_FIELD."""
import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from emulator.soql import SoqlError, execute, parse
from tests.emulator.test_soql_org import NOW, P2, make_org

LIMIT_MESSAGE = "The SOQL FIELDS function must have a LIMIT of at most 200"


def run(soql, org=None):
    org = org or make_org()
    result = execute(parse(soql), org, now=NOW)
    return org, result.render(list(result.ids))


def names(org, obj, custom=None):
    return [f["name"] for f in org.describe(obj)["fields"] if custom is None or bool(f.get("custom")) == custom]


@pytest.mark.parametrize("kind, custom", [("ALL", None), ("STANDARD", False), ("CUSTOM", True)])
def test_fields_select_the_describes_fields_in_order(kind, custom):
    obj = "Research_Participant__c"
    org, out = run(f"SELECT FIELDS({kind}) FROM {obj} WHERE Id = '{P2}' LIMIT 200")
    expected = names(org, obj, custom)
    assert expected and list(out[0]) == ["attributes"] + expected
    record = org.get_many(obj, [P2])[P2]
    assert all(out[0][n] == record.get(n) for n in expected)
    assert sum(record.get(n) is not None for n in expected) >= 2
    if custom is not None:   # the split is real: both sides are non-empty
        assert names(org, obj, not custom)


def test_fields_mix_with_named_fields_and_keyword_case():
    org, out = run("SELECT Customer_Tier__c, fields(Standard) FROM Account ORDER BY Name LIMIT 3")
    assert list(out[0]) == ["attributes", "Customer_Tier__c"] + names(org, "Account", False)
    assert len(out) == 3
    _, out = run("SELECT Id, Name, FIELDS(CUSTOM) FROM Account LIMIT 2")
    assert list(out[0]) == ["attributes", "Id", "Name", "Customer_Tier__c"]


def test_standard_needs_no_limit():
    org, out = run("SELECT FIELDS(STANDARD) FROM Account")
    assert len(out) == len(list(org.scan("Account", False))) > 1


@pytest.mark.parametrize("soql, column", [
    ("SELECT FIELDS(ALL) FROM Contact", 8),
    ("SELECT FIELDS(CUSTOM) FROM Contact LIMIT 201", 8),
    ("SELECT Id, FIELDS(all) FROM Contact WHERE LastName != null", 12),
    ("SELECT Name, (SELECT FIELDS(ALL) FROM Contacts) FROM Account LIMIT 5", 22),
])
def test_all_and_custom_need_a_limit_of_at_most_200(soql, column):
    with pytest.raises(SoqlError) as info:
        run(soql)
    err = info.value
    assert (err.error_code, err.status) == ("MALFORMED_QUERY", 400)
    assert err.message.split("\n")[3] == f"ERROR at Row:1:Column:{column}"
    assert err.message.rsplit("\n", 1)[1] == LIMIT_MESSAGE


def test_fields_in_a_subquery_with_its_own_limit():
    org, out = run("SELECT Name, (SELECT FIELDS(ALL) FROM Contacts LIMIT 200) FROM Account ORDER BY Name")
    with_children = [r for r in out if r["Contacts"]]
    assert with_children
    assert list(with_children[0]["Contacts"]["records"][0]) == ["attributes"] + names(org, "Contact")


@pytest.mark.parametrize("soql, message", [
    ("SELECT Id, FIELDS(ALL) FROM Contact LIMIT 200", "duplicate field selected: Id"),
    ("SELECT FIELDS(STANDARD), FIELDS(ALL) FROM Contact LIMIT 10", "duplicate field selected: Id"),
    ("SELECT FIELDS(CUSTOM), customer_tier__c FROM Account LIMIT 10",
     "duplicate field selected: customer_tier__c"),
])
def test_a_field_selected_twice_is_invalid_field(soql, message):
    with pytest.raises(SoqlError) as info:
        run(soql)
    assert (info.value.error_code, info.value.message.rsplit("\n", 1)[1]) == ("INVALID_FIELD", message)


@pytest.mark.parametrize("soql, token", [
    ("SELECT FIELDS(SOME) FROM Contact LIMIT 5", "SOME"),
    ("SELECT FIELD(ALL) FROM Contact LIMIT 5", "("),
])
def test_other_arguments_are_malformed(soql, token):
    with pytest.raises(SoqlError) as info:
        run(soql)
    assert (info.value.error_code, info.value.message.rsplit("\n", 1)[1]) == \
        ("MALFORMED_QUERY", f"unexpected token: '{token}'")


def test_fields_over_https_respects_field_level_security(emu):
    emu.salesforce().Contact.create({"LastName": "Fields", "Phone": "+1 415 555 0100", "Email": "f@example.org"})
    soql = "SELECT FIELDS(ALL) FROM Contact WHERE LastName = 'Fields' LIMIT 200"
    admin = emu.salesforce().query(soql)["records"][0]
    assert admin["Phone"] == "+1 415 555 0100" and "MobilePhone" in admin
    restricted = emu.salesforce("restricted@acme.example")
    row = restricted.query(soql)["records"][0]
    assert "Phone" not in row and "MobilePhone" not in row and row["Email"] == "f@example.org"
    visible = [f["name"] for f in restricted.Contact.describe()["fields"]]
    row = restricted.query("SELECT FIELDS(STANDARD) FROM Contact WHERE LastName = 'Fields'")["records"][0]
    assert [k for k in row if k != "attributes"] == [n for n in visible if not n.endswith("__c")]
    with pytest.raises(SalesforceMalformedRequest) as e:
        emu.salesforce().query("SELECT FIELDS(ALL) FROM Contact")
    assert e.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    assert e.value.content[0]["message"].endswith(LIMIT_MESSAGE)

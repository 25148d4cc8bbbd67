"""SELECT lists, child subqueries, aggregates, ORDER BY / LIMIT / OFFSET."""
import pytest

from emulator.soql import SoqlError, execute, parse
from tests.emulator.test_soql_org import (ACME, C_NULLS, C_OBRIEN, C_SMITH, CAMPAIGN1, CAMPAIGN2, CONTACT_LOWER,
                                          CONTACT_UPPER, GLOBEX, NOW, OPP1, P1, P2, P3, P4, PROMO, PROMOX, STUDY,
                                          USER1, USER2, make_org, rid)

URL = "/services/data/v62.0/sobjects"


def run(soql, **kw):
    return execute(parse(soql), make_org(), now=NOW, **kw)


def rows(soql, **kw):
    result = run(soql, **kw)
    return result.render(result.ids)


def ids(soql):
    return run(soql).ids


def test_custom_relationship_and_reference_field_together():
    assert rows(f"SELECT Name, Study__c, Study__r.Name, Persona__c FROM Research_Participant__c WHERE Id = '{P1}'") \
        == [{"attributes": {"type": "Research_Participant__c", "url": f"{URL}/Research_Participant__c/{P1}"},
             "Name": "P-1", "Study__c": STUDY,
             "Study__r": {"attributes": {"type": "Study__c", "url": f"{URL}/Study__c/{STUDY}"},
                          "Name": "Checkout usability"},
             "Persona__c": "Designer"}]


def test_relationship_fields_nest_under_first_mention_in_select_order():
    out = rows(f"SELECT Account.Name, LastName, Account.Industry, Account.Owner.Name FROM Contact WHERE Id = '{C_OBRIEN}'")
    assert list(out[0]) == ["attributes", "Account", "LastName"]
    assert list(out[0]["Account"]) == ["attributes", "Name", "Industry", "Owner"]
    assert out[0]["Account"]["Owner"] == {"attributes": {"type": "User", "url": f"{URL}/User/{USER1}"},
                                          "Name": "Ada Admin"}


def test_five_levels_of_parents():
    out = rows(f"SELECT Account.Parent.Parent.Owner.Manager.Email FROM Contact WHERE Id = '{CONTACT_UPPER}'")
    level = out[0]["Account"]["Parent"]["Parent"]["Owner"]
    assert level["attributes"]["url"] == f"{URL}/User/{USER1}"
    assert level["Manager"] == {"attributes": {"type": "User", "url": f"{URL}/User/{USER2}"},
                                "Email": "boss@example.org"}


def test_more_than_five_levels_is_rejected():
    with pytest.raises(SoqlError) as info:
        run("SELECT Account.Parent.Parent.Parent.Parent.Parent.Name FROM Contact")
    assert info.value.error_code == "MALFORMED_QUERY"


def test_object_name_prefix_on_fields():
    assert rows(f"SELECT Contact.LastName FROM Contact WHERE Contact.Id = '{C_SMITH}'") == [
        {"attributes": {"type": "Contact", "url": f"{URL}/Contact/{C_SMITH}"}, "LastName": "Smith"}]


def test_polymorphic_parent_types():
    out = rows("SELECT Id, Owner.Name, Owner.Email FROM Lead ORDER BY LastName")
    assert [(r["Owner"]["attributes"]["type"], r["Owner"]["Name"]) for r in out] == [
        ("User", "Big Boss"), ("Group", "Lead Queue"), ("User", "Ada Admin")]


def test_compound_address_selected_renders_as_object():
    out = rows(f"SELECT MailingAddress, MailingCity FROM Contact WHERE Id IN ('{C_OBRIEN}', '{C_NULLS}') ORDER BY LastName")
    assert [(r["MailingAddress"], r["MailingCity"]) for r in out] == [
        (None, None), ({"city": "Cork", "country": "IE"}, "Cork")]


def test_child_subquery_null_when_empty_else_nested_result():
    out = rows("SELECT Name, (SELECT Name, Amount FROM Opportunities) FROM Account WHERE Name LIKE 'Acme%' OR Name = 'Globex' ORDER BY Name")
    assert out == [
        {"attributes": {"type": "Account", "url": f"{URL}/Account/{ACME}"}, "Name": "Acme\nLabs",
         "Opportunities": {"totalSize": 1, "done": True, "records": [
             {"attributes": {"type": "Opportunity", "url": f"{URL}/Opportunity/{OPP1}"},
              "Name": "Big Deal", "Amount": 1000.0}]}},
        {"attributes": {"type": "Account", "url": f"{URL}/Account/{GLOBEX}"}, "Name": "Globex",
         "Opportunities": None},
    ]


def test_child_subquery_with_where_order_limit_and_parent_path():
    out = rows("SELECT Name, (SELECT LastName, Owner.Email FROM Contacts WHERE LastName != 'Deleted' "
               "ORDER BY FirstName DESC LIMIT 1) FROM Account WHERE Id = '%s'" % GLOBEX)
    assert out[0]["Contacts"] == {"totalSize": 1, "done": True, "records": [
        {"attributes": {"type": "Contact", "url": f"{URL}/Contact/{CONTACT_UPPER}"}, "LastName": "Case",
         "Owner": {"attributes": {"type": "User", "url": f"{URL}/User/{USER2}"}, "Email": "boss@example.org"}}]}


def test_child_subquery_hides_deleted_children_unless_query_all():
    soql = f"SELECT (SELECT Id FROM Contacts) FROM Account WHERE Id = '{ACME}'"
    assert rows(soql)[0]["Contacts"]["totalSize"] == 1
    assert rows(soql, include_deleted=True)[0]["Contacts"]["totalSize"] == 2


def test_custom_child_relationship():
    out = rows("SELECT Name, (SELECT Name FROM Participants__r ORDER BY Name DESC) FROM Study__c")
    assert [r["Name"] for r in out[0]["Participants__r"]["records"]] == ["P-4", "P-2", "P-1"]
    assert out[0]["Participants__r"]["records"][0]["attributes"]["type"] == "Research_Participant__c"


def test_campaign_members_child_relationship():
    out = rows("SELECT Name, (SELECT ContactId, Status FROM CampaignMembers ORDER BY Status DESC) FROM Campaign ORDER BY Name")
    assert out[0]["Name"] == "Autumn study"
    assert out[0]["CampaignMembers"]["totalSize"] == 1
    # Status is a picklist (Sent, Responded): it sorts in value order, ties keep store order.
    assert [(m["ContactId"], m["Status"]) for m in out[1]["CampaignMembers"]["records"]] == [
        (C_SMITH, "Responded"), (C_OBRIEN, "Sent"), (None, "Sent")]


def test_unknown_child_relationship_is_invalid_type():
    with pytest.raises(SoqlError) as info:
        run("SELECT Name, (SELECT Id FROM Widgets) FROM Account")
    assert info.value.error_code == "INVALID_TYPE"
    assert info.value.message.endswith(
        "Didn't understand relationship 'Widgets' in FROM part of query call. If you are attempting to use a "
        "custom relationship, be sure to append the '__r' after the custom relationship name. Please reference "
        "your WSDL or the describe call for the appropriate names.")


@pytest.mark.parametrize("soql, shown", [
    ("SELECT Id, Name, id FROM Account", "id"),
    ("SELECT Account.Name, LastName, account.NAME FROM Contact", "account.NAME"),
    ("SELECT Contact.LastName, LastName FROM Contact", "LastName"),
])
def test_duplicate_field_is_invalid_field(soql, shown):
    with pytest.raises(SoqlError) as info:
        run(soql)
    assert info.value.error_code == "INVALID_FIELD"
    assert info.value.message.endswith(f"\nduplicate field selected: {shown}")


def test_count_field_counts_non_null_values():
    result = run("SELECT COUNT(Id), COUNT(Industry), count(Owner.Email) FROM Account")
    assert result.total_size == 1
    assert result.aggregate_records == [{"attributes": {"type": "AggregateResult"}, "expr0": 4, "expr1": 3,
                                         "expr2": 4}]


def test_count_with_where_and_limit():
    assert run("SELECT COUNT() FROM Account WHERE Name LIKE 'Promo%'").total_size == 2
    assert run("SELECT COUNT() FROM Account LIMIT 3").total_size == 3


def test_count_field_with_plain_field_is_malformed():
    with pytest.raises(SoqlError) as info:
        run("SELECT Name, COUNT(Id) FROM Account")
    assert info.value.error_code == "MALFORMED_QUERY"
    assert info.value.message.endswith("Field must be grouped or aggregated: Name")


def test_order_by_default_ascending_nulls_first():
    assert ids("SELECT Id FROM Account ORDER BY Industry") == [PROMO, ACME, PROMOX, GLOBEX]
    assert ids("SELECT Id FROM Account ORDER BY Phone") == [PROMO, PROMOX, ACME, GLOBEX]


def test_order_by_desc_nulls_last_and_first():
    assert ids("SELECT Id FROM Account ORDER BY NumberOfEmployees DESC NULLS LAST") == [GLOBEX, ACME, PROMO, PROMOX]
    assert ids("SELECT Id FROM Account ORDER BY NumberOfEmployees DESC NULLS FIRST") == [PROMOX, GLOBEX, ACME, PROMO]
    assert ids("SELECT Id FROM Account ORDER BY NumberOfEmployees ASC NULLS LAST") == [PROMO, ACME, GLOBEX, PROMOX]


def test_order_by_several_fields_and_parent_field():
    assert ids("SELECT Id FROM Contact ORDER BY LastName DESC, FirstName") == [
        C_SMITH, C_OBRIEN, C_NULLS, CONTACT_LOWER, CONTACT_UPPER]
    assert ids("SELECT Id FROM Contact ORDER BY Account.Name NULLS LAST, Id DESC") == [
        C_OBRIEN, CONTACT_UPPER, CONTACT_LOWER, C_SMITH, C_NULLS][:1] + sorted(
        [CONTACT_UPPER, CONTACT_LOWER], reverse=True) + [C_SMITH, C_NULLS]


def test_order_by_picklist_uses_defined_value_order():
    assert ids("SELECT Id FROM Account ORDER BY Customer_Tier__c NULLS LAST") == [ACME, GLOBEX, PROMO, PROMOX]


def test_order_by_datetime_and_boolean():
    assert ids("SELECT Id FROM Research_Participant__c ORDER BY SystemModstamp DESC") == [P1, P2, P3, P4]
    assert ids("SELECT Id FROM Contact ORDER BY HasOptedOutOfEmail DESC, LastName LIMIT 2") == [C_SMITH, CONTACT_UPPER]


def test_limit_and_offset():
    assert ids("SELECT Id FROM Research_Participant__c ORDER BY Name LIMIT 2 OFFSET 1") == [P2, P3]
    assert ids("SELECT Id FROM Research_Participant__c ORDER BY Name OFFSET 3") == [P4]
    assert ids("SELECT Id FROM Research_Participant__c OFFSET 10") == []
    result = run("SELECT Id FROM Research_Participant__c LIMIT 3")
    assert (result.total_size, result.ids) == (3, [P1, P2, P3])


def test_offset_over_2000_is_number_outside_valid_range():
    with pytest.raises(SoqlError) as info:
        parse("SELECT Id FROM Contact OFFSET 2001")
    assert (info.value.error_code, info.value.status) == ("NUMBER_OUTSIDE_VALID_RANGE", 400)
    assert info.value.message.endswith("Maximum SOQL offset allowed is 2000")
    assert parse("SELECT Id FROM Contact OFFSET 2000").offset == 2000


def test_render_takes_any_page_of_ids_in_the_given_order():
    result = run("SELECT Name FROM Research_Participant__c ORDER BY Name")
    assert [r["Name"] for r in result.render(result.ids[2:])] == ["P-3", "P-4"]
    assert [r["Name"] for r in result.render([P4, P1])] == ["P-4", "P-1"]


def test_api_version_in_urls():
    org = make_org(api_version="59.0")
    result = execute(parse(f"SELECT Id FROM Campaign WHERE Id = '{CAMPAIGN2}'"), org, now=NOW)
    assert result.render(result.ids)[0]["attributes"]["url"] == f"/services/data/v59.0/sobjects/Campaign/{CAMPAIGN2}"


def test_keywords_any_case_and_whitespace():
    assert ids(f"select\n  Id\nfrom\tcampaign\nwhere  id = '{CAMPAIGN1}'\norder by NAME asc nulls first limit 1") \
        == [CAMPAIGN1]
    assert rid("701", 1) == CAMPAIGN1

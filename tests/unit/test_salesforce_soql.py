"""The SOQL builder, pinned by exact strings."""
import json
from datetime import date, datetime, timedelta, timezone

import pytest
from simple_salesforce.format import format_soql

from salesforce.describe import FieldCatalog, ObjectDescribe
from salesforce.soql import (FilterError, FilterGroup, FilterRow, SoqlError, and_conditions, build_count_query,
                             build_incremental_query, build_query, build_where, escape_like, escape_literal,
                             operators_for, quote_literal, soql_datetime, to_18_char_id)
from tests.conftest import shared_path


def _describe(name):
    return ObjectDescribe.from_json(json.loads(shared_path("fixtures", "salesforce", f"describe-{name}.json").read_text()))


def _with_fields(describe, *extra):
    data = {"name": describe.name, "label": describe.label,
            "fields": [dict(name=f.name, label=f.label, type=f.type, filterable=f.filterable,
                            referenceTo=list(f.reference_to), relationshipName=f.relationship_name,
                            compoundFieldName=f.compound_field_name,
                            picklistValues=[{"value": p.value, "label": p.label, "active": p.active}
                                            for p in f.picklist_values])
                       for f in describe.fields] + list(extra)}
    return ObjectDescribe.from_json(data)


PERSONA = {"name": "Persona__c", "label": "Persona", "type": "multipicklist", "custom": True,
           "picklistValues": [{"value": "Researcher"}, {"value": "Designer"}, {"value": "Engineer"}]}
AGE = {"name": "Age__c", "label": "Age", "type": "double", "custom": True}
VISITS = {"name": "Visits__c", "label": "Visits", "type": "int", "custom": True}


@pytest.fixture(scope="module")
def contact():
    account = _describe("Account")
    return FieldCatalog(_with_fields(_describe("Contact"), PERSONA, AGE, VISITS), {"Account": account})


@pytest.fixture(scope="module")
def lead():
    return FieldCatalog(_describe("Lead"))


def where(catalog, *rows, conj="AND"):
    return build_where(FilterGroup(conj, rows), catalog)


# --- escaping -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,escaped", [
    ("O'Brien", "O\\'Brien"),
    ('say "hi"', 'say \\"hi\\"'),
    ("x\\", "x\\\\"),
    ("Acme\nLabs", "Acme\\nLabs"),
    ("a\rb\tc", "a\\rb\\tc"),
    ("\b\f", "\\b\\f"),
    ("50%_off", "50%_off"),
    ("Zoë 東京", "Zoë 東京"),
])
def test_escape_literal(raw, escaped):
    assert escape_literal(raw) == escaped
    assert quote_literal(raw) == "'" + escaped + "'"
    assert quote_literal(raw) == format_soql("{}", raw)


@pytest.mark.parametrize("raw", ["50%_off", "it's 100%", "a_b\\c\n"])
def test_escape_like_matches_simple_salesforce(raw):
    assert escape_like(raw) == format_soql("{:like}", raw)


def test_escape_like_escapes_wildcards():
    assert escape_like("50%_off") == "50\\%\\_off"


# --- every operator -------------------------------------------------------------------------

@pytest.mark.parametrize("row,expected", [
    (FilterRow("LastName", "equals", "Berg"), "LastName = 'Berg'"),
    (FilterRow("LastName", "not_equals", "Berg"), "LastName != 'Berg'"),
    (FilterRow("LastName", "contains", "er"), "LastName LIKE '%er%'"),
    (FilterRow("LastName", "starts_with", "Be"), "LastName LIKE 'Be%'"),
    (FilterRow("LastName", "starts_with", "50%"), "LastName LIKE '50\\%%'"),
    (FilterRow("Email", "is_empty"), "Email = null"),
    (FilterRow("Email", "is_not_empty"), "Email != null"),
    (FilterRow("LeadSource", "any_of", ["Web", "Partner Referral"]), "LeadSource IN ('Web','Partner Referral')"),
    (FilterRow("LeadSource", "any of", ["Web"]), "LeadSource IN ('Web')"),
    (FilterRow("Persona__c", "includes", ["Designer"]), "Persona__c INCLUDES ('Designer')"),
    (FilterRow("Persona__c", "excludes", ["Designer", "Engineer"]), "Persona__c EXCLUDES ('Designer','Engineer')"),
    (FilterRow("Persona__c", "is_empty"), "Persona__c = null"),
    (FilterRow("Birthdate", "before", "1990-01-31"), "Birthdate < 1990-01-31"),
    (FilterRow("Birthdate", "after", date(1990, 1, 31)), "Birthdate > 1990-01-31"),
    (FilterRow("Birthdate", "equals", "1990-01-31"), "Birthdate = 1990-01-31"),
    (FilterRow("CreatedDate", "before", "2024-05-01"), "CreatedDate < 2024-05-01T00:00:00Z"),
    (FilterRow("CreatedDate", "after", "2024-05-01"), "CreatedDate > 2024-05-01T23:59:59Z"),
    (FilterRow("CreatedDate", "after", "2024-05-01T10:15:30+02:00"), "CreatedDate > 2024-05-01T08:15:30Z"),
    (FilterRow("CreatedDate", "before", datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)),
     "CreatedDate < 2024-05-01T12:00:00Z"),
    (FilterRow("LastModifiedDate", "last_n_days", "30"), "LastModifiedDate = LAST_N_DAYS:30"),
    (FilterRow("Birthdate", "last_n_days", 7), "Birthdate = LAST_N_DAYS:7"),
    (FilterRow("IsEmailBounced", "equals", True), "IsEmailBounced = true"),
    (FilterRow("IsEmailBounced", "equals", "FALSE"), "IsEmailBounced = false"),
    (FilterRow("IsEmailBounced", "not_equals", "true"), "IsEmailBounced != true"),
    (FilterRow("Age__c", "greater_than", "17.5"), "Age__c > 17.5"),
    (FilterRow("Age__c", "less_than", 65), "Age__c < 65"),
    (FilterRow("Visits__c", "equals", " 3 "), "Visits__c = 3"),
    (FilterRow("Visits__c", "any_of", [1, "2"]), "Visits__c IN (1,2)"),
    (FilterRow("AccountId", "equals", "001Da00000xnAiyIAE"), "AccountId = '001Da00000xnAiyIAE'"),
    (FilterRow("Account.Name", "equals", "Northwind"), "Account.Name = 'Northwind'"),
    (FilterRow("account.type", "equals", "Customer"), "Account.Type = 'Customer'"),  # canonical casing
    (FilterRow("Id", "in_campaign", "701Dn00000Cmp1AIAR"),
     "Id IN (SELECT ContactId FROM CampaignMember WHERE CampaignId = '701Dn00000Cmp1AIAR')"),
    (FilterRow("Id", "in_campaign", ["701Dn00000Cmp1AIAR", "701Dn00000Cmp2AIAR"]),
     "Id IN (SELECT ContactId FROM CampaignMember WHERE CampaignId IN ('701Dn00000Cmp1AIAR','701Dn00000Cmp2AIAR'))"),
])
def test_operator(contact, row, expected):
    assert where(contact, row) == expected


def test_in_campaign_on_lead_uses_lead_id(lead):
    assert where(lead, FilterRow("", "in_campaign", "701Dn00000Cmp1AIAR")) == \
        "Id IN (SELECT LeadId FROM CampaignMember WHERE CampaignId = '701Dn00000Cmp1AIAR')"


def test_in_campaign_on_campaign_member_is_a_plain_test():
    cm = FieldCatalog(_describe("CampaignMember.SYNTHETIC"))
    assert where(cm, FilterRow("", "in_campaign", "701Dn00000Cmp1AIAR")) == "CampaignId = '701Dn00000Cmp1AIAR'"


# --- groups ---------------------------------------------------------------------------------

def test_nested_groups_are_parenthesised(contact):
    tree = FilterGroup("AND", (
        FilterRow("MailingCountry", "equals", "Germany"),
        FilterGroup("OR", (FilterRow("LeadSource", "equals", "Web"),
                           FilterGroup("AND", (FilterRow("Email", "is_not_empty"),
                                               FilterRow("LastName", "starts_with", "B"))))),
    ))
    assert build_where(tree, contact) == \
        "MailingCountry = 'Germany' AND (LeadSource = 'Web' OR (Email != null AND LastName LIKE 'B%'))"


def test_top_level_or(contact):
    assert where(contact, FilterRow("LastName", "equals", "A"), FilterRow("LastName", "equals", "B"), conj="or") == \
        "LastName = 'A' OR LastName = 'B'"


def test_single_member_group_needs_no_parentheses(contact):
    tree = FilterGroup("AND", (FilterRow("LastName", "equals", "A"),
                               FilterGroup("OR", (FilterRow("Email", "is_empty"),))))
    assert build_where(tree, contact) == "LastName = 'A' AND Email = null"


def test_empty_filters_give_no_condition(contact):
    assert build_where(None, contact) == ""
    assert build_where(FilterGroup("AND", ()), contact) == ""


def test_row_index_counts_depth_first(contact):
    tree = FilterGroup("AND", (FilterRow("LastName", "equals", "A"),
                               FilterGroup("OR", (FilterRow("Email", "is_empty"),
                                                  FilterRow("Nope__c", "equals", "x")))))
    with pytest.raises(FilterError) as err:
        build_where(tree, contact)
    assert err.value.row_index == 2
    assert "Nope__c" in err.value.message


# --- refusals -------------------------------------------------------------------------------

@pytest.mark.parametrize("row,fragment", [
    (FilterRow("MailingAddress", "equals", "Berlin"), "compound"),
    (FilterRow("Unknown__c", "equals", "x"), "not a field of Contact"),
    (FilterRow("LastName) OR (Id", "equals", "x"), "not a field of Contact"),
    (FilterRow("Account.Owner.Email", "equals", "x"), "not a field"),
    (FilterRow("Persona__c", "equals", "Designer"), "doesn't fit"),
    (FilterRow("Persona__c", "contains", "Design"), "doesn't fit"),
    (FilterRow("Persona__c", "includes", ["Designer;Engineer"]), "single picklist value"),
    (FilterRow("Persona__c", "any_of", []), "at least one value"),
    (FilterRow("Id", "contains", "003"), "doesn't fit"),
    (FilterRow("Id", "equals", "003' OR Name != '"), "record ID"),
    (FilterRow("Id", "equals", "003Dn00000QxRt"), "record ID"),
    (FilterRow("IsEmailBounced", "equals", "yes"), "true or false"),
    (FilterRow("IsEmailBounced", "is_empty"), "doesn't fit"),
    (FilterRow("Age__c", "equals", "1; DELETE"), "not a number"),
    (FilterRow("Age__c", "equals", "1e9"), "not a number"),
    (FilterRow("Visits__c", "equals", "2.5"), "whole number"),
    (FilterRow("Birthdate", "before", "31/01/1990"), "not a date"),
    (FilterRow("Birthdate", "before", "2024-02-30"), "not a date"),
    (FilterRow("LastModifiedDate", "last_n_days", "0"), "at least 1"),
    (FilterRow("LastModifiedDate", "last_n_days", "7 OR Id != null"), "whole number"),
    (FilterRow("Description", "equals", "x"), "can't filter"),  # long text area: filterable false
    (FilterRow("LastName", "sounds_like", "x"), "unknown operator"),
    (FilterRow("LastName", "equals", None), "value is needed"),
    (FilterRow("Id", "in_campaign", "001Da00000xnAiyIAE"), "campaign ID"),
])
def test_refused_rows(contact, row, fragment):
    with pytest.raises(FilterError) as err:
        where(contact, FilterRow("LastName", "equals", "ok"), row)
    assert err.value.row_index == 1
    assert fragment in err.value.message


def test_semi_join_refused_under_or(contact):
    with pytest.raises(FilterError, match="OR"):
        where(contact, FilterRow("Id", "in_campaign", "701Dn00000Cmp1AIAR"),
              FilterRow("LastName", "equals", "A"), conj="OR")


def test_at_most_two_semi_joins(contact):
    rows = [FilterRow("Id", "in_campaign", f"701Dn00000Cmp{i}AIAR") for i in range(3)]
    with pytest.raises(FilterError) as err:
        where(contact, *rows)
    assert err.value.row_index == 2


def test_unknown_group_type(contact):
    with pytest.raises(FilterError):
        build_where(FilterGroup("XOR", (FilterRow("LastName", "equals", "A"),)), contact)


def test_operators_for_types(contact):
    assert operators_for(contact.resolve("Persona__c").field) == ["any_of", "includes", "excludes", "is_empty",
                                                                  "is_not_empty"]
    assert operators_for(contact.resolve("IsEmailBounced").field) == ["equals", "not_equals"]
    assert operators_for(contact.resolve("MailingAddress").field) == []
    assert "contains" in operators_for(contact.resolve("Email").field)
    assert "last_n_days" in operators_for(contact.resolve("CreatedDate").field)


# --- whole queries --------------------------------------------------------------------------

def test_build_query():
    assert build_query("Contact", ["Id", "Email", "Account.Name", "id"], "Email != null",
                       order_by=["LastName DESC NULLS LAST", "Id"], limit=50) == \
        "SELECT Id, Email, Account.Name FROM Contact WHERE Email != null ORDER BY LastName DESC NULLS LAST, Id LIMIT 50"
    assert build_query("Lead", ["Id"]) == "SELECT Id FROM Lead"


@pytest.mark.parametrize("kwargs", [
    dict(object_name="Contact WHERE Id != null", fields=["Id"]),
    dict(object_name="Account.Name", fields=["Id"]),
    dict(object_name="Contact", fields=["Id, (SELECT Id FROM Cases)"]),
    dict(object_name="Contact", fields=[]),
    dict(object_name="Contact", fields=["Id"], order_by="Id; DROP"),
    dict(object_name="Contact", fields=["Id"], limit=0),
])
def test_build_query_refuses(kwargs):
    with pytest.raises(SoqlError):
        build_query(**kwargs)


def test_count_query():
    assert build_count_query("Contact", "Email != null") == "SELECT COUNT() FROM Contact WHERE Email != null"
    assert build_count_query("Lead") == "SELECT COUNT() FROM Lead"


def test_incremental_query_with_filters_and_cursor():
    bound = datetime(2024, 5, 1, 0, 33, 19, tzinfo=timezone.utc)
    assert build_incremental_query("Contact", ["Id", "Email"], "LastName = 'A' OR LastName = 'B'",
                                   "SystemModstamp", bound) == (
        "SELECT Id, Email, SystemModstamp FROM Contact WHERE (LastName = 'A' OR LastName = 'B') "
        "AND SystemModstamp >= 2024-05-01T00:33:19Z ORDER BY SystemModstamp, Id")


def test_incremental_query_first_run_and_string_bound():
    assert build_incremental_query("Lead", ["Email"], "", "LastModifiedDate", None) == \
        "SELECT Email, Id, LastModifiedDate FROM Lead ORDER BY LastModifiedDate, Id"
    assert build_incremental_query("Lead", ["Id"], "", "SystemModstamp", "2024-05-01T00:33:19Z") == \
        "SELECT Id, SystemModstamp FROM Lead WHERE SystemModstamp >= 2024-05-01T00:33:19Z ORDER BY SystemModstamp, Id"
    assert build_incremental_query("Lead", ["Id"], "Email != null", "SystemModstamp", None) == \
        "SELECT Id, SystemModstamp FROM Lead WHERE Email != null ORDER BY SystemModstamp, Id"


def test_incremental_bound_converted_to_utc_and_never_naive():
    berlin = timezone(timedelta(hours=2))
    assert soql_datetime(datetime(2024, 5, 1, 2, 33, 19, 999000, tzinfo=berlin)) == "2024-05-01T00:33:19Z"
    with pytest.raises(SoqlError):
        soql_datetime(datetime(2024, 5, 1))
    with pytest.raises(SoqlError):
        build_incremental_query("Lead", ["Id"], "", "SystemModstamp", "'2024-05-01' OR Id != null")


def test_and_conditions():
    assert and_conditions("a = 1", "") == "a = 1"
    assert and_conditions("x = 'A OR B'", "b = 2 OR c = 3", "(d = 1 OR e = 2)") == \
        "x = 'A OR B' AND (b = 2 OR c = 3) AND (d = 1 OR e = 2)"


def test_to_18_char_id():
    assert to_18_char_id("001Da00000xnAiy") == "001Da00000xnAiyIAE"
    assert to_18_char_id("003Dn00000QxRtA") == "003Dn00000QxRtAIAV"
    assert to_18_char_id("003Dn00000QxrtA") == "003Dn00000QxrtAIAR"
    assert to_18_char_id("003Dn00000QxRtAIAV") == "003Dn00000QxRtAIAV"


# --- a missing or wrong-type value is the row's FilterError, for every operator ------------------
# (row 1, after a good row 0: the index must be the row's, and never a bare ValueError/TypeError)

MISSING = [None, "", [], ()]
SCALAR_WRONG = [["x", "y"], {"a": 1}, [None]]
MULTI_WRONG = [[None], [["x"]], {"a": 1}, [{"a": 1}], ["x", ""]]
OPERATOR_FIELDS = {  # operator -> fields of every type it applies to
    "equals": ["LastName", "IsEmailBounced", "Age__c", "Visits__c", "Birthdate", "LastModifiedDate", "Id"],
    "not_equals": ["LastName", "IsEmailBounced", "Age__c", "Id"],
    "contains": ["LastName", "Email"],
    "starts_with": ["LastName"],
    "any_of": ["LastName", "Age__c", "Visits__c", "Id", "Persona__c"],
    "includes": ["Persona__c"],
    "excludes": ["Persona__c"],
    "before": ["Birthdate", "LastModifiedDate"],
    "after": ["Birthdate", "LastModifiedDate"],
    "last_n_days": ["LastModifiedDate", "Birthdate"],
    "less_than": ["Age__c", "Visits__c"],
    "greater_than": ["Age__c", "Visits__c"],
    "in_campaign": ["Id"],
}
MULTI_OPERATORS = {"any_of", "includes", "excludes", "in_campaign"}


def _bad_value_cases():
    for op, fields in OPERATOR_FIELDS.items():
        wrong = MULTI_WRONG if op in MULTI_OPERATORS else SCALAR_WRONG
        for field in fields:
            for value in MISSING + wrong:
                yield pytest.param(field, op, value, id=f"{op}-{field}-{value!r}")


def test_every_operator_is_covered():
    from salesforce.soql import OPERATOR_LABELS
    assert set(OPERATOR_FIELDS) | {"is_empty", "is_not_empty"} == set(OPERATOR_LABELS)


@pytest.mark.parametrize("field,op,value", list(_bad_value_cases()))
def test_missing_or_wrong_type_value_is_the_rows_filter_error(contact, field, op, value):
    assert op in operators_for(contact.resolve(field).field) or op == "in_campaign"
    try:
        where(contact, FilterRow("LastName", "equals", "ok"), FilterRow(field, op, value))
    except FilterError as err:
        assert err.row_index == 1 and err.message
    else:
        pytest.fail(f"{op} on {field} accepted {value!r}")


@pytest.mark.parametrize("op", ["is_empty", "is_not_empty"])
@pytest.mark.parametrize("value", MISSING + SCALAR_WRONG)
def test_no_value_operators_ignore_the_value(contact, op, value):
    assert where(contact, FilterRow("LastName", op, value)) == \
        f"LastName {'=' if op == 'is_empty' else '!='} null"


def test_a_value_of_spaces_is_still_a_value(contact):  # C05: spaces are part of a value
    assert where(contact, FilterRow("LastName", "equals", "  ")) == "LastName = '  '"


def test_campaign_row_without_a_value_is_an_error_on_its_row_in_check_filters(contact):
    from services.plan_steps import check_filters
    data = {"op": "AND", "items": [{"field": "LastName", "operator": "equals", "value": "ok"},
                                   {"field": "Id", "operator": "in_campaign", "value": None},
                                   {"field": "Id", "operator": "in_campaign", "value": ""}]}
    check = check_filters(data, contact)
    assert check.where == "" and set(check.errors) == {1, 2}
    assert "campaign" in check.errors[1]


# --- Salesforce's 4,000-character limit on a string literal ---------------------------------------

LONG = "x" * 4001


@pytest.mark.parametrize("row", [
    FilterRow("LastName", "equals", LONG),
    FilterRow("LastName", "not_equals", LONG),
    FilterRow("LastName", "contains", LONG),
    FilterRow("LastName", "starts_with", LONG),
    FilterRow("LastName", "any_of", ["Doe", LONG]),
    FilterRow("Persona__c", "includes", [LONG]),
    FilterRow("Persona__c", "excludes", ["Designer", LONG]),
    FilterRow("LastName", "equals", "y" * 100_000),
])
def test_a_value_past_4000_characters_is_the_rows_error(contact, row):
    with pytest.raises(FilterError) as caught:
        where(contact, FilterRow("Email", "is_not_empty"), row)
    assert caught.value.row_index == 1
    assert "4,000 characters" in str(caught.value)


def test_a_value_of_exactly_4000_characters_is_fine(contact):
    assert where(contact, FilterRow("LastName", "equals", "x" * 4000)) == f"LastName = '{'x' * 4000}'"
    assert where(contact, FilterRow("LastName", "any_of", ["a", "x" * 4000])).startswith("LastName IN ('a','")

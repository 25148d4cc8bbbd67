"""Every error class: code, HTTP status and message shape (echo, caret, position, text)."""
import pytest

from emulator.soql import SoqlError, execute, parse
from tests.emulator.test_soql_org import NOW, make_org


def error(soql):
    with pytest.raises(SoqlError) as info:
        execute(parse(soql), make_org(), now=NOW)
    return info.value


def detail(err):
    """The last line of a positioned message: the text after echo, caret and position."""
    return err.message.rsplit("\n", 1)[1]


def position(err):
    return err.message.split("\n")[3]


NO_COLUMN = ("No such column '{}' on entity '{}'. If you are attempting to use a custom field, be sure to "
             "append the '__c' after the custom field name. Please reference your WSDL or the describe call for "
             "the appropriate names.")
NO_REL = ("Didn't understand relationship '{}' in field path. If you are attempting to use a custom relationship, "
          "be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the "
          "describe call for the appropriate names.")


def test_invalid_type_message_shape_for_a_long_query():
    soql = "SELECT Id, Name, Email, Phone, Title, Department FROM Research_Participant WHERE Name = 'x'"
    err = error(soql)
    assert (err.error_code, err.status) == ("INVALID_TYPE", 400)
    # the echo keeps 35 characters either side of the object name, which starts at column 55
    assert err.message == (
        "\nail, Phone, Title, Department FROM Research_Participant WHERE Name = '\n"
        + " " * 35 + "^\nERROR at Row:1:Column:55\n"
        "sObject type 'Research_Participant' is not supported. If you are attempting to use a custom object, be "
        "sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
        "appropriate names.")


@pytest.mark.parametrize("soql, written, entity, column", [
    ("SELECT Id, Foo FROM Lead", "Foo", "Lead", 12),
    ("SELECT Id FROM Lead WHERE Foo__c = 'x'", "Foo__c", "Lead", 27),
    ("SELECT Id FROM Lead ORDER BY Nope", "Nope", "Lead", 30),
    ("SELECT Account.Nope FROM Contact", "Nope", "Account", 8),
    ("SELECT Owner.Nope FROM Lead", "Nope", "Group", 8),
    ("SELECT Id FROM Contact WHERE Id IN (SELECT Nope FROM CampaignMember)", "Nope", "CampaignMember", 44),
    ("SELECT (SELECT Nope FROM Contacts) FROM Account", "Nope", "Contact", 16),
    ("SELECT COUNT(Nope) FROM Account", "Nope", "Account", 14),
    ("SELECT Account FROM Contact", "Account", "Contact", 8),
])
def test_unknown_field_everywhere_is_invalid_field(soql, written, entity, column):
    err = error(soql)
    assert (err.error_code, err.status) == ("INVALID_FIELD", 400)
    assert detail(err) == NO_COLUMN.format(written, entity)
    assert position(err) == f"ERROR at Row:1:Column:{column}"


def test_hidden_field_is_unknown():
    org = make_org()
    lead = org.describe("Lead")
    lead["fields"] = [f for f in lead["fields"] if f["name"] != "Email"]
    with pytest.raises(SoqlError) as info:
        execute(parse("SELECT Id, Email FROM Lead"), org, now=NOW)
    assert detail(info.value) == NO_COLUMN.format("Email", "Lead")


def test_unknown_relationship_is_invalid_field():
    err = error("SELECT Acount.Name FROM Contact")
    assert (err.error_code, detail(err)) == ("INVALID_FIELD", NO_REL.format("Acount"))
    err = error("SELECT Study__c.Name FROM Research_Participant__c")
    assert (err.error_code, detail(err)) == ("INVALID_FIELD", NO_REL.format("Study__c"))


@pytest.mark.parametrize("soql, token, column", [
    ("SELECT FROM Account", "FROM", 7),
    ("SELECT Id FROM", "<EOF>", 15),
    ("SELECT Id Name FROM Account", "Name", 10),
    ("SELECT Id FROM Account WHERE Name = Smith", "Smith", 36),
    ("SELECT Id FROM Account WHERE Name == 'x'", "=", 36),
    ("SELECT Id FROM Account WHERE Name = 'x' LIMIT -1", "-1", 46),
    ("SELECT Id FROM Account LIMIT 5 WHERE Name = 'x'", "WHERE", 31),
    ("SELECT Id FROM Account WHERE Name IS NULL", "IS", 34),
    ("SELECT Id FROM Account WHERE Name = \"x\"", "\"x\"", 37),
    ("SELECT Id, FROM Account", "FROM", 11),
])
def test_syntax_errors_are_malformed_query(soql, token, column):
    with pytest.raises(SoqlError) as info:
        parse(soql)
    err = info.value
    assert (err.error_code, err.status) == ("MALFORMED_QUERY", 400)
    shown = token if token == "<EOF>" else f"'{token}'"
    assert detail(err) == f"unexpected token: {shown}"
    assert position(err) == f"ERROR at Row:1:Column:{column}"


def test_error_position_on_later_rows():
    with pytest.raises(SoqlError) as info:
        parse("SELECT Id\nFROM Account\nWHERE Name = 'a' AND Name = 'b' OR Name = 'c'")
    assert info.value.message == ("\nWHERE Name = 'a' AND Name = 'b' OR Name = 'c'\n" + " " * 31 + "^\n"
                                  "ERROR at Row:3:Column:32\nunexpected token: 'OR'")


def test_empty_query_is_malformed():
    for text in ("", "   "):
        with pytest.raises(SoqlError) as info:
            parse(text)
        assert (info.value.error_code, info.value.message) == (
            "MALFORMED_QUERY", "SOQL statements cannot be empty or null")


def test_unterminated_string_is_malformed():
    with pytest.raises(SoqlError) as info:
        parse("SELECT Id FROM Account WHERE Name = 'abc")
    assert info.value.error_code == "MALFORMED_QUERY"
    assert position(info.value) == "ERROR at Row:1:Column:37"


@pytest.mark.parametrize("soql, message", [
    ("SELECT Id FROM Contact WHERE Birthdate = '2024-01-01'",
     "value of filter criterion for field 'Birthdate' must be of type date and should not be enclosed in quotes"),
    ("SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01T00:00:00Z'",
     "value of filter criterion for field 'SystemModstamp' must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-01",
     "value of filter criterion for field 'SystemModstamp' must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Contact WHERE Birthdate > 2024-01-01T00:00:00Z",
     "value of filter criterion for field 'Birthdate' must be of type date and should not be enclosed in quotes"),
    ("SELECT Id FROM Contact WHERE HasOptedOutOfEmail = 'true'",
     "value of filter criterion for field 'HasOptedOutOfEmail' must be of type boolean and should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE NumberOfEmployees > '5'",
     "value of filter criterion for field 'NumberOfEmployees' must be of type integer and should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Name = 5",
     "value of filter criterion for field 'Name' must be of type string and should be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Name = 2024-01-01",
     "value of filter criterion for field 'Name' must be of type string and should be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Name = TODAY",
     "value of filter criterion for field 'Name' must be of type string and should be enclosed in quotes"),
    ("SELECT Id FROM Contact WHERE AccountId = true",
     "value of filter criterion for field 'AccountId' must be of type reference and should be enclosed in quotes"),
    ("SELECT Id FROM Research_Participant__c WHERE Description__c = 'x'",
     "No such column 'Description__c' on entity 'Research_Participant__c'. If you are attempting to use a custom "
     "field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe "
     "call for the appropriate names."),
    ("SELECT Id FROM Research_Participant__c WHERE Study__r.Description__c = 'x'",
     "field 'Description__c' can not be filtered in query call"),
])
def test_wrong_literal_types_and_unfilterable_fields_are_invalid_field(soql, message):
    err = error(soql)
    assert (err.error_code, err.status, detail(err)) == ("INVALID_FIELD", 400, message)


@pytest.mark.parametrize("soql", [
    "SELECT Id FROM Contact WHERE MailingAddress = null",
    "SELECT Id FROM Lead WHERE Address != null",
    "SELECT Id FROM Account WHERE BillingAddress IN ('x')",
])
def test_compound_address_in_where_is_rejected(soql):
    err = error(soql)
    assert err.error_code == "INVALID_FIELD"
    assert detail(err).endswith("address and location fields only support DISTANCE() filters")


def test_compound_address_in_order_by_is_rejected():
    err = error("SELECT Id FROM Contact ORDER BY MailingAddress")
    assert (err.error_code, detail(err)) == ("INVALID_FIELD", "field 'MailingAddress' can not be sorted in a query call")


@pytest.mark.parametrize("soql, message", [
    ("SELECT Id FROM Research_Participant__c WHERE Persona__c LIKE 'x%'", "invalid operator on multipicklist field"),
    ("SELECT Id FROM Research_Participant__c WHERE Persona__c > 'x'", "invalid operator on multipicklist field"),
    ("SELECT Id FROM Account WHERE Name INCLUDES ('x')",
     "includes or excludes operator only valid on multipicklist field"),
    ("SELECT Id FROM Account WHERE NumberOfEmployees LIKE '5%'",
     "invalid operator on field 'NumberOfEmployees': LIKE is only valid on string fields"),
    ("SELECT Id FROM Contact WHERE Id = '003abc'", "invalid ID field: 003abc"),
    ("SELECT Id FROM Contact WHERE HasOptedOutOfEmail > false",
     "invalid operator on boolean field 'HasOptedOutOfEmail': >"),
])
def test_operator_not_allowed_for_the_field_type(soql, message):
    err = error(soql)
    assert (err.error_code, err.status, detail(err)) == ("INVALID_QUERY_FILTER_OPERATOR", 400, message)


@pytest.mark.parametrize("soql, message", [
    ("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM CampaignMember) OR LastName = 'x'",
     "Semi join sub-selects are not allowed with the 'OR' operator"),
    ("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM CampaignMember ORDER BY ContactId)",
     "Semi join sub-selects cannot use ORDER BY, LIMIT or OFFSET"),
    ("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM CampaignMember LIMIT 5)",
     "Semi join sub-selects cannot use ORDER BY, LIMIT or OFFSET"),
    ("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId, LeadId FROM CampaignMember)",
     "Semi join sub-selects can only select one field"),
    ("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM CampaignMember) AND Id IN "
     "(SELECT ContactId FROM CampaignMember) AND Id NOT IN (SELECT ContactId FROM CampaignMember)",
     "Maximum of 2 semi join sub-selects are allowed"),
    ("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM CampaignMember WHERE LeadId IN "
     "(SELECT Id FROM Lead))", "Nesting of semi join sub-selects is not supported"),
    ("SELECT COUNT(), Id FROM Contact", "COUNT() must be the only element in the SELECT list"),
    ("SELECT Id, (SELECT Id, (SELECT Id FROM Cases) FROM Contacts) FROM Account",
     "Nesting of child relationship queries is not supported"),
])
def test_structural_rules_are_malformed_query(soql, message):
    with pytest.raises(SoqlError) as info:
        parse(soql)
    assert (info.value.error_code, detail(info.value)) == ("MALFORMED_QUERY", message)


def test_semi_join_on_same_object_and_on_non_id_field():
    err = error("SELECT Id FROM Contact WHERE Id IN (SELECT ReportsToId FROM Contact)")
    assert (err.error_code, detail(err)) == ("MALFORMED_QUERY",
                                             "The inner and outer selects should not be on the same object type")
    err = error("SELECT Id FROM Contact WHERE Email IN (SELECT Email FROM Lead)")
    assert err.error_code == "INVALID_FIELD"
    assert detail(err).startswith("Invalid semi join field 'Email'")


def test_error_json_body():
    err = error("select count() from XYZZY")
    assert err.to_json() == [{"message": err.message, "errorCode": "INVALID_TYPE"}]

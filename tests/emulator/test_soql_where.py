"""WHERE clause semantics: escapes, LIKE, multipicklists, Ids, null, NOT, dates, semi-joins."""
import pytest

from emulator.soql import SoqlError, execute, parse
from tests.emulator.test_soql_org import (ACME, C_DELETED, C_NULLS, C_OBRIEN, C_SMITH, CAMPAIGN1, CONTACT_LOWER,
                                          CONTACT_UPPER, EVT1, EVT2, GLOBEX, L1, L2, L3, L4, NOW, P1, P2, P3, P4,
                                          PROMO, PROMOX, QUEUE, make_org)


def ids(soql, include_deleted=False, now=NOW):
    return execute(parse(soql), make_org(), include_deleted=include_deleted, now=now).ids


# ---- string literals and escapes -------------------------------------------------------------

def test_escaped_quote_in_string():
    assert ids(r"SELECT Id FROM Contact WHERE LastName = 'O\'Brien'") == [C_OBRIEN]


def test_like_with_escaped_percent_and_underscore_is_literal():
    assert ids(r"SELECT Id FROM Account WHERE Name LIKE '%50\%\_off%'") == [PROMO]
    assert ids(r"SELECT Id FROM Account WHERE Name LIKE '%50%off%' ORDER BY Name") == [PROMO, PROMOX]


def test_injection_shaped_string_stays_one_literal():
    soql = r"SELECT Id FROM Contact WHERE FirstName = 'x\\' AND Email = ' OR Id != null OR LastName != '"
    assert ids(soql) == []
    # the first half alone does match the contact whose first name is x\
    assert ids(r"SELECT Id FROM Contact WHERE FirstName = 'x\\'") == [C_SMITH]


def test_newline_escape():
    assert ids(r"SELECT Id FROM Account WHERE Name = 'Acme\nLabs'") == [ACME]
    assert ids(r"SELECT Id FROM Account WHERE Name = 'Acme\NLabs'") == [ACME]
    assert ids(r"SELECT Id FROM Account WHERE Name = 'Acme\u000aLabs'") == [ACME]
    assert ids(r"SELECT Id FROM Account WHERE Name = 'Acme Labs'") == []


def test_other_escapes_decode():
    query = parse(r"SELECT Id FROM Account WHERE Name = 'a\"b\\c\td\re\bf\fg\u00e9'")
    assert query.where.value.value == 'a"b\\c\td\re\bf\fg\u00e9'


@pytest.mark.parametrize("literal", [r"'a\qb'", r"'50\%'", r"'a\_'", r"'\u12'"])
def test_illegal_escape_outside_like_is_malformed(literal):
    with pytest.raises(SoqlError) as info:
        parse(f"SELECT Id FROM Account WHERE Name = {literal}")
    assert info.value.error_code == "MALFORMED_QUERY"
    assert "Illegal character sequence" in info.value.message


# ---- equality, case, null ----------------------------------------------------------------------

def test_string_equality_is_case_insensitive():
    assert ids("SELECT Id FROM Contact WHERE Email = 'smith@example.org'") == [C_SMITH]
    assert ids("SELECT Id FROM Contact WHERE email = 'SMITH@EXAMPLE.ORG'") == [C_SMITH]


def test_not_equal_includes_null_values():
    assert ids("SELECT Id FROM Contact WHERE Email != 'smith@example.org'") == [
        C_OBRIEN, C_NULLS, CONTACT_UPPER, CONTACT_LOWER]


def test_null_checks():
    assert ids("SELECT Id FROM Contact WHERE Email = null") == [C_NULLS]
    assert ids("SELECT Id FROM Contact WHERE AccountId = NULL") == [C_NULLS]
    assert ids("SELECT Id FROM Contact WHERE Birthdate != null") == [C_OBRIEN, C_NULLS]


def test_empty_string_means_null_for_text():
    assert ids("SELECT Id FROM Contact WHERE Email = ''") == [C_NULLS]


def test_booleans_any_case():
    assert ids("SELECT Id FROM Contact WHERE HasOptedOutOfEmail = TRUE") == [C_SMITH]
    assert ids("SELECT Id FROM Lead WHERE IsConverted = False") == [L1, L3]


def test_numbers_integer_decimal_negative_exponent():
    assert ids("SELECT Id FROM Research_Participant__c WHERE Score__c < 0") == [P4]
    assert ids("SELECT Id FROM Research_Participant__c WHERE Score__c >= 1.5") == [P1, P2]
    assert ids("SELECT Id FROM Research_Participant__c WHERE Score__c = -3") == [P4]
    assert ids("SELECT Id FROM Account WHERE AnnualRevenue >= 1.2e7") == [GLOBEX]


def test_ordering_comparisons_skip_nulls():
    assert ids("SELECT Id FROM Account WHERE NumberOfEmployees < 1000000") == [ACME, PROMO, GLOBEX]


# ---- AND / OR / NOT ------------------------------------------------------------------------------

def test_parenthesised_mixing_and_not():
    assert ids("SELECT Id FROM Account WHERE (Industry = 'retail' OR Industry = null) AND NumberOfEmployees > 10") \
        == [GLOBEX]
    assert ids("SELECT Id FROM Account WHERE Industry = 'retail' OR (Industry = null AND Phone = null)") \
        == [PROMO, PROMOX, GLOBEX]
    assert ids("SELECT Id FROM Account WHERE NOT Industry = 'retail'") == [ACME, PROMO]
    assert ids("SELECT Id FROM Account WHERE NOT (Industry = 'retail' OR Industry = null)") == [ACME]
    assert ids("SELECT Id FROM Account WHERE ((Name LIKE 'Promo%'))") == [PROMO, PROMOX]


def test_long_chains_of_one_operator():
    assert ids("SELECT Id FROM Account WHERE Name != 'a' AND Name != 'b' AND Name != 'c' AND Phone != null") \
        == [ACME, GLOBEX]
    assert ids("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b' OR Name = 'Globex' OR Phone = '123456'") \
        == [ACME, GLOBEX]


@pytest.mark.parametrize("soql, token", [
    ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "OR"),
    ("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b' AND Name = 'c'", "AND"),
    ("SELECT Id FROM Account WHERE (Name = 'a' OR Name = 'b') AND Name = 'c' OR Phone = null", "OR"),
])
def test_mixing_and_or_without_parentheses_is_malformed(soql, token):
    with pytest.raises(SoqlError) as info:
        parse(soql)
    assert info.value.error_code == "MALFORMED_QUERY"
    assert info.value.message.endswith(f"unexpected token: '{token}'")


# ---- LIKE, IN --------------------------------------------------------------------------------------

def test_like_is_case_insensitive_and_anchored():
    assert ids("SELECT Id FROM Account WHERE Name LIKE 'GLOBEX'") == [GLOBEX]
    assert ids("SELECT Id FROM Account WHERE Name LIKE 'lobe%'") == []
    assert ids("SELECT Id FROM Account WHERE Name LIKE 'acme_labs'") == [ACME]


def test_in_lists_with_null_and_ids():
    assert ids("SELECT Id FROM Account WHERE Industry IN ('Biotechnology', null)") == [ACME, PROMO]
    assert ids("SELECT Id FROM Account WHERE Industry NOT IN ('Biotechnology', null)") == [PROMOX, GLOBEX]
    assert ids(f"SELECT Id FROM Contact WHERE Id IN ('{C_SMITH}', '003Dn00000QxRtA', '{C_DELETED}')") \
        == [C_SMITH, CONTACT_UPPER]
    assert ids(f"SELECT Id FROM Contact WHERE AccountId NOT IN ('{ACME.lower()}')") \
        == [C_SMITH, C_NULLS, CONTACT_UPPER, CONTACT_LOWER]


def test_id_forms():
    assert ids("SELECT Id FROM Contact WHERE Id = '003Dn00000QxRtA'") == [CONTACT_UPPER]
    assert ids("SELECT Id FROM Contact WHERE Id != '003Dn00000QxRtA' AND LastName = 'Case'") == [CONTACT_LOWER]
    assert ids("SELECT Id FROM Contact WHERE Id = '003DN00000QXRTAIAV'") == [CONTACT_UPPER]
    assert ids(f"SELECT Id FROM Contact WHERE AccountId = '{GLOBEX[:15]}'") == [CONTACT_UPPER, CONTACT_LOWER]


def test_keyset_paging_on_id():
    first = ids("SELECT Id FROM Contact ORDER BY Id LIMIT 2")
    rest = ids(f"SELECT Id FROM Contact WHERE Id > '{first[-1]}' ORDER BY Id")
    assert first + rest == sorted([C_OBRIEN, C_SMITH, C_NULLS, CONTACT_UPPER, CONTACT_LOWER])
    assert len(rest) == 3


# ---- multipicklists ---------------------------------------------------------------------------------

def test_includes_single_and_alternatives():
    assert ids("SELECT Id FROM Research_Participant__c WHERE Persona__c INCLUDES ('Designer')") == [P1, P2]
    assert ids("SELECT Id FROM Research_Participant__c WHERE Persona__c INCLUDES ('Designer','Engineer')") \
        == [P1, P2, P3]


def test_includes_semicolon_means_all_of():
    assert ids("SELECT Id FROM Research_Participant__c WHERE Persona__c INCLUDES ('designer;researcher')") == [P2]
    assert ids("SELECT Id FROM Research_Participant__c WHERE Persona__c INCLUDES ('Designer;Engineer')") == []


def test_excludes():
    assert ids("SELECT Id FROM Research_Participant__c WHERE Persona__c EXCLUDES ('Designer')") == [P3, P4]


def test_equality_on_multipicklist_compares_exact_selection():
    assert ids("SELECT Id FROM Research_Participant__c WHERE Persona__c = 'Designer'") == [P1]
    assert ids("SELECT Id FROM Research_Participant__c WHERE Persona__c = 'Designer;Researcher'") == [P2]
    assert ids("SELECT Id FROM Research_Participant__c WHERE Persona__c != 'Designer'") == [P2, P3, P4]
    assert ids("SELECT Id FROM Research_Participant__c WHERE Persona__c = null") == [P4]


def test_like_on_multipicklist_is_invalid_operator():
    with pytest.raises(SoqlError) as info:
        ids("SELECT Id FROM Research_Participant__c WHERE Persona__c LIKE 'Des%'")
    assert (info.value.error_code, info.value.message.rsplit("\n", 1)[1]) == (
        "INVALID_QUERY_FILTER_OPERATOR", "invalid operator on multipicklist field")


def test_includes_on_a_plain_picklist_is_invalid_operator():
    with pytest.raises(SoqlError) as info:
        ids("SELECT Id FROM Research_Participant__c WHERE Consent_Status__c INCLUDES ('Granted')")
    assert info.value.error_code == "INVALID_QUERY_FILTER_OPERATOR"
    assert info.value.message.endswith("includes or excludes operator only valid on multipicklist field")


# ---- parent paths in WHERE, polymorphic --------------------------------------------------------------

def test_parent_path_filters():
    assert ids("SELECT Id FROM Contact WHERE Account.Name LIKE 'Promo%'") == [C_SMITH]
    assert ids("SELECT Id FROM Contact WHERE Account.Owner.Email = 'ADA@example.org'") == [C_OBRIEN]
    assert ids("SELECT Id FROM Contact WHERE Account.Parent.Parent.Name = 'Acme\\nLabs'") \
        == [CONTACT_UPPER, CONTACT_LOWER]


def test_polymorphic_owner_filters_by_actual_type():
    assert ids("SELECT Id FROM Lead WHERE Owner.Email = 'queue@example.org'") == [L1]
    assert ids("SELECT Id FROM Lead WHERE Owner.Username = 'ada@example.org'") == [L2]
    assert ids("SELECT Id FROM Event WHERE Who.LastName = 'Queue'") == [EVT2]
    assert ids("SELECT Id FROM Event WHERE What.Name = null") == [EVT1]


# ---- dates and datetimes ------------------------------------------------------------------------------

def test_datetime_literal_forms():
    assert ids("SELECT Id FROM Contact WHERE SystemModstamp > 2024-05-01T10:15:30Z") == [C_SMITH]
    assert ids("SELECT Id FROM Contact WHERE SystemModstamp >= 2024-05-01T10:15:30Z") == [C_OBRIEN, C_SMITH]
    assert ids("SELECT Id FROM Contact WHERE SystemModstamp >= 2024-05-01T12:15:30+02:00") == [C_OBRIEN, C_SMITH]
    assert ids("SELECT Id FROM Contact WHERE SystemModstamp = 2024-05-01T05:15:30.000-05:00") == [C_OBRIEN]
    assert ids("SELECT Id FROM Contact WHERE SystemModstamp < 2024-03-01T00:00:00.000+00:00") == []
    assert ids("SELECT Id FROM Contact WHERE SystemModstamp <= 2024-03-01T00:00:00.000+00:00") == [CONTACT_UPPER]


def test_date_literal_on_date_field():
    assert ids("SELECT Id FROM Contact WHERE Birthdate < 1990-01-01") == [C_NULLS]
    assert ids("SELECT Id FROM Contact WHERE Birthdate = 1990-02-28") == [C_OBRIEN]


@pytest.mark.parametrize("literal, expected", [
    ("TODAY", [P1]), ("YESTERDAY", [P2]), ("TOMORROW", []),
    ("THIS_WEEK", [P1, P2]),           # week of Sunday 2024-05-12
    ("LAST_WEEK", []), ("THIS_MONTH", [P1, P2]), ("LAST_MONTH", [P3]), ("NEXT_MONTH", []),
    ("LAST_N_DAYS:1", [P1, P2]), ("LAST_N_DAYS:15", [P1, P2, P3]), ("NEXT_N_DAYS:3", []),
    ("N_DAYS_AGO:15", [P3]), ("LAST_90_DAYS", [P1, P2, P3]), ("NEXT_90_DAYS", []),
    ("LAST_N_WEEKS:1", []), ("LAST_N_WEEKS:3", [P3]), ("LAST_N_MONTHS:1", [P3]),
    ("THIS_QUARTER", [P1, P2, P3]), ("LAST_QUARTER", []), ("THIS_YEAR", [P1, P2, P3]),
    ("LAST_YEAR", []), ("LAST_N_YEARS:2", []),
])
def test_relative_date_literals_on_a_date_field(literal, expected):
    assert ids(f"SELECT Id FROM Research_Participant__c WHERE Enrolled__c = {literal}") == expected


def test_relative_literals_on_datetime_fields_and_ranges():
    base = "SELECT Id FROM Research_Participant__c WHERE SystemModstamp"
    assert ids(f"{base} = TODAY") == [P1]
    assert ids(f"{base} < TODAY") == [P2, P3, P4]
    assert ids(f"{base} > YESTERDAY") == [P1]
    assert ids(f"{base} >= YESTERDAY") == [P1, P2]
    assert ids(f"{base} <= LAST_MONTH") == [P3, P4]
    assert ids(f"{base} = LAST_N_YEARS:1") == [P4]
    assert ids(f"{base} != THIS_YEAR") == [P4]
    assert ids("SELECT Id FROM Account WHERE CreatedDate = today") == [PROMOX]
    assert ids("SELECT Id FROM Account WHERE CreatedDate = last_n_days:1") == [PROMO, PROMOX]


@pytest.mark.parametrize("fiscal,calendar", [
    ("THIS_FISCAL_QUARTER", "THIS_QUARTER"), ("LAST_FISCAL_QUARTER", "LAST_QUARTER"),
    ("NEXT_FISCAL_QUARTER", "NEXT_QUARTER"), ("THIS_FISCAL_YEAR", "THIS_YEAR"), ("LAST_FISCAL_YEAR", "LAST_YEAR"),
    ("NEXT_FISCAL_YEAR", "NEXT_YEAR"), ("LAST_N_FISCAL_QUARTERS:2", "LAST_N_QUARTERS:2"),
    ("NEXT_N_FISCAL_QUARTERS:2", "NEXT_N_QUARTERS:2"), ("N_FISCAL_QUARTERS_AGO:1", "N_QUARTERS_AGO:1"),
    ("LAST_N_FISCAL_YEARS:1", "LAST_N_YEARS:1"), ("NEXT_N_FISCAL_YEARS:1", "NEXT_N_YEARS:1"),
    ("n_fiscal_years_ago:1", "N_YEARS_AGO:1"),
])
def test_fiscal_literals_follow_the_default_january_fiscal_year(fiscal, calendar):
    """The emulated orgs keep the standard fiscal year starting in January (FiscalYearStartMonth 1)."""
    later = __import__("datetime").datetime(2025, 1, 2, tzinfo=__import__("datetime").timezone.utc)
    for field in ("Enrolled__c", "SystemModstamp"):
        for op in ("=", "<", ">=", "!="):
            for now in (NOW, later):
                base = f"SELECT Id FROM Research_Participant__c WHERE {field} {op} "
                assert ids(base + fiscal, now=now) == ids(base + calendar, now=now), (field, op, fiscal)
    assert ids("SELECT Id FROM Research_Participant__c WHERE Enrolled__c = THIS_FISCAL_YEAR") == [P1, P2, P3]


def test_relative_literals_follow_now():
    from datetime import datetime, timezone
    later = datetime(2025, 1, 2, tzinfo=timezone.utc)
    assert ids("SELECT Id FROM Research_Participant__c WHERE Enrolled__c = LAST_YEAR", now=later) == [P1, P2, P3]
    assert ids("SELECT Id FROM Research_Participant__c WHERE Enrolled__c = LAST_QUARTER", now=later) == []
    assert ids("SELECT Id FROM Research_Participant__c WHERE SystemModstamp = LAST_N_YEARS:2", now=later) \
        == [P1, P2, P3, P4]


# ---- semi-joins and anti-joins -------------------------------------------------------------------------

def test_semi_join_on_campaign_members():
    soql = ("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM CampaignMember "
            f"WHERE CampaignId = '{CAMPAIGN1}')")
    assert ids(soql) == [C_OBRIEN, C_SMITH]


def test_anti_join_and_two_joins():
    assert ids("SELECT Id FROM Contact WHERE Id NOT IN (SELECT ContactId FROM CampaignMember)") \
        == [C_NULLS, CONTACT_LOWER]
    soql = ("SELECT Id FROM Lead WHERE Id IN (SELECT LeadId FROM CampaignMember) "
            "AND ConvertedContactId NOT IN (SELECT ContactId FROM CampaignMember WHERE Status = 'Sent')")
    assert ids(soql) == [L1, L2]


def test_semi_join_on_a_reference_field():
    assert ids("SELECT Id FROM Contact WHERE AccountId IN (SELECT Id FROM Account WHERE Industry = 'retail')") \
        == [CONTACT_UPPER, CONTACT_LOWER]


# ---- deleted rows ---------------------------------------------------------------------------------------

def test_is_deleted_filter_with_query_all():
    assert ids("SELECT Id FROM Lead WHERE IsDeleted = true") == []
    assert ids("SELECT Id FROM Lead WHERE IsDeleted = true", include_deleted=True) == [L4]
    assert ids("SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True) == [C_DELETED]
    assert QUEUE not in ids("SELECT Id FROM Lead")

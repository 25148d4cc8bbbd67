"""First slice: fields, parent paths, WHERE basics, ORDER BY, LIMIT, COUNT(), the three main errors."""
import pytest

from emulator.soql import SoqlError, execute, parse
from tests.emulator.test_soql_org import (ACME, C_NULLS, C_OBRIEN, C_SMITH, CONTACT_LOWER, CONTACT_UPPER, GLOBEX,
                                          L1, L2, L3, NOW, PROMO, PROMOX, USER1, fixture, make_org)


def run(soql, include_deleted=False, org=None):
    return execute(parse(soql), org or make_org(), include_deleted=include_deleted, now=NOW)


def ids(soql, **kw):
    return run(soql, **kw).ids


def rows(soql, **kw):
    result = run(soql, **kw)
    return result.render(result.ids)


def error(soql):
    with pytest.raises(SoqlError) as info:
        run(soql)
    return info.value


def test_plain_fields_render_in_select_order_with_canonical_casing():
    result = run("select lastname, ID, email from CONTACT where id = '%s'" % C_OBRIEN)
    assert result.total_size == 1
    assert result.is_count is False
    assert result.aggregate_records is None
    assert result.render(result.ids) == [{
        "attributes": {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{C_OBRIEN}"},
        "LastName": "O'Brien", "Id": C_OBRIEN, "Email": "s.obrien@example.org"}]


def test_parent_paths_nest_with_attributes_and_null_relationship():
    out = rows("SELECT Id, Account.Name, Account.Owner.Email, Owner.Email FROM Contact "
               "WHERE Id IN ('%s', '%s') ORDER BY LastName" % (C_OBRIEN, C_NULLS))
    assert out == [
        {"attributes": {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{C_NULLS}"},
         "Id": C_NULLS, "Account": None,
         "Owner": {"attributes": {"type": "User", "url": f"/services/data/v62.0/sobjects/User/{USER1}"},
                   "Email": "ada@example.org"}},
        {"attributes": {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{C_OBRIEN}"},
         "Id": C_OBRIEN,
         "Account": {"attributes": {"type": "Account", "url": f"/services/data/v62.0/sobjects/Account/{ACME}"},
                     "Name": "Acme\nLabs",
                     "Owner": {"attributes": {"type": "User",
                                              "url": f"/services/data/v62.0/sobjects/User/{USER1}"},
                               "Email": "ada@example.org"}},
         "Owner": {"attributes": {"type": "User", "url": f"/services/data/v62.0/sobjects/User/{USER1}"},
                   "Email": "ada@example.org"}},
    ]


def test_where_comparisons_and_or_null():
    assert ids("SELECT Id FROM Account WHERE NumberOfEmployees > 100 ORDER BY Name") == [ACME, GLOBEX]
    assert ids("SELECT Id FROM Account WHERE NumberOfEmployees <= 120 AND AnnualRevenue != null") == [ACME]
    assert ids("SELECT Id FROM Account WHERE Industry = 'RETAIL'") == [PROMOX, GLOBEX]
    assert ids("SELECT Id FROM Account WHERE Industry = null OR Phone = '555'") == [PROMO, GLOBEX]
    assert ids("SELECT Id FROM Account WHERE Industry != 'retail'") == [ACME, PROMO]


def test_like_in_not_in():
    assert ids("SELECT Id FROM Account WHERE Name LIKE 'promo%'") == [PROMO, PROMOX]
    assert ids("SELECT Id FROM Account WHERE Name LIKE '_lobe_'") == [GLOBEX]
    assert ids("SELECT Id FROM Lead WHERE Status IN ('Open - Not Contacted', 'working - contacted')") == [L1, L3]
    assert ids("SELECT Id FROM Lead WHERE Status NOT IN ('Open - Not Contacted')") == [L2, L3]


def test_order_by_limit_and_count():
    assert ids("SELECT Id FROM Account ORDER BY NumberOfEmployees DESC LIMIT 2") == [PROMOX, GLOBEX]
    result = run("SELECT COUNT() FROM Contact")
    assert (result.is_count, result.total_size, result.ids, result.render([])) == (True, 5, [], [])


def test_deleted_rows_only_with_include_deleted():
    assert run("SELECT COUNT() FROM Lead").total_size == 3
    assert run("SELECT COUNT() FROM Lead", include_deleted=True).total_size == 4


def test_unknown_object_is_invalid_type_with_recorded_message():
    err = error("select count() from XYZZY")
    assert (err.error_code, err.status) == ("INVALID_TYPE", 400)
    assert err.message == fixture("error-INVALID_TYPE.json")[0]["message"]


def test_unknown_field_is_invalid_field_with_recorded_message():
    err = error("select Id, Company,Email,LastName,SF_date__c, ConvertedContactId from Lead")
    assert (err.error_code, err.status) == ("INVALID_FIELD", 400)
    assert err.message == fixture("error-INVALID_FIELD.json")[0]["message"]


def test_syntax_error_is_malformed_query_with_recorded_shape():
    # The recorded fragment starts 35 characters before 'From' at column 78.
    text = "SELECT Id, Name, OwnerId, CreatedById,".ljust(42) + "LastModifiedById, LastModifiedDate, From Account "
    with pytest.raises(SoqlError) as info:
        parse(text)
    assert info.value.error_code == "MALFORMED_QUERY"
    assert info.value.message == fixture("error-MALFORMED_QUERY.json")[0]["message"]


def test_id_15_char_is_case_sensitive_18_char_is_not():
    assert ids("SELECT Id FROM Contact WHERE Id = '003Dn00000QxRtA'") == [CONTACT_UPPER]
    assert ids("SELECT Id FROM Contact WHERE Id = '003Dn00000QxrtA'") == [CONTACT_LOWER]
    assert ids("SELECT Id FROM Contact WHERE Id = '003DN00000QXRTAIAV'") == [CONTACT_UPPER]
    assert ids("SELECT Id FROM Contact WHERE Id = '003dn00000qxrtaiar'") == [CONTACT_LOWER]

from sync.paths import first_text, get_path, get_text

JON = {
    "attributes": {"type": "Contact", "url": "/x"},
    "Id": "003Dn00000Nw1RaIAJ",
    "Email": " jon@example.org ",
    "Account": {"attributes": {"type": "Account", "url": "/y"}, "Name": "Northwind Research Co",
                "Owner": None},
    "HasOptedOutOfEmail": False,
    "NumberOfEmployees": 120,
    "MailingAddress": {"city": "Berlin"},
}


def test_reads_nested_parent_fields():
    assert get_path(JON, "Account.Name") == "Northwind Research Co"
    assert get_path(JON, "account.name") == "Northwind Research Co"


def test_null_parent_reads_as_none_at_every_depth():
    lena = {"Id": "003Dn00000Lt1XaIAJ", "Account": None}
    assert get_path(lena, "Account.Name") is None
    assert get_path(JON, "Account.Owner.Email") is None
    assert get_path(None, "Account.Name") is None


def test_objects_are_not_field_values():
    assert get_path(JON, "Account") is None
    assert get_path(JON, "MailingAddress") is None
    assert get_path(JON, "attributes") is None


def test_missing_field_is_none():
    assert get_path(JON, "Phone") is None


def test_text_trims_and_keeps_scalars():
    assert get_text(JON, "Email") == "jon@example.org"
    assert get_text(JON, "HasOptedOutOfEmail") == "false"
    assert get_text(JON, "NumberOfEmployees") == "120"
    assert get_text({"Phone": "   "}, "Phone") is None


def test_first_text_takes_the_first_non_blank_path():
    record = {"Phone": None, "MobilePhone": "+44 7700 900123"}
    assert first_text(record, ("Phone", "MobilePhone")) == ("MobilePhone", "+44 7700 900123")
    assert first_text(record, ("Fax",)) == (None, None)

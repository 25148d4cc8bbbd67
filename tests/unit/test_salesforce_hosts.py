"""The login-host allow-list: refuse anything that isn't Salesforce (or the configured emulator)."""
import pytest

from salesforce.hosts import (LoginHostNotAllowed, check_instance_url, is_allowed_login_url,
                              normalize_login_url)

EMULATOR = ("localhost:8443", "sf.test")


def test_environments():
    assert normalize_login_url("production", None) == "https://login.salesforce.com"
    assert normalize_login_url("sandbox", "https://evil.com") == "https://test.salesforce.com"
    with pytest.raises(LoginHostNotAllowed):
        normalize_login_url("staging", None)


@pytest.mark.parametrize("typed,expected", [
    ("https://acme.my.salesforce.com", "https://acme.my.salesforce.com"),
    ("https://ACME.my.salesforce.com/", "https://acme.my.salesforce.com"),
    ("  acme.my.salesforce.com  ", "https://acme.my.salesforce.com"),
    ("https://acme--uat.sandbox.my.salesforce.com", "https://acme--uat.sandbox.my.salesforce.com"),
    ("https://name-dev-ed.develop.my.salesforce.com", "https://name-dev-ed.develop.my.salesforce.com"),
    ("https://login.salesforce.com", "https://login.salesforce.com"),
    ("https://test.salesforce.com:443", "https://test.salesforce.com"),
    ("https://localhost:8443", "https://localhost:8443"),
    ("localhost:8443", "https://localhost:8443"),
    ("https://sf.test:9999", "https://sf.test:9999"),
])
def test_allowed(typed, expected):
    assert normalize_login_url("mydomain", typed, EMULATOR) == expected
    assert is_allowed_login_url(typed, EMULATOR)


@pytest.mark.parametrize("typed", [
    "http://acme.my.salesforce.com",
    "ftp://acme.my.salesforce.com",
    "javascript:alert(1)",
    "https://login.salesforce.com.evil.com",
    "evil.com/login.salesforce.com",
    "https://evil.com/login.salesforce.com",
    "https://my.salesforce.com.attacker.io",
    "https://acme.my.salesforce.com.attacker.io",
    "https://acme.my.salesforce.com@evil.com",
    "https://user:pw@acme.my.salesforce.com",
    "https://acme.my.salesforce.com/services/oauth2/authorize",
    "https://acme.my.salesforce.com?x=1",
    "https://acme.my.salesforce.com#frag",
    "https://acme.my.salesforce.com:8443",
    "https://acme.my.salesforce.com.",
    "https://acme..my.salesforce.com",
    "https://-acme.my.salesforce.com",
    "https://a.b.my.salesforce.com",
    "https://my.salesforce.com",
    "https://salesforce.com",
    "https://evilsalesforce.com",
    "https://acme.my.salesforce.com\\@evil.com",
    "https://acme.my.salesforce%2ecom",
    "https://acme.my.sаlesforce.com",  # Cyrillic a
    "https://127.0.0.1",
    "https://2130706433",
    "https://0x7f.0.0.1",
    "https://[::1]:8443",
    "https://localhost:9000",  # emulator allowed only on its configured port
    "https://127.0.0.1:8443",
    "https://acme.my.salesforce.com\n.evil.com",
    "",
    None,
])
def test_refused_before_any_request(typed):
    with pytest.raises(LoginHostNotAllowed) as err:
        normalize_login_url("mydomain", typed, EMULATOR)
    assert str(err.value)
    assert not is_allowed_login_url(typed, EMULATOR) if typed is not None else True


def test_extra_hosts_are_explicit():
    with pytest.raises(LoginHostNotAllowed):
        normalize_login_url("mydomain", "https://localhost:8443")
    assert normalize_login_url("mydomain", "https://localhost:8443", ["https://LOCALHOST:8443/"]) == \
        "https://localhost:8443"


def test_instance_url():
    assert check_instance_url("https://na1.salesforce.com") == "https://na1.salesforce.com"
    assert check_instance_url("https://acme.my.salesforce.com/") == "https://acme.my.salesforce.com"
    assert check_instance_url("https://localhost:8443", EMULATOR) == "https://localhost:8443"
    for bad in ("https://evil.com", "https://na1.salesforce.com.evil.com", "http://na1.salesforce.com"):
        with pytest.raises(LoginHostNotAllowed):
            check_instance_url(bad)

"""The browser trusts the emulator's CA because it was given it (``trusting_browser``), never by
ignoring certificate errors: the emulator's login page loads over validated HTTPS, while a
browser without that CA, or with another emulator's CA, refuses the connection."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Error, expect

from emulator.testing import EmulatorServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def emu():
    with EmulatorServer() as server:
        yield server


def _login_page(emu) -> str:
    return (f"{emu.authorize_url}?response_type=code&client_id={emu.client_id}"
            f"&redirect_uri=http://127.0.0.1:5000/callback&state=s1")


def test_a_browser_given_the_ca_loads_the_login_page_over_validated_https(emu, trusting_browser):
    context = trusting_browser(emu).new_context()  # no ignore_https_errors
    page = context.new_page()
    response = page.goto(_login_page(emu))
    assert response.status == 200 and response.url.startswith("https://")
    expect(page.locator("#login_form")).to_be_visible()
    security = response.security_details()
    assert security and security.get("protocol", "").startswith("TLS")
    context.close()


def test_without_the_ca_the_browser_refuses_the_certificate(emu, browser):
    context = browser.new_context()  # the session browser: no emulator CA
    with pytest.raises(Error, match="ERR_CERT_AUTHORITY_INVALID"):
        context.new_page().goto(_login_page(emu))
    context.close()


def test_another_emulators_ca_is_not_trusted(emu, trusting_browser):
    with EmulatorServer() as other:
        assert open(other.ca_file).read() != open(emu.ca_file).read()
        context = trusting_browser(other).new_context()
        with pytest.raises(Error, match=re.compile("ERR_CERT_(AUTHORITY_INVALID|COMMON_NAME_INVALID)")):
            context.new_page().goto(_login_page(emu))
        context.close()

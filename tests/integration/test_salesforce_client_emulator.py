"""Contract: the client layer against the HTTPS Salesforce emulator (two independent readings of
the protocol). Real TLS, real simple-salesforce and authlib on the wire."""
from datetime import datetime, timedelta, timezone

import pytest

from emulator.testing import EmulatorServer
from salesforce.client import SalesforceClient
from salesforce.describe import FieldCatalog, discoverable_objects
from salesforce.errors import ApiDisabled, ApiLimitExceeded, BrokenPaging, NeedsReconnect, QueryLocatorInvalid
from salesforce.oauth import fetch_identity, parse_token_response, refresh_access_token, revoke
from salesforce.soql import FilterGroup, FilterRow, build_incremental_query, build_where, soql_datetime

ADMIN = "admin@acme.example"
START = datetime(2024, 5, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def org():
    with EmulatorServer() as server:
        for i in range(2150):
            server.create("Contact", {"LastName": f"Person {i:04d}", "Email": f"p{i}@example.org",
                                      "SystemModstamp": soql_datetime(START + timedelta(seconds=i))})
        yield server


@pytest.fixture(autouse=True)
def clean_faults(org):
    yield
    org.admin.clear_faults()
    org.admin.reset_limits()


def client_for(org, username=ADMIN, **kwargs):
    tok = parse_token_response(org.token_for(username))
    refresh_token = tok.refresh_token

    def refresher():
        return refresh_access_token(org.token_url, org.client_id, org.client_secret, refresh_token,
                                    ca_file=org.ca_file).access_token

    kwargs.setdefault("sleep", lambda s: None)
    return SalesforceClient(tok.instance_url, tok.access_token, ca_file=org.ca_file, token_refresher=refresher,
                            **kwargs), tok


def test_describe_and_catalog(org):
    client, _ = client_for(org)
    objects = [s.name for s in discoverable_objects(client.describe_global())]
    assert objects[:2] == ["Lead", "Contact"]
    contact = client.describe("Contact")
    assert contact.capabilities.email_fields == ("Email",)
    assert contact.cursor_field == "SystemModstamp"
    catalog = FieldCatalog(contact, {"Account": client.describe("Account")})
    assert "MailingAddress" not in {c.path for c in catalog.filter_choices()}
    assert client.api_usage is not None and client.api_usage[0] >= 3


def test_identity_and_organization(org):
    client, tok = client_for(org)
    ident = fetch_identity(tok.id_url, tok.access_token, ca_file=org.ca_file)
    assert ident.username == ADMIN
    assert ident.org_id == tok.org_id and len(ident.org_id) == 18
    assert client.organization().name


def test_paging_over_2000_with_incremental_query(org):
    client, _ = client_for(org)
    where = build_where(FilterGroup("AND", (FilterRow("Email", "is_not_empty"),)), FieldCatalog(client.describe("Contact")))
    soql = build_incremental_query("Contact", ["Id", "Email"], where, "SystemModstamp", START)
    pages = list(client.query_pages(soql))
    assert [len(p.records) for p in pages] == [2000, 150]
    assert [p.done for p in pages] == [False, True]
    assert pages[0].total_size == 2150
    stamps = [r["SystemModstamp"] for p in pages for r in p.records]
    assert stamps == sorted(stamps)
    assert stamps[1999].startswith("2024-05-01T00:33:19")
    assert client.count("SELECT COUNT() FROM Contact") == 2150


def test_token_refresh_on_expiry(org):
    client, _ = client_for(org)
    client.ping()
    org.admin.expire_sessions()
    pages = client.query_pages("SELECT Id FROM Contact")
    assert len(next(pages).records) == 2000
    assert client.refreshes == 1
    org.admin.expire_sessions()
    assert len(next(pages).records) == 150  # the locator survives the refresh
    assert client.refreshes == 2


def test_refresh_refused_after_revoke(org):
    client, tok = client_for(org)
    revoke(f"{org.url}/services/oauth2/revoke", tok.refresh_token, ca_file=org.ca_file)
    with pytest.raises(NeedsReconnect):
        client.ping()


def test_limit_exceeded_mid_paging(org):
    client, _ = client_for(org)
    pages = client.query_pages("SELECT Id FROM Contact")
    next(pages)
    org.admin.add_fault(type="limit_exceeded")
    before = client.calls_made
    with pytest.raises(ApiLimitExceeded):
        next(pages)
    assert client.calls_made - before == 1


def test_broken_pages(org):
    client, _ = client_for(org)
    org.admin.add_fault(type="done_without_next", page=1)
    pages = client.query_pages("SELECT Id FROM Contact")
    next(pages)
    with pytest.raises(BrokenPaging):
        next(pages)
    org.admin.clear_faults()
    org.admin.add_fault(type="invalid_locator")
    pages = client.query_pages("SELECT Id FROM Contact")
    next(pages)
    with pytest.raises(QueryLocatorInvalid):
        next(pages)


def test_page_timeout_gives_broken_paging(org):
    client, _ = client_for(org, timeout=(2, 0.5), retries=1)
    org.admin.add_fault(type="page_timeout", page=2, seconds=2)
    pages = client.query_pages("SELECT Id FROM Contact")
    next(pages)
    with pytest.raises(BrokenPaging) as err:
        next(pages)
    assert err.value.code == "PAGE_NEVER_ARRIVED"


def test_api_disabled_org(org):
    user = next(u for u, info in org.users.items() if info["org"] == "noapi")
    client, _ = client_for(org, username=user)
    with pytest.raises(ApiDisabled):
        client.describe_global()

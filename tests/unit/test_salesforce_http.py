"""SalesforceClient and the OAuth helpers against a tiny local HTTPS stub (real sockets, real TLS,
real simple-salesforce and authlib on the wire). Each test scripts the stub's answers."""
import json
import re
import ssl
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme

from salesforce.client import Page, SalesforceClient
from salesforce.errors import (ApiDisabled, ApiLimitExceeded, BrokenPaging, MalformedQuery, NeedsReconnect,
                               NotFound, OAuthFailed, QueryLocatorInvalid, SessionExpired, Transient)
from salesforce.oauth import (SCOPE, Identity, authorization_request, endpoints, exchange_code, fetch_identity,
                              flask_registration, parse_token_response, refresh_access_token, revoke)
from tests.conftest import shared_path

V = "/services/data/v62.0"


def fixture(name):
    return json.loads(shared_path("fixtures", "salesforce", name).read_text())


class Stub:
    """Routes: (method, path regex) → list of answers, consumed in order (the last one repeats).
    An answer is (status, body[, headers]) or ("hang", seconds) or ("cut", partial_body)."""

    def __init__(self):
        self.routes = []
        self.requests = []
        self.limit_header = "api-usage=18/15000"

    def on(self, method, pattern, *answers):
        self.routes.append((method, re.compile(pattern), list(answers)))

    def answer(self, method, path):
        for m, rx, answers in self.routes:
            if m == method and rx.fullmatch(path):
                return answers.pop(0) if len(answers) > 1 else answers[0]
        return (404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])

    def paths(self):
        return [r["path"] for r in self.requests]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _handle(self, method):
        stub: Stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        url = urlsplit(self.path)
        stub.requests.append({"method": method, "path": url.path, "query": parse_qs(url.query),
                              "headers": dict(self.headers), "body": body})
        ans = stub.answer(method, url.path)
        if ans[0] == "hang":
            time.sleep(ans[1])
            ans = (200, {"totalSize": 0, "done": True, "records": []})
        if ans[0] == "cut":
            payload = ans[1].encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload) + 500))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
            self.close_connection = True
            return
        status, payload = ans[0], ans[1]
        headers = ans[2] if len(ans) > 2 else {}
        if isinstance(payload, (dict, list)):
            data, ctype = json.dumps(payload).encode(), "application/json;charset=UTF-8"
        else:
            data, ctype = (payload or "").encode(), headers.pop("Content-Type", "text/html")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if stub.limit_header and url.path.startswith("/services/data/v"):
            self.send_header("Sforce-Limit-Info", stub.limit_header)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"https://localhost:{httpd.server_address[1]}", str(ca_file)
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def stub(server):
    httpd, _, _ = server
    httpd.stub = Stub()
    return httpd.stub


@pytest.fixture
def base(server):
    return server[1]


@pytest.fixture
def ca_file(server):
    return server[2]


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_client(base, ca_file, sleeps):
    def make(**kwargs):
        kwargs.setdefault("sleep", sleeps.append)
        kwargs.setdefault("ca_file", ca_file)
        return SalesforceClient(base, "00D000000000001!OLD", **kwargs)
    return make


def records(start, n):
    return [{"attributes": {"type": "Contact", "url": f"{V}/sobjects/Contact/003{i:015d}"},
             "Id": f"003Dn{i:010d}AAA", "SystemModstamp": "2024-05-01T00:00:00.000+0000"}
            for i in range(start, start + n)]


# --- describe, counts, limits ------------------------------------------------------------

def test_describe_global_and_describe(stub, make_client):
    stub.on("GET", f"{V}/sobjects/?", (200, fixture("describe-global.json")))
    stub.on("GET", f"{V}/sobjects/Contact/describe", (200, fixture("describe-Contact.json")))
    client = make_client()
    summaries = client.describe_global()
    assert len(summaries) == 110
    assert {"Lead", "Contact", "CampaignMember", "Account"} <= {s.name for s in summaries}
    contact = client.describe("Contact")
    assert contact.field("Email").type == "email"
    assert stub.requests[0]["headers"]["Authorization"] == "Bearer 00D000000000001!OLD"
    assert client.calls_made == 2
    assert client.api_usage == (18, 15000)


def test_describe_refuses_odd_names_without_a_request(stub, make_client):
    client = make_client()
    for bad in ("../limits", "Contact/describe", "", "Contact?x=1"):
        with pytest.raises(ValueError):
            client.describe(bad)
    assert stub.requests == []


def test_describe_unknown_object(stub, make_client):
    with pytest.raises(NotFound):
        make_client().describe("Nope__c")


def test_record_counts_unknown_is_none(stub, make_client):
    stub.on("GET", f"{V}/limits/recordCount/?",
            (200, {"sObjects": [{"count": 1523, "name": "Contact"}, {"count": 87, "name": "Lead"}]}))
    counts = make_client().record_counts(["Lead", "Contact", "CampaignMember"])
    assert counts == {"Lead": 87, "Contact": 1523, "CampaignMember": None}
    assert stub.requests[0]["query"] == {"sObjects": ["Lead,Contact,CampaignMember"]}


def test_record_count_without_cached_count(stub, make_client):
    stub.on("GET", f"{V}/limits/recordCount/?", (200, fixture("limits-recordCount-object-without-count.json")))
    assert make_client().record_counts(["Contact"]) == {"Contact": None}


def test_limits_updates_usage(stub, make_client):
    stub.limit_header = None
    stub.on("GET", f"{V}/limits/?", (200, fixture("limits.json")))
    client = make_client()
    assert client.limits()["DailyApiRequests"]["Max"] == 15000
    assert client.api_usage == (2, 15000)


def test_usage_tracked_from_error_responses_too(stub, make_client):
    stub.limit_header = "api-usage=15001/15000; per-app-api-usage=17/250(appName=research)"
    stub.on("GET", f"{V}/query/?", (403, fixture("error-REQUEST_LIMIT_EXCEEDED.json")))
    client = make_client()
    with pytest.raises(ApiLimitExceeded):
        client.count("SELECT COUNT() FROM Contact")
    assert client.api_usage == (15001, 15000)


def test_count_and_ping(stub, make_client):
    stub.on("GET", f"{V}/query/?", (200, {"totalSize": 2150, "done": True, "records": []}))
    stub.on("GET", f"{V}/?", (200, {"sobjects": f"{V}/sobjects", "query": f"{V}/query"}))
    client = make_client()
    assert client.count("SELECT COUNT() FROM Contact WHERE Email != null") == 2150
    assert stub.requests[0]["query"]["q"] == ["SELECT COUNT() FROM Contact WHERE Email != null"]
    assert client.ping() is True
    assert stub.paths() == [f"{V}/query/", f"{V}/"]


def test_organization(stub, make_client):
    org = fixture("sobject-Organization-record.json")
    stub.on("GET", f"{V}/query/?", (200, {"totalSize": 1, "done": True, "records": [org]}))
    info = make_client().organization()
    assert (info.name, info.is_sandbox, info.organization_type) == (org["Name"], org["IsSandbox"],
                                                                    org["OrganizationType"])
    assert stub.requests[0]["query"]["q"] == ["SELECT Name, IsSandbox, OrganizationType FROM Organization LIMIT 1"]


# --- paging ------------------------------------------------------------------------------

def test_pages_follow_next_records_url_lazily(stub, make_client):
    next_url = f"{V}/query/01gDn00000FAKE1AAA-2000"
    stub.on("GET", f"{V}/query/?", (200, {"totalSize": 2150, "done": False, "nextRecordsUrl": next_url,
                                          "records": records(0, 2000)}))
    stub.on("GET", next_url, (200, {"totalSize": 2150, "done": True, "records": records(2000, 150)}))
    client = make_client()
    pages = client.query_pages("SELECT Id FROM Contact", batch_size=2000)
    first = next(pages)
    assert isinstance(first, Page)
    assert (len(first.records), first.total_size, first.done, first.page_number) == (2000, 2150, False, 1)
    assert stub.paths() == [f"{V}/query/"]  # page 2 not fetched before it is asked for
    second = next(pages)
    assert (len(second.records), second.done, second.page_number) == (150, True, 2)
    assert list(pages) == []
    assert stub.paths() == [f"{V}/query/", next_url]
    assert stub.requests[0]["headers"]["Sforce-Query-Options"] == "batchSize=2000"
    assert stub.requests[1]["headers"]["Sforce-Query-Options"] == "batchSize=2000"


def test_query_all_for_deleted_rows(stub, make_client):
    stub.on("GET", f"{V}/queryAll/?", (200, fixture("query-empty-result.json")))
    pages = list(make_client().query_pages("SELECT Id FROM Contact WHERE IsDeleted = true",
                                           include_deleted=True, batch_size=500))
    assert [(p.records, p.done) for p in pages] == [([], True)]
    assert stub.requests[0]["headers"]["Sforce-Query-Options"] == "batchSize=500"


def test_done_false_without_link_yields_then_breaks(stub, make_client):
    stub.on("GET", f"{V}/query/?", (200, {"totalSize": 2150, "done": False, "records": records(0, 2000)}))
    pages = make_client().query_pages("SELECT Id FROM Contact")
    assert len(next(pages).records) == 2000
    with pytest.raises(BrokenPaging) as err:
        next(pages)
    assert err.value.code == "MISSING_NEXT_RECORDS_URL"


def test_page_that_never_arrives(stub, make_client, sleeps):
    next_url = f"{V}/query/01gDn00000FAKE1AAA-2000"
    stub.on("GET", f"{V}/query/?", (200, {"totalSize": 2150, "done": False, "nextRecordsUrl": next_url,
                                          "records": records(0, 2000)}))
    stub.on("GET", next_url, (503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "Server Unavailable"}]))
    pages = make_client().query_pages("SELECT Id FROM Contact")
    next(pages)
    with pytest.raises(BrokenPaging) as err:
        next(pages)
    assert err.value.code == "PAGE_NEVER_ARRIVED"
    assert sleeps == [0.5, 1.0, 2.0]
    assert stub.paths().count(next_url) == 4


def test_page_timeout_then_success(stub, make_client, sleeps):
    next_url = f"{V}/query/01gDn00000FAKE1AAA-2000"
    stub.on("GET", f"{V}/query/?", (200, {"totalSize": 2001, "done": False, "nextRecordsUrl": next_url,
                                          "records": records(0, 2000)}))
    stub.on("GET", next_url, ("hang", 0.6), (200, {"totalSize": 2001, "done": True, "records": records(2000, 1)}))
    pages = list(make_client(timeout=(2, 0.3)).query_pages("SELECT Id FROM Contact"))
    assert [len(p.records) for p in pages] == [2000, 1]
    assert sleeps == [0.5]


def test_cut_off_body_is_retried_then_broken(stub, make_client, sleeps):
    next_url = f"{V}/query/01gDn00000FAKE1AAA-2000"
    stub.on("GET", f"{V}/query/?", (200, {"totalSize": 2150, "done": False, "nextRecordsUrl": next_url,
                                          "records": records(0, 2000)}))
    stub.on("GET", next_url, ("cut", '{"totalSize": 2150, "done": true, "records": [{"Id": "003'))
    pages = make_client().query_pages("SELECT Id FROM Contact")
    next(pages)
    with pytest.raises(BrokenPaging):
        next(pages)
    assert len(sleeps) == 3


def test_invalid_json_body(stub, make_client, sleeps):
    stub.on("GET", f"{V}/query/?", (200, '{"totalSize": 1, "done": tr', {"Content-Type": "application/json"}))
    with pytest.raises(BrokenPaging) as err:
        list(make_client(retries=1).query_pages("SELECT Id FROM Contact"))
    assert err.value.code == "INVALID_RESPONSE"
    assert sleeps == [0.5]


def test_expired_locator(stub, make_client, sleeps):
    next_url = f"{V}/query/01gDn00000FAKE1AAA-2000"
    stub.on("GET", f"{V}/query/?", (200, {"totalSize": 2150, "done": False, "nextRecordsUrl": next_url,
                                          "records": records(0, 2000)}))
    stub.on("GET", next_url, (400, [{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}]))
    pages = make_client().query_pages("SELECT Id FROM Contact")
    next(pages)
    with pytest.raises(QueryLocatorInvalid):
        next(pages)
    assert sleeps == []


def test_foreign_next_link_is_never_followed(stub, make_client):
    stub.on("GET", f"{V}/query/?", (200, {"totalSize": 3, "done": False, "nextRecordsUrl": "@evil.example/steal",
                                          "records": records(0, 1)}))
    with pytest.raises(BrokenPaging):
        list(make_client().query_pages("SELECT Id FROM Contact"))
    assert stub.paths() == [f"{V}/query/"]


def test_batch_size_bounds(make_client):
    with pytest.raises(ValueError):
        next(make_client().query_pages("SELECT Id FROM Contact", batch_size=5000))


# --- error policy -----------------------------------------------------------------------

def test_limit_exceeded_mid_paging_stops_at_once(stub, make_client, sleeps):
    next_url = f"{V}/query/01gDn00000FAKE1AAA-2000"
    stub.on("GET", f"{V}/query/?", (200, {"totalSize": 2150, "done": False, "nextRecordsUrl": next_url,
                                          "records": records(0, 2000)}))
    stub.on("GET", next_url, (403, fixture("error-REQUEST_LIMIT_EXCEEDED.json")))
    client = make_client()
    pages = client.query_pages("SELECT Id FROM Contact")
    next(pages)
    with pytest.raises(ApiLimitExceeded) as err:
        next(pages)
    assert err.value.reason == "Salesforce API daily limit reached; will resume"
    assert sleeps == []
    assert client.calls_made == 2  # the 403 itself and nothing after it


def test_api_disabled(stub, make_client):
    stub.on("GET", f"{V}/sobjects/?", (403, fixture("error-API_DISABLED_FOR_ORG.json")))
    with pytest.raises(ApiDisabled):
        make_client().describe_global()


def test_malformed_query_keeps_message(stub, make_client, sleeps):
    stub.on("GET", f"{V}/query/?", (400, fixture("error-INVALID_FIELD.json")))
    with pytest.raises(MalformedQuery) as err:
        list(make_client().query_pages("SELECT Id, SF_date__c FROM Lead"))
    assert "No such column 'SF_date__c'" in err.value.message
    assert sleeps == []


def test_transient_then_success(stub, make_client, sleeps):
    stub.on("GET", f"{V}/sobjects/?", (503, "<html><body>Maintenance</body></html>"),
            (500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "An unexpected error occurred."}]),
            (200, fixture("describe-global.json")))
    assert len(make_client().describe_global()) == 110
    assert sleeps == [0.5, 1.0]


def test_transient_gives_up(stub, make_client, sleeps):
    stub.on("GET", f"{V}/sobjects/?", (503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "Server Unavailable"}]))
    client = make_client(retries=2, backoff=(0.1, 0.2))
    with pytest.raises(Transient):
        client.describe_global()
    assert sleeps == [0.1, 0.2]
    assert client.calls_made == 3


def test_connection_refused_is_transient(ca_file, sleeps):
    client = SalesforceClient("https://localhost:1", "tok", ca_file=ca_file, sleep=sleeps.append, retries=1)
    with pytest.raises(Transient) as err:
        client.ping()
    assert err.value.code == "CONNECTION_ERROR"
    assert sleeps == [0.5]


def test_untrusted_certificate_is_not_retried(base, sleeps, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    client = SalesforceClient(base, "tok", sleep=sleeps.append)  # no ca_file: system trust only
    with pytest.raises(Exception) as err:
        client.ping()
    assert err.value.code == "TLS_ERROR"
    assert sleeps == []


def test_expired_session_refreshes_once_and_retries(stub, make_client):
    stub.on("GET", f"{V}/sobjects/Contact/describe", (401, fixture("error-INVALID_SESSION_ID.json")),
            (200, fixture("describe-Contact.json")))
    tokens = []

    def refresher():
        tokens.append("00D000000000001!NEW")
        return tokens[-1]

    client = make_client(token_refresher=refresher)
    assert client.describe("Contact").name == "Contact"
    assert tokens == ["00D000000000001!NEW"]
    assert [r["headers"]["Authorization"] for r in stub.requests] == ["Bearer 00D000000000001!OLD",
                                                                     "Bearer 00D000000000001!NEW"]
    assert client.access_token == "00D000000000001!NEW"


def test_expired_session_mid_paging_keeps_the_locator(stub, make_client):
    next_url = f"{V}/query/01gDn00000FAKE1AAA-2000"
    stub.on("GET", f"{V}/query/?", (200, {"totalSize": 2150, "done": False, "nextRecordsUrl": next_url,
                                          "records": records(0, 2000)}))
    stub.on("GET", next_url, (401, fixture("error-INVALID_SESSION_ID.json")),
            (200, {"totalSize": 2150, "done": True, "records": records(2000, 150)}))
    client = make_client(token_refresher=lambda: "NEW")
    assert [len(p.records) for p in client.query_pages("SELECT Id FROM Contact")] == [2000, 150]
    assert stub.requests[-1]["headers"]["Authorization"] == "Bearer NEW"


def test_second_401_propagates(stub, make_client):
    stub.on("GET", f"{V}/sobjects/?", (401, fixture("error-INVALID_SESSION_ID.json")))
    calls = []
    client = make_client(token_refresher=lambda: calls.append(1) or "NEW")
    with pytest.raises(SessionExpired):
        client.describe_global()
    assert calls == [1]
    assert client.calls_made == 2


def test_refresher_refused_propagates_needs_reconnect(stub, make_client):
    stub.on("GET", f"{V}/sobjects/?", (401, fixture("error-INVALID_SESSION_ID.json")))

    def refresher():
        raise NeedsReconnect("expired access/refresh token", code="invalid_grant")

    with pytest.raises(NeedsReconnect):
        make_client(token_refresher=refresher).describe_global()


def test_no_refresher_means_session_expired(stub, make_client):
    stub.on("GET", f"{V}/sobjects/?", (401, fixture("error-INVALID_SESSION_ID.json")))
    with pytest.raises(SessionExpired):
        make_client().describe_global()


def test_create_is_never_retried(stub, make_client, sleeps):
    stub.on("POST", f"{V}/sobjects/Contact/?", (503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}]))
    with pytest.raises(Transient):
        make_client().create("Contact", {"LastName": "Berg"})
    assert sleeps == []
    assert len(stub.requests) == 1


def test_create_update_delete(stub, make_client):
    stub.on("POST", f"{V}/sobjects/Contact/?", (201, {"id": "003Dn00000QxRtAIAV", "success": True, "errors": []}))
    stub.on("PATCH", f"{V}/sobjects/Contact/003Dn00000QxRtAIAV", (204, ""))
    stub.on("DELETE", f"{V}/sobjects/Contact/003Dn00000QxRtAIAV", (204, ""))
    client = make_client()
    assert client.create("Contact", {"LastName": "Tanaka"}) == "003Dn00000QxRtAIAV"
    client.update("Contact", "003Dn00000QxRtAIAV", {"FirstName": "Mei-Lin"})
    client.delete("Contact", "003Dn00000QxRtAIAV")
    assert [(r["method"], json.loads(r["body"]) if r["body"] else None) for r in stub.requests] == [
        ("POST", {"LastName": "Tanaka"}), ("PATCH", {"FirstName": "Mei-Lin"}), ("DELETE", None)]
    with pytest.raises(ValueError):
        client.update("Contact", "../../limits", {})


# --- OAuth ------------------------------------------------------------------------------

def test_endpoints_and_registration(ca_file):
    ep = endpoints("https://acme.my.salesforce.com")
    assert ep.authorize_url == "https://acme.my.salesforce.com/services/oauth2/authorize"
    assert ep.token_url == "https://acme.my.salesforce.com/services/oauth2/token"
    assert ep.revoke_url == "https://acme.my.salesforce.com/services/oauth2/revoke"
    reg = flask_registration("https://login.salesforce.com", "3MVG9id", "secret", ca_file)
    assert reg["access_token_url"] == "https://login.salesforce.com/services/oauth2/token"
    assert reg["client_kwargs"] == {"scope": "api refresh_token id", "code_challenge_method": "S256",
                                    "token_endpoint_auth_method": "client_secret_post",
                                    "verify": ca_file, "trust_env": False}


def test_authorization_request_uses_pkce():
    import base64
    import hashlib
    req = authorization_request("https://login.salesforce.com", "3MVG9id", "https://app.test/callback")
    url = urlsplit(req.url)
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://login.salesforce.com/services/oauth2/authorize"
    assert q["response_type"] == "code" and q["client_id"] == "3MVG9id"
    assert q["redirect_uri"] == "https://app.test/callback" and q["scope"] == SCOPE
    assert q["state"] == req.state and q["code_challenge_method"] == "S256"
    digest = base64.urlsafe_b64encode(hashlib.sha256(req.code_verifier.encode()).digest()).rstrip(b"=").decode()
    assert q["code_challenge"] == digest


def test_parse_token_response():
    tok = parse_token_response(fixture("oauth-token-response-web-server-flow.json"))
    assert tok.org_id == "00D000000000001EAA" and tok.user_id == "005000000000001AAA"
    assert tok.instance_url == "https://example-dev-ed.develop.my.salesforce.com"
    assert tok.issued_at == datetime(2023, 2, 14, 11, 0, 18, 560000, tzinfo=timezone.utc)
    assert tok.refresh_token.startswith("5Aep")
    refreshed = parse_token_response(fixture("oauth-refresh-response.json"), previous_refresh_token="5AepOLD")
    assert refreshed.refresh_token == "5AepOLD"
    with pytest.raises(OAuthFailed):
        parse_token_response({"access_token": "x"})


def _token_body(**extra):
    return {"access_token": "00D000000000001!NEW", "instance_url": "https://localhost:1",
            "id": "https://login.salesforce.com/id/00D000000000001EAA/005000000000001AAA",
            "token_type": "Bearer", "issued_at": "1700000000000", "signature": "FAKE=", **extra}


def test_exchange_code(stub, base, ca_file):
    stub.on("POST", "/services/oauth2/token", (200, _token_body(refresh_token="5AepFIRST", scope=SCOPE)))
    tok = exchange_code(f"{base}/services/oauth2/token", "3MVG9id", "s3cret", "aPrx%3D%3D", "https://app.test/cb",
                        "v" * 48, ca_file=ca_file)
    assert (tok.access_token, tok.refresh_token, tok.org_id) == ("00D000000000001!NEW", "5AepFIRST",
                                                                "00D000000000001EAA")
    form = {k: v[0] for k, v in parse_qs(stub.requests[0]["body"]).items()}
    assert form == {"grant_type": "authorization_code", "code": "aPrx%3D%3D", "redirect_uri": "https://app.test/cb",
                    "code_verifier": "v" * 48, "client_id": "3MVG9id", "client_secret": "s3cret"}


def test_refresh_keeps_refresh_token(stub, base, ca_file):
    stub.on("POST", "/services/oauth2/token", (200, _token_body()))
    tok = refresh_access_token(f"{base}/services/oauth2/token", "3MVG9id", "s3cret", "5AepKEEP", ca_file=ca_file)
    assert tok.access_token == "00D000000000001!NEW"
    assert tok.refresh_token == "5AepKEEP"
    form = {k: v[0] for k, v in parse_qs(stub.requests[0]["body"]).items()}
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] == "5AepKEEP"
    assert form["client_secret"] == "s3cret"


def test_refresh_refused_needs_reconnect(stub, base, ca_file):
    stub.on("POST", "/services/oauth2/token", (400, fixture("oauth-error-expired-refresh-token.json")))
    with pytest.raises(NeedsReconnect) as err:
        refresh_access_token(f"{base}/services/oauth2/token", "3MVG9id", "s3cret", "5AepDEAD", ca_file=ca_file)
    assert err.value.code == "invalid_grant"


def test_refresh_server_error_is_transient(stub, base, ca_file):
    stub.on("POST", "/services/oauth2/token", (503, "<html>down</html>"))
    with pytest.raises(Transient):
        refresh_access_token(f"{base}/services/oauth2/token", "3MVG9id", "s3cret", "5Aep", ca_file=ca_file)


def test_wrong_client_id(stub, base, ca_file):
    stub.on("POST", "/services/oauth2/token", (400, fixture("oauth-error-invalid-client-id.json")))
    with pytest.raises(OAuthFailed):
        exchange_code(f"{base}/services/oauth2/token", "nope", "s", "c", "https://app.test/cb", "v" * 48,
                      ca_file=ca_file)


def test_revoke(stub, base, ca_file):
    stub.on("POST", "/services/oauth2/revoke", (200, ""))
    revoke(f"{base}/services/oauth2/revoke", "5AepREVOKE", ca_file=ca_file)
    assert parse_qs(stub.requests[0]["body"]) == {"token": ["5AepREVOKE"]}
    stub.on("POST", "/services/oauth2/revoke_bad", (400, {"error": "invalid_token", "error_description": "x"}))
    with pytest.raises(OAuthFailed):
        revoke(f"{base}/services/oauth2/revoke_bad", "gone", ca_file=ca_file)


def test_fetch_identity(stub, base, ca_file):
    stub.on("GET", "/id/00D000000000001EAA/005000000000001AAA",
            (200, {"id": f"{base}/id/00D000000000001EAA/005000000000001AAA", "user_id": "005000000000001AAA",
                   "organization_id": "00D000000000001EAA", "username": "integration.user@example.org",
                   "display_name": "Integration User", "email": "integration.user@example.org"}))
    ident = fetch_identity(f"{base}/id/00D000000000001EAA/005000000000001AAA", "TOKEN", ca_file=ca_file)
    assert ident == Identity("00D000000000001EAA", "005000000000001AAA", "integration.user@example.org",
                             "Integration User", "integration.user@example.org")
    assert stub.requests[0]["headers"]["Authorization"] == "Bearer TOKEN"
    stub.on("GET", "/id/expired/x", (401, fixture("error-INVALID_SESSION_ID.json")))
    with pytest.raises(SessionExpired):
        fetch_identity(f"{base}/id/expired/x", "OLD", ca_file=ca_file)

"""Every Salesforce failure is classified once, from recorded error bodies."""
import json

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from simple_salesforce.exceptions import (SalesforceExpiredSession, SalesforceGeneralError,
                                          SalesforceMalformedRequest, SalesforceRefusedRequest,
                                          SalesforceResourceNotFound)

from salesforce.errors import (AccessDenied, ApiDisabled, ApiLimitExceeded, BrokenPaging, MalformedQuery,
                               NeedsReconnect, NotFound, OAuthFailed, QueryLocatorInvalid, SalesforceError,
                               SessionExpired, Transient, classify)
from tests.conftest import shared_path


def _fixture(name):
    return json.loads(shared_path("fixtures", "salesforce", name).read_text())


def _response(status, body, content_type="application/json;charset=UTF-8"):
    r = requests.Response()
    r.status_code = status
    r._content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    r.headers["Content-Type"] = content_type
    r.url = "https://acme.my.salesforce.com/services/data/v62.0/query/"
    return r


@pytest.mark.parametrize("status,fixture,cls,code", [
    (401, "error-INVALID_SESSION_ID.json", SessionExpired, "INVALID_SESSION_ID"),
    (403, "error-REQUEST_LIMIT_EXCEEDED.json", ApiLimitExceeded, "REQUEST_LIMIT_EXCEEDED"),
    (403, "error-API_DISABLED_FOR_ORG.json", ApiDisabled, "API_DISABLED_FOR_ORG"),
    (400, "error-MALFORMED_QUERY.json", MalformedQuery, "MALFORMED_QUERY"),
    (400, "error-INVALID_FIELD.json", MalformedQuery, "INVALID_FIELD"),
    (400, "error-INVALID_TYPE.json", MalformedQuery, "INVALID_TYPE"),
    (404, "error-NOT_FOUND.json", NotFound, "NOT_FOUND"),
])
def test_recorded_errors(status, fixture, cls, code):
    body = _fixture(fixture)
    err = classify(_response(status, body))
    assert type(err) is cls
    assert err.code == code
    assert err.status == status
    assert err.message == body[0]["message"]
    assert err.reason


@pytest.mark.parametrize("status,code,message,cls", [
    (400, "INVALID_QUERY_FILTER_OPERATOR", "invalid operator on multipicklist field", MalformedQuery),
    (400, "INVALID_QUERY_LOCATOR", "invalid query locator", QueryLocatorInvalid),
    (403, "API_CURRENTLY_DISABLED", "API is disabled for this User", ApiDisabled),
    (403, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id", AccessDenied),
    (403, "INSUFFICIENT_ACCESS", "no access", AccessDenied),
    (503, "SERVER_UNAVAILABLE", "Server Unavailable", Transient),
    (500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.", Transient),
    (400, "QUERY_TIMEOUT", "Your query request was running for too long.", Transient),
    (403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.", Transient),
    (401, "INVALID_AUTH_HEADER", "INVALID_HEADER_TYPE", SessionExpired),
    (400, "DUPLICATE_VALUE", "duplicate value found", SalesforceError),
])
def test_error_codes(status, code, message, cls):
    err = classify(_response(status, [{"message": message, "errorCode": code}]))
    assert type(err) is cls
    assert err.code == code


def test_malformed_query_keeps_salesforces_message():
    body = _fixture("error-INVALID_FIELD.json")
    err = classify(_response(400, body))
    assert "No such column 'SF_date__c' on entity 'Lead'" in err.message
    assert "No such column 'SF_date__c'" in err.reason


def test_limit_reason_is_the_run_message():
    err = classify(_response(403, _fixture("error-REQUEST_LIMIT_EXCEEDED.json")))
    assert err.reason == "Salesforce API daily limit reached; will resume"
    assert not err.retryable


def test_html_error_page_is_transient():
    err = classify(_response(502, "<!DOCTYPE html><html><body>Bad gateway</body></html>", "text/html"))
    assert type(err) is Transient and err.retryable and err.code == "HTTP_502"
    err = classify(_response(503, "<html><head><title>Maintenance</title></head></html>", "text/html"))
    assert type(err) is Transient


def test_simple_salesforce_exceptions():
    url = "https://acme.my.salesforce.com/services/data/v62.0/query/"
    assert type(classify(SalesforceExpiredSession(url, 401, "query", _fixture("error-INVALID_SESSION_ID.json")))) \
        is SessionExpired
    assert type(classify(SalesforceRefusedRequest(url, 403, "query", _fixture("error-REQUEST_LIMIT_EXCEEDED.json")))) \
        is ApiLimitExceeded
    assert type(classify(SalesforceMalformedRequest(url, 400, "query", _fixture("error-MALFORMED_QUERY.json")))) \
        is MalformedQuery
    assert type(classify(SalesforceResourceNotFound(url, 404, "x", _fixture("error-NOT_FOUND.json")))) is NotFound
    assert type(classify(SalesforceGeneralError(url, 503, "x", "Service Unavailable"))) is Transient


def test_transport_failures():
    assert classify(requests.exceptions.ReadTimeout("read timed out")).code == "TIMEOUT"
    assert type(classify(requests.exceptions.ConnectTimeout("x"))) is Transient
    assert type(classify(requests.exceptions.ConnectionError("refused"))) is Transient
    tls = classify(requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED"))
    assert type(tls) is SalesforceError and tls.code == "TLS_ERROR" and not tls.retryable
    cut = classify(requests.exceptions.ChunkedEncodingError("IncompleteRead"))
    assert type(cut) is BrokenPaging and cut.retryable
    try:
        _response(200, '{"totalSize": 2, "done": fal').json()
    except requests.exceptions.JSONDecodeError as exc:
        bad = classify(exc)
    assert type(bad) is BrokenPaging and bad.code == "INVALID_RESPONSE"


@pytest.mark.parametrize("fixture,cls", [
    ("oauth-error-expired-refresh-token.json", NeedsReconnect),
    ("oauth-error-authentication-failure.json", NeedsReconnect),
    ("oauth-error-invalid-client-id.json", OAuthFailed),
])
def test_oauth_errors(fixture, cls):
    body = _fixture(fixture)
    err = classify(OAuthError(error=body["error"], description=body.get("error_description")))
    assert type(err) is cls
    assert err.code == body["error"]
    assert err.reason


def test_our_errors_pass_through():
    err = NeedsReconnect("expired access/refresh token", code="invalid_grant")
    assert classify(err) is err
    assert "reconnect" in err.reason

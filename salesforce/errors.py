"""Salesforce failures, classified once.

Everything that can go wrong between us and Salesforce ends up as one of the classes below, so
services and the sync engine decide what to do by class (refresh, stop as partial, back off,
fail with the message) and never look at HTTP statuses or error codes themselves.

``classify(x)`` accepts a ``requests.Response``, a simple-salesforce exception, an authlib
``OAuthError``, a requests transport exception, a JSON decoding error, or one of our own errors
(returned unchanged), and returns the matching ``SalesforceError`` instance (it never raises).
"""
from __future__ import annotations

import json
from typing import Any


class SalesforceError(Exception):
    """Base class. ``code`` is Salesforce's errorCode (or a synthetic one such as ``TIMEOUT``),
    ``reason`` a sentence a researcher can read, ``message`` Salesforce's own text (may be
    empty), ``status`` the HTTP status when there was a response."""

    kind = "salesforce_error"
    retryable = False
    default_reason = "Salesforce returned an error."

    def __init__(self, message: str = "", *, code: str | None = None, status: int | None = None,
                 reason: str | None = None, retryable: bool | None = None):
        self.message = message or ""
        self.code = code or self.kind.upper()
        self.status = status
        self.reason = reason or self._make_reason()
        if retryable is not None:
            self.retryable = retryable
        super().__init__(self.reason)

    def _make_reason(self) -> str:
        if self.message:
            return f"{self.default_reason} Salesforce said: {_first_line(self.message)}"
        return self.default_reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, reason={self.reason!r})"


class SessionExpired(SalesforceError):
    kind = "session_expired"
    default_reason = "The Salesforce session expired."

    def _make_reason(self) -> str:
        return self.default_reason


class NeedsReconnect(SalesforceError):
    """The refresh token was refused (revoked, expired by policy, user deactivated)."""

    kind = "needs_reconnect"
    default_reason = ("Salesforce no longer accepts this connection's authorization; "
                      "an administrator needs to reconnect the org.")


class ApiLimitExceeded(SalesforceError):
    """The org's daily API allowance is used up. Never retried: it resets on a rolling day."""

    kind = "api_limit_exceeded"
    default_reason = "Salesforce API daily limit reached; will resume"

    def _make_reason(self) -> str:
        return self.default_reason


class ApiDisabled(SalesforceError):
    kind = "api_disabled"
    default_reason = ("API access is not enabled for this Salesforce org or user "
                      "(it needs an edition with API access and the \"API Enabled\" permission).")


class Transient(SalesforceError):
    """5xx, maintenance, timeouts, connection failures, HTML error pages: worth a bounded retry."""

    kind = "transient"
    retryable = True
    default_reason = "Salesforce is temporarily unavailable."


class QueryLocatorInvalid(SalesforceError):
    """The paging cursor (nextRecordsUrl locator) expired: restart the query from the sync cursor."""

    kind = "query_locator_invalid"
    default_reason = "Salesforce's paging cursor expired; the run restarts from its last saved position."

    def _make_reason(self) -> str:
        return self.default_reason


class BrokenPaging(SalesforceError):
    """A result Salesforce promised but did not deliver: ``done: false`` without a next link,
    a page that never arrived after retries, or a body that is cut off or not JSON."""

    kind = "broken_paging"
    default_reason = "Salesforce said more records follow but did not deliver them."

    def _make_reason(self) -> str:
        return f"{self.default_reason} ({self.message})" if self.message else self.default_reason


class MalformedQuery(SalesforceError):
    """Salesforce rejected the SOQL (syntax, unknown field or object, wrong operator).
    ``message`` keeps Salesforce's text, caret line included."""

    kind = "malformed_query"
    default_reason = "Salesforce rejected the query."


class AccessDenied(SalesforceError):
    kind = "access_denied"
    default_reason = "The connected Salesforce user lacks permission for this."


class NotFound(SalesforceError):
    kind = "not_found"
    default_reason = "Salesforce has no such object, record or resource."


class OAuthFailed(SalesforceError):
    """The token endpoint refused for a reason other than a dead grant (wrong consumer key or
    secret, unsupported grant...): a configuration problem, not the researcher's."""

    kind = "oauth_failed"
    default_reason = "Salesforce refused the sign-in."


_MALFORMED = {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE", "INVALID_QUERY_FILTER_OPERATOR",
              "INVALID_OPERATION", "INVALID_QUERY_SCOPE", "NUMBER_OUTSIDE_VALID_RANGE",
              "INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_QUERY_VALUE"}
_DISABLED = {"API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"}
_DEAD_GRANT = {"invalid_grant", "inactive_user", "inactive_org"}


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _error_entry(content: Any) -> tuple[str | None, str]:
    """(errorCode, message) from Salesforce's error array (or a single object)."""
    if isinstance(content, (bytes, bytearray)):
        content = content.decode("utf-8", "replace")
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError:
            return None, content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        content = content[0]
    if isinstance(content, dict):
        code = content.get("errorCode") or content.get("error")
        message = content.get("message") or content.get("error_description") or ""
        return (str(code) if code else None), str(message)
    return None, "" if content is None else str(content)


def _looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith("<!doctype html") or head.startswith("<html") or "<html" in head


def classify_status(status: int, content: Any) -> SalesforceError:
    """Classify an HTTP error answer from the REST API by status and body."""
    code, message = _error_entry(content)
    raw = content.decode("utf-8", "replace") if isinstance(content, (bytes, bytearray)) else content
    if code is None and isinstance(raw, str) and _looks_like_html(raw):
        return Transient("Salesforce answered with an HTML page instead of JSON.",
                         code=f"HTTP_{status}", status=status)
    if status == 401 or code in ("INVALID_SESSION_ID", "INVALID_AUTH_HEADER"):
        return SessionExpired(message, code=code or "INVALID_SESSION_ID", status=status)
    if code == "REQUEST_LIMIT_EXCEEDED":
        if "concurrent" in message.lower():
            # Too many long-running requests at once: clears in seconds, unlike the daily limit.
            return Transient(message, code=code, status=status,
                             reason="Salesforce is busy with too many long requests from this org.")
        return ApiLimitExceeded(message, code=code, status=status)
    if code in _DISABLED:
        return ApiDisabled(message, code=code, status=status)
    if code == "INVALID_QUERY_LOCATOR":
        return QueryLocatorInvalid(message, code=code, status=status)
    if code in _MALFORMED:
        return MalformedQuery(message, code=code, status=status)
    if code == "QUERY_TIMEOUT":
        return Transient(message, code=code, status=status,
                         reason="Salesforce took too long to answer the query.")
    if code and code.startswith("INSUFFICIENT_ACCESS"):
        return AccessDenied(message, code=code, status=status)
    if status == 403:
        return AccessDenied(message, code=code or "HTTP_403", status=status)
    if status == 404 or code == "NOT_FOUND":
        return NotFound(message, code=code or "NOT_FOUND", status=status)
    if status >= 500 or status in (408, 429) or code in ("SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"):
        return Transient(message, code=code or f"HTTP_{status}", status=status)
    return SalesforceError(message, code=code or f"HTTP_{status}", status=status)


def classify_oauth(error: str | None, description: str | None, status: int | None = None) -> SalesforceError:
    """Classify an OAuth token-endpoint error (``{"error": ..., "error_description": ...}``)."""
    error = error or "oauth_error"
    description = description or ""
    if error in _DEAD_GRANT:
        return NeedsReconnect(description, code=error, status=status)
    if error in ("rate_limit_exceeded", "temporarily_unavailable", "server_error"):
        return Transient(description, code=error, status=status)
    return OAuthFailed(description, code=error, status=status)


def classify(x: Any) -> SalesforceError:
    """Turn any failure coming from Salesforce (or the way to it) into a SalesforceError."""
    if isinstance(x, SalesforceError):
        return x
    import requests

    if isinstance(x, requests.Response):
        if x.status_code < 300:
            return BrokenPaging("the response was not the JSON Salesforce documents",
                                code="INVALID_RESPONSE", status=x.status_code, retryable=True)
        return classify_status(x.status_code, x.content)

    try:
        from simple_salesforce.exceptions import SalesforceError as SimpleSalesforceError
    except ImportError:  # pragma: no cover - simple-salesforce is a pinned dependency
        SimpleSalesforceError = ()  # type: ignore[assignment]
    if SimpleSalesforceError and isinstance(x, SimpleSalesforceError):
        return classify_status(int(x.status), x.content)

    try:
        from authlib.common.errors import AuthlibBaseError
    except ImportError:  # pragma: no cover
        AuthlibBaseError = ()  # type: ignore[assignment]
    if AuthlibBaseError and isinstance(x, AuthlibBaseError):
        return classify_oauth(getattr(x, "error", None), getattr(x, "description", None))

    # Order matters: SSLError is a ConnectionError, JSONDecodeError is a ValueError.
    if isinstance(x, requests.exceptions.SSLError):
        return SalesforceError(str(x), code="TLS_ERROR",
                               reason="Could not verify Salesforce's certificate; the connection was not made.")
    if isinstance(x, requests.exceptions.Timeout):
        return Transient(str(x), code="TIMEOUT", reason="Salesforce did not answer in time.")
    if isinstance(x, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return BrokenPaging("the response body was cut off", code="INCOMPLETE_RESPONSE", retryable=True)
    if isinstance(x, requests.exceptions.ConnectionError):
        return Transient(str(x), code="CONNECTION_ERROR", reason="Could not reach Salesforce.")
    if isinstance(x, (requests.exceptions.JSONDecodeError, json.JSONDecodeError)):
        return BrokenPaging("the response body was cut off or was not JSON",
                            code="INVALID_RESPONSE", retryable=True)
    if isinstance(x, requests.exceptions.HTTPError) and x.response is not None:
        if x.response.status_code >= 500:
            return Transient(str(x), code=f"HTTP_{x.response.status_code}", status=x.response.status_code)
        return classify_status(x.response.status_code, x.response.content)
    return SalesforceError(str(x), code="UNEXPECTED", reason="Unexpected failure talking to Salesforce.")

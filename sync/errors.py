"""Exceptions at the engine's boundary.

The client layer (``salesforce/``) classifies every Salesforce error once and its source adapter
raises one of the ``Source*`` errors below; the engine never sees HTTP. The sink raises
``SinkConflict`` when a uniqueness rule of the workspace refuses a page (a concurrent run wrote
the same person first); the engine then looks the page up again and retries it once.
"""


class SourceError(Exception):
    """Base class: the source cannot deliver more pages."""

    default_reason = "Salesforce error"

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_reason)
        self.message = message or self.default_reason


class SourceLimitReached(SourceError):
    """REQUEST_LIMIT_EXCEEDED: the org's daily API limit. The run ends partial; the next
    scheduled run resumes from the cursor. Nobody sleeps on it."""

    default_reason = "Salesforce API daily limit reached; will resume"


class SourceAuthFailed(SourceError):
    """The refresh token was refused (invalid_grant): the connection needs reconnecting."""

    default_reason = "Salesforce refused the connection's credentials; reconnect Salesforce"


class SourceTransient(SourceError):
    """5xx, timeouts, connection errors that outlasted the client's bounded retries."""

    default_reason = "Salesforce unavailable"


class SourceBrokenPaging(SourceError):
    """``done: false`` without ``nextRecordsUrl``, or a next page that never arrives."""

    default_reason = "Salesforce stopped returning pages before the end of the results"


class SourceQueryError(SourceError):
    """Salesforce refused the query (MALFORMED_QUERY, INVALID_FIELD ...); message is its own."""


class SinkConflict(Exception):
    """A page's writes broke a workspace uniqueness rule (email key, source link)."""

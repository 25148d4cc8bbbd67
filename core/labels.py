"""What a plan, run or connection status is called on the pages: one mapping, used through the
``status_label`` Jinja filter (registered in ``core.web.register_hooks``) wherever a status is
shown. The codes themselves stay in CSS classes and data attributes."""
from __future__ import annotations

import re

STATUS_LABELS = {
    # plans (models.plans)
    "draft": "Draft",
    "active": "Active",
    "paused": "Paused",
    "held": "On hold: reconnect needed",
    # runs (models.runs)
    "queued": "Queued",
    "running": "Running",
    "succeeded": "Succeeded",
    "partial": "Partial (API limit; resumes next run)",
    "failed": "Failed",
    "interrupted": "Interrupted",
    "skipped": "Skipped",
    # connections (models.integrations)
    "connected": "Connected",
    "needs_reconnect": "Needs reconnect",
    "disconnected": "Disconnected",
}


def status_label(code: str | None) -> str:
    """The words for a plan, run or connection status; an unknown code made readable."""
    if not code:
        return ""
    return STATUS_LABELS.get(code) or code.replace("_", " ").capitalize()


# Consent fields a participant may see named on "Why did I receive this?" (the team sees the API name).
FIELD_WORDS = {
    "hasoptedoutofemail": "Opted out of email",
    "donotcall": "Do not call",
    "hasoptedoutoffax": "Opted out of fax",
    "personhasoptedoutofemail": "Opted out of email",
    "persondonotcall": "Do not call",
}


def field_words(path: str | None) -> str:
    """A Salesforce field path in words for people who never saw Salesforce:
    ``HasOptedOutOfEmail`` → "Opted out of email", ``Contact.Consent_Status__c`` → "Consent status"."""
    if not path:
        return ""
    name = str(path).rsplit(".", 1)[-1]
    known = FIELD_WORDS.get(name.lower())
    if known:
        return known
    name = re.sub(r"__c$", "", name).replace("_", " ")
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    words = name.split()
    return (" ".join([words[0].capitalize(), *(w.lower() for w in words[1:])]) if words else str(path))


def value_words(value) -> str:
    """A recorded value in words: booleans as Yes/No, nothing as "not set"."""
    if value is None or value == "":
        return "not set"
    if isinstance(value, bool) or str(value).lower() in ("true", "false"):
        return "Yes" if str(value).lower() == "true" else "No"
    return str(value)

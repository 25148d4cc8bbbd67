"""What a run does with a record, in words: one vocabulary for the run log and the preview.

The engine writes its reasons with the builders below (``duplicate_in_set``,
``matched_existing``, ``email_taken``, ``REMOVED_IN_PREVIEW``); the run log shows an outcome's
label (``OUTCOME_LABELS``) beside that reason; the preview (wizard step 5, "Add participants")
says the same with ``preview_verdict`` and counts with the parsers below, and its totals panel
uses ``TOTAL_LABELS``. So a record the preview calls "Unchanged: duplicate within the set (same
email as 003…)" is one the run log lists as "Unchanged" with the reason "Duplicate within the
set (same email as 003…); …". Change the words here, and both follow.

Plain Python, no Flask: the engine imports it.
"""
from __future__ import annotations

import re

# The outcome codes as the run log stores them (models.runs.OUTCOMES): past tense.
OUTCOME_LABELS = {
    "imported": "Imported", "updated": "Updated", "unchanged": "Unchanged",
    "excluded": "Removed in the preview", "skipped": "Skipped", "failed": "Failed", "invited": "Invited",
    "left": "Left the plan",
}
OUTCOME_EXPLAINED = {
    "imported": "Salesforce returned the record and Terapage created a participant from it.",
    "updated": "Salesforce returned the record and Terapage updated the participant linked to it.",
    "unchanged": "Salesforce returned the record; nothing Terapage keeps had changed.",
    "excluded": "A researcher removed this record in the plan's preview, so every run leaves it out.",
    "skipped": "Salesforce returned the record but Terapage did not import it (the reason says why).",
    "failed": "Terapage could not write this record; the reason says why.",
    "left": "The record no longer belongs to the plan (deleted, merged, opted out or no longer matching).",
}
# The same outcomes as the preview says them, before the run (the engine's codes: sync.sink).
PREVIEW_LABELS = {
    "imported": "Will be imported", "updated": "Will be updated", "unchanged": "Unchanged",
    "excluded_in_preview": OUTCOME_LABELS["excluded"], "excluded": OUTCOME_LABELS["excluded"],
    "skipped": "Will be skipped", "failed": "Would fail",
}

# --- situations: the engine's reasons, and how the preview recognises them ------------------------

REMOVED_IN_PREVIEW = OUTCOME_LABELS["excluded"]
DUPLICATE_IN_SET = "Duplicate within the set"
MATCHED_EXISTING = "Matched an existing participant"
ALREADY_IMPORTED = "Already imported"
EMAIL_TAKEN = "already belongs to another participant"


def duplicate_in_set(of_record_id: str, matched_by: str) -> str:
    """The reason for a record that is the same person as an earlier record of the same run
    (or preview): linked to that record's participant, whose values are kept (outcome
    unchanged)."""
    return (f"{DUPLICATE_IN_SET} (same {matched_by} as {of_record_id}); merged into the same "
            f"participant, whose values were kept")


def matched_existing(matched_by: str) -> str:
    """The reason for a record linked to a participant Terapage already had (outcome updated)."""
    return f"{MATCHED_EXISTING} by {matched_by}"


def email_taken(email_key: str) -> str:
    """The reason for a record skipped because its email is another participant's."""
    return f"Email {email_key} {EMAIL_TAKEN}; possible duplicate in Salesforce."


_DUPLICATE = re.compile(re.escape(DUPLICATE_IN_SET) + r" \(same (?P<by>.+?) as (?P<of>\S+?)\)")
# Reasons stored before this wording (kept readable in old run logs).
_OLD_DUPLICATE = re.compile(r"Duplicate of (?P<of>\S+) within this run(?: \(same (?P<by>[^)]+)\))?")


def duplicate_in_set_of(reason: str | None) -> tuple[str, str | None] | None:
    """(record ID, matched by) of the earlier record a duplicate-within-the-set reason names."""
    if not reason:
        return None
    found = _DUPLICATE.match(reason) or _OLD_DUPLICATE.match(reason)
    return (found.group("of"), found.group("by")) if found else None


def matched_existing_by(reason: str | None) -> str | None:
    """"email" / "phone" / ... of a matched-an-existing-participant reason."""
    prefix = f"{MATCHED_EXISTING} by "
    if reason and reason.startswith(prefix):
        return reason[len(prefix):].split(";")[0].strip()
    return None


def preview_verdict(outcome: str, reason: str | None, *, already_imported: bool = False) -> str:
    """One line for a previewed record: the outcome as the preview says it, then the situation
    in the run log's words (``"Unchanged: duplicate within the set (same email as 003…)"``)."""
    label = PREVIEW_LABELS.get(outcome) or outcome.replace("_", " ").capitalize()
    if outcome in ("excluded", "excluded_in_preview"):
        return label
    duplicate = duplicate_in_set_of(reason)
    if duplicate:
        of, by = duplicate
        return f"{label}: {_lower_first(DUPLICATE_IN_SET)} ({f'same {by} as ' if by else 'of '}{of})"
    if already_imported:
        return f"{label}: {_lower_first(ALREADY_IMPORTED)}"
    by = matched_existing_by(reason)
    if by:
        return f"{label}: {_lower_first(matched_existing(by))}"
    if outcome == "imported" or not reason:
        return label
    return f"{label}: {reason}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# The preview's totals panel: count key -> words (the same situations as the verdicts).
TOTAL_LABELS = {
    "total": "Matching records",
    "will_import": PREVIEW_LABELS["imported"],
    "already_imported": ALREADY_IMPORTED,
    "invalid_email": "Invalid emails",
    "invalid_phone": "Invalid phone numbers",
    "duplicate_in_set": "Duplicates within the set (unchanged: merged into one participant)",
    "duplicate_existing": "Matched existing participants (updated)",
    "consent_missing": "Missing consent values",
    "skipped": PREVIEW_LABELS["skipped"],
    "excluded": REMOVED_IN_PREVIEW,
}

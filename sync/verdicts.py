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
# The reasons of records linked before (by an earlier run or plan): changed in Salesforce since
# (outcome updated) or not (outcome unchanged, nothing written).
ALREADY_IMPORTED_CHANGED = f"{ALREADY_IMPORTED}; changed in Salesforce since the last run"
ALREADY_IMPORTED_UNCHANGED = f"{ALREADY_IMPORTED}; not changed in Salesforce since the last run"
EMAIL_TAKEN = "already belongs to another participant"
SKIPPED_AGAIN = "Skipped again: unchanged since an earlier run skipped it"
# Why an invite plan's run invited nobody: its consent confirmation is missing or void (the run
# page looks for these words in the run's reasons: services.operations.run_lacked_confirmation).
NOT_CONFIRMED = "invitations for this plan are not confirmed"


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


def skipped_again(reason: str | None) -> str:
    """The reason for a record skipped as an earlier run did (the plan's skip memory: same
    record, same rules), not validated again: it says it is skipped, and why it was."""
    if reason and reason.startswith(SKIPPED_AGAIN):
        return reason
    return f"{SKIPPED_AGAIN} ({(reason or 'no reason recorded').rstrip('.')})"


def run_reason(outcome: str, reason: str | None, detail: dict | None = None) -> str:
    """The one reason a run log row shows (rows stored before these words included)."""
    detail = detail or {}
    if detail.get("remembered") and outcome == "skipped":
        return skipped_again(reason)
    return reason or ""


def flag_notes(reason: str | None, detail: dict | None) -> list[str]:
    """The row's field problems that its reason does not already say (each flag's reason names
    its field: "The phone number is too short.")."""
    said = reason or ""
    notes = []
    for flag in (detail or {}).get("flags", []) or []:
        text = (flag.get("reason") or "").strip()
        if text and text.rstrip(".") not in said and text not in notes:
            notes.append(text)
    return notes


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
    in the run log's words (``"Unchanged: duplicate within the set (same email as 003…)"``).
    ``already_imported`` is ignored: the engine's reason says so (kept for old callers)."""
    label = PREVIEW_LABELS.get(outcome) or outcome.replace("_", " ").capitalize()
    if outcome in ("excluded", "excluded_in_preview"):
        return label
    if reason and reason.startswith(SKIPPED_AGAIN):
        # "Skipped again: unchanged since ..." -> "Will be skipped again: unchanged since ..."
        return "Will be skipped again" + reason[len("Skipped again"):]
    duplicate = duplicate_in_set_of(reason)
    if duplicate:
        of, by = duplicate
        return f"{label}: {_lower_first(DUPLICATE_IN_SET)} ({f'same {by} as ' if by else 'of '}{of})"
    if outcome == "imported" and not reason:
        return label
    if reason and reason.startswith((ALREADY_IMPORTED, MATCHED_EXISTING)):
        reason = _lower_first(reason)
    return f"{label}: {reason}" if reason else label


def situation(outcome: str, reason: str | None) -> str:
    """The one situation (within its outcome) a record is counted under in the preview's
    totals; every record has exactly one outcome and one situation."""
    if outcome in ("excluded", "excluded_in_preview"):
        return "excluded"
    if reason and reason.startswith(SKIPPED_AGAIN):
        return "skipped_again"
    if duplicate_in_set_of(reason):
        return "duplicate_in_set"
    if reason and reason.startswith(ALREADY_IMPORTED):
        return "already_imported"
    if matched_existing_by(reason):
        return "matched_existing"
    return "other"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# The preview's totals panel: one line per run outcome counter (the run's words and counting
# rules: every matching record is counted under exactly one of IMPORTED ... FAILED, so these add
# up to the matching records; "invited" and "left" count besides, as the run counts them).
TOTAL_OUTCOMES = ("imported", "updated", "unchanged", "excluded", "skipped", "failed")
TOTAL_LABELS = {
    "total": "Matching records",
    **{key: OUTCOME_LABELS[key] for key in TOTAL_OUTCOMES},
    "invited": OUTCOME_LABELS["invited"],
    "left": OUTCOME_LABELS["left"],
}
# Within an outcome, the situations its records are in (``situation``), each counted once.
SITUATION_LABELS = {
    "already_imported": ALREADY_IMPORTED,
    "matched_existing": f"{MATCHED_EXISTING} (by email, phone or a related record)",
    "duplicate_in_set": "Duplicate within the set (merged into one participant)",
    "skipped_again": "Skipped by an earlier run, unchanged since",
    "other": "Other reasons",
}

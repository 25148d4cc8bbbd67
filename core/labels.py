"""What a plan, run or connection status is called on the pages: one mapping, used through the
``status_label`` Jinja filter (registered in ``core.web.register_hooks``) wherever a status is
shown. The codes themselves stay in CSS classes and data attributes."""
from __future__ import annotations

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

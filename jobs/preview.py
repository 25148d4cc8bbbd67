"""Preview jobs (queue "default"): totals for a plan's whole matching set."""
from services import previews


def compute_totals(totals_id: int) -> str:
    """Count what a run of the plan would do over every matching record (``PreviewTotals`` row)."""
    row = previews.compute_totals(totals_id)
    return row.status if row is not None else "missing"

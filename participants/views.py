"""The participant pool (search, filters, pagination; htmx swaps only the table) and a participant's page."""
from __future__ import annotations

from flask import Blueprint, request

from core.request_values import db_int
from core.extensions import db
from core.security import login_required
from core.tenancy import current_workspace_id, get_in_workspace_or_404
from core.web import render
from models import Participant
from models.participants import CONSENT_STATUSES
from services import participants_pool as pool_service

bp = Blueprint("participants", __name__, url_prefix="/participants")
PER_PAGE = 25


def pool_context(filters: pool_service.PoolFilter, endpoint: str, endpoint_args: dict | None = None,
                 *, cap_search: bool = True) -> dict:
    """What the pool table needs; shared with the "Add participants" flow (which counts every
    match: its "Add all N matching" must say the true N, so ``cap_search=False``).

    The segment list (a scan of every participant's segments) is read only when a template
    iterates it: the filter form of a whole page does, the table fragment never does."""
    workspace_id = current_workspace_id()
    page = pool_service.paginate(pool_service.pool_query(workspace_id, filters),
                                 page=request.args.get("page", 1, type=db_int), per_page=PER_PAGE,
                                 count_cap=pool_service.SEARCH_COUNT_CAP if cap_search and filters.q.strip() else None)
    return {"page": page, "filters": filters, "segments": pool_service.LazySegments(workspace_id),
            "consent_statuses": CONSENT_STATUSES, "statuses": pool_service.POOL_STATUSES,
            "endpoint": endpoint, "args": {**(endpoint_args or {}), **filters.args()}}


@bp.get("/")
@login_required
def pool():
    filters = pool_service.PoolFilter.from_args(request.args)
    return render("participants/pool.html", "participants/_pool_table.html",
                  **pool_context(filters, "participants.pool"))


@bp.get("/<int:participant_id>")
@login_required
def participant(participant_id: int):
    person = get_in_workspace_or_404(Participant, participant_id)
    return render("participants/participant.html", participant=person, **pool_service.participant_picture(person))

"""The current workspace, and loading rows only from it.

Every workspace-owned row has ``workspace_id``. A signed-in person works in one workspace at a
time; its id is kept in the session (``session["workspace_id"]``) and their membership of it is
loaded once per request (``load_membership``, called by the access hook in ``core.security``).

Use in views::

    from core.tenancy import current_workspace, current_membership, get_in_workspace_or_404, scoped

    study = get_in_workspace_or_404(Study, study_id)        # 404 for another workspace's study
    rows = db.session.scalars(scoped(Study).order_by(Study.name)).all()
    page = db.paginate(scoped(Participant).where(...), page=2, per_page=25)
    ids = ids_in_workspace(Participant, request.form.getlist("participant_id"))

``get_or_404_in_workspace`` is the same function under the name docs/architecture.md uses.
Never load a workspace-owned row with ``db.session.get(Model, id)`` in a view: that skips the
check, and ``tests/security/test_csrf_and_tenancy.py`` will report the route.
"""
from __future__ import annotations

from typing import Iterable, TypeVar

from flask import abort, g, session
from flask_login import current_user
from sqlalchemy import Select, select

from core.extensions import db

SESSION_KEY = "workspace_id"
T = TypeVar("T")


def load_membership():
    """The signed-in person's membership of the session's workspace (falls back to their
    first workspace), cached on ``g`` for the request. None when they belong to none."""
    from models import Membership

    if "membership" in g:
        return g.membership
    membership = None
    if current_user.is_authenticated:
        wanted = session.get(SESSION_KEY)
        if wanted is not None:
            membership = db.session.scalar(
                select(Membership).where(Membership.user_id == current_user.id,
                                         Membership.workspace_id == wanted))
        if membership is None:
            membership = db.session.scalar(
                select(Membership).where(Membership.user_id == current_user.id).order_by(Membership.id))
            if membership is not None:
                session[SESSION_KEY] = membership.workspace_id
            else:
                session.pop(SESSION_KEY, None)
    g.membership = membership
    return membership


def current_membership():
    """The current person's membership of the current workspace (None when signed out)."""
    return load_membership()


def current_workspace():
    """The current workspace; 404 when there is none (views behind ``@login_required`` always
    have one)."""
    membership = load_membership()
    if membership is None:
        abort(404)
    return membership.workspace


def current_workspace_id() -> int:
    membership = load_membership()
    if membership is None:
        abort(404)
    return membership.workspace_id


def switch_workspace(workspace_id: int) -> bool:
    """Make ``workspace_id`` current if the person is a member of it; False otherwise."""
    from models import Membership

    membership = db.session.scalar(
        select(Membership).where(Membership.user_id == current_user.id,
                                 Membership.workspace_id == workspace_id))
    if membership is None:
        return False
    session[SESSION_KEY] = workspace_id
    g.membership = membership
    return True


def user_memberships():
    """Every membership of the signed-in person, for the workspace switcher."""
    from models import Membership, Workspace

    if not current_user.is_authenticated:
        return []
    return db.session.scalars(
        select(Membership).join(Workspace).where(Membership.user_id == current_user.id)
        .order_by(Workspace.name, Workspace.id)).all()


def scoped(model: type[T], *columns) -> Select:
    """``select(model)`` (or of ``columns``) limited to the current workspace."""
    stmt = select(*columns) if columns else select(model)
    return stmt.where(model.workspace_id == current_workspace_id())


def get_in_workspace_or_404(model: type[T], object_id) -> T:
    """The row of ``model`` with this id in the current workspace, else 404 (also for another
    workspace's row, so ids of other workspaces reveal nothing)."""
    object_id = _id_in_range(model, object_id)
    if object_id is None:
        abort(404)
    obj = db.session.scalar(scoped(model).where(model.id == object_id))
    if obj is None:
        abort(404)
    return obj


get_or_404_in_workspace = get_in_workspace_or_404

_INT32 = 2**31 - 1
_INT64 = 2**63 - 1


def _id_in_range(model, value) -> int | None:
    """``value`` as an int when it fits the model's id column (int4, or int8 for BigInteger ids),
    else None: a row cannot have such an id, and the database driver would raise an overflow
    (SQLite, psycopg) instead of finding nothing."""
    from sqlalchemy import BigInteger

    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    column_type = model.__table__.c.id.type
    limit = _INT64 if isinstance(column_type, BigInteger) else _INT32
    if not -limit - 1 <= number <= limit:
        return None
    return number


def ids_in_workspace(model, ids: Iterable) -> list[int]:
    """Those of ``ids`` (strings from a form are fine) that name rows of the current workspace."""
    wanted = set()
    for value in ids:
        number = _id_in_range(model, value)
        if number is not None:
            wanted.add(number)
    if not wanted:
        return []
    found = db.session.scalars(scoped(model, model.id).where(model.id.in_(wanted))).all()
    return sorted(found)

"""People, workspaces and memberships: the verbs the seed command, the views and tests use."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select

from functools import lru_cache

from werkzeug.security import check_password_hash, generate_password_hash

from core.extensions import db
from models import ROLE_ADMIN, ROLE_RESEARCHER, Membership, User, Workspace
from models.accounts import ROLES
from services import audit


class AccountError(ValueError):
    """A change refused for a reason the person can act on (shown as a message)."""


def normalize_login_email(email: str) -> str:
    return (email or "").strip().lower()


def create_user(email: str, name: str, password: str, *, commit: bool = True) -> User:
    """A new account; the password is stored only as a werkzeug hash."""
    email = normalize_login_email(email)
    if not email or "@" not in email:
        raise AccountError("Enter an email address.")
    if not password or len(password) < 8:
        raise AccountError("The password must have at least 8 characters.")
    if find_user(email) is not None:
        raise AccountError(f"An account for {email} already exists.")
    user = User(email=email, name=(name or "").strip() or email)
    user.set_password(password)
    db.session.add(user)
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return user


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalize_login_email(email)))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return generate_password_hash("not a real password")


def authenticate(email: str, password: str) -> User | None:
    """The active user with this email and password, else None (same answer for both mistakes)."""
    user = find_user(email)
    if user is None:
        # Spend the same time as a real check so response times do not reveal accounts.
        check_password_hash(_dummy_hash(), password or "")
        return None
    if not user.is_active or not user.check_password(password or ""):
        return None
    return user


def create_workspace(name: str, *, default_phone_region: str | None = "GB",
                     timezone: str = "Europe/London", commit: bool = True) -> Workspace:
    workspace = Workspace(name=name.strip(), default_phone_region=default_phone_region, timezone=timezone,
                          daily_invite_cap=current_app.config.get("DAILY_INVITE_CAP", 500))
    db.session.add(workspace)
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return workspace


def add_member(user: User, workspace: Workspace, role: str = ROLE_RESEARCHER, *,
               manage_integrations: bool = False, manage_imports: bool = False,
               commit: bool = True) -> Membership:
    """Make ``user`` a member of ``workspace`` (or update their existing membership)."""
    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}.")
    membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id,
                                                            Membership.workspace_id == workspace.id))
    if membership is None:
        membership = Membership(user_id=user.id, workspace_id=workspace.id)
        db.session.add(membership)
    membership.role = role
    membership.can_manage_integrations = bool(manage_integrations)
    membership.can_manage_imports = bool(manage_imports)
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return membership


def members(workspace_id: int) -> list[Membership]:
    return db.session.scalars(select(Membership).join(User).where(Membership.workspace_id == workspace_id)
                              .order_by(User.name, User.id)).all()


def _admin_count(workspace_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Membership).where(
        Membership.workspace_id == workspace_id, Membership.role == ROLE_ADMIN))


def set_access(membership: Membership, *, role: str, manage_integrations: bool, manage_imports: bool,
               actor) -> Membership:
    """Change a member's role and permissions; a workspace always keeps one admin."""
    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}.")
    if membership.role == ROLE_ADMIN and role != ROLE_ADMIN and _admin_count(membership.workspace_id) <= 1:
        raise AccountError("A workspace needs at least one admin: make someone else admin first.")
    before = {"role": membership.role, "manage_integrations": membership.can_manage_integrations,
              "manage_imports": membership.can_manage_imports}
    membership.role = role
    membership.can_manage_integrations = bool(manage_integrations)
    membership.can_manage_imports = bool(manage_imports)
    after = {"role": role, "manage_integrations": bool(manage_integrations),
             "manage_imports": bool(manage_imports)}
    if before != after:
        audit.record(membership.workspace_id, actor, "member.access_changed", "membership", membership.id,
                     user=membership.user.email, before=before, after=after)
    db.session.commit()
    return membership


def invite_member(workspace: Workspace, *, email: str, name: str, password: str | None, role: str,
                  manage_integrations: bool, manage_imports: bool, actor) -> Membership:
    """Add a person to the workspace: an existing account by email, or a new one (needs a password)."""
    user = find_user(email)
    if user is None:
        if not password:
            raise AccountError("No account has this email yet: give a first password to create one.")
        user = create_user(email, name, password, commit=False)
    elif db.session.scalar(select(Membership).where(Membership.user_id == user.id,
                                                    Membership.workspace_id == workspace.id)):
        raise AccountError(f"{user.email} is already a member of this workspace.")
    membership = add_member(user, workspace, role, manage_integrations=manage_integrations,
                            manage_imports=manage_imports, commit=False)
    audit.record(workspace.id, actor, "member.added", "membership", membership.id, user=user.email, role=role,
                 manage_integrations=bool(manage_integrations), manage_imports=bool(manage_imports))
    db.session.commit()
    return membership


def update_settings(workspace: Workspace, *, name: str, default_phone_region: str | None, timezone: str,
                    actor) -> Workspace:
    before = {"name": workspace.name, "default_phone_region": workspace.default_phone_region,
              "timezone": workspace.timezone}
    workspace.name = name.strip()
    workspace.default_phone_region = default_phone_region or None
    workspace.timezone = timezone
    after = {"name": workspace.name, "default_phone_region": workspace.default_phone_region,
             "timezone": workspace.timezone}
    if before != after:
        audit.record(workspace.id, actor, "workspace.settings_changed", "workspace", workspace.id,
                     before=before, after=after)
    db.session.commit()
    return workspace

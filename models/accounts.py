"""People, workspaces and who may do what in them."""
from __future__ import annotations

from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from core.extensions import db
from models.types import UTCDateTime, utcnow

ROLE_ADMIN = "admin"
ROLE_RESEARCHER = "researcher"
ROLES = (ROLE_ADMIN, ROLE_RESEARCHER)

PERM_MANAGE_INTEGRATIONS = "manage_integrations"
PERM_MANAGE_IMPORTS = "manage_imports"
PERMISSIONS = (PERM_MANAGE_INTEGRATIONS, PERM_MANAGE_IMPORTS)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list["Membership"]] = relationship(back_populates="user", cascade="all, delete-orphan")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login
        return bool(self.active)


class Workspace(db.Model):
    __tablename__ = "workspaces"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    default_phone_region: Mapped[str | None] = mapped_column(String(2), default="GB")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    daily_invite_cap: Mapped[int] = mapped_column(Integer, default=500)
    created_at = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list["Membership"]] = relationship(back_populates="workspace", cascade="all, delete-orphan")


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "workspace_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20), default=ROLE_RESEARCHER)
    can_manage_integrations: Mapped[bool] = mapped_column(Boolean, default=False)
    can_manage_imports: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")
    workspace: Mapped[Workspace] = relationship(back_populates="memberships")

    def has(self, permission: str) -> bool:
        """Admins hold every permission; researchers only those granted to them."""
        if self.role == ROLE_ADMIN:
            return True
        if permission == PERM_MANAGE_INTEGRATIONS:
            return bool(self.can_manage_integrations)
        if permission == PERM_MANAGE_IMPORTS:
            return bool(self.can_manage_imports)
        if permission == ROLE_ADMIN:
            return False
        raise ValueError(f"unknown permission {permission!r}")

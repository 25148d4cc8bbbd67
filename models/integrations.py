"""A workspace's Salesforce connections (one per org: a production and a sandbox side by side)."""
from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from models.types import JSONType, UTCDateTime, utcnow

CONNECTION_CONNECTED = "connected"
CONNECTION_NEEDS_RECONNECT = "needs_reconnect"
CONNECTION_DISCONNECTED = "disconnected"
ENVIRONMENTS = ("production", "sandbox", "mydomain")


class SalesforceConnection(db.Model):
    __tablename__ = "salesforce_connections"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))               # "Production", "UAT sandbox"
    environment: Mapped[str] = mapped_column(String(20), default="production")
    login_url: Mapped[str] = mapped_column(String(300))
    instance_url: Mapped[str | None] = mapped_column(String(300))
    org_id: Mapped[str | None] = mapped_column(String(18), index=True)
    org_name: Mapped[str | None] = mapped_column(String(255))
    is_sandbox: Mapped[bool] = mapped_column(Boolean, default=False)
    sf_user_id: Mapped[str | None] = mapped_column(String(18))
    sf_username: Mapped[str | None] = mapped_column(String(255))
    sf_display_name: Mapped[str | None] = mapped_column(String(255))
    identity_url: Mapped[str | None] = mapped_column(String(400))
    # Encrypted at rest (core.crypto); never logged or rendered.
    access_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_issued_at = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=CONNECTION_DISCONNECTED)
    status_reason: Mapped[str | None] = mapped_column(Text)
    connected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    connected_at = mapped_column(UTCDateTime)
    last_token_check_at = mapped_column(UTCDateTime)
    api_used: Mapped[int | None] = mapped_column(Integer)
    api_max: Mapped[int | None] = mapped_column(Integer)
    api_usage_at = mapped_column(UTCDateTime)
    created_at = mapped_column(UTCDateTime, default=utcnow)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DescribeCache(db.Model):
    """Describes cached per connection (describeGlobal under the name ``*``), refreshed on demand."""

    __tablename__ = "describe_cache"
    __table_args__ = (UniqueConstraint("connection_id", "object_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("salesforce_connections.id", ondelete="CASCADE"))
    object_name: Mapped[str] = mapped_column(String(120))
    payload = mapped_column(JSONType)
    fetched_at = mapped_column(UTCDateTime, default=utcnow)

"""Studies, their activities, communities (ongoing panels) and who takes part in each."""
from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from models.types import UTCDateTime, utcnow

ACTIVITY_KINDS = ("survey", "diary", "interview", "task")
STUDY_STATUSES = ("draft", "open", "closed")


class Study(db.Model):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    recurring: Mapped[bool] = mapped_column(default=False)
    closes_at = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at = mapped_column(UTCDateTime, default=utcnow)

    activities: Mapped[list["Activity"]] = relationship(back_populates="study", cascade="all, delete-orphan",
                                                        order_by="Activity.id")


class Activity(db.Model):
    __tablename__ = "activities"
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="survey")
    description: Mapped[str | None] = mapped_column(Text)
    due_at = mapped_column(UTCDateTime)
    created_at = mapped_column(UTCDateTime, default=utcnow)

    study: Mapped[Study] = relationship(back_populates="activities")


class StudyParticipant(db.Model):
    __tablename__ = "study_participants"
    __table_args__ = (UniqueConstraint("study_id", "participant_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    added_via: Mapped[str] = mapped_column(String(20), default="pool")  # pool, salesforce, invitation
    added_at = mapped_column(UTCDateTime, default=utcnow)


class ActivityParticipant(db.Model):
    __tablename__ = "activity_participants"
    __table_args__ = (UniqueConstraint("activity_id", "participant_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    added_via: Mapped[str] = mapped_column(String(20), default="pool")
    added_at = mapped_column(UTCDateTime, default=utcnow)


class Community(db.Model):
    __tablename__ = "communities"
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_at = mapped_column(UTCDateTime, default=utcnow)


class CommunityMember(db.Model):
    __tablename__ = "community_members"
    __table_args__ = (UniqueConstraint("community_id", "participant_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    added_via: Mapped[str] = mapped_column(String(20), default="pool")
    added_at = mapped_column(UTCDateTime, default=utcnow)

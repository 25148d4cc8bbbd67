"""Participants of a workspace and where each came from."""
from __future__ import annotations

from sqlalchemy import DDL, Computed, ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from models.types import JSONType, UTCDateTime, utcnow

CONSENT_OPTED_IN = "opted_in"
CONSENT_OPTED_OUT = "opted_out"
CONSENT_UNKNOWN = "unknown"
CONSENT_STATUSES = (CONSENT_OPTED_IN, CONSENT_OPTED_OUT, CONSENT_UNKNOWN)

# A participant is "active" in the pool, "staged" by an Import-only plan until approved,
# or "archived" (e.g. deleted in Salesforce under the archive policy).
STATUS_ACTIVE = "active"
STATUS_STAGED = "staged"
STATUS_ARCHIVED = "archived"


# The columns the pool's search looks in (services.participants_pool).
SEARCH_COLUMNS = ("first_name", "last_name", "email", "company", "phone_raw", "phone_e164")
# ``Participant.search_text``: those columns lower-cased, one space between them. The database
# computes it on every write (a generated column: no writer can forget it, the sink's bulk
# INSERTs and UPDATEs included). A search word never contains a space (the search is split on
# whitespace), so no match can run across two columns: "word in search_text" is "word in one of
# the columns", tested with one LIKE a row instead of six ILIKEs. lower() here and on the
# pattern is what PostgreSQL's ILIKE does in a UTF-8 database; on SQLite, lower() is Python's
# str.lower, registered on every connection (core.db), so non-ASCII letters fold there too.
# Used by migration 9a4f2c6e8b13 (keep the two the same).
SEARCH_TEXT_SQL = "lower(" + " || ' ' || ".join(f"coalesce({name}, '')" for name in SEARCH_COLUMNS) + ")"


class Participant(db.Model):
    __tablename__ = "participants"
    __table_args__ = (
        # One person per normalised email per workspace: two plans racing never create one twice.
        UniqueConstraint("workspace_id", "email_key"),
        Index("ix_participants_workspace_phone_key", "workspace_id", "phone_key"),
        Index("ix_participants_workspace_status", "workspace_id", "status", "id"),
        # The pool's search (search_text LIKE '%word%') on PostgreSQL: a trigram index (pg_trgm)
        # answers a selective word from the index instead of reading every participant. SQLite
        # has no such index; its LIKE on search_text is fast enough (services.participants_pool).
        Index("ix_participants_search_text", "search_text", postgresql_using="gin",
              postgresql_ops={"search_text": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # No index of its own: the three composite indexes above lead with it (and a lone one made
    # SQLite walk the whole workspace for "phone_key IN (...) ORDER BY id").
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))        # NFC form as given
    email_key: Mapped[str | None] = mapped_column(String(320))    # case-folded; the dedup key
    phone_raw: Mapped[str | None] = mapped_column(String(255))
    phone_e164: Mapped[str | None] = mapped_column(String(20))    # only when the number is valid
    phone_ext: Mapped[str | None] = mapped_column(String(20))
    phone_key: Mapped[str | None] = mapped_column(String(48))     # e164 plus extension
    company: Mapped[str | None] = mapped_column(String(255))
    segments = mapped_column(JSONType, default=list)             # several values allowed
    consent_status: Mapped[str] = mapped_column(String(20), default=CONSENT_UNKNOWN)
    attributes = mapped_column(JSONType, default=dict)           # custom attributes
    status: Mapped[str] = mapped_column(String(20), default=STATUS_ACTIVE)
    created_at = mapped_column(UTCDateTime, default=utcnow)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Computed and stored by the database on every write (see SEARCH_TEXT_SQL). Deferred: only
    # the search reads it, in SQL.
    search_text: Mapped[str | None] = mapped_column(Text, Computed(SEARCH_TEXT_SQL, persisted=True),
                                                    deferred=True)

    sources: Mapped[list["ParticipantSource"]] = relationship(back_populates="participant",
                                                              cascade="all, delete-orphan")

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.email or self.phone_e164 or self.phone_raw or f"Participant {self.id}"


SOURCE_ACTIVE = "active"
SOURCE_DELETED = "deleted"
SOURCE_OPTED_OUT = "opted_out"
SOURCE_NOT_MATCHING = "no_longer_matching"
SOURCE_MERGED = "merged"


class ParticipantSource(db.Model):
    """One Salesforce record linked to a participant (org + object + 18-character record ID)."""

    __tablename__ = "participant_sources"
    __table_args__ = (UniqueConstraint("workspace_id", "org_id", "object_name", "record_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("salesforce_connections.id", ondelete="SET NULL"))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("import_plans.id", ondelete="SET NULL"), index=True)
    source_system: Mapped[str] = mapped_column(String(20), default="salesforce")
    org_id: Mapped[str] = mapped_column(String(18))
    object_name: Mapped[str] = mapped_column(String(120))
    # Case-sensitive: 15-character IDs differ only by case; stored as the 18-character form.
    record_id: Mapped[str] = mapped_column(String(18))
    source_hash: Mapped[str | None] = mapped_column(String(64))      # hash of the mapped source values
    source_timestamp = mapped_column(UTCDateTime)                      # SystemModstamp seen
    source_state: Mapped[str] = mapped_column(String(24), default=SOURCE_ACTIVE)
    consent_value_seen: Mapped[str | None] = mapped_column(Text)
    first_synced_at = mapped_column(UTCDateTime, default=utcnow)
    last_synced_at = mapped_column(UTCDateTime, default=utcnow)
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id", ondelete="SET NULL"))

    participant: Mapped[Participant] = relationship(back_populates="sources")



class SkippedSource(db.Model):
    """A Salesforce record a plan skipped as not importable (missing required values, no valid
    email or phone, opted out, deleted), remembered so that reading it again unchanged costs no
    validation (``sync.sink.SkipMemory``; the engine re-checks that nobody has its email or
    phone since). A plan's memory: ``source_hash`` includes the plan's fingerprint, so one record
    read by two plans has a row for each, written only by that plan's runs. Gone with the plan;
    when the plan links the record; at the plan's next full read for a record it no longer returns
    or that another plan linked meanwhile (a linked record's row is never consulted).
    """

    __tablename__ = "skipped_sources"
    # The key leads with the link's key (workspace, org, object, record): "this plan's rows of
    # these records" is an index lookup; the full read's join to the links uses it too.
    __table_args__ = (Index("ix_skipped_sources_plan", "plan_id"),)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(18), primary_key=True)
    object_name: Mapped[str] = mapped_column(String(120), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(18), primary_key=True)  # as ParticipantSource's
    plan_id: Mapped[int] = mapped_column(ForeignKey("import_plans.id", ondelete="CASCADE"), primary_key=True)
    source_hash: Mapped[str] = mapped_column(String(64))
    rules: Mapped[str] = mapped_column(String(200))  # sync.engine.SKIP_RULES that decided it
    reason: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(320))  # the record's, as on its outcome
    email_key: Mapped[str | None] = mapped_column(String(320))
    phone_key: Mapped[str | None] = mapped_column(String(48))
    flags = mapped_column(JSONType)  # [{"code", "field", "raw", "reason"}], None when none
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id", ondelete="SET NULL"))
    skipped_at = mapped_column(UTCDateTime)  # when the run decided it


# gin_trgm_ops comes from the pg_trgm extension (a trusted extension since PostgreSQL 13: the
# database owner may create it); the migration creates it the same way.
event.listen(Participant.__table__, "before_create",
             DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))

"""Column types shared by the tables."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC instant on every backend.

    SQLite has no time zones, so values are stored as naive UTC and handed back aware; a naive
    value given to it is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)



def include_object_for(dialect_name: str):
    """An Alembic ``include_object`` filter for a database of ``dialect_name``: an index the
    models build on another dialect only (``Index(...).ddl_if(dialect="postgresql")``) is not
    missing here. Alembic's compare ignores ``ddl_if``; without this, ``flask db migrate`` on
    SQLite would add the PostgreSQL trigram index."""
    def include_object(obj, name, type_, reflected, compare_to):
        if type_ == "index" and not reflected:
            ddl_if = getattr(obj, "_ddl_if", None)
            if ddl_if is not None and ddl_if.dialect not in (None, dialect_name):
                return False
        return True
    return include_object

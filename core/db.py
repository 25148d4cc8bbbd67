"""Database settings that must hold on every connection."""
from __future__ import annotations

import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

_busy_timeout_ms = 15000


def configure_sqlite(busy_timeout_ms: int) -> None:
    global _busy_timeout_ms
    _busy_timeout_ms = busy_timeout_ms


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    # The web app and the worker write at once: WAL lets readers proceed during a write, and the
    # busy timeout makes a second writer wait instead of failing with "database is locked".
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(_busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # SQLite's own lower() folds ASCII letters only ("BJÖRN" stays "bjÖrn"); PostgreSQL's folds
        # every letter. The pool's search (participants.search_text, a generated column computed
        # with lower() on every write, and lower() of the typed words) must ignore case for every
        # letter on both, so lower() is Python's on each SQLite connection. Deterministic, as a
        # generated column requires; ASCII text is folded exactly as before.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _lower(value):
    return value.lower() if isinstance(value, str) else value

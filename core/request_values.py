"""Request values that reach the database: integers in range, text without NUL.

* ``db_int``: ``int()`` for IDs and page numbers from a query string or a form. A number outside a
  32-bit INTEGER column's range raises ``ValueError`` like a non-number, so
  ``request.args.get("page", 1, type=db_int)`` falls back to its default instead of failing in the
  driver (SQLite: OverflowError; PostgreSQL: "integer out of range") with a 500.
* ``DbIntConverter``: the app's ``<int:...>`` URL converter, bounded the same way: an ID beyond the
  range is a 404 like any other ID that does not exist.
* ``nul_in_request()``: PostgreSQL text cannot hold NUL (0x00); a form or query value with one is
  refused as a 400 with a clear message (``core.web``) rather than failing the statement.

Plain werkzeug only: the worker's app installs the converter too (core/__init__.py).
"""
from __future__ import annotations

from werkzeug.routing import IntegerConverter

MAX_DB_INT = 2_147_483_647


def db_int(value) -> int:
    """An integer a database column can hold, written in ASCII digits (Python's int() also reads
    "١" or "１" as digits: an ID in a form is never written so)."""
    text = str(value).strip()
    if not text.isascii():
        raise ValueError(f"{value!r} is not written in ASCII digits")
    number = int(text)
    if not -MAX_DB_INT <= number <= MAX_DB_INT:
        raise ValueError(f"{value!r} is out of range")
    return number


class DbIntConverter(IntegerConverter):
    def __init__(self, url_map, fixed_digits: int = 0, min: int | None = None,  # noqa: A002
                 max: int | None = MAX_DB_INT, signed: bool = False) -> None:  # noqa: A002
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def nul_in_request(request) -> str | None:
    """The name of the first query-string or form field whose value holds a NUL, or None."""
    for source in (request.args, request.form):
        for name, value in source.items(multi=True):
            if "\x00" in value or "\x00" in name:
                return name.replace("\x00", "\\0")
    return None

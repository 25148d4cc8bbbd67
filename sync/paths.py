"""Reading dotted field paths (``Account.Name``, ``Owner.Email``) from Salesforce JSON records.

Salesforce returns a parent relationship as a nested object, or ``null`` when the lookup is
empty (case C08). A path through a null parent reads as None: never ``{}``, ``"None"`` or the
parent's ``attributes``.
"""
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

Scalar = str | int | float | bool


def get_path(record: Mapping[str, Any] | None, path: str) -> Scalar | None:
    """The scalar value at ``path``; None when any step is null or missing.

    A path that ends at an object (a relationship such as ``Account`` or a compound address) is
    not a field value and reads as None.
    """
    node: Any = record
    for step in _steps(path):
        # dict first (simple-salesforce's records are OrderedDicts, a dict subclass): isinstance
        # against the Mapping ABC costs more than the lookup itself, and every mapped field of
        # every record comes through here.
        if not isinstance(node, dict) and not isinstance(node, Mapping):
            return None
        node = node[step] if step in node else _get_key(node, step)
    if node is None or type(node) in _SCALARS:
        return node
    if isinstance(node, (Mapping, list, tuple)):
        return None
    return node


_SCALARS = (str, int, float, bool)


@lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _get_key(node: Mapping[str, Any], key: str) -> Any:
    if key in node:
        return node[key]
    # SOQL names are case-insensitive; a path typed as "account.name" still finds "Account".
    # The records of one query share their keys, so the folded names are looked up per key
    # set (a path the query did not select, such as IsDeleted, misses on every record).
    name = _folded_names(tuple(node)).get(_fold(key))
    return None if name is None else node[name]


@lru_cache(maxsize=256)
def _folded_names(names: tuple) -> dict[str, str]:
    """Folded name -> the first name that folds to it (``attributes`` is never a field)."""
    folded: dict[str, str] = {}
    for name in names:
        if isinstance(name, str) and name != "attributes":
            folded.setdefault(name.casefold(), name)
    return folded


@lru_cache(maxsize=1024)
def _fold(key: str) -> str:
    return key.casefold()


def get_text(record: Mapping[str, Any] | None, path: str) -> str | None:
    """The value at ``path`` as trimmed text; None for null, missing or blank."""
    value = get_path(record, path)
    if value is None:
        return None
    if type(value) is str:
        text = value.strip()
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value).strip()
    return text or None


def first_text(record: Mapping[str, Any] | None, paths: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(path, text) of the first path in ``paths`` with a non-blank value, else (None, None)."""
    for path in paths:
        text = get_text(record, path)
        if text is not None:
            return path, text
    return None, None

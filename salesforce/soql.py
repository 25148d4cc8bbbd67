"""Pure SOQL building: literal escaping, the filter model, WHERE/SELECT builders.

Values are never pasted into SOQL: strings are escaped exactly like simple-salesforce's
``format_soql`` (and ``:like``), numbers/booleans/dates are validated and written unquoted, and
field names come only from the describe (through a ``FieldCatalog``). A row that can't be turned
into valid SOQL raises ``FilterError(row_index, message)`` and no SOQL is produced.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Sequence, Union

from .describe import COMPOUND_TYPES, FieldCatalog, FieldInfo, is_filterable

# Same table as simple_salesforce.format.soql_escapes.
_ESCAPES = str.maketrans({
    "\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
})
_LIKE_ESCAPES = str.maketrans({"%": "\\%", "_": "\\_"})

_IDENT = r"[A-Za-z][A-Za-z0-9_]*"
_PATH_RE = re.compile(rf"^{_IDENT}(\.{_IDENT}){{0,4}}$")
_ID_RE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2})$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d+)?|\.\d+)$")

TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "combobox"})
ID_TYPES = frozenset({"id", "reference"})
INT_TYPES = frozenset({"int", "long"})
DECIMAL_TYPES = frozenset({"double", "currency", "percent"})
DATE_TYPES = frozenset({"date", "datetime"})

OPERATOR_LABELS = {
    "equals": "equals", "not_equals": "not equals", "contains": "contains", "starts_with": "starts with",
    "is_empty": "is empty", "is_not_empty": "is not empty", "any_of": "any of", "includes": "includes",
    "excludes": "excludes", "before": "before", "after": "after", "last_n_days": "last N days",
    "less_than": "less than", "greater_than": "greater than", "in_campaign": "in campaign",
}


class FilterError(ValueError):
    """A filter row that can't become SOQL. ``row_index`` counts rows depth-first from 0 across
    the whole filter tree (the order the wizard shows them)."""

    def __init__(self, row_index: int | None, message: str):
        self.row_index = row_index
        self.message = message
        super().__init__(f"row {row_index}: {message}" if row_index is not None else message)


class SoqlError(ValueError):
    """A query part (object, field list, order, cursor literal) that isn't safe SOQL."""


# --- literals ---------------------------------------------------------------------------

def escape_literal(value: str) -> str:
    """Escape text for inside single quotes (no quotes added), as simple-salesforce does."""
    return str(value).translate(_ESCAPES)


def escape_like(value: str) -> str:
    """Escape text for inside a LIKE pattern: the string escapes plus ``\\%`` and ``\\_``."""
    return escape_literal(value).translate(_LIKE_ESCAPES)


def quote_literal(value: str) -> str:
    """``'...'`` with the content escaped; equals ``simple_salesforce.format_soql('{}', value)``."""
    return "'" + escape_literal(value) + "'"


def soql_datetime(value: datetime) -> str:
    """An unquoted SOQL datetime literal in UTC, whole seconds (``2024-05-01T00:33:19Z``).
    Naive datetimes are refused: the cursor must be an instant, not a wall-clock reading."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise SoqlError("datetime literal needs a timezone-aware value")
    return value.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_date(value: date) -> str:
    if isinstance(value, datetime):
        raise SoqlError("a date literal needs a date, not a datetime")
    return value.isoformat()


def check_path(path: str) -> str:
    if not isinstance(path, str) or not _PATH_RE.match(path):
        raise SoqlError(f"not a field or object name: {path!r}")
    return path


def is_record_id(value: str) -> bool:
    return bool(_ID_RE.match(value or ""))


def to_18_char_id(record_id: str) -> str:
    """The 18-character, case-insensitively unique form of a 15-character ID (18 stays as is)."""
    if not is_record_id(record_id):
        raise ValueError(f"not a Salesforce record ID: {record_id!r}")
    if len(record_id) == 18:
        return record_id
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(record_id[chunk * 5:chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += alphabet[bits]
    return record_id + suffix


# --- the filter model -------------------------------------------------------------------

@dataclass(frozen=True)
class FilterRow:
    field_path: str
    operator: str
    value: Any = None


@dataclass(frozen=True)
class FilterGroup:
    conjunction: str  # "AND" or "OR"
    children: tuple[Union["FilterRow", "FilterGroup"], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "children", tuple(self.children))


def normalize_operator(op: str) -> str:
    """``"any of"``, ``"Any-Of"`` and ``"any_of"`` are the same operator."""
    return re.sub(r"[\s\-]+", "_", str(op or "").strip().lower())


def operators_for(f: FieldInfo) -> list[str]:
    """Operators that fit a field's type, in the order the wizard lists them."""
    t = f.type
    if not is_filterable(f):
        return []
    empties = ["is_empty", "is_not_empty"] if t != "boolean" else []
    if t == "multipicklist":
        return ["any_of", "includes", "excludes", *empties]
    if t == "boolean":
        return ["equals", "not_equals"]
    if t in ID_TYPES:
        return ["equals", "not_equals", "any_of", *empties]
    if t in INT_TYPES or t in DECIMAL_TYPES:
        return ["equals", "not_equals", "less_than", "greater_than", "any_of", *empties]
    if t in DATE_TYPES:
        return ["equals", "before", "after", "last_n_days", *empties]
    if t in TEXT_TYPES:
        return ["equals", "not_equals", "contains", "starts_with", "any_of", *empties]
    return []


def build_where(group: FilterGroup | FilterRow | None, catalog: FieldCatalog) -> str:
    """The WHERE condition (without the keyword) for a filter tree; ``""`` when it is empty.

    The top-level group is joined bare (``a AND b``); nested groups with more than one member
    are parenthesised, so AND and OR never meet unparenthesised. Raises ``FilterError`` for the
    first bad row.
    """
    if group is None:
        return ""
    builder = _WhereBuilder(catalog)
    sql = builder.node(group, top=True, in_or=False)
    if builder.semi_joins > 2:
        raise FilterError(builder.last_semi_join_row, "Salesforce allows at most two campaign-membership filters")
    return sql


class _WhereBuilder:
    def __init__(self, catalog: FieldCatalog):
        self.catalog = catalog
        self.index = 0
        self.semi_joins = 0
        self.last_semi_join_row: int | None = None

    def node(self, node: FilterRow | FilterGroup, *, top: bool, in_or: bool) -> str:
        if isinstance(node, FilterRow):
            i = self.index
            self.index += 1
            return self.row(node, i, in_or)
        conj = str(node.conjunction).strip().upper()
        if conj not in ("AND", "OR"):
            raise FilterError(self.index, f"unknown group type {node.conjunction!r} (AND or OR)")
        parts = [self.node(c, top=False, in_or=in_or or (conj == "OR" and len(node.children) > 1))
                 for c in node.children]
        parts = [p for p in parts if p]
        if not parts:
            return ""
        if len(parts) == 1:
            return parts[0]
        joined = f" {conj} ".join(parts)
        return joined if top else f"({joined})"

    def row(self, row: FilterRow, i: int, in_or: bool) -> str:
        # Every problem with a row, whatever its operator, is that row's FilterError: the value
        # helpers below raise ValueError/TypeError/KeyError and this is the one place they become
        # a message on the row the researcher sees (never a bare exception to the caller).
        try:
            return self._row(row, i, in_or)
        except FilterError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise FilterError(i, str(message) or "this value can't be used here") from None

    def _row(self, row: FilterRow, i: int, in_or: bool) -> str:
        op = normalize_operator(row.operator)
        if op not in OPERATOR_LABELS:
            raise FilterError(i, f"unknown operator {row.operator!r}")
        if op == "in_campaign":
            return self.in_campaign(row, i, in_or)
        if not isinstance(row.field_path, str):
            raise FilterError(i, f"{row.field_path!r} is not a field of {self.catalog.object_name}")
        choice = self.catalog.resolve(row.field_path)
        if choice is None:
            raise FilterError(i, f"{row.field_path!r} is not a field of {self.catalog.object_name}")
        f, path = choice.field, choice.path
        if f.type in COMPOUND_TYPES:
            raise FilterError(i, f"{choice.label} is a compound field and can't be filtered; "
                                 "filter on one of its parts (for example the city) instead")
        allowed = operators_for(f)
        if not allowed:
            raise FilterError(i, f"Salesforce can't filter on {choice.label}")
        if op not in allowed:
            raise FilterError(i, f"\"{OPERATOR_LABELS[op]}\" doesn't fit {choice.label} ({f.type}); "
                                 f"use one of: {', '.join(OPERATOR_LABELS[o] for o in allowed)}")
        return self.condition(path, f, op, row.value)

    def condition(self, path: str, f: FieldInfo, op: str, value: Any) -> str:
        if op == "is_empty":
            return f"{path} = null"
        if op == "is_not_empty":
            return f"{path} != null"
        if _missing(value):
            raise ValueError("choose at least one value" if op in ("any_of", "includes", "excludes")
                             else "a value is needed")
        _check_lengths(value)
        if f.type == "multipicklist":
            keyword = "EXCLUDES" if op == "excludes" else "INCLUDES"
            return f"{path} {keyword} ({','.join(self.multipicklist_values(value))})"
        if op == "any_of":
            values = _as_list(value)
            return f"{path} IN ({','.join(self.literal(f, v) for v in values)})"
        if op == "contains":
            return f"{path} LIKE '%{escape_like(_text(value))}%'"
        if op == "starts_with":
            return f"{path} LIKE '{escape_like(_text(value))}%'"
        if op == "last_n_days":
            n = _int(value)
            if n < 1:
                raise ValueError("the number of days must be at least 1")
            return f"{path} = LAST_N_DAYS:{n}"
        if op in ("before", "after"):
            literal = self.literal(f, value, bound="start" if op == "before" else "end")
            return f"{path} {'<' if op == 'before' else '>'} {literal}"
        symbol = {"equals": "=", "not_equals": "!=", "less_than": "<", "greater_than": ">"}[op]
        return f"{path} {symbol} {self.literal(f, value)}"

    def multipicklist_values(self, value: Any) -> list[str]:
        out = []
        for v in _as_list(value):
            text = _text(v)
            if ";" in text:
                # Inside one INCLUDES string ';' means "all of"; a single picklist value never has one.
                raise ValueError(f"{text!r} is not a single picklist value")
            out.append(quote_literal(text))
        return out

    def literal(self, f: FieldInfo, value: Any, bound: str = "start") -> str:
        t = f.type
        if t == "boolean":
            if isinstance(value, bool):
                return "true" if value else "false"
            text = str(value).strip().lower()
            if text in ("true", "false"):
                return text
            raise ValueError(f"{value!r} is not true or false")
        if t in INT_TYPES:
            return str(_int(value))
        if t in DECIMAL_TYPES:
            if isinstance(value, bool):
                raise ValueError(f"{value!r} is not a number")
            text = str(value).strip()
            if not _DECIMAL_RE.match(text):
                raise ValueError(f"{value!r} is not a number")
            try:
                Decimal(text)
            except InvalidOperation:
                raise ValueError(f"{value!r} is not a number") from None
            return text
        if t == "date":
            return _date_literal(value)
        if t == "datetime":
            return _datetime_literal(value, bound)
        if t in ID_TYPES:
            text = _text(value).strip()
            if not is_record_id(text):
                raise ValueError(f"{value!r} is not a Salesforce record ID (15 or 18 letters and digits)")
            return quote_literal(text)  # case kept: 15-character IDs are case-sensitive
        return quote_literal(_text(value))

    def in_campaign(self, row: FilterRow, i: int, in_or: bool) -> str:
        if row.field_path not in (None, "", "Id", "CampaignId"):
            raise FilterError(i, "campaign membership applies to the record itself")
        if in_or:
            raise FilterError(i, "campaign membership can't be combined with OR in Salesforce")
        if _missing(row.value):
            raise FilterError(i, "choose a campaign")
        ids = _as_list(row.value)
        for v in ids:
            if not isinstance(v, str) or not is_record_id(v.strip()) or not v.strip().startswith("701"):
                raise FilterError(i, f"{v!r} is not a Salesforce campaign ID")
        quoted = [quote_literal(v.strip()) for v in ids]
        test = f"= {quoted[0]}" if len(quoted) == 1 else f"IN ({','.join(quoted)})"
        obj = self.catalog.object_name
        if obj == "CampaignMember":
            return f"CampaignId {test}"
        member_field = {"Contact": "ContactId", "Lead": "LeadId"}.get(obj)
        if member_field is None:
            raise FilterError(i, f"campaign membership is only known for Contacts and Leads, not {obj}")
        self.semi_joins += 1
        self.last_semi_join_row = i
        return f"Id IN (SELECT {member_field} FROM CampaignMember WHERE CampaignId {test})"


MAX_LITERAL_CHARS = 4000  # Salesforce: a string literal in a WHERE clause is at most 4,000 characters


def _check_lengths(value: Any) -> None:
    """Every value of a row (each one of an any-of list) within Salesforce's literal limit,
    whatever the operator: a longer one is the row's error, never a request Salesforce refuses."""
    values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    for v in values:
        if v is None or isinstance(v, (bool, dict, list, tuple, set, frozenset)):
            continue
        length = len(str(v))
        if length > MAX_LITERAL_CHARS:
            where = "one of the values" if len(values) > 1 else "the value"
            raise ValueError(f"{where} is {length:,} characters long; Salesforce allows at most "
                             f"{MAX_LITERAL_CHARS:,} characters in a filter value")


def _missing(value: Any) -> bool:
    """No value at all: None, the empty text of an untouched input, or an empty list. Text of
    spaces only is a value (leading and trailing spaces are part of a value: case C05)."""
    if value is None or value == "":
        return True
    return isinstance(value, (list, tuple, set, frozenset)) and not value


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple, set, frozenset)):
        values = list(value)
    elif value is None or value == "":
        values = []
    else:
        values = [value]
    if not values:
        raise ValueError("choose at least one value")
    return values


def _text(value: Any) -> str:
    if value is None or value == "":
        raise ValueError("a value is needed")
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        raise ValueError("one value is needed here")
    return str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not _INT_RE.match(text):
        raise ValueError(f"{value!r} is not a whole number")
    return int(text)


def _date_literal(value: Any) -> str:
    if isinstance(value, datetime):
        raise ValueError("this field holds dates, not date and time")
    if isinstance(value, date):
        return value.isoformat()
    text = _text(value).strip()
    if not _DATE_RE.match(text):
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _datetime_literal(value: Any, bound: str) -> str:
    """Datetime fields need datetime literals. A bare date means that whole UTC day: its start
    for "before"/"equals", its last second for "after", so "after 1 May" excludes 1 May."""
    if isinstance(value, datetime):
        return soql_datetime(value)
    if isinstance(value, date):
        day = value
    else:
        text = _text(value).strip()
        if _DATETIME_RE.match(text):
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{value!r} is not a date and time") from None
            return soql_datetime(parsed)
        day = date.fromisoformat(_date_literal(text))
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    if bound == "end":
        start += timedelta(days=1) - timedelta(seconds=1)
    return soql_datetime(start)


# --- whole queries ----------------------------------------------------------------------

def _field_list(fields: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for f in fields:
        check_path(f)
        if f.lower() not in seen:  # a duplicate is INVALID_FIELD in Salesforce
            seen.add(f.lower())
            out.append(f)
    if not out:
        raise SoqlError("select at least one field")
    return out


_ORDER_RE = re.compile(rf"^{_IDENT}(\.{_IDENT}){{0,4}}( (ASC|DESC))?( NULLS (FIRST|LAST))?$", re.IGNORECASE)


def build_query(object_name: str, fields: Sequence[str], where: str = "",
                order_by: Sequence[str] | str | None = None, limit: int | None = None) -> str:
    """``SELECT f1, f2 FROM Object [WHERE ...] [ORDER BY ...] [LIMIT n]``. ``where`` is a
    condition from ``build_where`` (or another builder here), never user text."""
    check_path(object_name)
    if "." in object_name:
        raise SoqlError(f"not an object name: {object_name!r}")
    sql = f"SELECT {', '.join(_field_list(fields))} FROM {object_name}"
    if where:
        sql += f" WHERE {where}"
    if order_by:
        items = [order_by] if isinstance(order_by, str) else list(order_by)
        for item in items:
            if not _ORDER_RE.match(item):
                raise SoqlError(f"not an ORDER BY item: {item!r}")
        sql += " ORDER BY " + ", ".join(items)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise SoqlError("LIMIT must be a positive whole number")
        sql += f" LIMIT {limit}"
    return sql


def build_count_query(object_name: str, where: str = "") -> str:
    """``SELECT COUNT() FROM Object [WHERE ...]``: the count arrives as ``totalSize``."""
    check_path(object_name)
    return f"SELECT COUNT() FROM {object_name}" + (f" WHERE {where}" if where else "")


def and_conditions(*conditions: str) -> str:
    """AND together conditions, parenthesising each one that has more than a single test."""
    parts = [c for c in conditions if c]
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return " AND ".join(p if _is_simple(p) else f"({p})" for p in parts)


def _is_simple(condition: str) -> bool:
    # Built conditions only contain AND/OR at the top level when they combine several rows;
    # parenthesising a single test is harmless but noisy, so skip it when there is no conjunction
    # outside quotes and parentheses.
    depth, quote, i = 0, False, 0
    while i < len(condition):
        ch = condition[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == "'":
                quote = False
        elif ch == "'":
            quote = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and (condition.startswith(" AND ", i) or condition.startswith(" OR ", i)):
            return False
        i += 1
    return True


def build_incremental_query(object_name: str, fields: Sequence[str], where: str, cursor_field: str,
                            lower_bound: datetime | str | None) -> str:
    """The sync query: the plan's filters, an inclusive lower bound on the cursor field, ordered
    by cursor then Id so ties page deterministically::

        SELECT ... FROM Contact WHERE (filters) AND SystemModstamp >= 2024-05-01T00:33:19Z
        ORDER BY SystemModstamp, Id

    ``lower_bound`` None reads everything (first run). Id and the cursor field are added to the
    field list when missing. A string bound must already be a SOQL datetime literal.
    """
    check_path(cursor_field)
    if lower_bound is None:
        bound = ""
    elif isinstance(lower_bound, datetime):
        bound = f"{cursor_field} >= {soql_datetime(lower_bound)}"
    else:
        if not _DATETIME_RE.match(str(lower_bound)):
            raise SoqlError(f"not a SOQL datetime literal: {lower_bound!r}")
        bound = f"{cursor_field} >= {lower_bound}"
    filters = f"({where})" if where and bound else where
    condition = " AND ".join(p for p in (filters, bound) if p)
    lowered = {f.lower() for f in fields}
    all_fields = list(fields)
    for needed in ("Id", cursor_field):
        if needed.lower() not in lowered:
            all_fields.append(needed)
            lowered.add(needed.lower())
    return build_query(object_name, all_fields, condition, order_by=[cursor_field, "Id"])

"""The parsed query: plain value objects, not yet bound to any schema."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

Pos = tuple  # (line, column), both 1-based, as Salesforce reports them


@dataclass
class FieldPath:
    parts: list[str]
    pos: Pos

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass
class CountCall:
    field: Optional[FieldPath]
    pos: Pos


@dataclass
class FieldsCall:
    kind: str  # ALL | STANDARD | CUSTOM
    pos: Pos

    @property
    def text(self) -> str:
        return f"FIELDS({self.kind})"


@dataclass
class SubQuery:
    query: "Query"
    pos: Pos


SelectItem = Union[FieldPath, CountCall, FieldsCall, SubQuery]


@dataclass
class Literal:
    # kind: string | number | boolean | null | date | datetime | relative | like
    kind: str
    value: Any
    raw: str
    pos: Pos
    sql: Optional[str] = None  # LIKE: the pattern for SQLite's LIKE ... ESCAPE '\'


@dataclass
class Comparison:
    field: FieldPath
    op: str  # = != < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES
    value: Union[Literal, list]  # a list of Literal for IN / NOT IN / INCLUDES / EXCLUDES
    pos: Pos


@dataclass
class SemiJoin:
    field: FieldPath
    negated: bool
    query: "Query"
    pos: Pos


@dataclass
class And:
    items: list


@dataclass
class Or:
    items: list


@dataclass
class Not:
    item: Any


@dataclass
class OrderItem:
    field: FieldPath
    descending: bool = False
    nulls_last: bool = False  # Salesforce sorts nulls first unless told NULLS LAST


@dataclass
class Query:
    text: str
    select: list
    sobject: str
    sobject_pos: Pos
    where: Any = None
    order_by: list = field(default_factory=list)
    limit: Optional[int] = None
    offset: Optional[int] = None

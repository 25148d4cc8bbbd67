"""WHERE -> one Python closure per query, so rows are filtered without re-walking the tree."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Callable, Optional

from .binder import BoundPath, Schema, bind, resolve_path
from .dates import relative_range
from .errors import error_at, malformed
from .ids import to18
from .nodes import And, Comparison, Literal, Not, Or, SemiJoin

Row = dict
Pred = Callable[[Row], bool]

_STRING_TYPES = {"string", "textarea", "email", "phone", "url", "picklist", "combobox",
                 "encryptedstring", "base64", "anyType", "time"}
_NUMBER_TYPES = {"int", "double", "currency", "percent", "long"}
_TYPE_WORDS = {"datetime": "dateTime", "id": "id", "reference": "reference", "boolean": "boolean",
               "date": "date", "int": "integer", "double": "double", "currency": "currency",
               "percent": "percent", "multipicklist": "multipicklist"}


def category(field: dict) -> str:
    t = field.get("type")
    if t in ("id", "reference"):
        return "id"
    if t in _NUMBER_TYPES:
        return "number"
    if t in ("boolean", "date", "datetime", "multipicklist", "address", "location"):
        return t
    return "string"


def format_datetime(dt: datetime) -> str:
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def _day_start(d: date) -> str:
    return format_datetime(datetime.combine(d, time(0), tzinfo=timezone.utc))


class ParentCache:
    """Parent records fetched while filtering on paths such as Account.Name, bounded in size."""

    LIMIT = 200_000

    def __init__(self, ds):
        self.ds = ds
        self.records: dict = {}

    def get(self, obj: Optional[str], record_id: str) -> Optional[dict]:
        key = record_id
        if key in self.records:
            return self.records[key]
        rec = None
        if obj is not None:
            rec = self.ds.get_many(obj, [record_id]).get(record_id)
        if len(self.records) >= self.LIMIT:
            self.records.clear()
        self.records[key] = rec
        return rec


def accessor(path: BoundPath, ds, cache: ParentCache) -> Callable[[Row], object]:
    name = path.name
    if not path.steps:
        return lambda r: r.get(name)
    steps = [(s.ref_field, s.targets[0] if len(s.targets) == 1 else None, set(s.targets))
             for s in path.steps]
    object_for_id = ds.object_for_id

    def walk(r):
        for ref_field, single, targets in steps:
            rid = r.get(ref_field)
            if rid is None:
                return None
            obj = single or object_for_id(rid)
            if obj not in targets:
                return None
            r = cache.get(obj, rid)
            if r is None:
                return None
        return r.get(name)
    return walk


class WhereCompiler:
    def __init__(self, bound_obj, schema: Schema, ds, text: str, now: datetime, include_deleted: bool,
                 cache: ParentCache):
        self.obj = bound_obj
        self.schema = schema
        self.ds = ds
        self.text = text
        self.now = now
        self.include_deleted = include_deleted
        self.cache = cache

    def compile(self, cond) -> Pred:
        if isinstance(cond, And):
            preds = [self.compile(c) for c in cond.items]
            if len(preds) == 2:
                a, b = preds
                return lambda r: a(r) and b(r)
            return lambda r: all(p(r) for p in preds)
        if isinstance(cond, Or):
            preds = [self.compile(c) for c in cond.items]
            if len(preds) == 2:
                a, b = preds
                return lambda r: a(r) or b(r)
            return lambda r: any(p(r) for p in preds)
        if isinstance(cond, Not):
            p = self.compile(cond.item)
            return lambda r: not p(r)
        if isinstance(cond, SemiJoin):
            return self._semi_join(cond)
        return self._comparison(cond)

    # ---- helpers ------------------------------------------------------------------------------
    def _err(self, code, pos, detail):
        return error_at(code, self.text, pos, detail)

    def _type_error(self, path: BoundPath, lit: Literal, quoted_expected: bool):
        word = _TYPE_WORDS.get(path.field.get("type"), "string")
        how = "should be enclosed in quotes" if quoted_expected else "should not be enclosed in quotes"
        return self._err("INVALID_FIELD", lit.pos,
                         f"value of filter criterion for field '{path.name}' must be of type {word} and {how}")

    def _path(self, fp) -> BoundPath:
        path = resolve_path(fp, self.obj, self.schema, self.text)
        cat = category(path.field)
        if cat in ("address", "location"):
            raise self._err("INVALID_FIELD", fp.pos,
                            f"compound field '{path.name}' can not be filtered in query call; "
                            f"address and location fields only support DISTANCE() filters")
        if path.field.get("filterable") is False:
            raise self._err("INVALID_FIELD", fp.pos, f"field '{path.name}' can not be filtered in query call")
        return path

    def _coerce(self, path: BoundPath, lit: Literal):
        """Literal -> comparable value for the field's category; ("range", lo, hi) for relative dates."""
        cat = category(path.field)
        kind = lit.kind
        if kind == "null":
            return None
        if cat == "string":
            if kind != "string":
                raise self._type_error(path, lit, True)
            return lit.value.lower() if lit.value != "" else None
        if cat == "multipicklist":
            if kind != "string":
                raise self._type_error(path, lit, True)
            return lit.value
        if cat == "id":
            if kind != "string":
                raise self._type_error(path, lit, True)
            v = lit.value
            if v == "":
                return None
            if len(v) not in (15, 18) or not v.isalnum():
                raise self._err("INVALID_QUERY_FILTER_OPERATOR", lit.pos, f"invalid ID field: {v}")
            return v
        if cat == "boolean":
            if kind != "boolean":
                raise self._type_error(path, lit, False)
            return lit.value
        if cat == "number":
            if kind != "number":
                raise self._type_error(path, lit, False)
            return float(lit.value)
        if cat == "date":
            if kind == "date":
                return lit.value.isoformat()
            if kind == "relative":
                lo, hi = relative_range(lit.value[0], lit.value[1], self.now.astimezone(timezone.utc).date())
                return ("range", lo.isoformat(), hi.isoformat())
            raise self._type_error(path, lit, False)
        if cat == "datetime":
            if kind == "datetime":
                return format_datetime(lit.value)
            if kind == "relative":
                lo, hi = relative_range(lit.value[0], lit.value[1], self.now.astimezone(timezone.utc).date())
                return ("range", _day_start(lo), _day_start(hi))
            raise self._type_error(path, lit, False)
        raise self._type_error(path, lit, False)  # pragma: no cover

    def _comparison(self, c: Comparison) -> Pred:
        path = self._path(c.field)
        get = accessor(path, self.ds, self.cache)
        cat = category(path.field)
        op = c.op
        if op in ("INCLUDES", "EXCLUDES"):
            if cat != "multipicklist":
                raise self._err("INVALID_QUERY_FILTER_OPERATOR", c.pos,
                                "includes or excludes operator only valid on multipicklist field")
            return self._includes(get, path, c)
        if cat == "multipicklist":
            return self._multipicklist(get, path, c)
        if op == "LIKE":
            if cat != "string":
                raise self._err("INVALID_QUERY_FILTER_OPERATOR", c.pos,
                                f"invalid operator on field '{path.name}': LIKE is only valid on string fields")
            if c.value.kind != "like":
                raise self._type_error(path, c.value, True)
            match = c.value.value.fullmatch
            return lambda r: (lambda v: v is not None and match(v) is not None)(get(r))
        if op in ("IN", "NOT IN"):
            values = [self._coerce(path, lit) for lit in c.value]
            if any(isinstance(v, tuple) for v in values):
                raise self._err("INVALID_QUERY_FILTER_OPERATOR", c.pos,
                                "relative date literals are not allowed in an IN list")
            member = self._membership(cat, values)
            if op == "IN":
                return lambda r: member(get(r))
            return lambda r: not member(get(r))
        value = self._coerce(path, c.value)
        if value is None:
            if op == "=":
                return lambda r: get(r) is None
            if op == "!=":
                return lambda r: get(r) is not None
            raise self._err("INVALID_QUERY_FILTER_OPERATOR", c.pos, f"invalid operator on null value: {op}")
        if isinstance(value, tuple):  # relative date range [lo, hi)
            _, lo, hi = value
            return _range_pred(get, op, lo, hi)
        if cat == "id":
            return _id_pred(get, op, value)
        if cat == "string":
            return _ordered_pred(lambda r: (lambda v: None if v is None else v.lower())(get(r)), op, value)
        if cat == "boolean" and op not in ("=", "!="):
            raise self._err("INVALID_QUERY_FILTER_OPERATOR", c.pos,
                            f"invalid operator on boolean field '{path.name}': {op}")
        return _ordered_pred(get, op, value)

    def _membership(self, cat: str, values: list) -> Callable[[object], bool]:
        has_null = any(v is None for v in values)
        vals = [v for v in values if v is not None]
        if cat == "id":
            short = {v for v in vals if len(v) == 15}
            long_ = {v.lower() for v in vals if len(v) == 18}
            return lambda v: has_null if v is None else (v[:15] in short or v.lower() in long_)
        if cat == "string":
            s = set(vals)
            return lambda v: has_null if v is None else v.lower() in s
        s = set(vals)
        return lambda v: has_null if v is None else v in s

    def _multipicklist(self, get, path, c: Comparison) -> Pred:
        op = c.op
        if op not in ("=", "!=", "IN", "NOT IN"):
            raise self._err("INVALID_QUERY_FILTER_OPERATOR", c.pos, "invalid operator on multipicklist field")
        lits = c.value if isinstance(c.value, list) else [c.value]
        targets = []
        for lit in lits:
            v = self._coerce(path, lit)
            targets.append(None if v in (None, "") else _selection(v))

        def equal(r):
            v = get(r)
            sel = None if v in (None, "") else _selection(v)
            return sel in targets
        if op in ("=", "IN"):
            return equal
        return lambda r: not equal(r)

    def _includes(self, get, path, c: Comparison) -> Pred:
        wanted = []
        for lit in c.value:
            v = self._coerce(path, lit)
            if v is None:
                raise self._err("INVALID_QUERY_FILTER_OPERATOR", lit.pos,
                                "null is not allowed in an includes or excludes list")
            wanted.append(_selection(v))

        def includes(r):
            v = get(r)
            if not v:
                return False
            sel = _selection(v)
            return any(w <= sel for w in wanted)
        if c.op == "INCLUDES":
            return includes
        return lambda r: not includes(r)

    def _semi_join(self, j: SemiJoin) -> Pred:
        path = self._path(j.field)
        if category(path.field) != "id":
            raise self._err("INVALID_FIELD", j.field.pos,
                            f"Invalid semi join field '{path.name}': only Id or reference fields can be "
                            f"used with a semi join sub-select")
        inner = bind(j.query, self.schema)
        if inner.obj.name.lower() == self.obj.name.lower():
            raise malformed(self.text, j.query.sobject_pos,
                            "The inner and outer selects should not be on the same object type")
        inner_path = inner.columns[0]
        if category(inner_path.field) != "id":
            raise malformed(self.text, inner_path.pos,
                            "Semi join sub-selects can only select an Id or reference field")
        sub = WhereCompiler(inner.obj, self.schema, self.ds, self.text, self.now, False, self.cache)
        inner_pred = sub.compile(j.query.where) if j.query.where is not None else None
        inner_get = accessor(inner_path, self.ds, self.cache)
        found = set()
        for r in self.ds.scan(inner.obj.name, False):
            if r.get("IsDeleted"):
                continue
            if inner_pred is None or inner_pred(r):
                v = inner_get(r)
                if v is not None:
                    found.add(v)
        get = accessor(path, self.ds, self.cache)
        if j.negated:
            return lambda r: get(r) not in found
        return lambda r: get(r) in found


def _selection(value: str) -> frozenset:
    return frozenset(p.strip().lower() for p in value.split(";") if p.strip())


def _id_pred(get, op, lit: str) -> Pred:
    if op in ("=", "!="):
        if len(lit) == 15:
            def eq(r):
                v = get(r)
                return v is not None and v[:15] == lit
        else:
            low = lit.lower()

            def eq(r):
                v = get(r)
                return v is not None and v.lower() == low
        return eq if op == "=" else (lambda r: not eq(r))
    # Ordering on Ids (keyset paging: WHERE Id > :last ORDER BY Id) compares the 18-character form.
    full = to18(lit) if len(lit) == 15 else lit
    return _ordered_pred(get, op, full)


def _ordered_pred(get, op, value) -> Pred:
    if op == "=":
        return lambda r: get(r) == value
    if op == "!=":
        return lambda r: get(r) != value
    if op == "<":
        return lambda r: (lambda v: v is not None and v < value)(get(r))
    if op == "<=":
        return lambda r: (lambda v: v is not None and v <= value)(get(r))
    if op == ">":
        return lambda r: (lambda v: v is not None and v > value)(get(r))
    if op == ">=":
        return lambda r: (lambda v: v is not None and v >= value)(get(r))
    raise ValueError(op)  # pragma: no cover


def _range_pred(get, op, lo, hi) -> Pred:
    def inside(r):
        v = get(r)
        return v is not None and lo <= v < hi
    if op == "=":
        return inside
    if op == "!=":
        return lambda r: not inside(r)
    if op == "<":
        return lambda r: (lambda v: v is not None and v < lo)(get(r))
    if op == "<=":
        return lambda r: (lambda v: v is not None and v < hi)(get(r))
    if op == ">":
        return lambda r: (lambda v: v is not None and v >= hi)(get(r))
    if op == ">=":
        return lambda r: (lambda v: v is not None and v >= lo)(get(r))
    raise ValueError(op)  # pragma: no cover

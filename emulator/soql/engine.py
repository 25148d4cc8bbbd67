"""Running a bound query against a DataSource and rendering pages of records."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from itertools import chain, islice
from typing import Callable, Optional

from .binder import BoundChild, BoundPath, BoundQuery, Schema, bind
from .ids import to18
from .nodes import And, Comparison, Literal, Query
from .where import ParentCache, WhereCompiler, accessor, category

# Past this many matching ids a store that can spill (one with ``spill_ids``/``spill_sort``) gets
# them instead of a Python list, so a cursor over a million rows costs disk, not memory.
SPILL_AT = 50_000
# A store with ``snapshot_ids`` answers a query SQLite filters and sorts completely with the count
# and this many ids at once; the rest of the cursor is written to its side database in the
# background (the first page costs a COUNT and a LIMIT, not the whole result).
HEAD_ROWS = 10_000


class QueryResult:
    def __init__(self, bound: BoundQuery, ds, include_deleted: bool, now: datetime,
                 total_size: int, ids: list[str], is_count: bool = False,
                 aggregate_records: Optional[list[dict]] = None):
        self._bound = bound
        self._ds = ds
        self._include_deleted = include_deleted
        self._now = now
        self.total_size = total_size
        self.ids = ids
        self.is_count = is_count
        self.aggregate_records = aggregate_records

    @property
    def sobject(self) -> str:
        """Canonical name of the queried object."""
        return self._bound.obj.name

    def render_json(self, ids: list[str]) -> Optional[list[str]]:
        """The page's records as JSON texts, when the store can build them (plain columns only);
        None means use render()."""
        fn = getattr(self._ds, "records_json", None)
        if fn is None or self.is_count or self.aggregate_records is not None:
            return None
        if not all(isinstance(c, BoundPath) and not c.steps for c in self._bound.columns):
            return None
        names = [e[1] for e in _tree(self._bound.columns)]
        return fn(self._bound.obj.name, list(ids), names)

    def render(self, ids: list[str]) -> list[dict]:
        if self.is_count or self.aggregate_records is not None:
            return []
        return _Renderer(self._ds, self._include_deleted, self._now).records(self._bound, ids)


def execute(query: Query, ds, *, include_deleted: bool = False, now: Optional[datetime] = None) -> QueryResult:
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    schema = Schema(ds)
    bound = bind(query, schema)
    cache = ParentCache(ds)
    pred = _predicate(bound, schema, ds, now, include_deleted, cache)
    q = bound.query
    plan = _sql_plan(bound, schema, ds, now, include_deleted, cache) if hasattr(ds, "select_ids") else None
    if plan is not None:
        where, params, complete, order = plan
        name = bound.obj.name
        if bound.count_all and complete:
            n = ds.count_where(name, include_deleted, where, params)
            return QueryResult(bound, ds, include_deleted, now, n if q.limit is None else min(n, q.limit), [],
                               is_count=True)
        if not bound.count_all and not bound.aggregates and order is not None:
            # filtered and sorted by SQLite: ids stream out in their final order
            offset = q.offset or 0
            snapshot = getattr(ds, "snapshot_ids", None)
            if complete and snapshot is not None:
                ids = snapshot(name, include_deleted, where, params, order, offset, q.limit,
                               keep=min(SPILL_AT, HEAD_ROWS))
                return QueryResult(bound, ds, include_deleted, now, len(ids), ids)
            if complete:
                it = ds.select_ids(name, include_deleted, where, params, order, offset, q.limit)
            else:
                it = (r["Id"] for r in ds.select_records(name, include_deleted, where, params, order)
                      if pred(r))
                it = islice(it, offset, None if q.limit is None else offset + q.limit)
            ids = _collect(ds, it)
            return QueryResult(bound, ds, include_deleted, now, len(ids), ids)
        rows = ds.select_records(name, include_deleted, where, params, [])
        if pred is not None and not complete:
            rows = (r for r in rows if pred(r))
    else:
        rows = _matching(bound, ds, include_deleted, pred)

    if bound.count_all:
        n = sum(1 for _ in rows)
        if q.limit is not None:
            n = min(n, q.limit)
        return QueryResult(bound, ds, include_deleted, now, n, [], is_count=True)

    if bound.aggregates:
        getters = [accessor(p, ds, cache) for p in bound.aggregates]
        counts = [0] * len(getters)
        for r in rows:
            for i, g in enumerate(getters):
                if g(r) is not None:
                    counts[i] += 1
        record = {"attributes": {"type": "AggregateResult"}}
        for i, n in enumerate(counts):
            record[f"expr{i}"] = n
        return QueryResult(bound, ds, include_deleted, now, 1, [], aggregate_records=[record])

    ids = select_ids(bound, rows, ds, cache)
    return QueryResult(bound, ds, include_deleted, now, len(ids), ids)


def _predicate(bound: BoundQuery, schema, ds, now, include_deleted, cache):
    if bound.query.where is None:
        return None
    return WhereCompiler(bound.obj, schema, ds, bound.query.text, now, include_deleted, cache) \
        .compile(bound.query.where)


def _matching(bound: BoundQuery, ds, include_deleted: bool, pred):
    for r in ds.scan(bound.obj.name, include_deleted):
        if not include_deleted and r.get("IsDeleted"):
            continue
        if pred is None or pred(r):
            yield r


_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SQL_CATEGORIES = ("datetime", "date", "number", "boolean", "id")
_NOT_NULL = ("id", "modstamp", "deleted")


def _sql_field(path: BoundPath, ds) -> Optional[str]:
    """SQL for the stored value of a field of the queried object (NULL when absent)."""
    if path.steps or not _FIELD_NAME.match(path.name):
        return None
    col = getattr(ds, "SQL_COLUMNS", {}).get(path.name)
    return col or f"json_extract(data, '$.{path.name}')"


def _sql_expr(path: BoundPath, ds) -> Optional[str]:
    """SQL for a field of the queried object whose stored JSON SQLite compares as Python does."""
    if category(path.field) not in _SQL_CATEGORIES:
        return None
    return _sql_field(path, ds)


def _sql_lower(path: BoundPath, ds) -> Optional[str]:
    """SQL for a text field's value lowercased exactly as Python's ``str.lower`` does (what the
    predicate compares and the sort keys hold): SQLite's lower() for ASCII text (the byte length
    equals the character length), the store's ``sf_lower`` for the rest. SQLite then compares
    the keys as Python compares str, by code point (UTF-8 byte order is code point order)."""
    if category(path.field) not in ("string", "multipicklist") or \
            "sf_lower" not in getattr(ds, "SQL_FUNCTIONS", ()):
        return None
    x = _sql_field(path, ds)
    if x is None:
        return None
    return f"(CASE WHEN length(CAST({x} AS BLOB)) = length({x}) THEN lower({x}) ELSE sf_lower({x}) END)"


def _sql_text(value: str) -> Optional[str]:
    return None if "\x00" in value else "'" + value.replace("'", "''") + "'"


def _sql_order_keys(path: BoundPath, ds) -> Optional[list[str]]:
    """The SQL sort keys for one ORDER BY item, as ``_sort_value`` keys it: the value; a text
    field's lowercased value; a picklist's (rank in its defined values, lowercased value)."""
    expr = _sql_expr(path, ds)
    if expr is not None:
        return [expr]
    low = _sql_lower(path, ds)
    if low is None:
        return None
    if path.field.get("type") == "picklist" and path.field.get("picklistValues"):
        rank = {p["value"].lower(): i for i, p in enumerate(path.field["picklistValues"])}
        whens = []
        for v, i in rank.items():
            text = _sql_text(v)
            if text is None:
                return None
            whens.append(f"WHEN {text} THEN {i}")
        x = _sql_field(path, ds)
        return [f"(CASE WHEN {x} IS NULL THEN NULL ELSE CASE {low} {' '.join(whens)} ELSE {len(rank)} END END)",
                low]
    return [low]


def _sql_plan(bound: BoundQuery, schema, ds, now, include_deleted, cache):
    """(where, params, complete, order) for a store that filters and sorts in SQLite, or None.

    ``where`` holds the top-level AND terms SQLite evaluates exactly as the compiled predicate does
    (fields of the queried object compared with a literal; text compared case-insensitively and
    LIKE through the store's SQL functions); ``complete`` says they are the whole WHERE. ``order``
    is the ORDER BY in SQL, or None when a key needs Python (parent paths). Anything else stays
    with the Python predicate.
    """
    where, params = [], []
    complete = True
    cond = bound.query.where
    if cond is not None:
        items = cond.items if isinstance(cond, And) else [cond]
        compiler = WhereCompiler(bound.obj, schema, ds, bound.query.text, now, include_deleted, cache)
        for item in items:
            term = _sql_term(item, compiler, ds)
            if term is None:
                complete = False
            else:
                where.append(term[0])
                params.extend(term[1])
    order = []
    for path, desc, nulls_last in bound.order_by:
        keys = _sql_order_keys(path, ds)
        if keys is None:
            order = None
            break
        for expr in keys:
            # SQLite puts NULLs first ascending and last descending; saying so anyway would stop it
            # reading the order off an index, and the indexed columns are never NULL
            nulls = "" if nulls_last == desc or expr in _NOT_NULL else f" NULLS {'LAST' if nulls_last else 'FIRST'}"
            order.append(f"{expr} {'DESC' if desc else 'ASC'}{nulls}")
    if not where and order is None:
        return None
    return where, params, complete, order


def _like_run(pattern: str) -> Optional[str]:
    """The longest run of literal characters in a SQLite LIKE pattern (backslash escapes) that a
    record's JSON text holds as they are whenever the field's value matches it with ASCII
    characters there (printable ASCII but the quote and the backslash, which JSON escapes); None
    when shorter than 3."""
    runs, run, i = [], [], 0
    while i < len(pattern):
        ch, literal = pattern[i], True
        if ch == "\\" and i + 1 < len(pattern):
            ch, i = pattern[i + 1], i + 2
        else:
            literal, i = ch not in "%_", i + 1
        if literal and " " <= ch <= "~" and ch not in '"\\':
            run.append(ch)
        else:
            runs.append("".join(run))
            run = []
    runs.append("".join(run))
    best = max(runs, key=len)
    return best if len(best) >= 3 else None


def _sql_string_term(c: Comparison, compiler: WhereCompiler, path: BoundPath, ds):
    """A comparison on a text field in SQL, as where.WhereCompiler._comparison evaluates it."""
    x, key = _sql_field(path, ds), _sql_lower(path, ds)
    if key is None or "sf_like" not in getattr(ds, "SQL_FUNCTIONS", ()):
        return None
    op = c.op
    if op == "LIKE":
        lit = c.value
        if not isinstance(lit, Literal) or lit.kind != "like" or lit.sql is None:
            return None
        rx = lit.value
        if lit.sql.isascii():
            # SQLite's LIKE folds ASCII letters only: what it matches the regex matches too, and
            # it is exact on ASCII text; text with other characters that it rejects asks Python
            sql, args = (f"{x} LIKE ? ESCAPE '\\' OR (length(CAST({x} AS BLOB)) != length({x}) "
                         f"AND sf_like(?, ?, {x}))"), [lit.sql, rx.pattern, rx.flags]
        else:
            # a pattern with other characters: those become '_' (one character, as each matches
            # one), a superset that SQLite narrows before Python decides
            loose = "".join(ch if ch.isascii() else "_" for ch in lit.sql)
            sql, args = f"{x} LIKE ? ESCAPE '\\' AND sf_like(?, ?, {x})", [loose, rx.pattern, rx.flags]
        run = _like_run(lit.sql)
        if run is None:
            return sql, args
        # before parsing the JSON: a matching value holds the run in the record's text, unless it
        # matched with non-ASCII characters (then the text has some, raw or as \u escapes)
        near = "%" + run.replace("%", "\\%").replace("_", "\\_") + "%"
        return (f"(data LIKE ? ESCAPE '\\' OR length(data) != length(CAST(data AS BLOB)) "
                f"OR instr(data, '\\u') > 0) AND ({sql})"), [near, *args]
    if op in ("IN", "NOT IN"):
        values = [compiler._coerce(path, lit) for lit in c.value]
        if any(not isinstance(v, (str, type(None))) for v in values):
            return None
        has_null = any(v is None for v in values)
        vals = [v for v in values if v is not None]
        member = f"{key} IN ({','.join('?' * len(vals))})" if vals else "0"
        if op == "IN":
            return (f"{x} IS NULL OR {member}" if has_null else member), vals
        return (f"{x} IS NOT NULL AND NOT ({member})" if has_null else f"{x} IS NULL OR NOT ({member})"), vals
    if op not in ("=", "!=", "<", "<=", ">", ">=") or not isinstance(c.value, Literal):
        return None
    value = compiler._coerce(path, c.value)
    if value is None:
        return {"=": (f"{x} IS NULL", []), "!=": (f"{x} IS NOT NULL", [])}.get(op)
    if not isinstance(value, str):
        return None
    if op == "!=":
        return f"{key} IS NOT ?", [value]
    return f"{key} {op} ?", [value]


def _sql_term(c, compiler: WhereCompiler, ds):
    if not isinstance(c, Comparison):
        return None
    path = compiler._path(c.field)
    if category(path.field) == "string":
        return _sql_string_term(c, compiler, path, ds)
    if not isinstance(c.value, Literal) or c.value.kind == "like":
        return None
    op = c.op
    if op not in ("=", "!=", "<", "<=", ">", ">="):
        return None
    x = _sql_expr(path, ds)
    if x is None:
        return None
    cat = category(path.field)
    value = compiler._coerce(path, c.value)
    if value is None:
        return {"=": (f"{x} IS NULL", []), "!=": (f"{x} IS NOT NULL", [])}.get(op)
    if isinstance(value, tuple):  # relative date range [lo, hi), as where._range_pred
        _, lo, hi = value
        return {"=": (f"{x} >= ? AND {x} < ?", [lo, hi]), "!=": (f"{x} IS NULL OR {x} < ? OR {x} >= ?", [lo, hi]),
                "<": (f"{x} < ?", [lo]), "<=": (f"{x} < ?", [hi]), ">": (f"{x} >= ?", [hi]),
                ">=": (f"{x} >= ?", [lo])}[op]
    if cat == "id":  # as where._id_pred
        if op in ("=", "!="):
            eq = (f"substr({x}, 1, 15) = ?", [value]) if len(value) == 15 else (f"lower({x}) = ?", [value.lower()])
            if op == "=":
                return eq
            return f"{x} IS NULL OR NOT ({eq[0]})", eq[1]
        value = to18(value) if len(value) == 15 else value
    if cat == "boolean":
        if op not in ("=", "!="):
            return None
        value = 1 if value else 0
    if op == "!=":
        return f"{x} IS NOT ?", [value]
    return f"{x} {op} ?", [value]


def _collect(ds, ids):
    """A list of ids, or the store's spilled sequence once there are many."""
    spill = getattr(ds, "spill_ids", None)
    if spill is None:
        return list(ids)
    ids = iter(ids)
    head = list(islice(ids, SPILL_AT))
    if len(head) < SPILL_AT:
        return head
    return spill(chain(head, ids))


def select_ids(bound: BoundQuery, rows, ds, cache) -> list[str]:
    """Ids in final order. Only (sort keys..., Id) tuples are held when sorting, never records;
    past SPILL_AT rows a store that can sort on disk gets them."""
    q = bound.query
    offset = q.offset or 0
    if not bound.order_by:
        stop = None if q.limit is None else offset + q.limit
        return _collect(ds, islice((r["Id"] for r in rows), offset, stop))
    keyers = [_sort_value(p, ds, cache) for p, _, _ in bound.order_by]
    if len(keyers) == 1:
        k0 = keyers[0]
        make = lambda r: (k0(r), r["Id"])  # noqa: E731
    elif len(keyers) == 2:
        k0, k1 = keyers
        make = lambda r: (k0(r), k1(r), r["Id"])  # noqa: E731
    elif len(keyers) == 3:
        k0, k1, k2 = keyers
        make = lambda r: (k0(r), k1(r), k2(r), r["Id"])  # noqa: E731
    else:
        make = lambda r: tuple([k(r) for k in keyers] + [r["Id"]])  # noqa: E731
    rows = iter(rows)
    table = [make(r) for r in islice(rows, SPILL_AT)]
    spill = getattr(ds, "spill_sort", None)
    if spill is not None and len(table) >= SPILL_AT:
        return _spill_sort(bound, spill, chain(table, map(make, rows)), offset, q.limit)
    table.extend(map(make, rows))
    # Stable sorts from the last key to the first give the multi-key order with per-key
    # direction and null placement.
    for i in range(len(keyers) - 1, -1, -1):
        _, desc, nulls_last = bound.order_by[i]
        if desc:
            null_key = (0,) if nulls_last else (2,)
        else:
            null_key = (2,) if nulls_last else (0,)
        table.sort(key=lambda t, i=i, nk=null_key: nk if t[i] is None else (1, t[i]), reverse=desc)
    end = None if q.limit is None else offset + q.limit
    return [t[-1] for t in table[offset:end]]


def _spill_sort(bound: BoundQuery, spill, table, offset: int, limit):
    """Sort key tuples on disk. A picklist key (rank, value) becomes two columns."""
    wide = [path.field.get("type") == "picklist" and bool(path.field.get("picklistValues"))
            for path, _, _ in bound.order_by]
    order = []
    for (_, desc, nulls_last), w in zip(bound.order_by, wide):
        order += [(desc, nulls_last)] * (2 if w else 1)
    if not any(wide):
        rows = table
    else:
        def flat(t):
            out = []
            for v, w in zip(t, wide):
                if w:
                    out += (None, None) if v is None else v
                else:
                    out.append(v)
            out.append(t[-1])
            return out
        rows = map(flat, table)
    return spill(rows, order, offset, limit)


def _sort_value(path: BoundPath, ds, cache) -> Callable:
    get = accessor(path, ds, cache)
    cat = category(path.field)
    if path.field.get("type") == "picklist" and path.field.get("picklistValues"):
        # Picklists sort in their defined value order, unknown values after the known ones.
        rank = {p["value"].lower(): i for i, p in enumerate(path.field["picklistValues"])}
        size = len(rank)

        def picklist_key(r):
            v = get(r)
            return None if v is None else (rank.get(v.lower(), size), v.lower())
        return picklist_key
    if cat in ("string", "multipicklist"):
        return lambda r: (lambda v: None if v is None else v.lower())(get(r))
    return get


class _Renderer:
    def __init__(self, ds, include_deleted: bool, now: datetime):
        self.ds = ds
        self.include_deleted = include_deleted
        self.now = now
        self.prefix = f"/services/data/v{ds.api_version}/sobjects/"

    def _attributes(self, obj: str, rid: str) -> dict:
        return {"type": obj, "url": f"{self.prefix}{obj}/{rid}"}

    def records(self, bound: BoundQuery, ids: list[str]) -> list[dict]:
        obj = bound.obj.name
        found = self.ds.get_many(obj, list(ids))
        recs = [found[i] for i in ids if i in found]
        tree = _tree(bound.columns)
        return self._render(tree, obj, recs)

    def _render(self, tree: list, obj: str, recs: list[dict]) -> list[dict]:
        if all(entry[0] == "field" for entry in tree):
            # plain columns only: one dict per record straight from the stored one
            names = [entry[1] for entry in tree]
            url = f"{self.prefix}{obj}/"
            out = []
            append = out.append
            for r in recs:
                get = r.get
                row = {"attributes": {"type": obj, "url": url + get("Id")}}
                for n in names:
                    row[n] = get(n)
                append(row)
            return out
        # Resolve each parent relationship and child subquery for the whole batch at once.
        resolved: dict[int, dict] = {}
        for idx, entry in enumerate(tree):
            if entry[0] == "parent":
                resolved[idx] = self._parents(entry, recs)
            elif entry[0] == "child":
                resolved[idx] = self._children(entry[1], recs)
        out = []
        for r in recs:
            rid = r.get("Id")
            row = {"attributes": self._attributes(obj, rid)}
            for idx, entry in enumerate(tree):
                kind = entry[0]
                if kind == "field":
                    row[entry[1]] = r.get(entry[1])
                elif kind == "parent":
                    ref = r.get(entry[2])
                    row[entry[1]] = None if ref is None else resolved[idx].get(ref)
                else:
                    row[entry[1].relationship] = resolved[idx].get(rid)
            out.append(row)
        return out

    def _parents(self, entry, recs: list[dict]) -> dict:
        _, _rel, ref_field, targets, subtree = entry
        ids = {r.get(ref_field) for r in recs} - {None}
        by_obj: dict[str, list[str]] = {}
        for rid in ids:
            obj = targets[0] if len(targets) == 1 else self.ds.object_for_id(rid)
            if obj in targets:
                by_obj.setdefault(obj, []).append(rid)
        rendered = {}
        for obj, obj_ids in by_obj.items():
            found = self.ds.get_many(obj, sorted(obj_ids))
            parents = [found[i] for i in sorted(obj_ids) if i in found]
            for rec, row in zip(parents, self._render(subtree, obj, parents)):
                rendered[rec["Id"]] = row
        return rendered

    def _children(self, child: BoundChild, recs: list[dict]) -> dict:
        parent_ids = {r.get("Id") for r in recs}
        if not parent_ids:
            return {}
        sub = child.query
        schema = Schema(self.ds)
        cache = ParentCache(self.ds)
        pred = _predicate(sub, schema, self.ds, self.now, self.include_deleted, cache)
        link = child.child_field
        groups: dict[str, list[dict]] = {}
        for r in _matching(sub, self.ds, self.include_deleted, pred):
            pid = r.get(link)
            if pid in parent_ids:
                groups.setdefault(pid, []).append(r)
        out = {}
        for pid, rows in groups.items():
            ids = select_ids(sub, iter(rows), self.ds, cache)
            if not ids:
                continue
            by_id = {r["Id"]: r for r in rows}
            records = self._render(_tree(sub.columns), sub.obj.name, [by_id[i] for i in ids])
            out[pid] = {"totalSize": len(records), "done": True, "records": records}
        return out


def _tree(columns: list) -> list:
    """SELECT columns -> render plan. Fields sharing a relationship nest under the first mention."""
    tree: list = []
    parents: dict[str, list] = {}
    for col in columns:
        if isinstance(col, BoundChild):
            tree.append(("child", col))
            continue
        level, index = tree, parents
        for depth, step in enumerate(col.steps):
            key = step.relationship.lower()
            if key not in index:
                entry = ("parent", step.relationship, step.ref_field, step.targets, [], {})
                index[key] = entry
                level.append(entry)
            entry = index[key]
            level, index = entry[4], entry[5]
        level.append(("field", col.name))
    return [_strip(e) for e in tree]


def _strip(entry):
    if entry[0] == "parent":
        return ("parent", entry[1], entry[2], entry[3], [_strip(e) for e in entry[4]])
    return entry

"""Running a bound query against a DataSource and rendering pages of records."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Optional

from .binder import BoundChild, BoundPath, BoundQuery, Schema, bind
from .nodes import Query
from .where import ParentCache, WhereCompiler, accessor, category


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
    rows = _matching(bound, ds, include_deleted, pred)
    q = bound.query

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


def select_ids(bound: BoundQuery, rows, ds, cache) -> list[str]:
    """Ids in final order. Only (sort keys..., Id) tuples are held when sorting, never records."""
    q = bound.query
    offset = q.offset or 0
    if not bound.order_by:
        ids = []
        stop = None if q.limit is None else offset + q.limit
        for r in rows:
            ids.append(r["Id"])
            if stop is not None and len(ids) >= stop:
                break
        return ids[offset:]
    keyers = [_sort_value(p, ds, cache) for p, _, _ in bound.order_by]
    if len(keyers) == 1:
        k0 = keyers[0]
        table = [(k0(r), r["Id"]) for r in rows]
    else:
        table = [tuple(k(r) for k in keyers) + (r["Id"],) for r in rows]
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

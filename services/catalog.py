"""What a connection's org offers: its objects and their fields, cached per connection.

``list_objects(connection, *, refresh=False) -> list[ObjectRow]``
    Every object the connected user can query (describeGlobal → ``discoverable_objects``):
    Lead, Contact, CampaignMember, Account first, other standard objects, then custom ones.
    Each row: label, API name, record-count estimate (``limits/recordCount``; None where
    Salesforce keeps none, shown as "unknown", never guessed), the last-modified field, and the
    email / phone / consent / source ID fields recognised from the describe's types and flags.
    Objects beyond ``DESCRIBE_LIMIT`` that are not cached yet show ``described=False``.
``search_objects(rows, query) -> rows``   by label or API name, case-insensitive
``describe(connection, object_name, *, refresh=False) -> ObjectDescribe``
``field_catalog(connection, object_name, *, refresh=False) -> FieldCatalog``
    own fields plus parents one level up (Account.Name, Owner.Email...).
``refresh(connection)``   drop every cached describe of the connection (the "Refresh" button)
``cached_cursor_field(connection, object_name) -> str | None``   from the cache only
``objects_or_reason(connection, *, refresh=False) -> (rows, reason | None)`` and
``field_catalog_or_reason(connection, object_name) -> (FieldCatalog | None, reason | None)``
    for views (which never import salesforce/): a Salesforce failure becomes its readable reason
``catalog_fetched_at(connection)``   when describeGlobal was cached
``campaigns(connection, fetch) -> [(Id, Name)]``   the org's campaigns for filter rows, kept
    ``CAMPAIGNS_TTL`` (a short-lived cache: a filters step renders without asking Salesforce)

Describes live in ``DescribeCache`` (one row per connection and object; describeGlobal under
``*``, the record counts under ``#counts`` and the campaigns under ``#campaigns``) until
refreshed. A parent object Salesforce answers NotFound or AccessDenied for is remembered too
(``{"unavailable": ...}``), so a catalog never asks for it again on every render. The rows of a
connection are read in one query per service call, not one per object. Salesforce errors propagate as
``salesforce.errors`` classes (``NeedsReconnect`` when the connection must be reconnected).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterable

from sqlalchemy import delete, select

from core.extensions import db
from models import DescribeCache, SalesforceConnection
from models.types import utcnow
from salesforce.errors import SalesforceError
from salesforce.describe import (FieldCatalog, ObjectDescribe, ObjectSummary, discoverable_objects,
                                 parent_objects)
from services import connections

GLOBAL_KEY = "*"
COUNTS_KEY = "#counts"
CAMPAIGNS_KEY = "#campaigns"
CAMPAIGNS_TTL = timedelta(minutes=10)
UNAVAILABLE = "unavailable"  # the payload key of a describe Salesforce refused (NotFound, AccessDenied)
DESCRIBE_LIMIT = 120  # objects described eagerly for the object list (real orgs have hundreds)
PARENT_LIMIT = 20     # lookups expanded one level up in a field catalog


@dataclass(frozen=True)
class ObjectRow:
    name: str
    label: str
    custom: bool
    record_count: int | None
    described: bool
    last_modified_field: str | None = None
    email_fields: tuple[str, ...] = ()
    phone_fields: tuple[str, ...] = ()
    consent_fields: tuple[str, ...] = ()
    source_id_fields: tuple[str, ...] = ()

    @property
    def count_label(self) -> str:
        return "unknown" if self.record_count is None else f"{self.record_count:,}"


# --- the cache -------------------------------------------------------------------------------

def _cached(connection: SalesforceConnection, key: str) -> DescribeCache | None:
    return db.session.scalar(select(DescribeCache).where(DescribeCache.connection_id == connection.id,
                                                         DescribeCache.object_name == key))


def _all_cached(connection: SalesforceConnection, names: Iterable[str] | None = None) -> dict[str, DescribeCache]:
    """The connection's cached rows (every one, or those of ``names``), by name, in one query."""
    stmt = select(DescribeCache).where(DescribeCache.connection_id == connection.id)
    if names is not None:
        stmt = stmt.where(DescribeCache.object_name.in_(list(names)))
    return {row.object_name: row for row in db.session.scalars(stmt)}


def _unavailable(payload) -> bool:
    return isinstance(payload, dict) and UNAVAILABLE in payload


def _store(connection: SalesforceConnection, key: str, payload) -> None:
    row = _cached(connection, key)
    if row is None:
        row = DescribeCache(workspace_id=connection.workspace_id, connection_id=connection.id, object_name=key)
        db.session.add(row)
    row.payload = payload
    row.fetched_at = utcnow()


def refresh(connection: SalesforceConnection) -> None:
    db.session.execute(delete(DescribeCache).where(DescribeCache.connection_id == connection.id))
    db.session.commit()


def catalog_fetched_at(connection: SalesforceConnection):
    row = _cached(connection, GLOBAL_KEY)
    return row.fetched_at if row is not None else None


class _Lazy:
    """One client per service call, made only when the cache misses."""

    def __init__(self, connection: SalesforceConnection):
        self.connection = connection
        self.client = None

    def __call__(self):
        if self.client is None:
            self.client = connections.client_for(self.connection)
        return self.client

    def done(self) -> None:
        if self.client is not None:
            connections.record_usage(self.connection, self.client, commit=False)
        db.session.commit()


def _raw_describe(connection: SalesforceConnection, name: str, lazy: _Lazy,
                  rows: dict[str, DescribeCache] | None = None) -> dict:
    """The cached describe (``rows``: the connection's rows already read), or Salesforce's."""
    row = rows.get(name) if rows is not None else _cached(connection, name)
    if row is not None and row.payload and not _unavailable(row.payload):
        return row.payload
    payload = describe_json(lazy().describe(name))
    _store(connection, name, payload)
    return payload


def describe_json(d: ObjectDescribe) -> dict:
    """An ObjectDescribe back in Salesforce's JSON keys (what the cache keeps)."""
    return {
        "name": d.name, "label": d.label, "labelPlural": d.label_plural, "custom": d.custom,
        "keyPrefix": d.key_prefix, "queryable": d.queryable,
        "childRelationships": [{"childSObject": c.child_object, "field": c.field,
                                "relationshipName": c.relationship_name} for c in d.child_relationships],
        "fields": [{
            "name": f.name, "label": f.label, "type": f.type, "length": f.length, "nillable": f.nillable,
            "filterable": f.filterable, "sortable": f.sortable,
            "picklistValues": [{"value": p.value, "label": p.label, "active": p.active,
                                "defaultValue": p.default} for p in f.picklist_values],
            "referenceTo": list(f.reference_to), "relationshipName": f.relationship_name,
            "externalId": f.external_id, "idLookup": f.id_lookup, "unique": f.unique,
            "compoundFieldName": f.compound_field_name, "custom": f.custom, "calculated": f.calculated,
            "deprecatedAndHidden": f.deprecated_and_hidden,
        } for f in d.fields],
    }


# --- objects ---------------------------------------------------------------------------------

def list_objects(connection: SalesforceConnection, *, refresh: bool = False) -> list[ObjectRow]:
    if refresh:
        globals()["refresh"](connection)
    lazy = _Lazy(connection)
    try:
        cache = _all_cached(connection)
        row = cache.get(GLOBAL_KEY)
        if row is None or not row.payload:
            client = lazy()
            summaries = client.describe_global()
            _store(connection, GLOBAL_KEY, [_summary_json(s) for s in summaries])
        else:
            summaries = [ObjectSummary.from_json(d) for d in row.payload]
        objects = discoverable_objects(summaries)
        counts_row = cache.get(COUNTS_KEY)
        if counts_row is None:
            counts = lazy().record_counts([s.name for s in objects])
            _store(connection, COUNTS_KEY, counts)
        else:
            counts = counts_row.payload or {}
        rows = []
        for i, s in enumerate(objects):
            cached = cache.get(s.name)
            if (cached is None and i >= DESCRIBE_LIMIT) or (cached is not None and _unavailable(cached.payload)):
                rows.append(ObjectRow(s.name, s.label, s.custom, counts.get(s.name), described=False))
                continue
            d = ObjectDescribe.from_json(_raw_describe(connection, s.name, lazy, cache))
            caps = d.capabilities
            rows.append(ObjectRow(s.name, s.label, s.custom, counts.get(s.name), True,
                                  caps.last_modified_field, caps.email_fields, caps.phone_fields,
                                  caps.consent_fields, caps.source_id_fields))
    finally:
        lazy.done()
    return rows


def _summary_json(s: ObjectSummary) -> dict:
    return {"name": s.name, "label": s.label, "labelPlural": s.label_plural, "custom": s.custom,
            "queryable": s.queryable, "retrieveable": s.retrieveable, "layoutable": s.layoutable,
            "deprecatedAndHidden": s.deprecated_and_hidden, "keyPrefix": s.key_prefix,
            "searchable": s.searchable}


def search_objects(rows: Iterable[ObjectRow], query: str | None) -> list[ObjectRow]:
    q = (query or "").strip().lower()
    if not q:
        return list(rows)
    return [r for r in rows if q in r.label.lower() or q in r.name.lower()]


# --- describes and fields --------------------------------------------------------------------

def describe(connection: SalesforceConnection, object_name: str, *, refresh: bool = False) -> ObjectDescribe:
    if refresh:
        db.session.execute(delete(DescribeCache).where(DescribeCache.connection_id == connection.id,
                                                       DescribeCache.object_name == object_name))
    lazy = _Lazy(connection)
    try:
        return ObjectDescribe.from_json(_raw_describe(connection, object_name, lazy))
    finally:
        lazy.done()


def field_catalog(connection: SalesforceConnection, object_name: str, *, refresh: bool = False) -> FieldCatalog:
    """The object's fields plus its parents' fields one level up."""
    obj = describe(connection, object_name, refresh=refresh)
    wanted: list[str] = []
    for targets in list(parent_objects(obj).values())[:PARENT_LIMIT]:
        for target in targets:
            if target not in wanted:
                wanted.append(target)
    cache = _all_cached(connection, [GLOBAL_KEY, *wanted])
    queryable = _queryable_names(connection, cache)
    parents = {}
    lazy = _Lazy(connection)
    try:
        for target in wanted:
            if queryable is not None and target not in queryable:
                continue  # a lookup to an object the user cannot read: offer none of its fields
            if target in cache and _unavailable(cache[target].payload):
                continue  # Salesforce said so before; "Refresh" asks again
            try:
                parents[target] = ObjectDescribe.from_json(_raw_describe(connection, target, lazy, cache))
            except Exception as exc:  # noqa: BLE001
                from salesforce.errors import NeedsReconnect, NotFound, AccessDenied, classify
                err = classify(exc)
                if isinstance(err, NeedsReconnect):
                    raise err from exc
                if not isinstance(err, (NotFound, AccessDenied)):
                    raise err from exc
                _store(connection, target, {UNAVAILABLE: type(err).__name__})
    finally:
        lazy.done()
    return FieldCatalog(obj, parents)


def _queryable_names(connection: SalesforceConnection,
                     cache: dict[str, DescribeCache] | None = None) -> set[str] | None:
    row = cache.get(GLOBAL_KEY) if cache is not None else _cached(connection, GLOBAL_KEY)
    if row is None or not row.payload:
        return None
    return {d["name"] for d in row.payload if d.get("queryable")}


def campaigns(connection: SalesforceConnection,
              fetch: Callable[[], list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """The org's campaigns ``(Id, Name)``: the cached list while younger than ``CAMPAIGNS_TTL``,
    else ``fetch()`` (a Campaign query; its errors propagate and nothing is cached)."""
    row = _cached(connection, CAMPAIGNS_KEY)
    if row is not None and isinstance(row.payload, list) and row.fetched_at is not None \
            and utcnow() - row.fetched_at < CAMPAIGNS_TTL:
        return [(str(cid), str(name)) for cid, name in row.payload]
    values = [(str(cid), str(name)) for cid, name in fetch()]
    _store(connection, CAMPAIGNS_KEY, [[cid, name] for cid, name in values])
    db.session.commit()
    return values


def cached_cursor_field(connection: SalesforceConnection, object_name: str) -> str | None:
    row = _cached(connection, object_name)
    if row is None or not row.payload or _unavailable(row.payload):
        return None
    return ObjectDescribe.from_json(row.payload).cursor_field


# --- for views: failures as readable reasons ------------------------------------------------

def objects_or_reason(connection: SalesforceConnection, *, refresh: bool = False):
    try:
        return list_objects(connection, refresh=refresh), None
    except SalesforceError as exc:
        db.session.rollback()
        return [], exc.reason


def field_catalog_or_reason(connection: SalesforceConnection, object_name: str):
    try:
        return field_catalog(connection, object_name), None
    except SalesforceError as exc:
        db.session.rollback()
        return None, exc.reason


"""The engine's Source on Salesforce: the plan's SOQL, paged lazily, errors translated.

The query (salesforce.soql; field names come only from the plan, which came from the describe)::

    SELECT <plan.select_fields()> FROM <object> WHERE (<filters>) AND SystemModstamp >= <cursor -
    look-back> ORDER BY SystemModstamp, Id

No cursor (the first run, or the first after the plan's fingerprint changed) means no cursor
clause: a full read.

Errors, translated once (salesforce.errors -> sync.errors):
    ApiLimitExceeded -> SourceLimitReached;  NeedsReconnect / SessionExpired -> SourceAuthFailed;
    Transient (after the client's bounded retries) -> SourceTransient;  BrokenPaging ->
    SourceBrokenPaging;  MalformedQuery -> SourceQueryError(Salesforce's message);
    ApiDisabled / AccessDenied / NotFound / others -> SourceQueryError(reason);
    QueryLocatorInvalid -> the query is built again from the cursor the engine has committed and
    read from there, once; a second expiry -> SourceTransient.

The restart reads from the newest timestamp of the pages handed out so far (with the look-back
overlap; upserts are idempotent and unchanged records cost nothing). The engine commits every
page it is handed before it takes the next one, or stops the run there; so even when a page is
fetched ahead (services.runs reads through ``sync.readahead``: page N+1 is asked for as soon as
the engine takes page N, before page N is committed) nothing before the restart point is left
out of a run that goes on: page N is committed, or the run ends with the cursor of the pages
before it.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from salesforce import errors as sf
from salesforce.client import SalesforceClient
from salesforce.soql import build_incremental_query, build_query
from sync import cursor as cursors
from sync.errors import (SourceAuthFailed, SourceBrokenPaging, SourceError, SourceLimitReached,
                         SourceQueryError, SourceTransient)
from sync.plan import Plan


def translate(err: Exception) -> SourceError:
    """A salesforce.errors error as the engine's source error."""
    err = sf.classify(err)
    if isinstance(err, sf.ApiLimitExceeded):
        return SourceLimitReached()
    if isinstance(err, (sf.NeedsReconnect, sf.SessionExpired)):
        return SourceAuthFailed(err.reason)
    if isinstance(err, sf.Transient):
        return SourceTransient(f"Salesforce unavailable: {err.reason}")
    if isinstance(err, sf.BrokenPaging):
        return SourceBrokenPaging(err.reason)
    if isinstance(err, sf.MalformedQuery):
        return SourceQueryError(err.message or err.reason)
    if isinstance(err, sf.QueryLocatorInvalid):
        return SourceTransient(f"Salesforce unavailable: {err.reason}")
    return SourceQueryError(err.reason)


def sync_query(plan: Plan, where: str, start: datetime | None) -> str:
    """The plan's incremental query from ``start`` (None: read everything)."""
    bound = cursors.lower_bound(start, plan.look_back)
    return build_incremental_query(plan.object_name, plan.select_fields(), where,
                                   plan.cursor_field, bound)


class SalesforceSource:
    """Pages (lists of record dicts) of the plan's query, fetched lazily."""

    def __init__(self, client: SalesforceClient, plan: Plan, where: str,
                 start: datetime | None, *, batch_size: int = 2000):
        self.client = client
        self.plan = plan
        self.where = where
        self.start = start
        self.batch_size = batch_size
        self.committed: datetime | None = start
        self.queries: list[str] = []
        self.restarts = 0
        self.pages = 0

    def __iter__(self) -> Iterator[list[dict]]:
        start = self.start
        while True:
            soql = sync_query(self.plan, self.where, start)
            self.queries.append(soql)
            try:
                for page in self.client.query_pages(soql, batch_size=self.batch_size):
                    self.pages += 1
                    # Read before handing the page out: the engine owns its records from then on.
                    newest = cursors.newest(page.records, self.plan.cursor_field)
                    yield page.records
                    # Resumed: the engine took that page (see the module docstring).
                    self.committed = cursors.advance(self.committed, newest)
                return
            except sf.QueryLocatorInvalid as exc:
                if self.restarts:
                    raise translate(exc) from exc
                self.restarts += 1
                start = self.committed
            except sf.SalesforceError as exc:
                raise translate(exc) from exc
            except Exception as exc:  # transport errors the client did not classify
                raise translate(exc) from exc


def id_query(object_name: str, fields: list[str], ids: list[str], extra: str = "") -> str:
    """``SELECT fields FROM object WHERE Id IN ('...')`` for one batch of record IDs."""
    quoted = ", ".join(f"'{i}'" for i in ids)
    where = f"Id IN ({quoted})" + (f" AND {extra}" if extra else "")
    return build_query(object_name, fields, where)


def read_all(client: SalesforceClient, soql: str, *, include_deleted: bool = False,
             batch_size: int = 2000) -> Iterator[list[dict]]:
    """Pages of any query, with the same error translation as the sync source."""
    try:
        for page in client.query_pages(soql, include_deleted=include_deleted, batch_size=batch_size):
            yield page.records
    except Exception as exc:
        raise translate(exc) from exc


def count(client: SalesforceClient, soql: str) -> int:
    try:
        return client.count(soql)
    except Exception as exc:
        raise translate(exc) from exc


# --- the plan as the engine's Plan ------------------------------------------------------------------
# services.plans reads the stored plan (to_spec, to_filter_group); the client always comes from
# services.connections.client_for (one place that knows the settings, the emulator's app file and
# the CA, and refreshes once at a time).

def catalog_for(client: SalesforceClient, object_name: str, paths=()):
    """The describe catalog of ``object_name`` with the parents ``paths`` reach into."""
    from salesforce.describe import FieldCatalog, parent_objects
    described = client.describe(object_name)
    wanted = {p.split(".", 1)[0].lower() for p in paths if "." in p}
    parents = {}
    for rel, targets in parent_objects(described).items():
        if rel.lower() in wanted:
            for target in targets:
                if target not in parents:
                    parents[target] = client.describe(target)
    return described, FieldCatalog(described, parents)


def _paths(group) -> list[str]:
    from salesforce.soql import FilterRow
    if group is None:
        return []
    if isinstance(group, FilterRow):
        return [group.field_path]
    return [p for child in group.children for p in _paths(child)]


def build_spec(plan_row, workspace, client: SalesforceClient, look_back: timedelta) -> tuple[Plan, str]:
    """(the engine's Plan, the WHERE text of the plan's filters), using the describe."""
    from salesforce.soql import build_where
    from services.plans import to_filter_group, to_spec
    group = to_filter_group(plan_row)
    described, catalog = catalog_for(client, plan_row.object_name, _paths(group))
    where = build_where(group, catalog) if group is not None else ""
    cursor_field = described.cursor_field or "SystemModstamp"
    spec = to_spec(plan_row, workspace, cursor_field=cursor_field, look_back=look_back)
    return spec, where

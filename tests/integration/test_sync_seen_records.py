"""The record IDs a run has read live in the database (``run_seen_records``), not in the worker:
the leaving pass and the reconciliation ask the table, a page or a chunk at a time, and still find
every linked record that was deleted or stopped matching. The rows go when the run ends, and a
killed run's rows are deleted by the next run."""
import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import ImportPlan, RunSeenRecord, SyncRun
from services import reconcile, runs
from tests.integration.sync_support import (drain, fresh, make_connection, make_plan, make_workspace, org,
                                            put, rconn, source_for, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]
UK = {"op": "AND", "items": [{"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"}]}


def sync(app, rconn, plan, **kw) -> SyncRun:
    run = runs.request_run(plan, **kw)
    drain(app, rconn)
    return fresh(SyncRun, run.id)


def contact(org, n, seconds, **fields):
    return put(org, "Contact", {"FirstName": f"P{n}", "LastName": "Test", "Email": f"p{n}@example.org",
                                "MailingCountry": "United Kingdom", "SystemModstamp": stamp(seconds), **fields})


def seen_rows(run_id=None) -> int:
    query = select(func.count()).select_from(RunSeenRecord)
    if run_id is not None:
        query = query.where(RunSeenRecord.run_id == run_id)
    return db.session.execute(query).scalar_one()


def _no_id_collection_in(obj, ids) -> None:
    """No attribute of ``obj`` (the seen store) holds the run's record IDs in memory."""
    for name, value in vars(obj).items():
        if isinstance(value, (set, frozenset, list, tuple, dict)):
            assert not (set(value) & ids), f"_SeenIds.{name} keeps record IDs in memory"


def test_seen_ids_are_rows_in_the_database_while_the_leaving_pass_runs(app, rconn, org, monkeypatch):
    ids = [contact(org, n, n) for n in range(30)]
    workspace = make_workspace(region="GB")
    plan = make_plan(workspace, make_connection(org, workspace), filters=UK, leaving_policy="archive")
    watched = {}
    real_reconcile, real_leaving = reconcile.reconcile_linked, reconcile.leaving_pass

    def watch(real):
        def wrapper(client, spec, *args):
            seen = args[-2]
            run_id = seen.run_id
            watched.setdefault("rows", []).append(seen_rows(run_id))
            watched.setdefault("fetched", []).append(fresh(SyncRun, run_id).fetched)
            _no_id_collection_in(seen, set(ids))
            assert not isinstance(seen, (set, frozenset))
            return real(client, spec, *args)
        return wrapper

    monkeypatch.setattr(reconcile, "reconcile_linked", watch(real_reconcile))
    monkeypatch.setattr(reconcile, "leaving_pass", watch(real_leaving))
    first = sync(app, rconn, plan)
    assert (first.status, first.imported, first.full_read) == ("succeeded", 30, True)
    # the full read's check ran with every ID read as a row of this run, none in the worker
    assert watched["rows"] == [30] and watched["fetched"] == [30]
    assert seen_rows() == 0  # deleted when the run ended

    org.update("Contact", ids[3], {"MailingCountry": "France"})     # stops matching the filter
    org.delete("Contact", ids[4])                                    # deleted
    org.update("Contact", ids[5], {"FirstName": "Changed"})         # changed, still matching
    second = sync(app, rconn, plan)
    assert (second.status, second.full_read, second.left) == ("succeeded", False, 2)
    assert watched["rows"][1] >= 1  # the incremental read's IDs (look-back overlap included)
    assert source_for(ids[3]).source_state == "no_longer_matching"
    assert source_for(ids[4]).source_state == "deleted"
    assert source_for(ids[5]).source_state == "active"
    assert seen_rows() == 0


def test_full_read_after_a_filter_edit_finds_every_excluded_link_in_chunks(app, rconn, org, monkeypatch):
    """The reconciliation side: an anti-join in SQL, read and handled in keyset chunks (3 here)."""
    monkeypatch.setattr(reconcile, "LEAVERS_CHUNK", 3)
    keep = [contact(org, n, n, Department="Design") for n in range(5)]
    drop = [contact(org, n, n, Department="Sales") for n in range(5, 13)]
    workspace = make_workspace(region="GB")
    plan = make_plan(workspace, make_connection(org, workspace), leaving_policy="archive")
    assert sync(app, rconn, plan).imported == 13
    plan = fresh(ImportPlan, plan.id)
    plan.filters = {"op": "AND", "items": [{"field": "Department", "operator": "equals", "value": "Design"}]}
    db.session.commit()
    edited = sync(app, rconn, plan)
    assert (edited.status, edited.full_read, edited.fetched, edited.left) == ("succeeded", True, 13, 8)
    assert {source_for(i).source_state for i in drop} == {"no_longer_matching"}
    assert {source_for(i).source_state for i in keep} == {"active"}
    again = sync(app, rconn, plan, kind="reconcile")
    assert (again.status, again.left) == ("succeeded", 0)  # handled links are not handled twice
    assert seen_rows() == 0


def test_unseen_asks_the_database_and_a_killed_runs_rows_are_deleted_by_the_next_run(app, rconn, org):
    contact(org, 1, 1)
    workspace = make_workspace(region="GB")
    plan = make_plan(workspace, make_connection(org, workspace))
    killed = SyncRun(workspace_id=workspace.id, plan_id=plan.id, status="interrupted", reason="worker lost")
    db.session.add(killed)
    db.session.commit()
    store = runs._SeenIds(source=[[{"Id": "003000000000001AAA"}, {"Id": "003000000000002AAA"}],
                                  [{"Id": "003000000000001AAA"}]], spec=plan_spec_stub(), run_id=killed.id)
    assert [len(page) for page in store] == [2, 1]
    assert seen_rows(killed.id) == 2  # written as pages were handed out; a re-read ID once
    assert store.unseen(["003000000000002AAA", "003000000000009AAA"]) == ["003000000000009AAA"]
    assert "003000000000001AAA" in store and "003000000000009AAA" not in store
    run = sync(app, rconn, plan)
    assert run.status == "succeeded"
    assert seen_rows() == 0


def plan_spec_stub():
    class Mapping:
        external_id = "Id"

    class Spec:
        mapping = Mapping()
    return Spec()


def test_a_runs_seen_rows_are_deleted_in_chunks_and_other_runs_rows_stay(app, org, monkeypatch):
    workspace = make_workspace(region="GB")
    plan = make_plan(workspace, make_connection(org, workspace))
    db.session.add_all(done := [SyncRun(workspace_id=workspace.id, plan_id=plan.id, status="succeeded")
                                for _ in range(2)])
    db.session.commit()
    ended, other = done
    db.session.execute(RunSeenRecord.__table__.insert(), [
        {"run_id": run.id, "record_id": f"003{n:012d}AAA"} for run in done for n in range(10)])
    db.session.commit()
    statements = []
    monkeypatch.setattr(runs, "SEEN_DELETE_CHUNK", 3)
    from sqlalchemy import event
    listener = lambda *a: statements.append(a[2]) if a[2].lstrip().upper().startswith("DELETE") else None  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        runs.forget_seen([ended.id])
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert seen_rows(ended.id) == 0
    assert seen_rows(other.id) == 10
    assert len(statements) == 4  # 3 + 3 + 3 + 1: chunks of SEEN_DELETE_CHUNK, never one big DELETE

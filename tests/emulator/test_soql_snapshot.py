"""Snapshot cursors: a query SQLite filters and sorts completely answers with its count and first
ids at once, and the rest of the cursor is written to the side database in the background, in the
read transaction the count was taken in. These tests make the head tiny (HEAD_ROWS) so every query
here takes that path, hold the background fill back to change the org in between, and compare
with the pure-Python engine on the same data."""
import gc
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from emulator import store as store_mod
from emulator.soql import engine, execute, parse
from emulator.soql.datasource import MemoryDataSource
from emulator.store import LazyIds
from emulator.testing import EmulatorServer

N = 900
BASE = datetime(2026, 1, 5, 9, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def org():
    with EmulatorServer() as server:
        store = server.state.store
        ids = []
        for i in range(N):
            fields = {"LastName": f"Person{i % 37}", "Email": f"p{i}@example.org"}
            if i % 3:
                fields["Birthdate"] = f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}"
            # three records share each SystemModstamp: Id breaks the tie
            ids.append(store.insert("production", "Contact", fields, now=BASE + timedelta(seconds=i // 3),
                                    validate=False))
        for i in range(0, N, 10):
            store.delete("production", "Contact", ids[i], now=BASE + timedelta(seconds=i // 3))
        yield server


@pytest.fixture
def tiny_head(monkeypatch):
    monkeypatch.setattr(engine, "HEAD_ROWS", 25)


def _view(server):
    st = server.state
    return st.store.view("production", st.orgs["production"].users[0], "62.0")


def _memory(view):
    describes = [view.describe(n) for n in view.catalog.names()]
    memory = MemoryDataSource(describes, {"Contact": list(view.scan("Contact", True))}, api_version="62.0")
    memory.object_for_id = view.object_for_id
    return memory


QUERIES = [
    "SELECT Id, Email, SystemModstamp FROM Contact WHERE SystemModstamp >= 2000-01-01T00:00:00Z "
    "ORDER BY SystemModstamp, Id",
    "SELECT Id, Birthdate FROM Contact ORDER BY Birthdate NULLS FIRST, Id",
    "SELECT Id, Birthdate FROM Contact ORDER BY Birthdate NULLS LAST, Id",
    "SELECT Id, Birthdate FROM Contact ORDER BY Birthdate DESC NULLS FIRST, SystemModstamp DESC",
    "SELECT Id, Birthdate FROM Contact ORDER BY Birthdate DESC NULLS LAST",
    "SELECT Id FROM Contact WHERE Birthdate != null ORDER BY Birthdate, SystemModstamp DESC, Id DESC",
    "SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-05T09:01:00Z ORDER BY SystemModstamp DESC, Id",
    "SELECT Id FROM Contact ORDER BY SystemModstamp, Id LIMIT 400 OFFSET 30",
    "SELECT Id FROM Contact ORDER BY SystemModstamp, Id OFFSET 810",
    "SELECT Id FROM Contact WHERE Birthdate = null",
    "SELECT Id, LastName FROM Contact",
]


@pytest.mark.parametrize("query_all", [False, True])
def test_snapshot_path_answers_as_the_python_engine(org, tiny_head, query_all):
    view = _view(org)
    memory = _memory(view)
    now = org.state.clock.now()
    lazy = 0
    for soql in QUERIES:
        a = execute(parse(soql), view, include_deleted=query_all, now=now)
        b = execute(parse(soql), memory, include_deleted=query_all, now=now)
        assert a.total_size == b.total_size == len(b.ids), soql
        assert a.ids[:25] == b.ids[:25], soql          # the head, read with the count
        assert a.ids[:200] == b.ids[:200], soql         # past the head: from the side database
        assert list(a.ids) == list(b.ids), soql
        assert a.render(a.ids[:200]) == b.render(b.ids[:200]), soql
        assert isinstance(a.ids, LazyIds) == (a.total_size > 25), soql
        lazy += isinstance(a.ids, LazyIds)
    assert lazy >= len(QUERIES) - 2


def test_total_size_is_counted_up_front(org, tiny_head):
    view = _view(org)
    res = execute(parse("SELECT Id FROM Contact ORDER BY SystemModstamp, Id LIMIT 400 OFFSET 30"), view)
    assert isinstance(res.ids, LazyIds) and len(res.ids.head) == 25
    assert res.total_size == len(res.ids) == 400
    live = org.count("Contact")
    res = execute(parse("SELECT Id FROM Contact WHERE SystemModstamp >= 2000-01-01T00:00:00Z"), view)
    assert res.total_size == live == N - N // 10
    res = execute(parse("SELECT Id FROM Contact"), view, include_deleted=True)
    assert res.total_size == N


class _Gate:
    """Holds the spill worker back before it fills a cursor, until opened."""

    def __init__(self, monkeypatch):
        self.open = threading.Event()
        self.waiting = threading.Event()
        original = store_mod._Fill.run

        def run(fill, store):
            self.waiting.set()
            self.open.wait(30)
            return original(fill, store)
        monkeypatch.setattr(store_mod._Fill, "run", run)


def test_pages_do_not_shift_when_records_change_during_paging(org, monkeypatch):
    """Over HTTPS with simple-salesforce: the org changes after the first page was served but
    before the background fill ran, and again between pages. Every page keeps the order and the
    membership of the moment of the query; records show their current values."""
    soql = ("SELECT Id, Email, SystemModstamp FROM Contact WHERE SystemModstamp >= 2026-01-05T09:00:00Z "
            "ORDER BY SystemModstamp, Id")
    monkeypatch.setattr(engine, "HEAD_ROWS", 250)
    view = _view(org)
    before = list(execute(parse(soql), view).ids)
    gate = _Gate(monkeypatch)
    sf = org.salesforce()
    headers = {"Sforce-Query-Options": "batchSize=200"}
    page = sf.query(soql, headers=headers)
    assert gate.waiting.wait(10)
    assert page["totalSize"] == len(before) and not page["done"]
    served = [r["Id"] for r in page["records"]]
    assert served == before[:200]

    # while the fill waits: move records to the end of the order, delete some, add some
    touched = before[150:160] + before[400:420]
    for rid in touched:
        org.update("Contact", rid, {"Email": "changed@example.org"})
    gone = before[500:510]
    for rid in gone:
        org.delete("Contact", rid)
    added = [org.create("Contact", {"LastName": "Late", "Email": "late@example.org"}) for _ in range(15)]
    monkeypatch.setattr(engine, "HEAD_ROWS", 10_000)  # (a list: its own fill would queue behind the held one)
    fresh = list(execute(parse(soql), view).ids)      # a new query sees the changes
    assert fresh != before and set(added) <= set(fresh) and not set(gone) & set(fresh)
    gate.open.set()

    while not page["done"]:
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True, headers=headers)
        served += [r["Id"] for r in page["records"]]
        assert page["totalSize"] == len(before)
        if len(served) == 600:   # and between pages, once the fill is done
            org.touch(before[700])
            org.create("Contact", {"LastName": "Later"})
    assert served == before                              # same ids, same order, nothing twice
    assert not set(added) & set(served)
    # the values are today's: a changed record shows its change where it was
    again = sf.query(soql + " LIMIT 5")
    assert again["totalSize"] == 5
    rows = {r["Id"]: r for r in sf.query_all(soql)["records"]}
    assert all(rows[rid]["Email"] == "changed@example.org" for rid in touched)


def test_a_text_filter_takes_its_ids_in_one_pass(org, monkeypatch):
    """A WHERE SQLite evaluates on the records' data (here a LIKE): the matching ids are written to
    a temporary table at once (no separate COUNT pass), so the count, the head and every later page
    are of that moment even if the org changes before the spill worker copies them; the temporary
    table is dropped once copied."""
    monkeypatch.setattr(engine, "HEAD_ROWS", 25)
    soql = "SELECT Id FROM Contact WHERE Email LIKE 'P1%' ORDER BY LastName DESC, Id"
    view = _view(org)
    now = org.state.clock.now()
    expected = list(execute(parse(soql), _memory(view), now=now).ids)
    assert len(expected) > 60
    gate = _Gate(monkeypatch)
    res = execute(parse(soql), view, now=now)
    assert gate.waiting.wait(10)
    assert isinstance(res.ids, LazyIds) and len(res.ids) == len(expected)
    assert res.ids[:25] == expected[:25]
    fill = res.ids.fill
    assert fill.drop == f"temp.t{fill.cid}"
    old_email = org.state.store.get("production", expected[30])["Email"]
    org.update("Contact", expected[30], {"Email": "moved@example.org"})
    late = org.create("Contact", {"LastName": "Person9", "Email": "p1late@example.org"})
    try:
        gate.open.set()
        assert list(res.ids) == expected
        assert fill.conn.execute("SELECT count(*) FROM temp.sqlite_master WHERE name = ?",
                                 (f"t{fill.cid}",)).fetchone()[0] == 0
        again = execute(parse(soql), view, now=now)
        assert late in again.ids and expected[30] not in again.ids
    finally:
        org.update("Contact", expected[30], {"Email": old_email})
        org.delete("Contact", late)


def test_a_page_past_the_head_waits_for_the_fill(org, monkeypatch):
    monkeypatch.setattr(engine, "HEAD_ROWS", 25)
    gate = _Gate(monkeypatch)
    view = _view(org)
    res = execute(parse("SELECT Id FROM Contact ORDER BY SystemModstamp, Id"), view)
    assert gate.waiting.wait(10)
    assert len(res.ids[:25]) == 25                       # the head: no wait
    got = []
    reader = threading.Thread(target=lambda: got.append(res.ids[25:50]))
    reader.start()
    time.sleep(0.2)
    assert reader.is_alive() and not got                 # waiting for the fill
    gate.open.set()
    reader.join(10)
    assert len(got) == 1 and len(got[0]) == 25


def test_a_released_cursor_drops_its_table(org, tiny_head):
    view = _view(org)
    res = execute(parse("SELECT Id FROM Contact ORDER BY Birthdate, Id"), view)
    ids = res.ids
    assert isinstance(ids, LazyIds)
    ids[100:101]                                         # filled
    table = f"c{ids.cid}"
    store = org.state.store

    def tables():
        return {r[0] for r in store.spill_db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert table in tables()
    del res, ids
    gc.collect()
    deadline = time.time() + 10
    while table in tables() and time.time() < deadline:
        time.sleep(0.1)
    assert table not in tables()


def test_small_results_stay_lists(org):
    view = _view(org)
    res = execute(parse("SELECT Id FROM Contact ORDER BY SystemModstamp, Id LIMIT 50"), view)
    assert isinstance(res.ids, list) and len(res.ids) == 50 == res.total_size


def test_closing_the_store_with_fills_pending_does_not_hang(monkeypatch):
    monkeypatch.setattr(engine, "HEAD_ROWS", 5)
    server = EmulatorServer().start()
    for i in range(40):
        server.create("Contact", {"LastName": f"X{i}"})
    gate = _Gate(monkeypatch)
    view = _view(server)
    first = execute(parse("SELECT Id FROM Contact ORDER BY SystemModstamp, Id"), view)
    assert gate.waiting.wait(10)                         # the worker holds the first fill
    second = execute(parse("SELECT Id FROM Contact ORDER BY Id DESC"), view)   # queued
    assert second.ids[:5] and len(second.ids) == 40
    stopper = threading.Thread(target=server.state.store.close)
    start = time.time()
    stopper.start()
    time.sleep(0.3)
    gate.open.set()
    stopper.join(15)
    assert not stopper.is_alive() and time.time() - start < 12
    with pytest.raises(RuntimeError):
        second.ids[10:20]                                # never filled: an error, not a hang
    del first
    server.stop()


def test_counts_from_the_kept_totals_match_counting_rows(org):
    """COUNT with no WHERE reads the per-object totals the triggers keep; ``SystemModstamp >= t``
    subtracts the rows before t when they are fewer: both agree with counting rows, on either side
    of the middle, with queryAll, and after creates, deletes and undeletable updates."""
    store = org.state.store
    view = _view(org)

    def rows(where_sql="", include_deleted=False, args=()):
        live = "" if include_deleted else " AND deleted=0"
        return store.db.execute(f"SELECT count(*) FROM records WHERE org='production' AND object='Contact'{live}"
                                f"{where_sql}", args).fetchone()[0]
    stamps = sorted(r[0] for r in store.db.execute(
        "SELECT modstamp FROM records WHERE org='production' AND object='Contact'"))
    for _ in range(2):
        for qa in (False, True):
            assert execute(parse("SELECT COUNT() FROM Contact"), view, include_deleted=qa).total_size == \
                rows(include_deleted=qa)
            for k in (0, 5, len(stamps) // 3, len(stamps) // 2, len(stamps) - 3, len(stamps) - 1):
                t = stamps[k][:19] + "Z"
                for op in (">=", ">"):
                    soql = f"SELECT Id FROM Contact WHERE SystemModstamp {op} {t}"
                    want = rows(f" AND modstamp {op} ?", qa, (stamps[k][:19] + ".000+0000",))
                    assert execute(parse(soql), view, include_deleted=qa).total_size == want, (soql, qa)
                    assert execute(parse(soql.replace("Id FROM", "COUNT() FROM")), view,
                                   include_deleted=qa).total_size == want, (soql, qa)
        # change the org, then count again
        new = [org.create("Contact", {"LastName": f"Counted{i}"}) for i in range(7)]
        org.delete("Contact", new[0])
        org.update("Contact", new[1], {"Email": "x@example.org"})
        stamps = sorted(r[0] for r in store.db.execute(
            "SELECT modstamp FROM records WHERE org='production' AND object='Contact'"))
    kept = dict(((o, d), n) for o, d, n in store.db.execute(
        "SELECT object, deleted, n FROM record_counts WHERE org='production'"))
    actual = dict(((o, d), n) for o, d, n in store.db.execute(
        "SELECT object, deleted, count(*) FROM records WHERE org='production' GROUP BY object, deleted"))
    assert {k: v for k, v in kept.items() if v} == actual


def test_kept_counts_are_rebuilt_on_restart(tmp_path):
    with EmulatorServer(state_dir=tmp_path) as server:
        for i in range(5):
            server.create("Contact", {"LastName": f"K{i}"})
        server.state.store.db.execute("DELETE FROM record_counts")     # as a store from before the table
    with EmulatorServer(state_dir=tmp_path, keep_data=True) as server:
        res = execute(parse("SELECT COUNT() FROM Contact"), _view(server))
        assert res.total_size == 5 == server.count("Contact")

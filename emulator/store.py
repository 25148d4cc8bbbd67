"""The org store: SQLite-backed records for every org, plus each org's schema.

One database file per state dir. A record is a JSON document with canonical API-name keys and
values exactly as Salesforce renders them; indexed columns carry what lookups and cursors need
(object, Id, SystemModstamp, IsDeleted, insertion order). Null fields are not stored: a key absent
from a stored record means null. Booleans are always stored.

``Store.view(org, user, version)`` returns the DataSource the SOQL engine reads: the org as one user
sees it (fields hidden by field-level security are absent from describes and records).
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import queue
import re
import sqlite3
import threading
import weakref
from collections import deque
from datetime import datetime
from typing import Iterable, Iterator

from . import ids as idlib
from .clock import Clock, sf_datetime
from .orgs import Org, User
from .schema import catalog as cat

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS records (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, org TEXT NOT NULL, object TEXT NOT NULL,
    modstamp TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_scan ON records(org, object, deleted, rowid);
DROP INDEX IF EXISTS records_modstamp;
CREATE INDEX IF NOT EXISTS records_modstamp_id ON records(org, object, modstamp, id, deleted);
-- live rows by SystemModstamp: a cursor's COUNT walks a range of it without testing IsDeleted per
-- row, and the sync's ORDER BY SystemModstamp, Id reads off it (queryAll uses the index above)
CREATE INDEX IF NOT EXISTS records_live_modstamp ON records(org, object, deleted, modstamp, id);
-- rows per (org, object, deleted), kept by triggers in the writing transaction (so a snapshot reads
-- counts and rows alike); rebuilt from the rows at every start
CREATE TABLE IF NOT EXISTS record_counts (org TEXT NOT NULL, object TEXT NOT NULL, deleted INTEGER NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY (org, object, deleted)) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS records_count_ins AFTER INSERT ON records BEGIN
    INSERT INTO record_counts VALUES (new.org, new.object, new.deleted, 1)
    ON CONFLICT(org, object, deleted) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS records_count_del AFTER DELETE ON records BEGIN
    UPDATE record_counts SET n = n - 1 WHERE org = old.org AND object = old.object AND deleted = old.deleted; END;
CREATE TRIGGER IF NOT EXISTS records_count_upd AFTER UPDATE OF org, object, deleted ON records
    WHEN old.org IS NOT new.org OR old.object IS NOT new.object OR old.deleted IS NOT new.deleted BEGIN
    UPDATE record_counts SET n = n - 1 WHERE org = old.org AND object = old.object AND deleted = old.deleted;
    INSERT INTO record_counts VALUES (new.org, new.object, new.deleted, 1)
    ON CONFLICT(org, object, deleted) DO UPDATE SET n = n + 1; END;
CREATE TABLE IF NOT EXISTS schema (org TEXT NOT NULL, name TEXT NOT NULL, describe TEXT NOT NULL,
    PRIMARY KEY (org, name));
CREATE TABLE IF NOT EXISTS seq (org TEXT NOT NULL, prefix TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (org, prefix));
"""

dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_PLAIN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
PERSON_OBJECTS = ("Lead", "Contact")
# A person account's fields and the fields of the Contact Salesforce keeps behind it.
PERSON_ACCOUNT_TO_CONTACT = {
    "FirstName": "FirstName", "LastName": "LastName", "Salutation": "Salutation", "PersonEmail": "Email",
    "Phone": "Phone", "PersonMobilePhone": "MobilePhone", "PersonHomePhone": "HomePhone",
    "PersonOtherPhone": "OtherPhone", "PersonTitle": "Title", "PersonBirthdate": "Birthdate",
    "PersonLeadSource": "LeadSource", "PersonDepartment": "Department",
    "PersonHasOptedOutOfEmail": "HasOptedOutOfEmail", "PersonDoNotCall": "DoNotCall",
    "PersonHasOptedOutOfFax": "HasOptedOutOfFax",
    **{f"PersonMailing{part}": f"Mailing{part}" for part in ("Street", "City", "State", "PostalCode", "Country",
                                                           "Latitude", "Longitude")},
}
CM_COPIED = ["Salutation", "FirstName", "LastName", "Name", "Title", "Street", "City", "State", "PostalCode",
             "Country", "Email", "Phone", "Fax", "MobilePhone", "Description", "DoNotCall",
             "HasOptedOutOfEmail", "HasOptedOutOfFax", "LeadSource"]
CONTACT_TO_CM = {"Street": "MailingStreet", "City": "MailingCity", "State": "MailingState",
                 "PostalCode": "MailingPostalCode", "Country": "MailingCountry"}


def _sf_lower(v):
    """Python's str.lower, for the SOQL engine's case-insensitive comparisons and sort keys in SQL
    (SQLite's own lower() folds ASCII letters only)."""
    return v.lower() if isinstance(v, str) else v


@functools.lru_cache(maxsize=256)
def _like_matcher(pattern: str, flags: int):
    return re.compile(pattern, flags).fullmatch


def _sf_like(pattern: str, flags: int, v) -> int:
    """1 when ``v`` matches a SOQL LIKE compiled by the parser (its regex source and flags)."""
    return int(isinstance(v, str) and _like_matcher(pattern, flags)(v) is not None)


def register_functions(conn: sqlite3.Connection):
    """The functions the SOQL engine's SQL may call (see soql.engine._sql_plan)."""
    conn.create_function("sf_lower", 1, _sf_lower, deterministic=True)
    conn.create_function("sf_like", 3, _sf_like, deterministic=True)


class RecordError(Exception):
    """A REST-level record error: status, errorCode, message and optional fields."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def body(self) -> list[dict]:
        item = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


class _ConnBox:
    """Holds a thread's connection in its thread-local: closes it when the thread goes away."""

    def __init__(self, conn: sqlite3.Connection, registry):
        self.conn = conn
        self._fin = weakref.finalize(self, _close_quietly, conn)
        registry.add(self)

    def close(self):
        self._fin()


def _close_quietly(conn: sqlite3.Connection):
    try:
        conn.close()
    except sqlite3.Error:
        pass


class Catalog:
    """One org's describes, keyed case-insensitively; each kept with URL placeholders."""

    def __init__(self, org: Org):
        self.org = org
        self.objects: dict[str, dict] = {}
        for d in cat.standard_describes(person_accounts=org.person_accounts).values():
            self.put(d)
        for i, name in enumerate(cat.PARTICIPANT_OBJECTS):
            self.put(cat.participant_object(name, self.next_custom_prefix()))
            self.link_children(name)
        self._index()

    def _index(self):
        self.by_prefix = {d["keyPrefix"]: d["name"] for d in self.objects.values() if d.get("keyPrefix")}

    def put(self, describe: dict):
        self.objects[describe["name"].lower()] = describe
        if hasattr(self, "by_prefix"):
            self._index()

    def get(self, name: str) -> dict | None:
        return self.objects.get((name or "").lower())

    def names(self) -> list[str]:
        return sorted((d["name"] for d in self.objects.values()), key=str.lower)

    def next_custom_prefix(self) -> str:
        used = {d.get("keyPrefix") for d in self.objects.values()}
        n = 0
        while True:
            p = "a" + idlib.base62(n, 2)
            if p not in used:
                return p
            n += 1

    def link_children(self, child: str):
        """Add the parent-side childRelationships entries for the child's lookups."""
        d = self.get(child)
        for f in d["fields"]:
            if f["type"] != "reference" or f["name"] in ("OwnerId", "CreatedById", "LastModifiedById"):
                continue
            for target in f["referenceTo"]:
                parent = self.get(target)
                if parent is None:
                    continue
                if any(r["childSObject"] == d["name"] and r["field"] == f["name"]
                       for r in parent["childRelationships"]):
                    continue
                if d["custom"]:
                    rel = cat.plural(d["name"][:-3]) + "__r" if f["custom"] else cat.plural(d["name"][:-3]) + "__r"
                else:
                    rel = cat.plural(d["name"])
                if any(r["relationshipName"] == rel for r in parent["childRelationships"]):
                    rel = None
                parent["childRelationships"].append(cat.child_relationship(d["name"], f["name"], rel))
                parent["childRelationships"].sort(key=lambda r: (r["childSObject"], r["field"]))


class Store:
    def __init__(self, path: str, orgs: list[Org], clock: Clock | None = None, fresh: bool = True):
        self.path = path
        self.clock = clock or Clock()
        self.orgs = {o.key: o for o in orgs}
        self._local = threading.local()
        self.write_lock = threading.RLock()
        # one connection per thread, closed when the thread ends (the server runs a thread per
        # client connection: connections kept past their thread would each hold a page cache)
        self._conns: "weakref.WeakSet[_ConnBox]" = weakref.WeakSet()
        # Query cursors' ids live in a side database (``<store>-cursors``), not in Python lists: one
        # table ``c<n>`` per cursor, its rowid the position in the result (1-based); dropped by the
        # spill worker once the cursor object goes away. Never kept across restarts.
        self.spill_path = path + "-cursors"
        self._spill_local = threading.local()
        self._spill_n = itertools.count(1)
        self._spill_garbage: deque[int] = deque()     # appended by finalizers: no locks taken there
        self._spill_jobs: "queue.Queue[_Fill | None]" = queue.Queue()
        self._spill_worker: threading.Thread | None = None
        self._spill_running: "_Fill | None" = None
        self._snapshots: list[sqlite3.Connection] = []  # idle snapshot connections (spill attached)
        self._snap_lock = threading.Lock()
        self._closing = False
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.spill_path + suffix):
                os.remove(self.spill_path + suffix)
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
        db = self.db
        db.executescript(SCHEMA_SQL)
        with self.write_lock:
            db.executescript("BEGIN; DELETE FROM record_counts; INSERT INTO record_counts "
                             "SELECT org, object, deleted, count(*) FROM records GROUP BY org, object, deleted; "
                             "COMMIT;")
        self.catalogs = {o.key: Catalog(o) for o in orgs}
        for org_key, name, text in db.execute("SELECT org, name, describe FROM schema"):
            if org_key in self.catalogs:
                self.catalogs[org_key].put(json.loads(text))
        for org in orgs:
            for u in org.users:
                if self.get_raw(u.id) is None:
                    self.insert(org.key, "User", {
                        "Username": u.username, "FirstName": u.first_name, "LastName": u.last_name,
                        "Email": u.email, "Alias": (u.first_name[:1] + u.last_name[:4]).lower(),
                        "IsActive": True, "TimeZoneSidKey": u.timezone, "UserType": "Standard",
                        "CompanyName": org.name}, record_id=u.id, validate=False)
            self._ensure_seq(org.key, "005", len(org.users))
            if self.get_raw(org.id18) is None:
                rec = {k: v for k, v in cat.base()["organization_record"].items()
                       if k not in ("attributes", "Id", "SystemModstamp", "CreatedDate", "CreatedById",
                                    "LastModifiedDate", "LastModifiedById") and v is not None}
                rec.update(Name=org.name, IsSandbox=org.is_sandbox, OrganizationType=org.organization_type,
                           InstanceName=org.instance_name, PrimaryContact=org.users[0].name,
                           TrialExpirationDate=None)
                rec = {k: v for k, v in rec.items() if v is not None}
                self.insert(org.key, "Organization", rec, record_id=org.id18, validate=False)

    # -- connections ---------------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-32000")
            register_functions(conn)
            self._local.conn = conn
            self._local.box = _ConnBox(conn, self._conns)
        return conn

    dumps_str = staticmethod(dumps)

    @property
    def spill_db(self) -> sqlite3.Connection:
        conn = getattr(self._spill_local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.spill_path, check_same_thread=False, isolation_level=None, timeout=60)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-8000")
            conn.execute("PRAGMA temp_store=FILE")
            self._spill_local.conn = conn
            self._spill_local.box = _ConnBox(conn, self._conns)
        return conn

    def _spill_begin(self) -> tuple[sqlite3.Connection, int]:
        self._ensure_spill_worker()
        return self.spill_db, next(self._spill_n)

    def _spill_release(self, cid: int):
        # called from a finalizer, possibly mid-statement on this thread: only note it (the spill
        # worker drops the table)
        self._spill_garbage.append(cid)

    def spill_ids(self, ids: Iterable[str]) -> "SpilledIds":
        """Write an ordered stream of ids to the side database; a list-like view of them."""
        db, cid = self._spill_begin()
        db.execute(f"CREATE TABLE c{cid} (id TEXT NOT NULL)")
        n = 0
        it = iter(ids)
        while True:
            chunk = [(n + i + 1, rid) for i, rid in enumerate(itertools.islice(it, 20000))]
            if not chunk:
                break
            db.execute("BEGIN")
            try:
                db.executemany(f"INSERT INTO c{cid}(rowid, id) VALUES (?,?)", chunk)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            n += len(chunk)
        return SpilledIds(self, cid, n)

    def spill_sort(self, rows: Iterable[tuple], order: list[tuple[bool, bool]], offset: int,
                   limit: int | None) -> "SpilledIds":
        """External sort: rows are (key..., id) in scan order; order gives (descending, nulls_last)
        per key. Ties keep scan order (as Python's stable sort does)."""
        db, cid = self._spill_begin()
        k = len(order)
        cols = ", ".join(f"k{i}" for i in range(k))
        tmp = f"temp.sort_{cid}"
        db.execute(f"CREATE TABLE {tmp} ({cols}, id)")
        ins = f"INSERT INTO {tmp} VALUES ({','.join('?' * (k + 1))})"
        it = iter(rows)
        try:
            while True:
                chunk = list(itertools.islice(it, 20000))
                if not chunk:
                    break
                db.execute("BEGIN")
                db.executemany(ins, chunk)
                db.execute("COMMIT")
            by = ", ".join(f"k{i} {'DESC' if desc else 'ASC'} NULLS {'LAST' if last else 'FIRST'}"
                           for i, (desc, last) in enumerate(order))
            hi = -1 if limit is None else offset + limit
            db.execute("BEGIN")
            db.execute(f"CREATE TABLE c{cid} (id TEXT NOT NULL)")
            cur = db.execute(
                f"INSERT INTO c{cid}(rowid, id) SELECT n - ? + 1, id FROM (SELECT row_number() OVER "
                f"(ORDER BY {by}, rowid) - 1 AS n, id FROM {tmp}) WHERE n >= ? AND (? < 0 OR n < ?)",
                (offset, offset, hi, hi))
            n = cur.rowcount
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.execute(f"DROP TABLE IF EXISTS {tmp}")
        return SpilledIds(self, cid, n)

    # -- snapshot queries: totalSize and the first page now, the rest filled in the background ---
    def _snapshot_take(self) -> sqlite3.Connection:
        with self._snap_lock:
            if self._snapshots:
                return self._snapshots.pop()
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        # a small page cache: COUNT and fill stream through an index once (the OS caches the file),
        # and one of these connections is held per fill in flight
        conn.execute("PRAGMA cache_size=-2000")
        register_functions(conn)
        conn.execute("ATTACH DATABASE ? AS spill", (self.spill_path,))
        conn.execute("PRAGMA spill.journal_mode=WAL")
        conn.execute("PRAGMA spill.synchronous=OFF")
        return conn

    def _snapshot_give(self, conn: sqlite3.Connection):
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                _close_quietly(conn)
                return
        with self._snap_lock:
            if not self._closing and len(self._snapshots) < 4:
                self._snapshots.append(conn)
                return
        _close_quietly(conn)

    def snapshot_ids(self, org_key: str, obj: str, include_deleted: bool, where: list[str], params: list,
                     order: list[str], offset: int = 0, limit: int | None = None, keep: int = 10_000):
        """The ids ``select`` would stream, as one consistent snapshot: a list when there are at
        most ``keep``, else a ``LazyIds`` whose length (the count) and first ``keep`` ids are read
        now and whose full sequence a background worker writes into the side database with one
        ``INSERT ... SELECT`` inside SQLite, in the same read transaction (WAL: writes made after
        the count don't show), so pages never shift however the org changes meanwhile. A WHERE that
        reads the records' data (a text comparison, a LIKE) is one pass instead: its ids go to a
        temporary table at once, the count is their number, and the worker copies them over."""
        conn = self._snapshot_take()
        handed = False
        try:
            conn.execute("BEGIN")
            if any("json_extract" in w for w in where):
                # the WHERE reads every row's data: one pass writes the matching ids to a temporary
                # table (on disk, this connection's), rather than a COUNT pass and then a pass for
                # the head; the spill worker copies them into the cursor's table
                cid = next(self._spill_n)
                temp = f"temp.t{cid}"
                sql, args = self._select_sql(org_key, obj, include_deleted, where, params, order, offset, limit,
                                             ids_only=True)
                conn.execute(f"CREATE TABLE {temp} (id TEXT NOT NULL)")
                n = conn.execute(f"INSERT INTO {temp}(id) {sql}", args).rowcount
                if n == 0:
                    return []
                text = conn.execute(f"SELECT group_concat(id, ',') FROM (SELECT id FROM {temp} WHERE rowid <= ? "
                                    f"ORDER BY rowid)", (min(n, keep),)).fetchone()[0]
                head = text.split(",")
                if n <= keep:
                    return head   # the ROLLBACK in _snapshot_give drops the temporary table
                fill = _Fill(conn, cid, n, f"SELECT id FROM {temp} ORDER BY rowid", [], drop=temp)
            else:
                n = self._count_sql(conn, org_key, obj, include_deleted, where, params)
                n = max(0, n - offset)
                if limit is not None:
                    n = min(n, limit)
                if n == 0:
                    return []
                sql, args = self._select_sql(org_key, obj, include_deleted, where, params, order, offset,
                                             min(n, keep), ids_only=True)
                # one string from SQLite, split in C: ten times quicker than a Python row per id
                text = conn.execute(f"SELECT group_concat(id, ',') FROM ({sql})", args).fetchone()[0]
                head = text.split(",") if text else []
                if n <= keep:
                    return head
                cid = next(self._spill_n)
                sql, args = self._select_sql(org_key, obj, include_deleted, where, params, order, offset, n,
                                             ids_only=True)
                fill = _Fill(conn, cid, n, sql, args)
            ids = LazyIds(self, cid, n, head, fill)
            fill.target = weakref.ref(ids)
            self._ensure_spill_worker()
            self._spill_jobs.put(fill)
            handed = True
            return ids
        finally:
            if not handed:
                self._snapshot_give(conn)

    def _ensure_spill_worker(self):
        if self._spill_worker is None or not self._spill_worker.is_alive():
            with self._snap_lock:
                if self._spill_worker is None or not self._spill_worker.is_alive():
                    self._spill_worker = threading.Thread(target=self._spill_loop, name="emulator-spill",
                                                          daemon=True)
                    self._spill_worker.start()

    def _spill_loop(self):
        """Fills cursors' tables one after another and drops those of cursors gone."""
        while True:
            self._drop_garbage()
            try:
                job = self._spill_jobs.get(timeout=0.5)
            except queue.Empty:
                if self._closing:
                    return
                continue
            if job is None:
                return
            self._spill_running = job
            try:
                job.run(self)
            finally:
                self._spill_running = None
                self._snapshot_give(job.conn)

    def _drop_garbage(self):
        if not self._spill_garbage:
            return
        db = self.spill_db
        while self._spill_garbage:
            cid = self._spill_garbage.popleft()
            try:
                db.execute(f"DROP TABLE IF EXISTS c{cid}")
            except sqlite3.Error:
                pass

    def close(self):
        self._closing = True
        worker = self._spill_worker
        if worker is not None and worker.is_alive():
            running = self._spill_running
            if running is not None:
                running.conn.interrupt()
            while True:
                try:
                    job = self._spill_jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job.fail(RuntimeError("emulator store closed"))
                    _close_quietly(job.conn)
            self._spill_jobs.put(None)
            worker.join(timeout=10)
        with self._snap_lock:
            idle, self._snapshots[:] = list(self._snapshots), []
        for conn in idle:
            _close_quietly(conn)
        for box in list(self._conns):
            box.close()
        self._conns.clear()

    # -- schema --------------------------------------------------------------------------------
    def catalog(self, org_key: str) -> Catalog:
        return self.catalogs[org_key]

    def save_describe(self, org_key: str, describe: dict):
        c = self.catalogs[org_key]
        c.put(describe)
        with self.write_lock:
            self.db.execute("INSERT OR REPLACE INTO schema(org, name, describe) VALUES (?,?,?)",
                            (org_key, describe["name"].lower(), json.dumps(describe)))

    def view(self, org_key: str, user: User | None, version: str, instance: str = "") -> "OrgView":
        return OrgView(self, org_key, user, version, instance)

    # -- ids -----------------------------------------------------------------------------------
    def _ensure_seq(self, org_key: str, prefix: str, at_least: int):
        with self.write_lock:
            self.db.execute("INSERT INTO seq(org, prefix, n) VALUES (?,?,?) ON CONFLICT(org, prefix) "
                            "DO UPDATE SET n = max(n, excluded.n)", (org_key, prefix, at_least))

    def new_ids(self, org_key: str, prefix: str, count: int = 1) -> list[str]:
        org = self.orgs[org_key]
        with self.write_lock:
            row = self.db.execute("SELECT n FROM seq WHERE org=? AND prefix=?", (org_key, prefix)).fetchone()
            start = row[0] if row else 0
            self.db.execute("INSERT OR REPLACE INTO seq(org, prefix, n) VALUES (?,?,?)",
                            (org_key, prefix, start + count))
        return [idlib.make_id(prefix, org.pod, start + i + 1) for i in range(count)]

    # -- reads ---------------------------------------------------------------------------------
    def get_raw(self, record_id: str) -> tuple | None:
        """(org, object, deleted, record) or None."""
        rid = idlib.normalize(record_id)
        if rid is None:
            return None
        row = self.db.execute("SELECT org, object, deleted, data FROM records WHERE id=?", (rid,)).fetchone()
        if row is None:
            return None
        return row[0], row[1], bool(row[2]), json.loads(row[3])

    def get(self, org_key: str, record_id: str, include_deleted=False) -> dict | None:
        raw = self.get_raw(record_id)
        if raw is None or raw[0] != org_key or (raw[2] and not include_deleted):
            return None
        return raw[3]

    def scan(self, org_key: str, obj: str, include_deleted: bool) -> Iterator[dict]:
        sql = "SELECT data FROM records WHERE org=? AND object=?" + ("" if include_deleted else " AND deleted=0")
        cur = self.db.execute(sql + " ORDER BY rowid", (org_key, obj))
        loads = json.loads
        while True:
            rows = cur.fetchmany(2000)
            if not rows:
                return
            for (data,) in rows:
                yield loads(data)

    @staticmethod
    def _select_sql(org_key: str, obj: str, include_deleted: bool, where: list[str], params: list,
                    order: list[str] | None, offset: int = 0, limit: int | None = None,
                    ids_only: bool = False) -> tuple[str, list]:
        sql = ("SELECT id FROM records" if ids_only else "SELECT id, data FROM records") + \
            " WHERE org=? AND object=?" + ("" if include_deleted else " AND deleted=0")
        for w in where:
            sql += f" AND ({w})"
        order = list(order or [])
        if not any(o.split()[0] == "id" for o in order):  # Id is unique: no tie left to break
            order.append("rowid")
        sql += " ORDER BY " + ", ".join(order)
        args = [org_key, obj, *params]
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            args += [-1 if limit is None else limit, offset]
        return sql, args

    def select(self, org_key: str, obj: str, include_deleted: bool, where: list[str], params: list,
               order: list[str] | None, offset: int = 0, limit: int | None = None, ids_only: bool = False):
        """Ids (or (id, JSON text) rows) of one object filtered and ordered in SQLite; a stream.
        Ties in ``order`` keep insertion order, like ``scan``."""
        sql, args = self._select_sql(org_key, obj, include_deleted, where, params, order, offset, limit, ids_only)
        cur = self.db.execute(sql, args)
        while True:
            rows = cur.fetchmany(5000)
            if not rows:
                return
            if ids_only:
                for (rid,) in rows:
                    yield rid
            else:
                yield from rows

    _LOWER_BOUND = re.compile(r"^modstamp (>=|>) \?$")

    @classmethod
    def _count_sql(cls, db, org_key: str, obj: str, include_deleted: bool, where: list[str], params: list) -> int:
        """COUNT(*) of the rows ``select`` gives. SQLite walks every counted index entry, so the two
        shapes a sync sends are counted from the other side: no WHERE is the kept per-object count,
        and ``SystemModstamp >= t`` (or ``>``) is that count minus the rows before t, when those are
        fewer than half (never more work than counting directly)."""
        live = "" if include_deleted else " AND deleted=0"
        m = cls._LOWER_BOUND.match(where[0]) if len(where) == 1 else None
        if not where or m:
            total = db.execute("SELECT coalesce(sum(n), 0) FROM record_counts WHERE org=? AND object=?" + live,
                               (org_key, obj)).fetchone()[0]
            if not where:
                return total
            below = "<" if m.group(1) == ">=" else "<="
            cap = total // 2 + 1
            before = db.execute(f"SELECT count(*) FROM (SELECT 1 FROM records WHERE org=? AND object=?{live} "
                                f"AND modstamp {below} ? LIMIT ?)", (org_key, obj, *params, cap)).fetchone()[0]
            if before < cap:
                return total - before
        sql = "SELECT count(*) FROM records WHERE org=? AND object=?" + live
        for w in where:
            sql += f" AND ({w})"
        return db.execute(sql, [org_key, obj, *params]).fetchone()[0]

    def pending_fills(self) -> int:
        """Cursors whose ids the spill worker has yet to write (queued or being written)."""
        return self._spill_jobs.qsize() + (self._spill_running is not None)

    def count_where(self, org_key: str, obj: str, include_deleted: bool, where: list[str], params: list) -> int:
        db = self.db
        if db.in_transaction:
            return self._count_sql(db, org_key, obj, include_deleted, where, params)
        db.execute("BEGIN")     # the kept count and the rows subtracted from it: one snapshot
        try:
            return self._count_sql(db, org_key, obj, include_deleted, where, params)
        finally:
            db.execute("COMMIT")

    def get_many(self, org_key: str, record_ids: Iterable[str]) -> dict[str, dict]:
        out = {}
        # 18-character ids go to the index as they are (a bad one simply matches nothing)
        ids = [x if len(x) == 18 else idlib.normalize(x) for x in record_ids if x and len(x) in (15, 18)]
        ids = [i for i in ids if i]
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            # by the Id index alone: adding "org=?" lets SQLite pick the (org, object, ...) index and scan
            q = f"SELECT id, org, data FROM records WHERE id IN ({','.join('?' * len(chunk))})"
            for rid, org, data in self.db.execute(q, chunk):
                if org == org_key:
                    out[rid] = json.loads(data)
        return out

    def records_json(self, org_key: str, record_ids: list[str], fields: list[str], head: str) -> list[str]:
        """Rendered query records as JSON text, built by SQLite from the stored JSON (no Python
        parsing): ``head + Id + '"},' + "F":value,... + '}'`` per id found, in the order given.
        Stored text is written by ``dumps`` (compact, UTF-8), so values come out byte-identical."""
        proj = " || ',' || ".join(f"'\"{f}\":' || coalesce(data -> '$.{f}', 'null')" for f in fields)
        found: dict[str, str] = {}
        for start in range(0, len(record_ids), 900):
            chunk = record_ids[start:start + 900]
            q = f"SELECT id, org, {proj} FROM records WHERE id IN ({','.join('?' * len(chunk))})"
            for rid, org, text in self.db.execute(q, chunk):
                if org == org_key:
                    found[rid] = text
        return [f'{head}{rid}"}},{found[rid]}}}' for rid in record_ids if rid in found]

    def count(self, org_key: str, obj: str, include_deleted=False) -> int:
        sql = "SELECT count(*) FROM records WHERE org=? AND object=?" + ("" if include_deleted else " AND deleted=0")
        return self.db.execute(sql, (org_key, obj)).fetchone()[0]

    def counts(self, org_key: str) -> dict[str, int]:
        return dict(self.db.execute("SELECT object, count(*) FROM records WHERE org=? AND deleted=0 "
                                    "GROUP BY object", (org_key,)).fetchall())

    def updated_ids(self, org_key: str, obj: str, start: str, end: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT id FROM records WHERE org=? AND object=? AND deleted=0 AND modstamp>=? AND modstamp<? "
            "ORDER BY modstamp, rowid", (org_key, obj, start, end))]

    def deleted_records(self, org_key: str, obj: str, start: str, end: str) -> list[tuple[str, str]]:
        return list(self.db.execute(
            "SELECT id, modstamp FROM records WHERE org=? AND object=? AND deleted=1 AND modstamp>=? "
            "AND modstamp<? ORDER BY modstamp, rowid", (org_key, obj, start, end)))

    # -- writes --------------------------------------------------------------------------------
    def _describe(self, org_key: str, obj: str) -> dict:
        d = self.catalogs[org_key].get(obj)
        if d is None:
            raise RecordError(404, "NOT_FOUND", "The requested resource does not exist")
        return d

    def prepare(self, org_key: str, describe: dict, values: dict, *, now: datetime, user_id: str | None,
                record_id: str | None = None, validate: bool = True, existing: dict | None = None) -> dict:
        """Build the stored form of a record being created (existing None) or updated."""
        fields = {f["name"].lower(): f for f in describe["fields"]}
        clean = {}
        for key, value in values.items():
            if key == "attributes":
                continue
            f = fields.get(key.lower())
            if f is None:
                raise RecordError(400, "INVALID_FIELD",
                                  f"No such column '{key}' on sobject of type {describe['name']}")
            if validate:
                allowed = f["updateable"] if existing is not None else f["createable"]
                if not allowed:
                    raise RecordError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                                      f"Unable to create/update fields: {f['name']}. Please check the security "
                                      "settings of this field and verify that it is read/write for your "
                                      "profile or permission set.", [f["name"]])
            clean[f["name"]] = coerce(f, value, validate=validate)
        stamp = sf_datetime(now)
        if existing is None:
            rec = {"Id": record_id}
            for f in describe["fields"]:
                if f["type"] == "boolean":
                    rec[f["name"]] = bool(f.get("defaultValue") or False)
                elif f["type"] == "picklist" and f["picklistValues"] and f["defaultedOnCreate"] is not None:
                    default = next((p["value"] for p in f["picklistValues"] if p["defaultValue"]), None)
                    if default is not None and not f["nillable"]:
                        rec[f["name"]] = default
            rec.update(clean)
            for k in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
                if k.lower() in fields and not rec.get(k):
                    rec[k] = stamp
            for k in ("CreatedById", "LastModifiedById", "OwnerId"):
                if k.lower() in fields and user_id:
                    rec.setdefault(k, user_id)
            rec["IsDeleted"] = False
            if validate:
                missing = [f["name"] for f in describe["fields"]
                           if f["createable"] and not f["nillable"] and not f["defaultedOnCreate"]
                           and f["type"] != "boolean" and rec.get(f["name"]) is None]
                if missing:
                    raise RecordError(400, "REQUIRED_FIELD_MISSING",
                                      f"Required fields are missing: [{', '.join(missing)}]", missing)
        else:
            rec = dict(existing)
            rec.update(clean)
            if "lastmodifieddate" in fields:
                rec["LastModifiedDate"] = stamp
            if "systemmodstamp" in fields:
                rec["SystemModstamp"] = stamp
            if user_id and "lastmodifiedbyid" in fields:
                rec["LastModifiedById"] = user_id
        derive(describe, rec)
        return {k: v for k, v in rec.items() if v is not None}

    def insert(self, org_key: str, obj: str, values: dict, *, record_id: str | None = None,
               user_id: str | None = None, validate: bool = True, now: datetime | None = None) -> str:
        d = self._describe(org_key, obj)
        now = now or self.clock.now()
        user_id = user_id or self.orgs[org_key].users[0].id
        with self.write_lock:
            rid = record_id or self.new_ids(org_key, d["keyPrefix"])[0]
            rec = self.prepare(org_key, d, values, now=now, user_id=user_id, record_id=rid, validate=validate)
            if d["name"] == "CampaignMember":
                self._fill_member(org_key, rec, validate=validate)
            person_contact = None
            if d["name"] == "Account" and rec.get("IsPersonAccount") and not rec.get("PersonContactId"):
                person_contact = self._person_contact(org_key, rec, None, now=now, user_id=user_id)
                rec["PersonContactId"] = person_contact["Id"]
            self.db.execute("INSERT INTO records(id, org, object, modstamp, deleted, data) VALUES (?,?,?,?,0,?)",
                            (rid, org_key, d["name"], rec.get("SystemModstamp", sf_datetime(now)), dumps(rec)))
            if person_contact is not None:
                self.db.execute("INSERT INTO records(id, org, object, modstamp, deleted, data) VALUES (?,?,?,?,0,?)",
                                (person_contact["Id"], org_key, "Contact", person_contact["SystemModstamp"],
                                 dumps(person_contact)))
        return rid

    def _person_contact(self, org_key: str, account: dict, existing: dict | None, *, now: datetime,
                        user_id: str | None) -> dict:
        """The Contact behind a person account, as Salesforce keeps it: created with the account
        (``IsPersonAccount`` true, ``AccountId`` the account) and following its Person* fields."""
        d = self._describe(org_key, "Contact")
        names = {f["name"] for f in d["fields"]}
        values = {c: account.get(a) for a, c in PERSON_ACCOUNT_TO_CONTACT.items() if c in names}
        values["AccountId"] = account["Id"]
        if "IsPersonAccount" in names:
            values["IsPersonAccount"] = True
        if existing is None:
            return self.prepare(org_key, d, values, now=now, user_id=user_id,
                                record_id=self.new_ids(org_key, d["keyPrefix"])[0], validate=False)
        return self.prepare(org_key, d, values, now=now, user_id=user_id, validate=False, existing=existing)

    def bulk_insert(self, org_key: str, obj: str, records: list[dict]) -> list[str]:
        """Insert fully-formed stored records (Id already set) in one transaction: for loaders."""
        d = self._describe(org_key, obj)
        with self.write_lock:
            db = self.db
            db.execute("BEGIN")
            try:
                db.executemany(
                    "INSERT INTO records(id, org, object, modstamp, deleted, data) VALUES (?,?,?,?,?,?)",
                    [(r["Id"], org_key, d["name"], r["SystemModstamp"], 1 if r.get("IsDeleted") else 0,
                      dumps(r)) for r in records])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return [r["Id"] for r in records]

    def _write(self, rec: dict, obj: str):
        self.db.execute("UPDATE records SET data=?, modstamp=?, deleted=? WHERE id=?",
                        (dumps(rec), rec.get("SystemModstamp", ""), 1 if rec.get("IsDeleted") else 0,
                         rec["Id"]))

    def _existing(self, org_key: str, obj: str | None, record_id: str) -> tuple[dict, dict]:
        raw = self.get_raw(record_id)
        if raw is None or raw[0] != org_key or (obj and raw[1].lower() != obj.lower()):
            raise RecordError(404, "NOT_FOUND", "The requested resource does not exist")
        if raw[2]:
            raise RecordError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return self._describe(org_key, raw[1]), raw[3]

    def update(self, org_key: str, obj: str | None, record_id: str, values: dict, *, user_id: str | None = None,
               validate: bool = True, now: datetime | None = None) -> dict:
        with self.write_lock:
            d, existing = self._existing(org_key, obj, record_id)
            if validate and d["name"] == "Lead" and existing.get("IsConverted"):
                raise RecordError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
            rec = self.prepare(org_key, d, values, now=now or self.clock.now(),
                               user_id=user_id or self.orgs[org_key].users[0].id, validate=validate,
                               existing=existing)
            self._write(rec, d["name"])
            if d["name"] in PERSON_OBJECTS:
                self._refresh_members(org_key, d["name"], rec, now or self.clock.now())
            if d["name"] == "Account" and rec.get("IsPersonAccount") and rec.get("PersonContactId"):
                raw = self.get_raw(rec["PersonContactId"])
                if raw is not None and raw[0] == org_key and not raw[2]:
                    contact = self._person_contact(org_key, rec, raw[3], now=now or self.clock.now(),
                                                   user_id=user_id or self.orgs[org_key].users[0].id)
                    self._write(contact, "Contact")
                    self._refresh_members(org_key, "Contact", contact, now or self.clock.now())
        return rec

    def system_touch(self, org_key: str, record_id: str, now: datetime | None = None) -> dict:
        """A system update: SystemModstamp moves, LastModifiedDate stays."""
        with self.write_lock:
            d, rec = self._existing(org_key, None, record_id)
            rec["SystemModstamp"] = sf_datetime(now or self.clock.now())
            self._write(rec, d["name"])
        return rec

    def delete(self, org_key: str, obj: str | None, record_id: str, now: datetime | None = None):
        now = now or self.clock.now()
        with self.write_lock:
            d, rec = self._existing(org_key, obj, record_id)
            if not d.get("deletable", True):
                raise RecordError(400, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")
            rec["IsDeleted"] = True
            rec["SystemModstamp"] = sf_datetime(now)
            self._write(rec, d["name"])
            if d["name"] in PERSON_OBJECTS:
                fld = "LeadId" if d["name"] == "Lead" else "ContactId"
                for member in self._members_of(org_key, fld, rec["Id"]):
                    if not member.get("IsDeleted"):
                        member["IsDeleted"] = True
                        member["SystemModstamp"] = sf_datetime(now)
                        self._write(member, "CampaignMember")

    # -- CampaignMember and Lead conversion ----------------------------------------------------
    def _members_of(self, org_key: str, field: str, person_id: str) -> list[dict]:
        return [json.loads(r[0]) for r in self.db.execute(
            f"SELECT data FROM records WHERE org=? AND object='CampaignMember' "
            f"AND json_extract(data, '$.{field}')=?", (org_key, person_id))]

    def _fill_member(self, org_key: str, rec: dict, validate=True):
        person_id = rec.get("ContactId") or rec.get("LeadId")
        person = self.get(org_key, person_id) if person_id else None
        if validate and rec.get("CampaignId") and self.get(org_key, rec["CampaignId"]) is None:
            raise RecordError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["CampaignId"])
        if validate and person is None:
            raise RecordError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [ContactId, LeadId]",
                              ["ContactId", "LeadId"])
        if person is not None:
            member_copy(rec, person, "Contact" if rec.get("ContactId") else "Lead")

    def _refresh_members(self, org_key: str, obj: str, person: dict, now: datetime):
        fld = "LeadId" if obj == "Lead" else "ContactId"
        for member in self._members_of(org_key, fld, person["Id"]):
            if obj == "Lead" and member.get("ContactId"):
                continue
            member_copy(member, person, obj)
            member["SystemModstamp"] = sf_datetime(now)
            self._write(member, "CampaignMember")

    def convert_lead(self, org_key: str, lead_id: str, *, contact_id: str | None = None,
                     account_id: str | None = None, now: datetime | None = None) -> dict:
        """Convert a Lead: create (or reuse) Account and Contact, mark the Lead, move memberships."""
        now = now or self.clock.now()
        with self.write_lock:
            d, lead = self._existing(org_key, "Lead", lead_id)
            if lead.get("IsConverted"):
                raise RecordError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "Lead is already converted")
            if account_id is None:
                account_id = self.insert(org_key, "Account", {"Name": lead.get("Company") or lead.get("LastName")},
                                         now=now, validate=False)
            if contact_id is None:
                vals = {k: lead.get(k) for k in ("FirstName", "LastName", "Salutation", "Title", "Email", "Phone",
                                                 "MobilePhone", "Fax", "LeadSource", "Description", "DoNotCall",
                                                 "HasOptedOutOfEmail", "HasOptedOutOfFax", "Consent_Status__c",
                                                 "Persona__c")}
                vals.update({"MailingStreet": lead.get("Street"), "MailingCity": lead.get("City"),
                             "MailingState": lead.get("State"), "MailingPostalCode": lead.get("PostalCode"),
                             "MailingCountry": lead.get("Country"), "AccountId": account_id})
                contact_id = self.insert(org_key, "Contact", {k: v for k, v in vals.items() if v is not None},
                                         now=now, validate=False)
            stamp = sf_datetime(now)
            lead.update(IsConverted=True, ConvertedContactId=contact_id, ConvertedAccountId=account_id,
                        ConvertedDate=stamp[:10], Status="Closed - Converted", LastModifiedDate=stamp,
                        SystemModstamp=stamp)
            self._write(lead, "Lead")
            contact = self.get(org_key, contact_id)
            for member in self._members_of(org_key, "LeadId", lead["Id"]):
                member["ContactId"] = contact_id
                member_copy(member, contact, "Contact")
                member["SystemModstamp"] = stamp
                self._write(member, "CampaignMember")
        return {"leadId": lead["Id"], "contactId": contact_id, "accountId": account_id}


def member_copy(member: dict, person: dict, kind: str):
    for k in CM_COPIED:
        src = CONTACT_TO_CM.get(k, k) if kind == "Contact" else k
        v = person.get(src)
        if v is None:
            member.pop(k, None)
        else:
            member[k] = v
    member["LeadOrContactId"] = person["Id"]
    if person.get("OwnerId"):
        member["LeadOrContactOwnerId"] = person["OwnerId"]
    member["Type"] = kind
    company = person.get("Company") if kind == "Lead" else None
    if company:
        member["CompanyOrAccount"] = company
    for b in ("DoNotCall", "HasOptedOutOfEmail", "HasOptedOutOfFax"):
        member.setdefault(b, False)
    member["HasResponded"] = member.get("Status") == "Responded"


def derive(describe: dict, rec: dict):
    """Computed fields: Name of people, compound addresses."""
    names = {f["name"] for f in describe["fields"]}
    if describe["name"] in ("Lead", "Contact", "User") and "Name" in names:
        full = " ".join(x for x in (rec.get("FirstName"), rec.get("LastName")) if x)
        rec["Name"] = full or None
    if describe["name"] == "Account" and "IsPersonAccount" in names:
        # Person Account orgs: an Account with a LastName is a person account, named like a Contact
        if rec.get("LastName"):
            rec["IsPersonAccount"] = True
            rec["Name"] = " ".join(x for x in (rec.get("FirstName"), rec.get("LastName")) if x)
        elif rec.get("IsPersonAccount") is None:
            rec["IsPersonAccount"] = False
    for compound, comps in cat.compound_components(describe).items():
        rec[compound] = cat.address_value(rec, compound, comps)


def coerce(field: dict, value, validate: bool = True):
    """Normalise an API value to the JSON Salesforce renders for the field's type."""
    t = field["type"]
    if value is None or (value == "" and t not in ("boolean",)):
        return None
    try:
        if t == "boolean":
            if isinstance(value, str):
                return value.strip().lower() in ("true", "1", "yes")
            return bool(value)
        if t in ("int", "long"):
            return int(float(value))
        if t in ("double", "currency", "percent"):
            v = float(value)
            return v
        if t == "datetime":
            from .clock import parse_sf_datetime
            return sf_datetime(parse_sf_datetime(str(value)))
        if t == "date":
            s = str(value)
            datetime.strptime(s[:10], "%Y-%m-%d")
            return s[:10]
        if t == "time":
            s = str(value)
            return s if s.endswith("Z") else s + "Z"
        if t == "reference" or t == "id":
            rid = idlib.normalize(str(value))
            if rid is None:
                raise RecordError(400, "MALFORMED_ID", f"{field['label']}: id value of incorrect type: {value}",
                                  [field["name"]])
            return rid
        if t == "email" and validate:
            s = str(value)
            if "@" not in s or s.count("@") != 1 or " " in s.strip() or not s.split("@")[1]:
                raise RecordError(400, "INVALID_EMAIL_ADDRESS", f"{field['label']}: invalid email address: {s}",
                                  [field["name"]])
            return s
        if t == "multipicklist" and isinstance(value, list):
            return ";".join(value)
        return value if isinstance(value, str) else str(value)
    except RecordError:
        raise
    except (TypeError, ValueError):
        raise RecordError(400, "JSON_PARSER_ERROR",
                          f"Cannot deserialize instance of {t} from VALUE_STRING value {value}", [field["name"]])


class SpilledIds:
    """A query's ids in the store's side database: len() and slices, like the list it replaces."""

    def __init__(self, store: Store, cid: int, n: int):
        self.store, self.cid, self.n = store, cid, n
        weakref.finalize(self, store._spill_release, cid)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k):
        if isinstance(k, slice):
            start, stop, step = k.indices(self.n)
            if stop <= start:
                return []
            text = self.store.spill_db.execute(
                f"SELECT group_concat(id, ',') FROM (SELECT id FROM c{self.cid} WHERE rowid>? AND rowid<=? "
                f"ORDER BY rowid)", (start, stop)).fetchone()[0]
            out = text.split(",") if text else []
            return out if step == 1 else out[::step]
        if k < 0:
            k += self.n
        if not 0 <= k < self.n:
            raise IndexError(k)
        return self[k:k + 1][0]

    def __iter__(self):
        for start in range(0, self.n, 10000):
            yield from self[start:start + 10000]

    def __eq__(self, other):
        return list(self) == list(other)

    def __repr__(self):
        return f"<SpilledIds cursor={self.cid} n={self.n}>"


class _Fill:
    """One cursor's table, filled by the spill worker from its snapshot connection (a read
    transaction already open: the count and the head were read in it)."""

    def __init__(self, conn: sqlite3.Connection, cid: int, n: int, sql: str, args: list, drop: str | None = None):
        self.conn, self.cid, self.n, self.sql, self.args = conn, cid, n, sql, args
        self.drop = drop   # a temporary table the ids are copied from, dropped once they are
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.target = None

    def fail(self, error: BaseException):
        self.error = error
        self.done.set()

    def run(self, store: "Store"):
        conn = self.conn
        try:
            if self.target is not None and self.target() is None:   # cursor already gone
                self.fail(RuntimeError("cursor released"))
                return
            conn.execute(f"CREATE TABLE spill.c{self.cid} (id TEXT NOT NULL)")
            cur = conn.execute(f"INSERT INTO spill.c{self.cid}(id) {self.sql}", self.args)
            if cur.rowcount != self.n:
                raise RuntimeError(f"cursor fill wrote {cur.rowcount} ids, counted {self.n}")
            conn.execute("COMMIT")
            if self.drop:
                conn.execute(f"DROP TABLE IF EXISTS {self.drop}")
            self.done.set()
            ids = self.target() if self.target is not None else None
            if ids is not None:
                ids.head = []   # all in the side database now: memory stays bounded by fills in flight
        except BaseException as e:  # noqa: BLE001 - reported to the page that waits for it
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            self.fail(e)


class LazyIds(SpilledIds):
    """A snapshot query's ids: the count and the first ids known at once, the rest readable from
    the side database once the spill worker has filled it (a page past the head waits for that)."""

    def __init__(self, store: Store, cid: int, n: int, head: list[str], fill: _Fill):
        super().__init__(store, cid, n)
        self.head, self.fill = head, fill

    def __getitem__(self, k):
        if isinstance(k, slice):
            start, stop, step = k.indices(self.n)
            head = self.head
            if stop <= len(head) and step == 1:
                return head[start:stop]
            if not self.fill.done.is_set():
                self.fill.done.wait(600)
            if self.fill.error is not None or not self.fill.done.is_set():
                raise RuntimeError(f"query cursor unavailable: {self.fill.error!r}")
            return super().__getitem__(k)
        return super().__getitem__(k)

    def __repr__(self):
        return f"<LazyIds cursor={self.cid} n={self.n} head={len(self.head)} filled={self.fill.done.is_set()}>"


class OrgView:
    """The SOQL engine's DataSource: one org as one user sees it, at one API version."""

    def __init__(self, store: Store, org_key: str, user: User | None, version: str, instance: str = ""):
        self.store, self.org_key, self.user, self.api_version = store, org_key, user, version
        self.instance = instance
        self._cache: dict[str, dict | None] = {}

    @property
    def catalog(self) -> Catalog:
        return self.store.catalogs[self.org_key]

    def _hidden(self, name: str) -> set[str]:
        if self.user is None:
            return set()
        return self.user.hidden_fields.get(name, set())

    def describe(self, name: str) -> dict | None:
        key = (name or "").lower()
        if key in self._cache:
            return self._cache[key]
        d = self.catalog.get(key)
        if d is not None:
            hidden = self._hidden(d["name"])
            if hidden:
                d = {**d, "fields": [f for f in d["fields"] if f["name"] not in hidden]}
            # render() copies (through JSON, in C): the catalog's describe is never handed out
            d = cat.render(d, self.api_version, self.instance, d.get("keyPrefix"))
        self._cache[key] = d
        return d

    def scan(self, name: str, include_deleted: bool) -> Iterator[dict]:
        d = self.catalog.get(name)
        if d is None:
            return iter(())
        hidden = self._hidden(d["name"])
        it = self.store.scan(self.org_key, d["name"], include_deleted)
        if not hidden:
            return it
        return ({k: v for k, v in r.items() if k not in hidden} for r in it)

    # -- what the engine may push down to SQLite (see soql.engine._sql_plan) ---------------------
    SQL_COLUMNS = {"Id": "id", "SystemModstamp": "modstamp", "IsDeleted": "deleted"}
    SQL_FUNCTIONS = ("sf_lower", "sf_like")   # registered on every connection (register_functions)

    def select_ids(self, name: str, include_deleted: bool, where, params, order, offset=0, limit=None):
        return self.store.select(self.org_key, self.catalog.get(name)["name"], include_deleted, where, params,
                                 order, offset, limit, ids_only=True)

    def select_records(self, name: str, include_deleted: bool, where, params, order):
        d = self.catalog.get(name)
        hidden = self._hidden(d["name"])
        loads = json.loads
        rows = self.store.select(self.org_key, d["name"], include_deleted, where, params, order)
        if not hidden:
            return (loads(data) for _, data in rows)
        return ({k: v for k, v in loads(data).items() if k not in hidden} for _, data in rows)

    def snapshot_ids(self, name: str, include_deleted: bool, where, params, order, offset=0, limit=None,
                     keep=10_000):
        return self.store.snapshot_ids(self.org_key, self.catalog.get(name)["name"], include_deleted, where, params,
                                       order, offset, limit, keep)

    def count_where(self, name: str, include_deleted: bool, where, params) -> int:
        return self.store.count_where(self.org_key, self.catalog.get(name)["name"], include_deleted, where, params)

    def records_json(self, name: str, ids: list[str], fields: list[str]) -> list[str] | None:
        """Plain-column query records as JSON text, or None when the dict renderer must do it."""
        d = self.catalog.get(name)
        if d is None or any(not _PLAIN_NAME.match(f) for f in fields) or set(fields) & self._hidden(d["name"]):
            return None
        prefix = self.store.dumps_str(f"/services/data/v{self.api_version}/sobjects/{d['name']}/")[:-1]
        head = '{"attributes":{"type":' + self.store.dumps_str(d["name"]) + ',"url":' + prefix
        return self.store.records_json(self.org_key, [i for i in ids if self.object_for_id(i) == d["name"]],
                                       fields, head)

    def spill_ids(self, ids):
        return self.store.spill_ids(ids)

    def spill_sort(self, rows, order, offset, limit):
        return self.store.spill_sort(rows, order, offset, limit)

    def get_many(self, name: str, ids) -> dict[str, dict]:
        d = self.catalog.get(name)
        recs = self.store.get_many(self.org_key, ids)
        if d is not None:
            recs = {k: v for k, v in recs.items() if self.object_for_id(k) == d["name"]}
            hidden = self._hidden(d["name"])
            if hidden:
                recs = {k: {f: x for f, x in v.items() if f not in hidden} for k, v in recs.items()}
        return recs

    def object_for_id(self, record_id: str) -> str | None:
        if not record_id or len(record_id) < 3:
            return None
        return self.catalog.by_prefix.get(record_id[:3])

"""Wizard fragments and the pool table with 100k participants; the first preview page.

    python bench/bench_web.py [--participants 100000] [--records 10000] [--samples 40]
                              [--db sqlite postgresql] [--pg-url URL] [--redis-url URL]
                              [--only NAME ...] [--sql] [--profile [N]]

Run by hand. A workspace (tests.support.web.make_world) gets ``--participants`` participants,
seeded with one executemany, and a connection to an emulator holding ``--records`` messy
Contacts (bench/data.py). A signed-in researcher who manages imports then GETs, with the Flask
test client and ``HX-Request: true``, each wizard step's fragment of a plan at the preview step,
the pool table fragment (first page, a common and a rare search, a later page), and the preview step (whose first
page of 50 verdicts is a Salesforce query plus the engine run dry against the 100k). Each URL is
requested once to warm it (describe cache, templates), then ``--samples`` times; p50 / p95 / max
are printed with the load average, and, for requests that call Salesforce, the same without the
time spent waiting for Salesforce's answers (the emulator scans its whole store per query; a real
org answers from indexes, so that part is the emulator's, not the app's).

The PostgreSQL run empties the ``public`` schema of its database: give it a database of your own
with ``--pg-url`` (or ``BENCH_PG_URL``); ``--redis-url`` (or ``BENCH_REDIS_URL``) likewise picks the
Redis database the preview's totals job is queued in. ``--only`` keeps the URLs whose name
contains one of the words; ``--sql`` adds the SQL statements a request sends and the time spent
in them; ``--profile`` prints the N functions (default 25) with the most cumulative time over the
samples of each URL (cProfile; the timings above are taken without it).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def seed_participants(workspace_id: int, n: int) -> None:
    from core.extensions import db
    conn = db.engine.raw_connection()
    mark = "?" if db.engine.dialect.name == "sqlite" else "%s"
    sql = ("INSERT INTO participants (workspace_id, first_name, last_name, email, email_key, phone_e164, "
           "phone_key, company, segments, consent_status, attributes, status, created_at, updated_at) "
           f"VALUES ({', '.join([mark] * 14)})")
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    companies = [f"Company {k}" for k in range(200)]
    for start in range(0, n, 20000):
        rows = []
        for i in range(start, min(n, start + 20000)):
            email = f"person.{i}@example.org"
            phone = f"+4420794{i % 100000:05d}" if i % 3 else None
            rows.append((workspace_id, f"First{i % 997}", f"Last{i}", email, email, phone, phone,
                         companies[i % 200], '["B2B"]' if i % 2 else "[]",
                         ("opted_in", "unknown", "opted_out")[i % 3], "{}",
                         "active" if i % 10 else "staged", now, now))
        cur = conn.cursor()
        cur.executemany(sql, rows)
        conn.commit()
    if db.engine.dialect.name == "postgresql":
        # What autovacuum's autoanalyze does within a minute of such a load on a real server: the
        # planner's statistics (without them it plans the first minutes' queries blind).
        conn.cursor().execute("ANALYZE participants")
        conn.commit()
    conn.close()


_SF = {"seconds": 0.0, "calls": 0}
_SQL = {"seconds": 0.0, "statements": 0}


def count_sql_time(engine) -> None:
    """Statements sent and time spent in them (cursor execute to return)."""
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bench_t", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        _SQL["seconds"] += time.perf_counter() - conn.info["bench_t"].pop()
        _SQL["statements"] += 1


def count_salesforce_time() -> None:
    """Time spent waiting on Salesforce (here: the emulator, in a thread of this process)."""
    from salesforce.client import SalesforceClient
    real = SalesforceClient._call

    def _call(self, fn, **kw):
        t = time.perf_counter()
        try:
            return real(self, fn, **kw)
        finally:
            _SF["seconds"] += time.perf_counter() - t
            _SF["calls"] += 1
    SalesforceClient._call = _call


def _p95(values: list[float]) -> float:
    values = sorted(values)
    return values[max(0, int(len(values) * 0.95) - 1)]


def timed(client, url: str, samples: int, htmx: bool = True) -> dict:
    headers = {"HX-Request": "true"} if htmx else {}
    t = time.perf_counter()
    first = client.get(url, headers=headers)
    cold = time.perf_counter() - t
    assert first.status_code == 200, (url, first.status_code, first.get_data(as_text=True)[:500])
    times, own, calls, sql_s, sql_n = [], [], 0, 0.0, 0
    for _ in range(samples):
        sf0, calls0 = _SF["seconds"], _SF["calls"]
        sql0, stmts0 = _SQL["seconds"], _SQL["statements"]
        t = time.perf_counter()
        r = client.get(url, headers=headers)
        r.get_data()
        elapsed = time.perf_counter() - t
        times.append(elapsed)
        own.append(elapsed - (_SF["seconds"] - sf0))
        calls += _SF["calls"] - calls0
        sql_s += _SQL["seconds"] - sql0
        sql_n += _SQL["statements"] - stmts0
        assert r.status_code == 200, (url, r.status_code)
    return {"cold": cold, "p50": statistics.median(times), "p95": _p95(times), "max": max(times),
            "own_p50": statistics.median(own), "own_p95": _p95(own), "sf_calls": calls / samples,
            "bytes": len(first.get_data()), "sql_ms": sql_s * 1000 / samples, "sql_n": sql_n / samples}


def profiled(client, url: str, samples: int, htmx: bool, top: int) -> str:
    """cProfile over ``samples`` requests of ``url``: the ``top`` functions by cumulative time."""
    headers = {"HX-Request": "true"} if htmx else {}
    profile = cProfile.Profile()
    for _ in range(samples):
        profile.enable()
        client.get(url, headers=headers).get_data()
        profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def run(db_url: str, args) -> None:
    import psycopg
    from core import create_app
    from core.extensions import db
    from emulator.testing import EmulatorServer
    from bench.data import fill
    count_salesforce_time()
    if db_url.startswith("postgresql"):
        with psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True) as c:
            c.execute("DROP SCHEMA IF EXISTS public CASCADE")
            c.execute("CREATE SCHEMA public")
    with EmulatorServer(api_limit=10_000_000) as server:
        fill(server, args.records)
        app = create_app("test", {"SQLALCHEMY_DATABASE_URI": db_url, "REDIS_URL": args.redis_url,
                                  "SALESFORCE_CLIENT_ID": server.client_id,
                                  "SALESFORCE_CLIENT_SECRET": server.client_secret,
                                  "SALESFORCE_CA_FILE": server.ca_file, "WTF_CSRF_ENABLED": False})
        with app.app_context():
            db.drop_all()
            db.create_all()
            count_sql_time(db.engine)
            from tests.support.wizard_steps import Wizard
            wiz = Wizard(app, server)
            t = time.perf_counter()
            seed_participants(wiz.workspace.id, args.participants)
            print(f"  seeded {args.participants:,} participants in {time.perf_counter() - t:.1f} s; "
                  f"{args.records:,} Contacts in the emulator")
            plan = wiz.plan(step="schedule", filters={"op": "AND", "items": [
                {"field": "MailingCountry", "operator": "equals", "value": "United Kingdom"}]})
            base = f"/wizard/plans/{plan.id}"
            urls = [("object step", f"{base}/object", True), ("mapping step", f"{base}/mapping", True),
                    ("filters step", f"{base}/filters", True), ("schedule step", f"{base}/schedule", True),
                    ("pool table", "/participants/", True),
                    ("pool table, search", "/participants/?q=person.5", True),
                    ("pool table, search rare", "/participants/?q=Last4242", True),
                    ("pool table, page 50", "/participants/?page=50", True),
                    ("preview (first page)", f"{base}/preview", True),
                    ("preview page (full)", f"{base}/preview", False)]
            if args.only:
                urls = [u for u in urls if any(w in u[0] for w in args.only)]
            for name, url, htmx in urls:
                load = os.getloadavg()[0]
                r = timed(wiz.client, url, args.samples, htmx)
                flag = "" if r["p95"] < (0.5 if "preview" in name else 0.1) else "  <-- over target"
                print(f"  {name:22} p50 {r['p50'] * 1000:7.1f} ms  p95 {r['p95'] * 1000:7.1f} ms  "
                      f"max {r['max'] * 1000:7.1f} ms  cold {r['cold'] * 1000:7.1f} ms  "
                      f"{r['bytes'] / 1024:6.1f} KB  load {load:.1f}{flag}", flush=True)
                if r["sf_calls"]:
                    print(f"  {'':22} without Salesforce's answer time ({r['sf_calls']:.0f} calls a "
                          f"request): p50 {r['own_p50'] * 1000:7.1f} ms  p95 {r['own_p95'] * 1000:7.1f} ms")
                if args.sql:
                    print(f"  {'':22} SQL: {r['sql_n']:.1f} statements, {r['sql_ms']:.1f} ms a request")
                if args.profile:
                    print(profiled(wiz.client, url, args.samples, htmx, args.profile), flush=True)
            db.session.remove()
            db.engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--participants", type=int, default=100_000)
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--db", nargs="+", default=["sqlite", "postgresql"])
    ap.add_argument("--pg-url", default=PG_URL, help="a PostgreSQL database of your own (emptied)")
    ap.add_argument("--redis-url", default=REDIS_URL)
    ap.add_argument("--only", nargs="+", help="only the URLs whose name contains one of these words")
    ap.add_argument("--sql", action="store_true", help="SQL statements and time per request")
    ap.add_argument("--profile", type=int, nargs="?", const=25, default=0,
                    help="cProfile each URL, print the N top functions by cumulative time")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    for name in args.db:
        print(f"== {name}")
        run(f"sqlite:///{tmp}/web.db" if name == "sqlite" else args.pg_url, args)


if __name__ == "__main__":
    main()

"""Import throughput side by side: raw floor, validated floor, naive path, the product.

    python bench/bench_sync.py [--records 10000 100000] [--db sqlite postgresql] [--repeat 3]
                               [--paths raw validated naive product] [--naive-max 100000]
                               [--incremental] [--json out.json]

Run by hand (never in CI). One emulator per record count, filled with the messy Contacts of
bench/data.py, serves every path the same data over HTTPS. Each measured run is a fresh
subprocess on a fresh database (SQLite file, or the PostgreSQL database ``bench`` emptied), so
the figures include nothing left over and the peak resident memory (VmHWM) is the worker's own. Runs of
the different paths are interleaved (raw, validated, naive, product, raw, ...) so a burst of
load from other processes on the machine hits all of them; medians are reported, each with the
1-minute load average seen at its start.

Paths:
  raw        plain ``requests`` over the pages (``nextRecordsUrl``), one ``executemany`` per page
             into ``participants`` (raw values), one transaction a page;
  validated  the same plus ``sync.validate.normalize_email`` / ``normalize_phone`` per record
             (the product's email-validator and phonenumbers calls), normalized values stored;
  naive      simple-salesforce ``query_all``, then per record: validate, look up by email key,
             ``session.merge`` of a Participant (commit every 2,000);
  product    ``services.runs.run_inline`` of a Contact plan (pool action; mapping of
             tests/integration/sync_support.CONTACT_MAPPING), Redis db 14 for the plan lock.
``--incremental`` then changes 1% of the records (email of each) in the emulator and runs the
product again on the database of its last full import: API calls (from the run row) and how many
records were validated (``sync.validate.check_record`` calls) are reported.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
MAPPING = {
    "fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"],
               "phone": ["Phone", "MobilePhone"], "company": ["Account.Name"], "external_id": ["Id"]},
    "country": ["MailingCountry"],
    "consent_rule": {"path": "Consent_Status__c", "opted_in": ["Opted In", "Granted"],
                     "opted_out": ["Opted Out", "Withdrawn"], "opt_out_flags": ["HasOptedOutOfEmail"]},
}
# The fields the product's query selects for MAPPING (printed by the product child as "soql").
FIELDS = ("Id, FirstName, LastName, Email, Phone, MobilePhone, Account.Name, MailingCountry, "
          "Consent_Status__c, HasOptedOutOfEmail, SystemModstamp")
SOQL = f"SELECT {FIELDS} FROM Contact ORDER BY SystemModstamp, Id"
PAGE = 2000
_cpu_at_start = [0.0]


# --- child side ------------------------------------------------------------------------------------

def _rss_mb() -> float:
    """Peak resident memory of this process (VmHWM). Not ru_maxrss: Linux folds the RSS of the
    forking parent (here the emulator, holding the whole org) into the child's ru_maxrss at exec."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _app(db_url: str, emu: dict, reset: bool):
    from core import create_app
    from core.extensions import db
    app = create_app("test", {
        "SQLALCHEMY_DATABASE_URI": db_url, "REDIS_URL": REDIS_URL, "SYNC_LOOKBACK_SECONDS": 300,
        "SALESFORCE_CLIENT_ID": emu["client_id"], "SALESFORCE_CLIENT_SECRET": emu["client_secret"],
        "SALESFORCE_CA_FILE": emu["ca_file"], "WORKER_LOST_AFTER_SECONDS": 180}, worker=True)  # the RQ worker's app, as in a work horse
    ctx = app.app_context()
    ctx.push()
    if reset:
        db.drop_all()
        db.create_all()
    return app


def _workspace():
    from core.extensions import db
    from models import Workspace
    ws = Workspace(name="Bench", default_phone_region="US", timezone="UTC")
    db.session.add(ws)
    db.session.commit()
    return ws


def _session(emu: dict):
    import requests
    s = requests.Session()
    s.trust_env = False
    s.verify = emu["ca_file"]
    s.headers.update({"Authorization": f"Bearer {emu['token']}",
                      "Sforce-Query-Options": f"batchSize={PAGE}"})
    return s


def _pages(emu: dict):
    s = _session(emu)
    res = s.get(emu["url"] + "/services/data/v62.0/query", params={"q": SOQL}).json()
    calls = 1
    while True:
        yield res["records"], calls
        if res["done"]:
            return
        res = s.get(emu["url"] + res["nextRecordsUrl"]).json()
        calls += 1


def _floor(emu: dict, db_url: str, validated: bool) -> dict:
    from core.extensions import db
    from sync.validate import normalize_email, normalize_phone, phone_region
    _app(db_url, emu, reset=True)
    ws = _workspace().id
    rss0 = _rss_mb()
    cpu0 = _cpu()
    conn = db.engine.raw_connection()
    sql = ("INSERT INTO participants (workspace_id, first_name, last_name, email, email_key, phone_raw, "
           "phone_e164, phone_ext, phone_key, company, segments, consent_status, attributes, status, "
           "created_at, updated_at) VALUES (%s)" % ", ".join(["?" if db_url.startswith("sqlite") else "%s"] * 16))
    if validated:
        sql += " ON CONFLICT DO NOTHING"
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    n = calls = 0
    t0 = time.perf_counter()
    for records, calls in _pages(emu):
        rows = []
        for r in records:
            email, phone = r.get("Email"), r.get("Phone") or r.get("MobilePhone")
            account = r.get("Account") or {}
            if validated:
                e = normalize_email(email)
                p = normalize_phone(phone, phone_region(r.get("MailingCountry"), "US"))
                rows.append((ws, r.get("FirstName"), r.get("LastName"), e.email, e.key, phone, p.e164,
                             p.extension, p.key, account.get("Name"), "[]", "unknown", "{}", "active",
                             now, now))
            else:
                rows.append((ws, r.get("FirstName"), r.get("LastName"), email, None, phone, None, None,
                             None, account.get("Name"), "[]", "unknown", "{}", "active", now, now))
        cur = conn.cursor()
        cur.executemany(sql, rows)
        conn.commit()
        n += len(records)
    elapsed = time.perf_counter() - t0
    conn.close()
    return {"records": n, "seconds": elapsed, "api_calls": calls, "rss_start_mb": rss0, "cpu_mark": cpu0}


def _naive(emu: dict, db_url: str) -> dict:
    from simple_salesforce import Salesforce
    from sqlalchemy import select
    from core.extensions import db
    from models import Participant
    from sync.validate import normalize_email, normalize_phone, phone_region
    _app(db_url, emu, reset=True)
    ws = _workspace().id
    rss0 = _rss_mb()
    cpu0 = _cpu()
    t0 = time.perf_counter()
    sf = Salesforce(instance_url=emu["url"], session_id=emu["token"], version="62.0", session=_session(emu))
    records = sf.query_all(SOQL)["records"]
    for i, r in enumerate(records, 1):
        e = normalize_email(r.get("Email"))
        phone = r.get("Phone") or r.get("MobilePhone")
        p = normalize_phone(phone, phone_region(r.get("MailingCountry"), "US"))
        pid = None
        if e.key:
            pid = db.session.execute(select(Participant.id).where(
                Participant.workspace_id == ws, Participant.email_key == e.key)).scalar()
        db.session.merge(Participant(
            id=pid, workspace_id=ws, first_name=r.get("FirstName"), last_name=r.get("LastName"),
            email=e.email, email_key=e.key, phone_raw=phone, phone_e164=p.e164, phone_ext=p.extension,
            phone_key=p.key, company=(r.get("Account") or {}).get("Name"), segments=[], attributes={},
            consent_status="unknown", status="active"))
        if i % PAGE == 0:
            db.session.commit()
    db.session.commit()
    return {"records": len(records), "seconds": time.perf_counter() - t0, "rss_start_mb": rss0,
            "cpu_mark": cpu0}


def _product(emu: dict, db_url: str, reuse: bool) -> dict:
    from core.crypto import cipher
    from core.extensions import db
    from models import ImportPlan, SalesforceConnection
    from services import runs
    from sync import validate
    _app(db_url, emu, reset=not reuse)
    if not reuse:
        ws = _workspace()
        conn = SalesforceConnection(
            workspace_id=ws.id, name="Bench", login_url=emu["url"], instance_url=emu["url"],
            org_id=emu["org_id"], status="connected", access_token_enc=cipher().encrypt(emu["token"]),
            refresh_token_enc=cipher().encrypt(emu["refresh_token"]))
        db.session.add(conn)
        db.session.commit()
        plan = ImportPlan(workspace_id=ws.id, connection_id=conn.id, object_name="Contact",
                          mapping=MAPPING, filters={}, status="active", action="pool", name="Bench")
        db.session.add(plan)
        db.session.commit()
        plan_id = plan.id
    else:
        plan_id = db.session.execute(db.select(ImportPlan.id)).scalar_one()
        conn = db.session.execute(db.select(SalesforceConnection)).scalar_one()
        conn.access_token_enc = cipher().encrypt(emu["token"])
        db.session.commit()
    checked = [0]
    real_check = validate.check_record

    def counting_check(*args, **kwargs):
        checked[0] += 1
        return real_check(*args, **kwargs)
    validate.check_record = counting_check
    rss0 = _rss_mb()
    cpu0 = _cpu()
    profile = os.environ.get("BENCH_PROFILE")  # a file: cProfile stats of the run
    if profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    run = runs.run_inline(plan_id, trigger="bench")
    elapsed = time.perf_counter() - t0
    if profile:
        prof.disable()
        prof.dump_stats(profile)
    counts = {k: getattr(run, k) for k in ("fetched", "imported", "updated", "unchanged", "skipped",
                                           "failed", "excluded", "invited", "left")}
    return {"records": run.fetched, "seconds": elapsed, "status": run.status, "reason": run.reason,
            "api_calls": run.api_calls, "validated": checked[0], "counts": counts, "rss_start_mb": rss0,
            "cpu_mark": cpu0}


def _cpu(who=resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def child(args) -> None:
    emu = json.loads(Path(args.emu).read_text())
    _cpu_at_start[0] = _cpu()
    if args.path in ("raw", "validated"):
        result = _floor(emu, args.db_url, args.path == "validated")
    elif args.path == "naive":
        result = _naive(emu, args.db_url)
    else:
        result = _product(emu, args.db_url, args.reuse)
    result["rss_peak_mb"] = _rss_mb()
    result["cpu_seconds"] = _cpu() - result.pop("cpu_mark", _cpu_at_start[0])
    print("RESULT " + json.dumps(result, default=str), flush=True)


# --- parent side -----------------------------------------------------------------------------------

def _reset_pg() -> None:
    import psycopg
    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as c:
        c.execute("DROP SCHEMA IF EXISTS public CASCADE")
        c.execute("CREATE SCHEMA public")


def _run_child(path: str, db_url: str, emu_file: str, reuse: bool = False, timeout: float = 3600) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "child", path, db_url, emu_file]
    if reuse:
        cmd.append("--reuse")
    load = os.getloadavg()[0]
    server_cpu = _cpu()  # the emulator serves from threads of this process
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONHASHSEED": "0"})
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{path} child failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(line[len("RESULT "):])
    result["load"] = load
    result["emulator_cpu_seconds"] = _cpu() - server_cpu
    result["rate"] = result["records"] / result["seconds"] if result["seconds"] else 0
    return result


def machine() -> dict:
    import platform
    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    pg = "?"
    try:
        import psycopg
        with psycopg.connect(PG_URL.replace("+psycopg", "")) as c:
            pg = c.execute("SHOW server_version").fetchone()[0]
    except Exception:
        pass
    import sqlite3
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem, 1), "python": platform.python_version(),
            "os": platform.platform(), "sqlite": sqlite3.sqlite_version, "postgresql": pg}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        ap = argparse.ArgumentParser()
        ap.add_argument("mode")
        ap.add_argument("path")
        ap.add_argument("db_url")
        ap.add_argument("emu")
        ap.add_argument("--reuse", action="store_true")
        child(ap.parse_args())
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--db", nargs="+", default=["sqlite", "postgresql"])
    ap.add_argument("--paths", nargs="+", default=["raw", "validated", "naive", "product"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--naive-max", type=int, default=100_000, help="skip naive above this many records")
    ap.add_argument("--naive-repeat", type=int, default=1)
    ap.add_argument("--incremental", action="store_true")
    ap.add_argument("--json", help="append every result here, one JSON object a line")
    args = ap.parse_args()

    from emulator.testing import EmulatorServer
    from bench.data import fill
    print("machine:", json.dumps(machine()))
    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    results = []
    for n in args.records:
        with EmulatorServer(api_limit=10_000_000, session_lifetime=24 * 3600) as server:
            t = time.perf_counter()
            fill(server, n)
            print(f"\n== {n:,} messy Contacts loaded in {time.perf_counter() - t:.1f} s")
            token = server.token_for("admin@acme.example")
            emu = {"url": server.url, "ca_file": server.ca_file, "client_id": server.client_id,
                   "client_secret": server.client_secret, "token": token["access_token"],
                   "refresh_token": token.get("refresh_token"),
                   "org_id": server.users["admin@acme.example"]["org_id"]}
            emu_file = tmp / "emu.json"
            emu_file.write_text(json.dumps(emu))
            for dbname in args.db:
                last_product_db = None
                for rep in range(args.repeat):
                    for path in args.paths:
                        if path == "naive" and (n > args.naive_max or rep >= args.naive_repeat):
                            continue
                        if dbname == "sqlite":
                            db_url = f"sqlite:///{tmp}/{path}-{n}-{rep}.db"
                        else:
                            _reset_pg()
                            db_url = PG_URL
                        r = _run_child(path, db_url, str(emu_file))
                        r.update(path=path, db=dbname, n=n, rep=rep)
                        results.append(r)
                        extra = f" calls {r.get('api_calls')}" if "api_calls" in r else ""
                        print(f"{dbname:10} {n:>8,} {path:10} {r['seconds']:7.2f} s {r['rate']:8,.0f} rec/s "
                              f"rss {r['rss_peak_mb']:5.0f} MB (start {r['rss_start_mb']:.0f}) "
                              f"cpu {r['cpu_seconds'] / r['records'] * 1e6:4.0f} us/rec "
                              f"(emulator {r['emulator_cpu_seconds'] / r['records'] * 1e6:3.0f}) "
                              f"load {r['load']:.1f}{extra}", flush=True)
                        if path == "product":
                            if r.get("status") != "succeeded":
                                print("   product run:", r.get("status"), r.get("reason"), r.get("counts"))
                            last_product_db = db_url
                if args.incremental and last_product_db:
                    if dbname == "postgresql" and args.paths[-1] != "product":
                        print("incremental on PostgreSQL needs product as the last path; skipped")
                        continue
                    inc = _incremental(server, n, last_product_db, str(emu_file), dbname, tmp)
                    results.append(inc)
        for path in args.paths:
            for dbname in args.db:
                rates = [r["rate"] for r in results if r["path"] == path and r["db"] == dbname and r["n"] == n]
                if rates:
                    cpu = [r["cpu_seconds"] / r["records"] * 1e6 for r in results
                           if r["path"] == path and r["db"] == dbname and r["n"] == n]
                    print(f"median {dbname:10} {n:>8,} {path:10} worker CPU {statistics.median(cpu):5.0f} us/record")
                    mem = [r["rss_peak_mb"] for r in results if r["path"] == path and r["db"] == dbname and r["n"] == n]
                    print(f"median {dbname:10} {n:>8,} {path:10} {statistics.median(rates):8,.0f} rec/s "
                          f"(runs: {', '.join(f'{x:,.0f}' for x in rates)}) rss max {max(mem):.0f} MB")
    if args.json:
        with open(args.json, "a") as fh:
            for r in results:
                fh.write(json.dumps(r, default=str) + "\n")


def _incremental(server, n: int, db_url: str, emu_file: str, dbname: str, tmp: Path) -> dict:
    """Change 1% of the Contacts (their email), run the product again on the same database."""
    ids = [row[0] for row in server.state.store.db.execute(
        "SELECT id FROM records WHERE object='Contact' ORDER BY id")]
    step = 100
    changed = ids[::step]
    round_ = int(time.time())  # each call a real change, also for the second database
    for k, rid in enumerate(changed):
        server.update("Contact", rid, {"Email": f"changed.{k}.{round_}@example.org"})
    r = _run_child("product", db_url, emu_file, reuse=True)
    r.update(path="incremental", db=dbname, n=n, rep=0, changed=len(changed))
    pages = -(-len(changed) // PAGE)
    print(f"{dbname:10} {n:>8,} incremental: {len(changed)} changed ({pages} page(s)) -> "
          f"{r['api_calls']} API calls, {r['validated']} validated, {r['seconds']:.2f} s, "
          f"counts {r['counts']}, load {r['load']:.1f}", flush=True)
    return r


if __name__ == "__main__":
    main()

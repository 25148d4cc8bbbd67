"""Peak memory of a real ``flask worker`` importing N records: the worker's own entry point.

    BENCH_REDIS_URL=redis://127.0.0.1:6379/7 python bench/bench_worker_memory.py --records 10000 100000
                                       [--db sqlite|postgresql] [--samples 5]

Run by hand (never in CI). For each N: the emulator (HTTPS, in this process) with bench/data.py's
messy Contacts, a fresh database (a SQLite file, or the PostgreSQL database of BENCH_PG_URL,
emptied) with the bench plan of bench_sync.py, a run queued with ``services.runs.request_run``,
then ``python -m flask worker --burst --queues sync --no-scheduler`` as a subprocess: it execs
``python -m jobs.worker``, which forks an RQ work horse for the job. This process samples the
``VmHWM`` (peak resident memory) of the worker and of its horse from /proc while they run
(``--samples`` a second; the horse's peak is monotonic, so the last sample before it exits is
its peak to within the last interval), and prints the worker's start, its horse's peak, the run's
status and counts, and the horse's resident memory (``VmRSS``) at each tenth of the run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_sync import MAPPING, PG_URL, REDIS_URL, _reset_pg  # noqa: E402


def _status(pid: int) -> dict[str, float]:
    found = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    found[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return found


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def _seed(db_url: str, emu: dict) -> int:
    """The bench plan in a fresh database and one queued run (in a child: this process stays
    free of the app, and the worker's database is written by the app's own code)."""
    code = f"""
import json, sys
from core import create_app
from core.crypto import cipher
from core.extensions import db
from models import ImportPlan, SalesforceConnection, Workspace
from services import runs
emu = json.loads(sys.argv[1])
app = create_app("test", {{"SQLALCHEMY_DATABASE_URI": {db_url!r}, "REDIS_URL": {REDIS_URL!r}}})
with app.app_context():
    db.drop_all(); db.create_all()
    ws = Workspace(name="Bench", default_phone_region="US", timezone="UTC"); db.session.add(ws); db.session.commit()
    conn = SalesforceConnection(workspace_id=ws.id, name="Bench", login_url=emu["url"], instance_url=emu["url"],
        org_id=emu["org_id"], status="connected", access_token_enc=cipher().encrypt(emu["token"]),
        refresh_token_enc=cipher().encrypt(emu["refresh_token"]))
    db.session.add(conn); db.session.commit()
    plan = ImportPlan(workspace_id=ws.id, connection_id=conn.id, object_name="Contact", mapping={MAPPING!r},
                      filters={{}}, status="active", action="pool", name="Bench")
    db.session.add(plan); db.session.commit()
    print(runs.request_run(plan, trigger="bench").id)
"""
    out = subprocess.run([sys.executable, "-c", code, json.dumps(emu)], cwd=ROOT, env=_env(db_url, emu),
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def _env(db_url: str, emu: dict) -> dict:
    return {**os.environ, "TERAPAGE_ENV": "test", "TEST_DATABASE_URL": db_url, "TEST_REDIS_URL": REDIS_URL,
            "REDIS_URL": REDIS_URL, "FLASK_APP": "wsgi", "SALESFORCE_CLIENT_ID": emu["client_id"],
            "SALESFORCE_CLIENT_SECRET": emu["client_secret"], "SALESFORCE_CA_FILE": emu["ca_file"],
            "WORKER_LOST_AFTER_SECONDS": "180", "PYTHONUNBUFFERED": "1"}


def _result(db_url: str, emu: dict, run_id: int) -> dict:
    code = f"""
import json
from core import create_app
from core.extensions import db
from models import SyncRun
app = create_app("test", {{"SQLALCHEMY_DATABASE_URI": {db_url!r}}})
with app.app_context():
    run = db.session.get(SyncRun, {run_id})
    print(json.dumps({{k: getattr(run, k) for k in ("status", "reason", "fetched", "imported", "updated",
        "unchanged", "skipped", "failed", "left", "api_calls")}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(db_url, emu), capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(n: int, db_url: str, emu: dict, samples: float) -> dict:
    run_id = _seed(db_url, emu)
    t0 = time.perf_counter()
    worker = subprocess.Popen([sys.executable, "-m", "flask", "worker", "--burst", "--queues", "sync",
                               "--no-scheduler"], cwd=ROOT, env=_env(db_url, emu),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    worker_start = horse_peak = worker_peak = 0.0
    trace: list[tuple[float, float]] = []
    while worker.poll() is None:
        mine = _status(worker.pid)
        worker_peak = max(worker_peak, mine.get("VmHWM", 0.0))
        for pid in _children(worker.pid):
            horse = _status(pid)
            if horse:
                if not trace:
                    worker_start = mine.get("VmRSS", 0.0)
                horse_peak = max(horse_peak, horse.get("VmHWM", 0.0))
                trace.append((time.perf_counter() - t0, horse.get("VmRSS", 0.0)))
        time.sleep(1.0 / samples)
    elapsed = time.perf_counter() - t0
    stderr = worker.stderr.read()
    if worker.returncode != 0:
        raise RuntimeError(f"worker exited {worker.returncode}:\n{stderr[-3000:]}")
    run = _result(db_url, emu, run_id)
    tenths = [trace[min(len(trace) - 1, len(trace) * k // 10)][1] for k in range(1, 11)] if trace else []
    return {"n": n, "db": "sqlite" if db_url.startswith("sqlite") else "postgresql", "seconds": elapsed,
            "worker_rss_at_fork_mb": worker_start, "worker_peak_mb": worker_peak, "horse_peak_mb": horse_peak,
            "horse_rss_by_tenth_mb": [round(x, 1) for x in tenths], "run": run, "samples": len(trace),
            "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--samples", type=float, default=5.0, help="VmHWM samples a second")
    ap.add_argument("--json", help="append each result here, one JSON object a line")
    args = ap.parse_args()
    from bench.data import fill
    from emulator.testing import EmulatorServer
    tmp = Path(tempfile.mkdtemp(prefix="bench-worker-memory-"))
    for n in args.records:
        with EmulatorServer(api_limit=10_000_000, session_lifetime=24 * 3600) as server:
            fill(server, n)
            token = server.token_for("admin@acme.example")
            emu = {"url": server.url, "ca_file": server.ca_file, "client_id": server.client_id,
                   "client_secret": server.client_secret, "token": token["access_token"],
                   "refresh_token": token.get("refresh_token"),
                   "org_id": server.users["admin@acme.example"]["org_id"]}
            if args.db == "sqlite":
                db_url = f"sqlite:///{tmp}/worker-{n}.db"
            else:
                _reset_pg()
                db_url = PG_URL
            r = measure(n, db_url, emu, args.samples)
            print(f"{r['db']:10} {n:>9,} records {r['seconds']:8.1f} s  worker {r['worker_rss_at_fork_mb']:.0f} MB "
                  f"at fork, horse peak {r['horse_peak_mb']:.0f} MB  run {r['run']['status']} "
                  f"fetched {r['run']['fetched']:,} left {r['run']['left']}  load {r['load']:.1f}\n"
                  f"           horse RSS by tenth of the run: {r['horse_rss_by_tenth_mb']}", flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()

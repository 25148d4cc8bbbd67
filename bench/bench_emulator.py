"""Records per second the emulator serves for one big query, its page latency and its memory.

    python bench/bench_emulator.py [--records 100000] [--batch 2000] [--max-pages N] [--samples 40]
                                   [--first-samples 10]
    python bench/bench_emulator.py --records 1000000 --max-pages 50

Run by hand; prints the figures. The emulator runs in a child process (so its peak RSS is
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` once it exits): it loads N Contacts straight into the
store, serves HTTPS, and times every request inside the WSGI app (server-side latency: routing,
SOQL execute, page fetch, render, JSON encoding; not TLS or the socket). This process is the
client: ``query`` + ``query_more`` through simple-salesforce (records/s, client-side latency with
JSON parsing), then raw HTTPS fetches of pages spread over the whole cursor, the same records page
after page over raw HTTPS (records/s without simple-salesforce), then the first page
alone (a new ``query`` each time, once the emulator has finished writing the earlier cursors in the
background) ``--first-samples`` times. Server CPU per request is the request
thread's CPU time (background cursor fills excluded). The last line sums it up: first-page and
next-page latency (server-side), records/s both ways, peak RSS and the 1-minute load average.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.clock import sf_datetime  # noqa: E402

SOQL = ("SELECT Id, FirstName, LastName, Email, Phone, MailingCountry, HasOptedOutOfEmail, SystemModstamp "
        "FROM Contact WHERE SystemModstamp >= 2000-01-01T00:00:00Z ORDER BY SystemModstamp, Id")


def fill(server, n: int, chunk: int = 10000):
    store = server.state.store
    owner = server.users["admin@acme.example"]["user_id"]
    now = server.admin.now()
    stamp = sf_datetime(now)
    for start in range(0, n, chunk):
        ids = store.new_ids("production", "003", min(chunk, n - start))
        rows = []
        for i, rid in enumerate(ids, start):
            rows.append({"Id": rid, "IsDeleted": False, "FirstName": f"First{i}", "LastName": f"Last{i}",
                         "Name": f"First{i} Last{i}", "Email": f"person{i}@example.org",
                         "Phone": f"+1 415-555-{i % 10000:04d}", "HasOptedOutOfEmail": i % 7 == 0,
                         "DoNotCall": False, "HasOptedOutOfFax": False, "IsEmailBounced": False,
                         "MailingCountry": "US", "MailingAddress": {"city": None, "country": "US",
                         "geocodeAccuracy": None, "latitude": None, "longitude": None, "postalCode": None,
                         "state": None, "street": None},
                         "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp,
                         "CreatedById": owner, "LastModifiedById": owner, "OwnerId": owner})
        store.bulk_insert("production", "Contact", rows)


def serve(n: int):
    """Child: fill, serve, report timings on stdin EOF/"quit"."""
    from emulator.testing import EmulatorServer
    server = EmulatorServer().start()
    t = time.perf_counter()
    fill(server, n)
    load_s = time.perf_counter() - t
    timings = []
    app = server._server.app
    inner = app.wsgi_app

    def timed(environ, start_response):
        t0, c0 = time.perf_counter(), time.thread_time()   # each request runs in its own thread
        body = inner(environ, start_response)
        timings.append((environ.get("PATH_INFO", ""), time.perf_counter() - t0, time.thread_time() - c0))
        return body
    app.wsgi_app = timed
    tok = server.token_for()
    print(json.dumps({"url": server.url, "ca": server.ca_file, "token": tok["access_token"],
                      "admin_key": server.admin_key,
                      "instance_url": tok["instance_url"], "load_s": load_s,
                      "rss_mb_after_load": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "store_mb": os.path.getsize(server.state.store.path) / 1e6}), flush=True)
    sys.stdin.readline()
    print(json.dumps({"timings": timings}), flush=True)
    server.stop()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000


def fmt(xs):
    return (f"p50 {pct(xs, 0.5):.1f} ms, p95 {pct(xs, 0.95):.1f} ms, max {max(xs) * 1000:.1f} ms"
            if xs else "n/a")


def idle(session, info, timeout=60.0):
    """Wait until the emulator has written every earlier cursor to its side database, so a first
    page is timed on its own, not racing the background fill of the query before it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = session.get(info["url"] + "/__emulator/state",
                            headers={"X-Emulator-Admin-Key": info["admin_key"]}).json()
        if not state.get("cursor_fills_pending"):
            return
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--max-pages", type=int, default=0, help="simple-salesforce pass: stop after N pages (0: all)")
    ap.add_argument("--samples", type=int, default=40, help="raw HTTPS page fetches spread over the cursor")
    ap.add_argument("--first-samples", type=int, default=10, help="new queries timed for their first page")
    ap.add_argument("--query", action="append", default=[], metavar="SOQL",
                    help="another query whose first page is timed (repeatable), e.g. a LIKE or a sort on a "
                         "string field")
    ap.add_argument("--query-samples", type=int, default=3, help="new queries timed per --query")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.records)

    import requests
    from simple_salesforce import Salesforce
    child = subprocess.Popen([sys.executable, __file__, "--serve", "--records", str(args.records)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
    info = json.loads(child.stdout.readline())
    print(f"loaded {args.records:,} Contacts in {info['load_s']:.1f} s (server RSS after load "
          f"{info['rss_mb_after_load']:.0f} MB, store {info['store_mb']:.0f} MB)")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    http = requests.Session()
    http.trust_env = False
    http.verify = info["ca"]
    sf = Salesforce(instance_url=info["instance_url"], session_id=info["token"], version="62.0", session=http)
    headers = {"Sforce-Query-Options": f"batchSize={args.batch}"}

    t = time.perf_counter()
    first = sf.query(SOQL, headers=headers)
    t_first = time.perf_counter() - t
    assert first["totalSize"] == args.records, first["totalSize"]
    page_times = []
    total = len(first["records"])
    seen = {r["Id"] for r in first["records"]}
    res = first
    while not res["done"] and (not args.max_pages or len(page_times) + 1 < args.max_pages):
        t1 = time.perf_counter()
        res = sf.query_more(res["nextRecordsUrl"], identifier_is_url=True, headers=headers)
        page_times.append(time.perf_counter() - t1)
        total += len(res["records"])
        seen.update(r["Id"] for r in res["records"])
    elapsed = time.perf_counter() - t
    assert len(seen) == total, (len(seen), total)   # no record served twice
    if not args.max_pages:
        assert total == args.records, total
    print(f"first page (parse + execute + render, client-side): {t_first * 1000:.0f} ms")
    print(f"next pages of {args.batch} via simple-salesforce (client-side, with JSON parsing): {fmt(page_times)}")
    print(f"served {total:,} records in {elapsed:.2f} s = {total / elapsed:,.0f} records/s "
          f"(simple-salesforce query + query_more over HTTPS)")

    # raw pages spread over the whole cursor (first, middle, last), no client-side JSON parsing
    raw = requests.Session()
    raw.trust_env = False
    raw.verify = info["ca"]
    raw.headers.update({"Authorization": "Bearer " + info["token"], **headers})
    t = time.perf_counter()
    body = raw.get(info["url"] + "/services/data/v62.0/query", params={"q": SOQL}).json()
    t_first_raw = time.perf_counter() - t
    loc = body["nextRecordsUrl"].rpartition("-")[0]
    pages = max(1, args.records // args.batch)
    starts = sorted({(k * (pages - 1) // max(1, args.samples - 1)) * args.batch for k in range(args.samples)} - {0})
    samples = []
    for s in starts:
        t1 = time.perf_counter()
        r = raw.get(info["url"] + f"{loc}-{s}")
        r.content
        assert r.status_code == 200, r.text[:200]
        samples.append(time.perf_counter() - t1)
    print(f"first page over raw HTTPS: {t_first_raw * 1000:.0f} ms")
    # the same records again, page after page over raw HTTPS (requests + json.loads, no simple-salesforce)
    idle(raw, info)
    t = time.perf_counter()
    body = raw.get(info["url"] + "/services/data/v62.0/query", params={"q": SOQL}).json()
    raw_total, raw_pages = len(body["records"]), 1
    while not body["done"] and (not args.max_pages or raw_pages < args.max_pages):
        body = raw.get(info["url"] + body["nextRecordsUrl"]).json()
        raw_total += len(body["records"])
        raw_pages += 1
    raw_elapsed = time.perf_counter() - t
    print(f"served {raw_total:,} records in {raw_elapsed:.2f} s = {raw_total / raw_elapsed:,.0f} records/s "
          f"(raw HTTPS: requests + json, page after page)")
    print(f"{len(samples)} pages of {args.batch} over raw HTTPS, spread over the cursor (client-side): {fmt(samples)}")
    firsts = []
    for _ in range(args.first_samples):
        idle(raw, info)
        t1 = time.perf_counter()
        r = raw.get(info["url"] + "/services/data/v62.0/query", params={"q": SOQL})
        r.content
        assert r.status_code == 200 and r.json()["totalSize"] == args.records, r.text[:200]
        firsts.append(time.perf_counter() - t1)
    print(f"first page of {len(firsts)} new queries over raw HTTPS (client-side): {fmt(firsts)}")
    extra = []   # (query, client-side seconds, totalSize)
    for q in args.query:
        for _ in range(args.query_samples):
            idle(raw, info, timeout=600)
            t1 = time.perf_counter()
            r = raw.get(info["url"] + "/services/data/v62.0/query", params={"q": q})
            r.content
            assert r.status_code == 200, r.text[:200]
            extra.append((q, time.perf_counter() - t1, r.json()["totalSize"]))
    idle(raw, info, timeout=600)

    child.stdin.write("quit\n")
    child.stdin.flush()
    timings = json.loads(child.stdout.readline())["timings"]
    child.wait(timeout=120)
    # the --query requests come last: time them apart from the sync's query
    query_timings = [t for t in timings if t[0].endswith("/query")]
    split = len(query_timings) - len(extra)
    extra_server = [s for _, s, _ in query_timings[split:]]
    extra_cpu = [c for _, _, c in query_timings[split:]]
    timings = query_timings[:split] + [t for t in timings if not t[0].endswith("/query")]
    queries = [s for p, s, _ in timings if p.endswith("/query")]
    more = [s for p, s, _ in timings if "/query/" in p]
    more_cpu = [c for p, _, c in timings if "/query/" in p]
    query_cpu = [c for p, _, c in timings if p.endswith("/query")]
    print(f"server-side: query (execute + first page) {fmt(queries)} (n={len(queries)}); "
          f"query_more pages {fmt(more)} (n={len(more)})")
    print(f"server CPU (request thread): query {fmt(query_cpu)}; query_more page {fmt(more_cpu)} = "
          f"{statistics.mean(more_cpu) * 1e6 / args.batch:.1f} us/record")
    for q in args.query:
        client = [s for x, s, _ in extra if x == q]
        server_side = [s for (x, _, _), s in zip(extra, extra_server) if x == q]
        cpu = [c for (x, _, _), c in zip(extra, extra_cpu) if x == q]
        sizes = {n for x, _, n in extra if x == q}
        print(f"first page of {q!r} (totalSize {', '.join(map(str, sorted(sizes)))}): server-side "
              f"{fmt(server_side)}; client-side {fmt(client)}; request thread CPU {fmt(cpu)}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"emulator peak RSS {rss:.0f} MB (child process, ru_maxrss); load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"SUMMARY records={args.records:,} first_page_server_p50={pct(queries, 0.5):.0f}ms "
          f"first_page_client_p50={pct(firsts or [t_first_raw], 0.5):.0f}ms "
          f"next_page_server_p50={pct(more, 0.5):.0f}ms next_page_server_p95={pct(more, 0.95):.0f}ms "
          f"records_per_s={total / elapsed:,.0f} raw_records_per_s={raw_total / raw_elapsed:,.0f} peak_rss={rss:.0f}MB "
          f"load1={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

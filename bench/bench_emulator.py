"""Records per second the emulator serves for one big query, through simple-salesforce.

    python bench/bench_emulator.py [--records 100000] [--batch 2000]

Run by hand; prints the figures. Loads N Contacts straight into the store, then times
``query_all_iter`` over HTTPS (parse + execute + every page) and the latency of single pages.
"""
import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.clock import sf_datetime  # noqa: E402
from emulator.testing import EmulatorServer  # noqa: E402


def fill(server: EmulatorServer, n: int):
    store = server.state.store
    owner = server.users["admin@acme.example"]["user_id"]
    now = server.admin.now()
    stamp = sf_datetime(now)
    chunk = 50000
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args()
    soql = ("SELECT Id, FirstName, LastName, Email, Phone, MailingCountry, HasOptedOutOfEmail, SystemModstamp "
            "FROM Contact WHERE SystemModstamp >= 2000-01-01T00:00:00Z ORDER BY SystemModstamp, Id")
    headers = {"Sforce-Query-Options": f"batchSize={args.batch}"}
    with EmulatorServer() as server:
        t = time.perf_counter()
        fill(server, args.records)
        print(f"loaded {args.records:,} Contacts in {time.perf_counter() - t:.1f} s")
        sf = server.salesforce()

        t = time.perf_counter()
        first = sf.query(soql, headers=headers)
        t_first = time.perf_counter() - t
        page_times = []
        total = len(first["records"])
        res = first
        while not res["done"]:
            t1 = time.perf_counter()
            res = sf.query_more(res["nextRecordsUrl"], identifier_is_url=True, headers=headers)
            page_times.append(time.perf_counter() - t1)
            total += len(res["records"])
        elapsed = time.perf_counter() - t
        assert total == args.records, total
        page_times.sort()
        print(f"first page (parse + execute + render): {t_first * 1000:.0f} ms")
        if page_times:
            print(f"next pages of {args.batch}: median {page_times[len(page_times) // 2] * 1000:.1f} ms, "
                  f"p95 {page_times[int(len(page_times) * 0.95)] * 1000:.1f} ms")
        print(f"served {total:,} records in {elapsed:.2f} s = {total / elapsed:,.0f} records/s "
              f"(simple-salesforce query + query_more over HTTPS)")
        # one page as the server serves it: raw HTTPS, no client-side JSON parsing
        raw = server.http_session()
        raw.headers.update({"Authorization": "Bearer " + server.token_for()["access_token"], **headers})
        first = raw.get(server.url + "/services/data/v62.0/query", params={"q": soql}).json()
        url = first["nextRecordsUrl"]
        loc, _, _ = url.rpartition("-")
        samples = []
        for k in range(1, min(20, args.records // args.batch)):
            t1 = time.perf_counter()
            r = raw.get(server.url + f"{loc}-{k * args.batch}")
            r.content
            samples.append(time.perf_counter() - t1)
        samples.sort()
        print(f"one page of {args.batch} over raw HTTPS (server + TLS, no client parsing): "
              f"median {samples[len(samples) // 2] * 1000:.1f} ms, max {samples[-1] * 1000:.1f} ms")
        print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
              f"store {os.path.getsize(server.state.store.path) / 1e6:.0f} MB (+WAL)")


if __name__ == "__main__":
    main()

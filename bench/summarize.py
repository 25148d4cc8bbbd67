"""Markdown tables from the JSON lines of ``bench_sync.py --json FILE``.

    python bench/summarize.py FILE
"""
import json
import statistics
import sys
from collections import defaultdict


def main(path: str) -> None:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    groups = defaultdict(list)
    for r in rows:
        if r["path"] != "incremental":
            groups[(r["n"], r["db"], r["path"])].append(r)
    order = {"raw": 0, "validated": 1, "naive": 2, "product": 3}
    print("| records | database | path | runs | median records/s (each run) | worker CPU µs/record "
          "| emulator CPU µs/record | peak RSS MB | load (1 min) |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---|")
    medians = {}
    for (n, db, path), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], order[kv[0][2]])):
        rates = [r["rate"] for r in rs]
        cpu = statistics.median(r["cpu_seconds"] / r["records"] * 1e6 for r in rs)
        emu = statistics.median(r["emulator_cpu_seconds"] / r["records"] * 1e6 for r in rs)
        medians[(n, db, path)] = (statistics.median(rates), cpu)
        loads = ", ".join(f"{r['load']:.1f}" for r in rs)
        print(f"| {n:,} | {db} | {path} | {len(rs)} | {statistics.median(rates):,.0f} "
              f"({', '.join(f'{x:,.0f}' for x in rates)}) | {cpu:,.0f} | {emu:,.0f} | "
              f"{max(r['rss_peak_mb'] for r in rs):.0f} | {loads} |")
    print()
    print("| records | database | product / validated floor (time) | (CPU) | naive / product (time) | (CPU) |")
    print("|---:|---|---:|---:|---:|---:|")
    for (n, db, path), (rate, cpu) in sorted(medians.items()):
        if path != "product":
            continue
        v = medians.get((n, db, "validated"))
        nv = medians.get((n, db, "naive"))
        vt = f"{v[0] / rate:.2f}×" if v else "–"
        vc = f"{cpu / v[1]:.2f}×" if v else "–"
        nt = f"{rate / nv[0]:.1f}×" if nv else "–"
        nc = f"{nv[1] / cpu:.1f}×" if nv else "–"
        print(f"| {n:,} | {db} | {vt} | {vc} | {nt} | {nc} |")
    inc = [r for r in rows if r["path"] == "incremental"]
    if inc:
        print()
        print("| records | database | changed | fetched | API calls | validated | unchanged | skipped | seconds | load |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in inc:
            c = r["counts"]
            print(f"| {r['n']:,} | {r['db']} | {r['changed']} | {c['fetched']} | {r['api_calls']} | "
                  f"{r['validated']} | {c['unchanged']} | {c['skipped']} | {r['seconds']:.2f} | {r['load']:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1])

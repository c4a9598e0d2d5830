"""How fast and how lean the Prometheus collector pulls weeks of history.

Backfills 6 weeks at a 30 s scrape for every variant of the shipped plan into Debian's
prometheus (127.0.0.1, its own config and storage), then for 1, 3 and 6 weeks of history:

* raw: the same range queries, same chunks, fetched with httpx, bodies discarded;
* collector: ``PrometheusCollector.collect`` into a fresh SQLite store.

Each run is its own process, so its peak RSS is its own.  Goal: the collector within
1.5x of the raw HTTP time, and its memory flat in the length of history.

    python benchmarks/prometheus_bench.py [--weeks 6] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

END = datetime(2026, 11, 20, tzinfo=UTC)


def fleet(plan):  # type: ignore[no-untyped-def]
    from tests.support.fleet import FleetVariant, Pod

    jobs = [("nanopore-monolith", "status_code", 40.0)] + [
        (s.prometheus.selector.split('"')[1], "status", 8.0) for s in plan.services]
    return [FleetVariant(job, (Pod(f"{job}-0:8000", rps, 0.01, 200, 0.2),), status_label=label)
            for job, label, rps in jobs]


def shipped_plan(url: str):  # type: ignore[no-untyped-def]
    from slo.plan import PrometheusSource, Sources
    from slo.planfile import parse_plan

    plan = parse_plan((ROOT / "plans" / "nanopore.yaml").read_text())
    src = PrometheusSource(url=url, step=timedelta(seconds=30), timeout=timedelta(seconds=120))
    return plan.model_copy(update={"sources": Sources(prometheus=src)})


def run_raw(url: str, weeks: float) -> dict[str, float]:
    import httpx

    from collectors.prometheus import PrometheusCollector, chunk_ranges
    from store.db import make_engine

    plan = shipped_plan(url)
    c = PrometheusCollector(plan=plan, engine=make_engine("sqlite://"))
    start = END - timedelta(weeks=weeks)
    t = time.perf_counter()
    n = 0
    with httpx.Client(base_url=url + "/", timeout=120) as http:
        for target in c.targets:
            for lo, hi in chunk_ranges(start, END, step=c.step):
                for q in target.queries:
                    r = http.post("api/v1/query_range", data={
                        "query": q.expr, "start": f"{lo.timestamp():.3f}",
                        "end": f"{hi.timestamp():.3f}", "step": str(c.step)})
                    r.raise_for_status()
                    n += len(r.content)
    return {"seconds": time.perf_counter() - t, "bytes": n}


def run_collector(url: str, weeks: float, db: str) -> dict[str, float]:
    from collectors.prometheus import PrometheusCollector
    from store.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    c = PrometheusCollector(plan=shipped_plan(url), engine=engine)
    t = time.perf_counter()
    report = c.collect(now=END, start=END - timedelta(weeks=weeks), end=END)
    assert report.ok, report.problems
    return {"seconds": time.perf_counter() - t, "points": report.items}


def peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM).  Not getrusage: Linux carries ru_maxrss
    over fork and exec, so a child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, url: str, weeks: float, db: str) -> None:
    out = run_raw(url, weeks) if kind == "raw" else run_collector(url, weeks, db)
    out["rss_mib"] = peak_rss_mib()
    print(json.dumps(out))


def measure(kind: str, url: str, weeks: float, db: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--url", url,
                           "--weeks", str(weeks), "--db", db],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weeks", type=float, default=6)
    ap.add_argument("--keep", help="a directory to keep (and reuse) the backfilled blocks in")
    ap.add_argument("--child")
    ap.add_argument("--url")
    ap.add_argument("--db")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.url, args.weeks, args.db)
        return

    from tests.support import prom
    from tests.support.fleet import write_fleet

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="prom-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    plan = shipped_plan("http://127.0.0.1:9")
    if not data.exists():
        t = time.perf_counter()
        om = write_fleet(work / "fleet.om", fleet(plan),
                         start=(END - timedelta(weeks=args.weeks)).timestamp(),
                         end=END.timestamp(), scrape=30)
        t1 = time.perf_counter()
        prom.backfill(om, data, max_block_duration="168h")
        om.unlink()
        print(f"backfill: wrote OpenMetrics in {t1 - t:.0f} s, promtool {time.perf_counter() - t1:.0f} s",
              file=sys.stderr)
    server = prom.PromServer(data_dir=data, workdir=work).start(timeout=300)
    try:
        measure("raw", server.url, args.weeks, "")   # warm Prometheus' page cache
        print(f"{'history':>8} {'points':>10} {'raw HTTP s':>11} {'collector s':>12} "
              f"{'ratio':>6} {'raw RSS MiB':>12} {'collector RSS MiB':>18}")
        for weeks in sorted({1.0, 3.0, args.weeks} - {w for w in (3.0,) if w > args.weeks}):
            raw = measure("raw", server.url, weeks, "")
            db = str(work / f"bench-{weeks:g}w.db")
            Path(db).unlink(missing_ok=True)
            col = measure("collector", server.url, weeks, db)
            print(f"{weeks:>7g}w {int(col['points']):>10} {raw['seconds']:>11.1f} "
                  f"{col['seconds']:>12.1f} {col['seconds'] / raw['seconds']:>6.2f} "
                  f"{raw['rss_mib']:>12.0f} {col['rss_mib']:>18.0f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()

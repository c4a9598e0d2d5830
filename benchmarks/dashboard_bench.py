"""How fast the dashboard's overview renders, and how much memory its server holds.

Targets (issue 7): the overview in under 1 s with six weeks of minute evaluations for
every service; the server under 229 MB resident.  Measured against a baseline in the
same run: the same pages on an empty store, and the chart query without downsampling.

    python benchmarks/dashboard_bench.py [--weeks 6] [--every 60] [--no-browser]

For each store it times, in this process, the overview and the service page by AppTest
(cold: caches empty; warm: the median of five runs), then serves the dashboard with
``streamlit run`` (the argv ``cutover dashboard`` uses), loads the overview and every
service page in Debian's chromium (Playwright), and reads the server's VmRSS and VmHWM
from /proc.  Prints one table."""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard import launch  # noqa: E402
from slo.planfile import parse_plan  # noqa: E402
from store import views  # noqa: E402
from store.db import make_engine, session_scope, upgrade  # noqa: E402
from store.evaluations import evaluation_history  # noqa: E402
from tests.dashboard.conftest import dry_run_plan_text  # noqa: E402
from tests.dashboard.seed import seed_store  # noqa: E402
from tests.dashboard.test_browser import CHROMIUM, CHROMIUM_ARGS, free_port, wait_healthy  # noqa: E402

TARGET_SECONDS, TARGET_MB = 1.0, 229.0


@dataclass
class Row:
    store: str
    evaluations: int = 0
    seed_s: float | None = None
    overview_cold_s: float | None = None
    overview_warm_s: float | None = None
    service_cold_s: float | None = None
    browser_overview_s: float | None = None
    browser_overview_again_s: float | None = None
    rss_mb: float | None = None
    peak_rss_mb: float | None = None


def apptest_times(plan_file: Path, db_url: str) -> tuple[float, float, float]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ.update({"CUTOVER_PLAN": str(plan_file), "CUTOVER_DB": db_url,
                       "CUTOVER_DASHBOARD_OPERATOR": "ana@example.org"})
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(launch.APP), default_timeout=60)
    t = time.perf_counter()
    at.run()
    cold = time.perf_counter() - t
    assert not at.exception, [e.value for e in at.exception]
    warm = []
    for _ in range(5):
        t = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - t)
    at.query_params["service"] = "samples"
    at.switch_page("screens/service.py")
    t = time.perf_counter()
    at.run()
    service = time.perf_counter() - t
    assert not at.exception, [e.value for e in at.exception]
    return cold, statistics.median(warm), service


def proc_memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB, as the kernel counts them."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def browser_times(url: str, services: list[str]) -> tuple[float, float]:
    """Seconds until the overview shows its last section: first load, then a reload;
    then every service page at six weeks, every other page and week-4's HTML report
    (not timed) so the server holds what a day of use would make it hold."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1600})
            times = []
            for _ in range(2):
                t = time.perf_counter()
                page.goto(url + "/")
                expect(page.get_by_text("Migration-wide success metrics")).to_be_visible(
                    timeout=60_000)
                times.append(time.perf_counter() - t)
            for service in services:
                page.goto(f"{url}/service?service={service}")
                expect(page.get_by_text("Over time")).to_be_visible(timeout=60_000)
                page.get_by_text("6 weeks", exact=True).click()
                page.wait_for_timeout(500)
            for name, marker in (("decisions", "Download CSV"), ("alerts", "Recent events"),
                                 ("reports", "Build report")):
                page.goto(f"{url}/{name}")
                expect(page.get_by_text(marker).first).to_be_visible(timeout=60_000)
            # a report is built in a child process: the server only holds the bytes
            page.get_by_test_id("stSelectbox").first.click()
            page.get_by_role("option", name="week-4: Sample management service").click()
            page.get_by_role("button", name="Build report").click()
            expect(page.get_by_role("button", name="Download week-4.html")).to_be_visible(
                timeout=120_000)
        finally:
            browser.close()
    return times[0], times[1]


def cold_command(port: int, plan_file: Path, db_url: str) -> list[str]:
    """The baseline: the same server started as ``streamlit run`` itself, so the first
    visit imports the pages' modules (dashboard.serve imports them before listening)."""
    argv = launch.command(port, str(plan_file), db_url)
    assert argv[1] == str(launch.SERVE), argv
    return [argv[0], "-m", "streamlit", *argv[2:]]


def serve_and_measure(row: Row, plan_file: Path, db_url: str, services: list[str],
                      logdir: Path, *, warm: bool = True) -> None:
    port = free_port()
    env = launch.environment(str(plan_file), db_url)
    env["CUTOVER_DASHBOARD_OPERATOR"] = "ana@example.org"
    argv = (launch.command(port, str(plan_file), db_url) if warm
            else cold_command(port, plan_file, db_url))
    proc = subprocess.Popen(argv, env=env,
                            stdout=(logdir / f"streamlit-{port}.log").open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        row.browser_overview_s, row.browser_overview_again_s = browser_times(
            f"http://127.0.0.1:{port}", services)
        row.rss_mb, row.peak_rss_mb = proc_memory(proc.pid)
    finally:
        proc.terminate()
        proc.wait(15)


def query_baseline(db_url: str, service: str) -> tuple[float, int, float, int]:
    """The chart's query: every evaluation (the naive way) vs downsampled in SQL."""
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        t = time.perf_counter()
        full = evaluation_history(session=s, service=service)
        naive = time.perf_counter() - t
        t = time.perf_counter()
        points = views.evaluation_series(session=s, service=service, max_points=600)
        sampled = time.perf_counter() - t
    engine.dispose()
    return naive, len(full), sampled, len(points)


def fmt(v: float | None, unit: str = "") -> str:
    return "-" if v is None else f"{v:.2f}{unit}"


def print_table(rows: list[Row], query: tuple[float, int, float, int] | None) -> None:
    head = ("store", "evaluations", "seed", "overview cold", "overview warm",
            "service cold", "browser 1st load", "browser reload", "RSS MiB", "peak RSS MiB")
    lines = [head] + [(r.store, str(r.evaluations), fmt(r.seed_s, " s"),
                       fmt(r.overview_cold_s, " s"), fmt(r.overview_warm_s, " s"),
                       fmt(r.service_cold_s, " s"), fmt(r.browser_overview_s, " s"),
                       fmt(r.browser_overview_again_s, " s"), fmt(r.rss_mb), fmt(r.peak_rss_mb))
                      for r in rows]
    lines.append(("target", "", "", f"< {TARGET_SECONDS:g} s", f"< {TARGET_SECONDS:g} s", "",
                  "", "", f"< {TARGET_MB:g}", f"< {TARGET_MB:g}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for n, line in enumerate(lines):
        print(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))
        if n == 0:
            print("-+-".join("-" * w for w in widths))
    if query:
        naive, n_full, sampled, n_points = query
        print(f"\nchart query, samples, six weeks: every row {naive:.3f} s ({n_full} rows) vs "
              f"downsampled in SQL {sampled:.3f} s ({n_points} points)")
    print("\n(AppTest times: the app's script run in this process, cold = caches empty. "
          "Browser times: until the overview's last section shows in Chromium; the first "
          "load includes fetching Streamlit's JavaScript. 'streamlit run': the baseline "
          "server, which imports the pages' modules at the first visit, where cutover's "
          "imports them before it listens. RSS: the streamlit server after "
          "the overview, every service page at six weeks, the other pages and one HTML "
          "report.)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weeks", type=float, default=6)
    ap.add_argument("--every", type=float, default=60, help="seconds between evaluations")
    ap.add_argument("--no-browser", action="store_true", help="skip the served measurements")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        tmpdir = Path(tmp)
        plan_file = tmpdir / "plan.yaml"
        plan_file.write_text(dry_run_plan_text())
        plan = parse_plan(plan_file.read_text(), source=str(plan_file))
        services = [s.name for s in plan.services]
        rows, query = [], None
        for name, weeks in (("empty", 0.0), (f"{args.weeks:g} weeks", args.weeks)):
            db_url = f"sqlite:///{tmpdir / (name.replace(' ', '-') + '.db')}"
            engine = make_engine(db_url)
            upgrade(engine)
            row = Row(store=name)
            if weeks:
                t = time.perf_counter()
                seeded = seed_store(engine, plan, now=datetime.now(UTC) - timedelta(seconds=5),
                                    history=timedelta(weeks=weeks),
                                    every=timedelta(seconds=args.every), every_service=True)
                row.seed_s, row.evaluations = time.perf_counter() - t, seeded.evaluations
                query = query_baseline(db_url, "samples")
            engine.dispose()
            row.overview_cold_s, row.overview_warm_s, row.service_cold_s = apptest_times(
                plan_file, db_url)
            if not args.no_browser:
                serve_and_measure(row, plan_file, db_url, services, tmpdir)
                if weeks:  # the baseline, in the same run: no imports before listening
                    cold = Row(store=f"{name}, streamlit run", evaluations=row.evaluations)
                    serve_and_measure(cold, plan_file, db_url, services, tmpdir, warm=False)
                    rows.append(cold)
            rows.append(row)
        print_table(rows, query)
    return 0


if __name__ == "__main__":
    sys.exit(main())

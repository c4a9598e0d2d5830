"""The backtest over the demo's history as it is: wall time, time per look, memory.

    python benchmarks/backtest_bench.py [--every 30m] [--inference fixed anytime]
                                        [--read fresh incremental]

Seeds the demo's store (SQLite in a temporary folder: the demo's own history, eight days
of auth and files moving through their steps, the minutes the judge reads), then replays
the judge over all of it with the steps from the stored decisions, once per inference,
without storing anything, the way ``cutover backtest --from ... --to ... --every ...``
does, and each way of reading the store in the same run: ``fresh`` reads every window
whole at every look (``store.figures.variant_figures``, what the worker does), and
``incremental`` reads each stored minute once (``store.replay.ReplayFigures``, what the
backtest does).  Prints a table: looks (service x time), wall time, seconds per look,
rows read from the store, peak memory.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cutover.demo import DemoPaths, prepare
from rollout.backtest import backtest, steps_from
from rollout.evaluation import FiguresFn
from slo.figures import Figures
from slo.units import parse_duration
from store.figures import variant_figures
from store.replay import ReplayFigures

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class _Counted:
    """A figures function that counts the windows it is asked for."""

    def __init__(self, fn: FiguresFn) -> None:
        self.fn, self.windows = fn, 0

    def __call__(self, **kw: Any) -> Figures:
        self.windows += 1
        return self.fn(**kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", default="30m", help="time between looks (default 30m)")
    ap.add_argument("--inference", nargs="+", default=["fixed", "anytime"],
                    choices=("fixed", "anytime"))
    # incremental first: the process's peak memory only grows
    ap.add_argument("--read", nargs="+", default=["incremental", "fresh"],
                    choices=("fresh", "incremental"))
    args = ap.parse_args()
    every = parse_duration(args.every)
    with tempfile.TemporaryDirectory() as tmp:
        paths = DemoPaths(Path(tmp))
        started = time.perf_counter()
        demo = prepare(source_plan=ROOT / "plans" / "nanopore.yaml", paths=paths,
                       db_url=paths.db_url, now=NOW)
        seeded = time.perf_counter() - started
        start, end = demo.history.start, demo.history.end
        print(f"demo history {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC "
              f"({(end - start) / timedelta(days=1):.1f} days), seeded in {seeded:.0f} s\n")
        print("| inference | read | every | looks | wall time | per look | windows | "
              "rows read | peak memory |")
        print("|---|---|---|---|---|---|---|---|---|")
        for inference in args.inference:
            plan = demo.plan.model_copy(update={"defaults": demo.plan.defaults.model_copy(
                update={"inference": inference})})
            steps = steps_from("decisions", engine=demo.engine, plan=plan, start=start, end=end)
            for read in args.read:
                replay = ReplayFigures() if read == "incremental" else None
                counted = _Counted(replay or variant_figures)
                t0 = time.perf_counter()
                looks = sum(1 for _ in backtest(engine=demo.engine, plan=plan, start=start,
                                                end=end, every=every, steps=steps,
                                                figures_fn=counted))
                wall = time.perf_counter() - t0
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                rows = f"{replay.rows_read:,}" if replay else "every window whole"
                print(f"| {inference} | {read} | {args.every} | {looks:,} | {wall:.0f} s | "
                      f"{wall / max(looks, 1):.3f} s | {counted.windows:,} | {rows} | "
                      f"{peak:.0f} MiB (process peak) |")
        demo.engine.dispose()


if __name__ == "__main__":
    main()

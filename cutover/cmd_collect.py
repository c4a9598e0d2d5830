"""``cutover collect [--once] [--from T] [--to T]``: pull every source of the plan.

One line per collector report.  With ``--once`` (or a ``--to``), one pass and exit: 0
when every source answered, 1 when one failed.  Without it, a pass every plan
``interval`` until interrupted; a failed source is retried next pass.  A progress bar
goes to stderr on long backfills when stderr is a terminal (or ``CUTOVER_PROGRESS=1``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from collectors.base import Collector, CollectReport
from collectors.registry import build_collectors
from cutover.context import Context
from slo.errors import ConfigError, CutoverError

__all__ = ["collect", "run_pass"]

log = logging.getLogger(__name__)


def collect(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    start = ctx.time(args.start) if args.start else None
    end = ctx.time(args.end) if args.end else None
    if start is not None and end is not None and start >= end:
        raise ConfigError(f"--from {start.isoformat()} is not before --to {end.isoformat()}")
    collectors = build_collectors(ctx.plan, ctx.ready_engine())
    if not collectors:
        raise ConfigError("the plan names no sources (sources.prometheus, sources.logs)")
    _attach_progress(collectors, sys.stderr)
    if args.once or end is not None:
        reports = run_pass(collectors, now=ctx.now, start=start, end=end)
        return 0 if all(r.ok for r in reports) else 1
    return _loop(collectors, interval=ctx.plan.interval.total_seconds(), start=start)


def run_pass(collectors: Sequence[Collector], *, now: datetime, start: datetime | None = None,
             end: datetime | None = None, out: TextIO | None = None) -> list[CollectReport]:
    """One pass of every collector; a collector that raises is reported as failed, the
    others still run."""
    reports = []
    for c in collectors:
        try:
            report = c.collect(now=now, start=start, end=end)
        except CutoverError as e:
            report = CollectReport(source=c.name, ok=False, problems=[str(e)])
        except Exception as e:  # one collector's bug must not stop the others, nor the loop
            log.exception("collector %s failed", c.name)
            report = CollectReport(source=c.name, ok=False,
                                   problems=[f"unexpected {type(e).__name__}: {e}"])
        print(report.line(), file=out or sys.stdout, flush=True)
        reports.append(report)
    return reports


def _loop(collectors: Sequence[Collector], *, interval: float, start: datetime | None) -> int:
    """A pass every ``interval``; ``--from`` applies to the first pass only."""
    while True:
        began = time.monotonic()
        run_pass(collectors, now=datetime.now(UTC), start=start)
        start = None
        time.sleep(max(0.0, interval - (time.monotonic() - began)))


def _attach_progress(collectors: Sequence[Collector], stream: TextIO) -> None:
    wanted = os.environ.get("CUTOVER_PROGRESS")
    if wanted == "0" or not (wanted == "1" or stream.isatty()):
        return
    for c in collectors:
        if hasattr(c, "progress"):
            setattr(c, "progress", progress_bar(c.name, stream))  # noqa: B010


def progress_bar(label: str, stream: TextIO, width: int = 30) -> Callable[[int, int], None]:
    """A one-line bar redrawn in place; only drawn for work of more than one chunk."""
    def draw(done: int, total: int) -> None:
        if total <= 1:
            return
        filled = int(width * done / total)
        stream.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            stream.write("\n")
        stream.flush()
    return draw

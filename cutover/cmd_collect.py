"""``cutover collect [--once] [--from T] [--to T]``: pull every source of the plan.

One line per collector report.  With ``--once`` (or a ``--to``), one pass and exit: 0
when every source answered, 1 when one failed.  Without it, a pass every plan
``interval`` until interrupted; a failed source is retried next pass.  A progress bar
goes to stderr on long backfills when stderr is a terminal (or ``CUTOVER_PROGRESS=1``).

Collection holds the worker's lease (:class:`store.lease.Lease`, name ``worker``) while
it runs: two collectors reading the same log from the same checkpoint would count each
line twice.  ``--once`` beside a running worker exits 1 saying so (the worker collects
every round already); the loop skips the passes while a worker leads."""

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
from store.lease import Lease

__all__ = ["WORKER_LEADS", "collect", "run_pass"]

log = logging.getLogger(__name__)

WORKER_LEADS = ("cutover: a worker holds this store's lease and collects every round "
                "already; a second collector would count each log line twice. Stop the "
                "worker to backfill (it carries on from the checkpoints), or let it collect")


def collect(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    start = ctx.time(args.start) if args.start else None
    end = ctx.time(args.end) if args.end else None
    if start is not None and end is not None and start >= end:
        raise ConfigError(f"--from {start.isoformat()} is not before --to {end.isoformat()}")
    engine = ctx.ready_engine()
    collectors = build_collectors(ctx.plan, engine)
    if not collectors:
        raise ConfigError("the plan names no sources (sources.prometheus, sources.logs)")
    _attach_progress(collectors, sys.stderr)
    with Lease(engine, name="worker", holder=f"collect:{os.getpid()}") as lease:
        if args.once or end is not None:
            if not lease.acquire():
                print(WORKER_LEADS, file=sys.stderr)
                return 1
            reports = run_pass(collectors, now=ctx.now, start=start, end=end)
            return 0 if all(r.ok for r in reports) else 1
        return _loop(collectors, interval=ctx.plan.interval.total_seconds(), start=start,
                     lease=lease)


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


def _loop(collectors: Sequence[Collector], *, interval: float, start: datetime | None,
          lease: Lease) -> int:
    """A pass every ``interval`` while this process holds the lease (``--from`` applies to
    the first pass it makes); a pass a worker leads is skipped, said once."""
    told = False
    while True:
        began = time.monotonic()
        if lease.acquire():
            run_pass(collectors, now=datetime.now(UTC), start=start)
            start, told = None, False
        elif not told:
            print(WORKER_LEADS.removeprefix("cutover: ") + "; waiting for it to stop",
                  file=sys.stderr)
            told = True
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

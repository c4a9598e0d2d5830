"""``cutover report --phase ID --format html|pdf|md|csv|json -o FILE``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from cutover.context import Context
from reports import build_report, render
from slo.errors import ConfigError


def report(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    plan = ctx.plan
    if args.phase not in {p.id for p in plan.phases}:
        raise ConfigError(f"no phase {args.phase!r} in the plan; expected one of "
                          f"{', '.join(p.id for p in plan.phases)}")
    at = ctx.time(args.at)
    data = render(build_report(engine=ctx.ready_engine(), plan=plan, phase_id=args.phase, at=at),
                  args.format)
    _write_atomically(Path(args.output), data)
    print(f"wrote {args.format} report of {args.phase} as of {at.isoformat()} to {args.output} "
          f"({len(data):,} bytes)", file=sys.stderr)
    return 0


def _write_atomically(path: Path, data: bytes) -> None:
    """A half-written report never replaces a good one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

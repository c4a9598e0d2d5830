"""``cutover alerts test``: a test message to every channel, one line per channel."""

from __future__ import annotations

import argparse
import sys

from alerts.outbox import send_test
from cutover.context import Context


def test(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    channels = ctx.plan.alerts.channels
    if not channels:
        print("no alert channels in the plan (alerts.channels)", file=sys.stderr)
        return 1
    results = send_test(plan=ctx.plan, now=ctx.now)
    width = max(len(r.channel) for r in results)
    for r in results:
        mark = "ok  " if r.ok else "FAIL"
        print(f"{mark} {r.channel:<{width}} ({r.kind}, {r.target}): {r.detail}")
    return 0 if all(r.ok for r in results) else 1

"""``cutover backtest --from T --to T --every D [--service S] [--steps decisions|observed|FILE]
[--json] [--store]``: the judge replayed over the store's history."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from cutover.context import Context
from rollout.backtest import Summary, steps_from, summarise
from rollout.backtest import backtest as run_backtest
from slo.errors import ConfigError
from slo.units import parse_duration
from slo.verdict import Evaluation

__all__ = ["backtest", "render_summary"]


def backtest(args: argparse.Namespace) -> int:
    """Exit 0 once every time was judged; bad times, durations or step files are a
    ConfigError (exit 2).  ``--json`` prints the contract's ``{"results": [...]}``, each
    entry shaped as evaluate's with ``at``; otherwise one line a look, then a summary."""
    ctx = Context.from_args(args)
    start, end = ctx.time(args.start), ctx.time(args.end)
    try:
        every = parse_duration(args.every)
    except ValueError as err:
        raise ConfigError(f"--every: {err}") from None
    engine = ctx.ready_engine()
    steps = steps_from(args.steps, engine=engine, plan=ctx.plan, start=start, end=end)
    results = run_backtest(engine=engine, plan=ctx.plan, start=start, end=end, every=every,
                           steps=steps, service=args.service, store=args.store,
                           plan_hash=ctx.plan_hash)
    seen: list[Evaluation] = []
    if args.json:
        print(json.dumps({"results": [_entry(e) for e in results]}, indent=2))
        return 0
    for ev in results:
        seen.append(ev)
        why = ev.reasons[0] if ev.reasons else ""
        print(f"{_iso(ev.at)}  {ev.service:<10} {ev.weight:>3} %  "
              f"{ev.verdict.value.upper():<12} {why}")
        sys.stdout.flush()
    print(render_summary(summarise(seen, ctx.plan)))
    return 0


def _entry(e: Evaluation) -> dict[str, object]:
    c = e.contract()
    return {"service": c["service"], "at": _iso(e.at), "weight": c["weight"],
            "step_since": c["step_since"], "verdict": c["verdict"], "reasons": c["reasons"],
            "figures": c["figures"], "checks": c["checks"], "phase": c["phase"]}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def render_summary(summaries: list[Summary]) -> str:
    if not summaries:
        return "\nno service to judge in that time"
    lines = ["", "summary"]
    for s in summaries:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(s.verdicts.items()))
        first = _iso(s.first_fail) if s.first_fail else "none"
        reverts = ", ".join(_iso(t) for t in s.reverts) or "none"
        lines.append(f"  {s.service}: {counts}; first fail {first}; would have reverted at "
                     f"{reverts}; fails a later pass contradicted {s.contradicted}")
    return "\n".join(lines)

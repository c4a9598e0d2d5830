"""``cutover evaluate [--service S] [--at T] [--json]``: judge, store, print."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from cutover.context import Context
from rollout.evaluation import evaluate as run_evaluation
from slo.verdict import Evaluation

__all__ = ["evaluate", "render_json", "render_text"]


def evaluate(args: argparse.Namespace) -> int:
    """Exit 0 whenever the services were judged, whatever the verdicts; an unknown
    service or a bad time is a ConfigError (exit 2, mapped by cutover.cli)."""
    ctx = Context.from_args(args)
    at = ctx.time(args.at)
    results = run_evaluation(engine=ctx.ready_engine(), plan=ctx.plan,
                             plan_hash=ctx.plan_hash, at=at, service=args.service)
    evaluations = [e for e, _ in results]
    print(render_json(at, evaluations) if args.json else render_text(at, evaluations))
    return 0


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def render_json(at: datetime, evaluations: list[Evaluation]) -> str:
    """The contract's shape: ``{"at": ..., "results": [...]}``."""
    return json.dumps({"at": _iso(at), "results": [e.contract() for e in evaluations]},
                      indent=2)


def render_text(at: datetime, evaluations: list[Evaluation], *, reasons: int = 2) -> str:
    """One line per service: name, phase, weight, verdict and its first reasons."""
    if not evaluations:
        return f"{_iso(at)}: no service to evaluate (every phase is complete)"
    width = max(len(e.service) for e in evaluations)
    lines = [f"evaluated at {_iso(at)}"]
    for e in evaluations:
        why = "; ".join(e.reasons[:reasons])
        more = f" (+{len(e.reasons) - reasons} more)" if len(e.reasons) > reasons else ""
        lines.append(f"{e.service:<{width}}  {e.phase or '-':<8} {e.weight:>3} %  "
                     f"{e.verdict.value.upper():<12} {why}{more}")
    return "\n".join(lines)

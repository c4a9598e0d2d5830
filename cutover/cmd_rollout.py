"""``cutover status | approve | revert | decisions``: the gate on the command line.

The actor: with a cluster router, who the cluster says the credentials belong to
(SelfSubjectReview; ``--actor`` refused unless the plan's ``router.allow_actor``);
otherwise ``--actor``, else ``CUTOVER_ACTOR``, else the OS user (rollout/identity.py).
The gate checks it against the plan's operators and records where it came from.  A refusal (GateError), a conflict or a router failure
exits 1 with one line on stderr (cutover.cli maps the exception)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from cutover.context import Context
from rollout import gate, rollback
from rollout.identity import Identity, cli_identity
from rollout.routers import TrafficRouter, build_router
from rollout.routers.kube import kube_api_client
from rollout.state import DecisionOutcome, DecisionRecord, ServiceStatus, iso
from slo.errors import ConfigError
from slo.plan import Plan
from slo.units import parse_duration

__all__ = ["approve", "decisions", "revert", "status"]


def _wire(args: argparse.Namespace) -> tuple[Context, Plan, Engine, TrafficRouter]:
    ctx = Context.from_args(args)
    plan = ctx.plan
    engine = ctx.ready_engine()
    return ctx, plan, engine, build_router(plan, engine)


def _actor(plan: Plan, given: str | None) -> Identity:
    return cli_identity(plan, flag=given, api_client=lambda: kube_api_client(plan))


def status(args: argparse.Namespace) -> int:
    ctx, plan, engine, router = _wire(args)
    # status settles what a crash left pending first: it is what an operator runs after
    # an incident.  reconcile only touches decisions whose move lease is free (their
    # process is gone), never one another process is applying.
    gate.reconcile(engine=engine, plan=plan, router=router, now=ctx.now)
    rows = gate.service_status(engine=engine, plan=plan, router=router, now=ctx.now)
    if args.json:
        print(json.dumps({"services": [r.contract() for r in rows]}, indent=2))
    else:
        print(_table(["SERVICE", "PHASE", "WEIGHT", "ROUTER", "NEXT", "STATE", "VERDICT",
                      "WHY"], [_status_row(r) for r in rows]))
    return 0


def approve(args: argparse.Namespace) -> int:
    ctx, plan, engine, router = _wire(args)
    who = _actor(plan, args.actor)
    out = gate.approve(engine=engine, plan=plan, router=router, service=args.service,
                       actor=who.name, actor_source=who.source, reason=args.reason,
                       override=args.override, now=ctx.now, from_weight=args.from_weight)
    print(_outcome_line(out))
    return 0


def revert(args: argparse.Namespace) -> int:
    if args.all == bool(args.service):
        raise ConfigError("revert: give a service, or --all for every service (not both)")
    if args.scale_baseline and not args.all:
        raise ConfigError("revert: --scale-baseline goes with --all")
    if args.all and args.from_weight is not None:
        raise ConfigError("revert --all: --from-weight is for one service's one-step revert")
    ctx, plan, engine, router = _wire(args)
    who = _actor(plan, args.actor)
    if not args.all:
        out = gate.revert(engine=engine, plan=plan, router=router, service=args.service,
                          actor=who.name, actor_source=who.source, reason=args.reason,
                          to=args.to, now=ctx.now, from_weight=args.from_weight)
        print(_outcome_line(out))
        return 0
    if (args.no_wait or args.wait_timeout) and not args.scale_baseline:
        raise ConfigError("revert: --no-wait and --wait-timeout go with --scale-baseline")
    try:
        timeout = parse_duration(args.wait_timeout or "2m")
    except ValueError as e:
        raise ConfigError(f"revert: --wait-timeout: {e}") from None
    done = rollback.emergency(engine=engine, plan=plan, router=router, actor=who.name,
                              actor_source=who.source, reason=args.reason, now=ctx.now,
                              scale_baseline=args.scale_baseline, wait=not args.no_wait,
                              wait_timeout=timeout, say=_say)
    if args.json:
        print(json.dumps(done.contract(), indent=2))
    else:
        print(_rollback_text(done))
    return _ROLLBACK_EXIT[done.outcome]


#: revert --all: 0 every service at 0 %, 1 none of those to move moved, 3 some moved
#: and some did not (partial: look at the table)
_ROLLBACK_EXIT = {rollback.GroupOutcome.APPLIED: 0, rollback.GroupOutcome.NOTHING: 0,
                  rollback.GroupOutcome.FAILED: 1, rollback.GroupOutcome.PARTIAL: 3}


def decisions(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    engine = ctx.ready_engine()
    if args.limit <= 0:
        raise ConfigError(f"--limit must be positive, got {args.limit}")
    rows = gate.decisions(engine=engine, service=args.service, limit=args.limit)
    if args.json:
        print(json.dumps({"decisions": [d.contract() for d in rows]}, indent=2))
    else:
        print(_table(["ID", "AT", "SERVICE", "ACTION", "FROM", "TO", "ACTOR", "STATE",
                      "REASON"], [_decision_row(d) for d in rows]))
    return 0


# -- text output -------------------------------------------------------------------------

def _clean(text: Any) -> str:
    """Operator-typed text shown on a terminal: no control characters (no escape codes)."""
    return "".join(c if c.isprintable() else "?" for c in str(text))


def _pct(w: int | None) -> str:
    return "-" if w is None else f"{w} %"


def _outcome_line(out: DecisionOutcome) -> str:
    mark = " [override]" if out.override else ""
    where = f" (decision #{out.decision_id})" if out.decision_id is not None else ""
    if out.ok:
        return (f"{out.service}: {out.action} {_pct(out.from_weight)} -> {_pct(out.to_weight)}"
                f" applied{mark}{where}; the router reads {_pct(out.read_back)}")
    return (f"{out.service}: {out.action} {_pct(out.from_weight)} -> {_pct(out.to_weight)} "
            f"{out.state}{where}: {_clean(out.message)}")


def _say(line: str) -> None:
    print(_clean(line), file=sys.stderr, flush=True)


def _rollback_text(done: rollback.Rollback) -> str:
    head = (f"rollback #{done.group_id}: {done.outcome} in {done.seconds:.2f} s "
            "(from the command to every route read back)")
    if done.outcome is rollback.GroupOutcome.NOTHING:
        head += "; every service is already at 0 % on the store and on its route"
    rows = [[r.service, r.route, _pct(r.from_weight), r.result.value.upper(),
             _pct(r.read_back), f"#{r.decision_id}" if r.decision_id is not None else "-",
             f"{r.seconds:.2f} s", _clean(r.message)] for r in done.results]
    lines = [head, _table(["SERVICE", "ROUTE", "FROM", "RESULT", "ROUTER", "DECISION",
                           "AFTER", "MESSAGE"], rows)]
    lines += [f"closed rollback #{g} left unfinished by a process that died"
              for g in done.closed_interrupted]
    return "\n".join(lines)


def _status_row(r: ServiceStatus) -> list[str]:
    router = _pct(r.router_weight) + (" DRIFT" if r.drift else "")
    return [r.service, r.phase or "-", _pct(r.weight), router, _pct(r.next_weight),
            r.state.value + (" OVERRIDE" if r.override else ""), r.verdict or "-",
            _clean(r.why)]


def _decision_row(d: DecisionRecord) -> list[str]:
    state = d.state.value + (" OVERRIDE" if d.override else "")
    return [str(d.id), iso(d.at) or "", d.service, d.action.value, _pct(d.from_weight),
            _pct(d.to_weight), _clean(d.actor), state,
            _clean(d.reason + (f" [{d.error}]" if d.error else ""))]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    # the last column (free text) is not padded
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row[:-1], widths, strict=False))
             + "  " + str(row[-1]) for row in [list(header), *map(list, rows)]]
    return "\n".join(line.rstrip() for line in lines)

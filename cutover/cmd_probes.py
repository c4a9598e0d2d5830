"""``cutover probes run|list`` and ``cutover signoff``: the seed's criteria that no figure
measures, checked by probes, or confirmed by a person."""

from __future__ import annotations

import argparse
import json

from cutover.context import Context
from cutover.probing import ProbeRunner
from rollout.identity import cli_identity
from rollout.routers.kube import kube_api_client
from slo.errors import ConfigError, GateError
from slo.plan import Plan
from slo.probe_results import ProbeResult, Signoff
from store.db import session_scope
from store.probes import latest_probe_results, record_signoff, signoffs

__all__ = ["list_", "run", "signoff"]


def run(args: argparse.Namespace) -> int:
    """Run the named probes (``--probe``, repeatable) or every due one, store, print.
    Exit 1 when one fails, 0 otherwise (inconclusive is not a failure of the command)."""
    ctx = Context.from_args(args)
    at = ctx.time(args.at)
    runner = ProbeRunner(plan=ctx.plan, engine=ctx.ready_engine())
    only = list(args.probe) if args.probe else None
    if only is None and args.all:
        only = [p.name for _, _, p in ctx.plan.probes()]
    results = runner(at, only=only)
    print(_json(results) if args.json else _text(results, empty="no probe was due"))
    return 1 if any(r.verdict.value == "fail" for r in results) else 0


def list_(args: argparse.Namespace) -> int:
    """Each probe of the plan with its newest stored result."""
    ctx = Context.from_args(args)
    with session_scope(ctx.ready_engine()) as session:
        latest = latest_probe_results(session=session, at=ctx.time(args.at))
    placed = ctx.plan.probes()
    if args.json:
        print(json.dumps({"probes": [{
            "probe": p.name, "kind": p.kind, "phase": ph.id, "service": s.name if s else None,
            "interval": p.interval.total_seconds(), "on_fail": p.on_fail,
            "latest": latest[p.name].contract() if p.name in latest else None}
            for ph, s, p in placed]}, indent=2))
        return 0
    if not placed:
        print("the plan has no probes")
        return 0
    width = max(len(p.name) for _, _, p in placed)
    for ph, s, p in placed:
        r = latest.get(p.name)
        where = f"{ph.id}/{s.name}" if s else ph.id
        state = (f"{r.verdict.value.upper():<12} {_at(r)}  {'; '.join(r.reasons[:2])}"
                 if r else "NOT RUN YET")
        print(f"{p.name:<{width}}  {p.kind:<14} {where:<16} {state}")
    return 0


def signoff(args: argparse.Namespace) -> int:
    """Record a person's word on a criterion of a phase (by its number or its text)."""
    ctx = Context.from_args(args)
    plan = ctx.plan
    try:
        phase = plan.phase(args.phase)
    except KeyError:
        raise ConfigError(f"unknown phase {args.phase!r}; expected one of "
                          f"{', '.join(p.id for p in plan.phases)}") from None
    criterion = _criterion(phase, args.criterion)
    actor = _signer(plan, args.actor)
    if not plan.may_operate(actor):
        raise GateError("-", f"{actor} is not an operator of this plan; only operators sign off")
    if not args.note.strip():
        raise ConfigError("--note: say what was confirmed and how")
    record = Signoff(phase=phase.id, criterion=criterion, actor=actor, at=ctx.now,
                     note=args.note.strip())
    with session_scope(ctx.ready_engine()) as session:
        record_signoff(session=session, signoff=record)
        if args.json:
            print(json.dumps({"signoff": record.contract(),
                              "signoffs": [s.contract() for s in signoffs(
                                  session=session, phase=phase.id)]}, indent=2))
        else:
            print(f"{phase.id}: {criterion!r} signed off by {actor} at {_iso(ctx.now)}")
    return 0


def _criterion(phase: object, given: str) -> str:
    criteria = [c.text for c in getattr(phase, "criteria", [])]
    if given.isdigit() and 1 <= int(given) <= len(criteria):
        return criteria[int(given) - 1]
    matches = [c for c in criteria if c.lower() == given.lower()] or [
        c for c in criteria if c.lower().startswith(given.lower())]
    if len(matches) == 1:
        return matches[0]
    listed = "; ".join(f"{i}. {c}" for i, c in enumerate(criteria, 1))
    raise ConfigError(f"--criterion {given!r} names {'several' if matches else 'no'} criteria "
                      f"of phase {getattr(phase, 'id', '?')}; expected a number or the text "
                      f"of one of: {listed}")


def _iso(t: object) -> str:
    return t.isoformat().replace("+00:00", "Z") if hasattr(t, "isoformat") else str(t)


def _at(r: ProbeResult) -> str:
    return _iso(r.at)


def _json(results: list[ProbeResult]) -> str:
    return json.dumps({"results": [r.contract() for r in results]}, indent=2)


def _text(results: list[ProbeResult], *, empty: str) -> str:
    if not results:
        return empty
    width = max(len(r.probe) for r in results)
    return "\n".join(f"{r.probe:<{width}}  {r.verdict.value.upper():<12} "
                     f"{'; '.join(r.reasons[:3])}" for r in results)


def _signer(plan: Plan, given: str | None) -> str:
    """Who signs off: as for the gate, the cluster's word with a cluster router
    (rollout/identity.py)."""
    return cli_identity(plan, flag=given, api_client=lambda: kube_api_client(plan)).name

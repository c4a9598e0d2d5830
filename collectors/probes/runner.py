"""Run the probes that are due: each on its own interval, each isolated (one that raises
is an inconclusive result naming why, and the others still run), each result stored with
its history, and a ``probe-failed`` event when a probe turns fail (``probe-recovered``
when it passes again) in the same transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from collectors.probes import (
    alert_response,
    compare,
    consistency,
    coverage,
    files,
    http_check,
    k8s_times,
    sessions,
    split,
)
from collectors.probes.base import Outcome, ProbeContext, ProbeUnreachable
from slo.errors import ConfigError
from slo.kinds import EventKind
from slo.plan import Phase, Plan, ServiceDef
from slo.probe_results import ANSWERED, ProbeResult
from slo.probe_specs import PROBE_KINDS
from slo.verdict import Verdict
from store.db import session_scope
from store.events import record_event
from store.probes import latest_probe_results, save_probe_result

__all__ = ["RUNNERS", "due_probes", "run_due", "run_probe"]

log = logging.getLogger(__name__)

Runner = Callable[[Any, ProbeContext], Outcome]

#: the one table of what runs each kind of probe
RUNNERS: dict[str, Runner] = {
    "http": http_check.run,
    "compare": compare.run,
    "consistency": consistency.run,
    "files": files.run,
    "session": sessions.run,
    "deploy_time": k8s_times.run_deploy_time,
    "recovery_time": k8s_times.run_recovery_time,
    "alert_response": alert_response.run,
    "coverage": coverage.run,
    "split": split.run,
}
assert set(RUNNERS) == set(PROBE_KINDS)

Placed = tuple[Phase, ServiceDef | None, Any]


def due_probes(plan: Plan, last: dict[str, datetime], now: datetime,
               only: Sequence[str] | None = None) -> list[Placed]:
    """The probes whose interval has passed since their last run (or that never ran)."""
    out = []
    for phase, svc, probe in plan.probes():
        if only is not None:
            if probe.name in only:
                out.append((phase, svc, probe))
            continue
        at = last.get(probe.name)
        if at is None or now - at >= probe.interval:
            out.append((phase, svc, probe))
    return out


def run_probe(placed: Placed, ctx: ProbeContext) -> ProbeResult:
    """One probe, never raising: a target that does not answer, a missing credential or
    a bug are inconclusive results that say so."""
    phase, svc, probe = placed
    ctx.phase, ctx.service = phase, svc
    t0 = time.perf_counter()
    try:
        outcome = RUNNERS[probe.kind](probe, ctx)
    except ProbeUnreachable as e:
        outcome = Outcome(Verdict.INCONCLUSIVE, (f"could not run: {e.message}",),
                          figures={ANSWERED: False})
    except ConfigError as e:
        outcome = Outcome(Verdict.INCONCLUSIVE, (f"not configured: {e}",))
    except Exception as e:
        log.exception("probe %s raised", probe.name)
        outcome = Outcome(Verdict.INCONCLUSIVE, (f"probe error: {e.__class__.__name__}",))
    return ProbeResult(probe=probe.name, kind=probe.kind, at=ctx.now, verdict=outcome.verdict,
                       reasons=outcome.reasons, phase=phase.id,
                       service=svc.name if svc else None, value=outcome.value,
                       limit=outcome.limit, figures=outcome.figures,
                       seconds=time.perf_counter() - t0)


def run_due(ctx: ProbeContext, *, only: Sequence[str] | None = None) -> list[ProbeResult]:
    """Run the due probes (or the ``only`` named ones, due or not) at ``ctx.now`` and store
    each result; returns them."""
    assert ctx.engine is not None
    known = {p.name for _, _, p in ctx.plan.probes()}
    for name in only or ():
        if name not in known:
            raise ConfigError(f"unknown probe {name!r}; expected one of "
                              f"{', '.join(sorted(known)) or 'none (the plan has no probes)'}")
    with session_scope(ctx.engine) as session:
        before = latest_probe_results(session=session, at=ctx.now)
    results = [run_probe(p, ctx) for p in due_probes(
        ctx.plan, {k: v.at for k, v in before.items()}, ctx.now, only)]
    with session_scope(ctx.engine) as session:
        for r in results:
            save_probe_result(session=session, result=r)
            _transition(session, r, before.get(r.probe))
    return results


def _transition(session: Any, result: ProbeResult, previous: ProbeResult | None) -> None:
    was = previous.verdict if previous is not None else None
    data = {"probe": result.probe, "kind": result.kind, "phase": result.phase,
            "verdict": result.verdict.value, "reasons": list(result.reasons[:5]),
            "value": result.value, "limit": result.limit}
    if result.verdict is Verdict.FAIL and was is not Verdict.FAIL:
        record_event(session=session, at=result.at, kind=EventKind.PROBE_FAILED, service=result.service,
                     severity="critical", dedup_key=f"probe-failed:{result.probe}",
                     summary=f"probe {result.probe} fails: " + "; ".join(result.reasons[:2]),
                     data=data)
    elif result.verdict is Verdict.PASS and was is Verdict.FAIL:
        record_event(session=session, at=result.at, kind=EventKind.PROBE_RECOVERED,
                     service=result.service, severity="info",
                     dedup_key=f"probe-failed:{result.probe}",
                     summary=f"probe {result.probe} passes again", data=data)

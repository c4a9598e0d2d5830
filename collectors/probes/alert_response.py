"""``kind: alert_response``: the time from a critical event to its delivery to each
channel that takes it, from the outbox's own records ("alert response < 1 min for
critical alerts").  One still waiting past the limit, or given up on, fails."""

from __future__ import annotations

from collectors.probes.base import Outcome, ProbeContext, ProbeUnreachable
from slo.probe_specs import AlertResponseProbe
from slo.probes import judge_durations
from slo.verdict import Verdict
from store.db import session_scope
from store.probes import critical_deliveries, undispatched_critical

__all__ = ["run"]


def run(spec: AlertResponseProbe, ctx: ProbeContext) -> Outcome:
    if ctx.engine is None:
        raise ProbeUnreachable(spec.name, "no store to read the outbox from")
    since = ctx.now - spec.window
    with session_scope(ctx.engine) as session:
        rows = critical_deliveries(session=session, since=since)
        waiting = undispatched_critical(session=session, since=since)
    done: list[tuple[str, float | None]] = []
    going: list[tuple[str, float]] = []
    failed = []
    for kind, channel, at, sent, state in rows:
        label = f"{kind} at {at:%Y-%m-%d %H:%M:%S} to {channel}"
        if sent is not None:
            done.append((label, (sent - at).total_seconds()))
        elif state == "failed":
            failed.append(f"{label}: never delivered (the channel gave up)")
        else:
            going.append((label, (ctx.now - at).total_seconds()))
    going += [(f"{kind} at {at:%Y-%m-%d %H:%M:%S} (not dispatched)",
               (ctx.now - at).total_seconds()) for kind, at in waiting]
    verdict, reasons, worst = judge_durations(what="delivered after", durations=done,
                                              limit=spec.max, unfinished=going)
    figures = {"delivered": len(done), "waiting": len(going), "failed": len(failed)}
    if failed:
        return Outcome(Verdict.FAIL, tuple(failed + [r for r in reasons if ">" in r]),
                       value=worst, limit=spec.max.total_seconds(), figures=figures)
    if not done and not going:
        reasons = [f"no critical alert in the last {spec.window.total_seconds() / 3600:g} h "
                   "to time"]
    return Outcome(verdict, tuple(reasons[:10]), value=worst, limit=spec.max.total_seconds(),
                   figures=figures)

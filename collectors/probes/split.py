"""The measured traffic split: what the gateway actually sent to the candidate, from the
access log's rollups, against the weight on the route.  Outside what binomial noise
allows it is drift of a new kind (sticky cookies, a second route, a client that pins a
backend), a reason to hold the next step.  Week 1's "gateway routing 0 % traffic to
Python services" is this check at weight 0.

:func:`measured_split` is a plain function of a session, so the backtest can replay
the weights the gateway really applied (``--steps observed``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from collectors.probes.base import Outcome, ProbeContext, ProbeUnreachable
from slo.probe_specs import SplitProbe
from slo.probes import combine, judge_split
from store.db import session_scope
from store.rollout import get_state
from store.rollups import variant_requests

__all__ = ["Split", "measured_split", "run"]


@dataclass(frozen=True)
class Split:
    """Requests per variant of one service over [start, end)."""

    service: str
    start: datetime
    end: datetime
    candidate: int
    baseline: int

    @property
    def total(self) -> int:
        return self.candidate + self.baseline

    @property
    def share(self) -> float | None:
        """The candidate's share (0..1), None without requests."""
        return self.candidate / self.total if self.total else None


def measured_split(*, session: Session, service: str, start: datetime, end: datetime) -> Split:
    """What the gateway's log says it sent where, minutes in [start, end)."""
    counts = variant_requests(session=session, service=service, start=start, end=end)
    return Split(service, start, end, counts.get("candidate", 0), counts.get("baseline", 0))


def _minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def run(spec: SplitProbe, ctx: ProbeContext) -> Outcome:
    if ctx.engine is None:
        raise ProbeUnreachable(spec.name, "no store to read the gateway's log rollups from")
    services = (list(spec.services) or ([ctx.service.name] if ctx.service is not None
                else list(ctx.phase.services) if ctx.phase is not None else []))
    verdicts, reasons, figures, worst = [], [], {}, None
    end = _minute(ctx.now)
    with session_scope(ctx.engine) as session:
        for name in services:
            state = get_state(session=session, service=name)
            weight = state.weight if state is not None else 0
            since = state.step_since if state is not None and state.step_since else None
            # whole minutes after the step began: the minute it began mixes both weights
            start = end - spec.window
            if since is not None and since > start:
                start = _minute(since) + timedelta(minutes=1)
            split = measured_split(session=session, service=name, start=start, end=end)
            verdict, why = judge_split(candidate=split.candidate, total=split.total,
                                       weight=weight, confidence=spec.confidence,
                                       min_difference=spec.min_difference,
                                       min_requests=spec.min_requests)
            verdicts.append(verdict)
            reasons.append(f"{name}: {why}")
            figures[name] = {"weight": weight, "candidate": split.candidate,
                             "total": split.total, "share": split.share,
                             "since": start.isoformat()}
            if split.share is not None and (worst is None or abs(split.share - weight / 100)
                                            > abs(worst[0] - worst[1])):
                worst = (split.share, weight / 100)
    return Outcome(combine(verdicts), tuple(reasons), value=worst[0] if worst else None,
                   limit=worst[1] if worst else None, figures=figures)

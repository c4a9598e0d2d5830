"""Evaluations: which services to judge, with which figures, stored with their events.

The judge (``slo.judge``) is pure; this module gathers what it needs from the store at a
time ``at`` (and the newest results of the probes each service weighs in, which
``slo.probes.weigh`` adds to the judge's checks: a failed probe fails or holds the step,
one never run or stale keeps it inconclusive) (the step each service is on, the figures of both variants over the plan's
window and the burn windows, the phase's totals), stores each evaluation, and records a
``verdict-failed`` event when a service's verdict turns fail (``verdict-recovered`` when
it turns back to pass) in the same transaction.  Evaluating the same service at the same
time again replaces the stored evaluation and records no second event."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from slo.errors import ConfigError
from slo.figures import Figures
from slo.judge import BURN_RULES, RECENT_WINDOWS, TOTAL_FIGURES, BurnInputs, judge
from slo.kinds import EventKind
from slo.plan import Plan, ServiceSettings
from slo.probe_results import ProbeResult
from slo.probes import probe_checks, weigh
from slo.sequential import block, detector_starts
from slo.verdict import Evaluation, Verdict
from store.db import session_scope
from store.evaluations import (
    StoredVerdict,
    latest_verdict,
    save_evaluation,
    step_passed,
    verdict_at,
)
from store.events import record_event
from store.figures import variant_figures
from store.probes import latest_probe_results
from store.rollout import all_states, last_applied

__all__ = ["FiguresFn", "StepState", "evaluate", "evidence_settle", "services_to_evaluate"]

log = logging.getLogger(__name__)


class FiguresFn(Protocol):
    """The seam to the store's figures (``store.figures.variant_figures``)."""

    def __call__(self, *, session: Session, service: str, variant: str, start: datetime,
                 end: datetime) -> Figures: ...


def services_to_evaluate(plan: Plan, weights: dict[str, int]) -> list[str]:
    """The services of the current phase, then every other service with a weight
    strictly between 0 and 100 (ARCHITECTURE: "Without --service ...").

    The current phase is the first, in plan order, with a service below its last step;
    a service with no stored weight is at 0."""
    current: list[str] = []
    for phase in plan.phases:
        if any(weights.get(s, 0) < plan.settings(s).steps[-1] for s in phase.services):
            current = list(phase.services)
            break
    others = [s.name for s in plan.services
              if s.name not in current and 0 < weights.get(s.name, 0) < 100]
    return current + others


@dataclass(frozen=True)
class StepState:
    """A service's weight and the start of its step, at the evaluation time.

    ``evidence_start`` is where the step's own evidence begins: the first whole minute
    after ``since`` (a log rollup counts whole minutes, and the minute the step began in
    holds the previous weight's requests too), plus the Prometheus rate window (a rate
    read just after the step still averages the previous weight's samples).  Every
    window the judge reads is cut there, so a verdict rests on this step's requests."""

    weight: int = 0
    since: datetime | None = None
    settle: timedelta = timedelta(0)

    def soak(self, at: datetime) -> timedelta | None:
        if self.weight <= 0 or self.since is None or self.since > at:
            return None
        return at - self.since

    @property
    def evidence_start(self) -> datetime | None:
        if self.since is None:
            return None
        floor = self.since.replace(second=0, microsecond=0)
        whole = floor if floor == self.since else floor + timedelta(minutes=1)
        return whole + self.settle

    def window_start(self, at: datetime, span: timedelta) -> datetime:
        """The start of a window of length ``span`` ending at ``at``, cut at the step's
        evidence (a window never reaches into a previous step)."""
        start = at - span
        evidence = self.evidence_start
        return min(max(start, evidence), at) if evidence is not None else start


def evaluate(*, engine: Engine, plan: Plan, plan_hash: str, at: datetime,
             service: str | None = None, figures_fn: FiguresFn = variant_figures
             ) -> list[tuple[Evaluation, int]]:
    """Judge ``service`` (or the services to evaluate) at ``at``; store each evaluation
    and its events in one transaction.  Returns (evaluation, stored row id) pairs."""
    known = [s.name for s in plan.services]
    if service is not None and service not in known:
        raise ConfigError(f"unknown service {service!r}; expected one of {', '.join(known)}")
    with session_scope(engine) as session:
        states = _step_states(session, at, settle=evidence_settle(plan))
        names = [service] if service else services_to_evaluate(
            plan, {k: v.weight for k, v in states.items()})
        cache = _FiguresCache(session, figures_fn, at, states)
        probed = _probe_results(session, plan, names, at)
        out = []
        for name in names:
            step = states.get(name, StepState())
            evaluation = _judge_one(plan, name, step, cache, at=at, plan_hash=plan_hash,
                                    passed_before=_passed_before(session, name, step, at))
            evaluation = weigh(evaluation, probe_checks(plan.probes_for(name), probed, at=at))
            stored = _store(session, evaluation)
            out.append((evaluation, stored.id))
        return out


def _probe_results(session: Session, plan: Plan, names: Sequence[str],
                   at: datetime) -> dict[str, ProbeResult]:
    """The newest result at or before ``at`` of every probe the services weigh in."""
    wanted = sorted({p.name for n in names for p in plan.probes_for(n)})
    if not wanted:
        return {}
    return latest_probe_results(session=session, at=at, probes=wanted)


def _passed_before(session: Session, name: str, step: StepState, at: datetime) -> bool:
    """Whether an earlier look of the service's current step passed (stored)."""
    if step.since is None or step.weight <= 0:
        return False
    return step_passed(session=session, service=name, weight=step.weight, since=step.since,
                       before=at)


def _judge_one(plan: Plan, name: str, step: StepState, cache: _FiguresCache, *,
               at: datetime, plan_hash: str, passed_before: bool = False) -> Evaluation:
    settings = plan.settings(name)
    phase = plan.phase_of(name)
    spans = _Spans(settings, step, at)
    burn = BurnInputs(
        candidate={span: cache.get(name, "candidate", spans.short(span)) for span in _burn_spans()},
        baseline={span: cache.get(name, "baseline", spans.short(span)) for span in RECENT_WINDOWS},
        since={start: cache.get(name, "candidate", at - start) for start in spans.starts()},
    )
    return judge(service=name, phase=settings.phase, weight=step.weight, at=at,
                 baseline=_main_figures(cache, name, "baseline", spans),
                 candidate=_main_figures(cache, name, "candidate", spans),
                 settings=settings, soak=step.soak(at), step_since=step.since,
                 evidence_start=step.evidence_start,
                 group_totals=_group_totals(plan, phase.services if phase else [name], cache),
                 burn=burn, plan_hash=plan_hash, stale_after=_stale_after(plan),
                 passed_before=passed_before)


def _main_figures(cache: _FiguresCache, name: str, variant: str, spans: _Spans) -> Figures:
    """The figures of the main checks.  Anytime: the whole step's, with the sources'
    problems of the plan's window only: a gap hours into a long step leaves some of its
    requests uncounted, not the sequences over the rest wrong, so it holds the verdict
    while it is in the window, as under fixed inference, not for the rest of the step."""
    f = cache.get(name, variant, spans.main())
    if not spans.anytime:
        return f
    return replace(f, problems=cache.get(name, variant, spans.settings.window).problems)


@dataclass(frozen=True)
class _Spans:
    """How far back each window reaches.  Fixed inference: the plan's window and the
    short and burn windows, each cut at the step's evidence.  Anytime inference: the main
    window is the whole step (a confidence sequence needs every request of it), the
    regression detectors read windows from their starts (``slo.sequential.detector_starts``)
    and each burn rule's short window reads the sequence restarted at its block
    (``slo.sequential.block``)."""

    settings: ServiceSettings
    step: StepState
    at: datetime

    @property
    def anytime(self) -> bool:
        return self.settings.inference == "anytime" and self.step.evidence_start is not None

    def main(self) -> timedelta:
        if self.anytime:
            assert self.step.evidence_start is not None
            return max(self.at - self.step.evidence_start, timedelta(0))
        return self.settings.window

    def starts(self) -> list[datetime]:
        """Anytime: the starts the regression detectors read (none under fixed)."""
        if not self.anytime:
            return []
        assert self.step.evidence_start is not None
        return detector_starts(self.step.evidence_start, self.at)

    def short(self, span: timedelta) -> timedelta:
        restarted = span in RECENT_WINDOWS or span in {r.short for r in BURN_RULES}
        if self.anytime and restarted:
            assert self.step.evidence_start is not None
            start, _ = block(self.step.evidence_start, self.at, span)
            return max(self.at - start, timedelta(0))
        return span


def _burn_spans() -> list[timedelta]:
    spans = {span for rule in BURN_RULES for span in (rule.long, rule.short)}
    return sorted(spans | set(RECENT_WINDOWS))


def evidence_settle(plan: Plan) -> timedelta:
    """How long after the step's first whole minute a Prometheus rate still averages
    samples from before it: the plan's ``rate_window`` (none without Prometheus)."""
    prom = plan.sources.prometheus
    if prom is None:
        return timedelta(0)
    return prom.rate_window or 2 * prom.step


def _stale_after(plan: Plan) -> timedelta:
    # "older than a couple of steps": two scrape steps and a log minute, at least 3 min
    step = plan.sources.prometheus.step if plan.sources.prometheus else timedelta(0)
    return max(timedelta(minutes=3), 2 * step + timedelta(minutes=1))


def _group_totals(plan: Plan, services: Sequence[str], cache: _FiguresCache
                  ) -> dict[str, float]:
    """Per figure, the candidates' sum over ``services`` over each one's own window;
    a figure any service lacks is left out, so the judge says the total is unknown."""
    totals: dict[str, float] = {}
    figures = [cache.get(s, "candidate", plan.settings(s).window) for s in services]
    for name in TOTAL_FIGURES:
        values = [f.get(name) for f in figures]
        if values and all(v is not None for v in values):
            totals[name] = float(sum(v for v in values if v is not None))
    return totals


class _FiguresCache:
    """Figures by (service, variant, window length), each read once per evaluation and
    each window cut at the start of its service's step (``StepState.window_start``)."""

    def __init__(self, session: Session, fn: FiguresFn, at: datetime,
                 states: dict[str, StepState]):
        self.session, self.fn, self.at, self.states = session, fn, at, states
        self._seen: dict[tuple[str, str, datetime], Figures] = {}

    def get(self, service: str, variant: str, span: timedelta) -> Figures:
        start = self.states.get(service, StepState()).window_start(self.at, span)
        key = (service, variant, start)
        if key not in self._seen:
            self._seen[key] = self.fn(session=self.session, service=service, variant=variant,
                                      start=start, end=self.at)
        return self._seen[key]


# -- step state at a time ------------------------------------------------------------

def _step_states(session: Session, at: datetime, *, settle: timedelta = timedelta(0)
                 ) -> dict[str, StepState]:
    """Each service's step at ``at``: the stored state when its step began at or before
    ``at``; for a replay of an earlier time, the last decision applied by then."""
    out: dict[str, StepState] = {}
    for state in all_states(session=session):
        if state.step_since is None or state.step_since <= at:
            out[state.service] = StepState(state.weight, state.step_since, settle)
        else:
            replayed = _replayed_state(session, state.service, at)
            out[state.service] = StepState(replayed.weight, replayed.since, settle)
    return out


def _replayed_state(session: Session, service: str, at: datetime) -> StepState:
    last = last_applied(session=session, service=service, at=at)
    return StepState() if last is None else StepState(*last)


# -- storing, with events ----------------------------------------------------------

def _store(session: Session, evaluation: Evaluation) -> StoredVerdict:
    before = latest_verdict(session=session, service=evaluation.service,
                            at_or_before=evaluation.at - timedelta(microseconds=1))
    same = verdict_at(session=session, service=evaluation.service, at=evaluation.at)
    unchanged = same is not None and same.verdict is evaluation.verdict
    stored = save_evaluation(session=session, evaluation=evaluation)
    if not unchanged:
        _record_transition(session, evaluation, stored, before.verdict if before else None)
    return stored


def _record_transition(session: Session, evaluation: Evaluation, stored: StoredVerdict,
                       previous: Verdict | None) -> None:
    now = evaluation.verdict
    if now is Verdict.FAIL and previous is not Verdict.FAIL:
        record_event(session=session, at=evaluation.at, kind=EventKind.VERDICT_FAILED,
                     service=evaluation.service, severity="critical",
                     summary=f"{evaluation.service} fails at {evaluation.weight} %: "
                     + "; ".join(evaluation.reasons[:3]),
                     data=_event_data(evaluation, stored))
    elif now is Verdict.PASS and previous is Verdict.FAIL:
        record_event(session=session, at=evaluation.at, kind=EventKind.VERDICT_RECOVERED,
                     service=evaluation.service, severity="info",
                     summary=f"{evaluation.service} passes again at {evaluation.weight} %",
                     data=_event_data(evaluation, stored))


def _event_data(evaluation: Evaluation, stored: StoredVerdict) -> dict[str, Any]:
    """The figures that matter: the checks that failed (or, on recovery, all of them)."""
    keep: Callable[[Any], bool] = (
        (lambda c: c.verdict is Verdict.FAIL) if evaluation.verdict is Verdict.FAIL
        else (lambda c: True))
    return {"evaluation_id": stored.id, "phase": evaluation.phase, "weight": evaluation.weight,
            "step_since": evaluation.contract()["step_since"],
            "verdict": evaluation.verdict.value, "reasons": list(evaluation.reasons),
            "checks": [c.contract() for c in evaluation.checks if keep(c)]}

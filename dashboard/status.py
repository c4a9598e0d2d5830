"""What the pages show, as plain values built from the plan and the store's answers.

Pure functions (no Streamlit, no I/O) so the shaping is tested without a browser: where
each phase stands, one card per service, the migration-wide success metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from rollout.gate import Seen, assess, seen_at_step
from rollout.state import RolloutStatus
from slo.plan import FIGURES, Plan
from slo.success import SuccessResult, success_metrics
from slo.units import format_duration
from slo.verdict import Evaluation, Verdict
from store.views import StateView

__all__ = ["KEY_FIGURES", "PhaseState", "PhaseView", "ServiceCard", "SuccessRow",
           "cards", "current_phase", "human_duration", "phases", "stale_after",
           "success_rows", "verdict_caption"]

#: the figures a card shows, in order
KEY_FIGURES = ("latency_p95_ms", "error_rate", "rps", "memory_mb")


class PhaseState(StrEnum):
    DONE = "done"            # every service of the phase is on its last step
    CURRENT = "current"      # the first phase, in plan order, that is not done
    UPCOMING = "upcoming"    # after the current one


@dataclass(frozen=True)
class PhaseView:
    id: str
    name: str
    services: tuple[str, ...]
    state: PhaseState
    weights: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ServiceCard:
    service: str
    title: str
    route: str
    phase: str | None
    weight: int
    next_weight: int | None
    previous_weight: int
    status: RolloutStatus
    why: str
    verdict: Verdict | None
    evaluated_at: datetime | None
    evaluation_id: int | None
    baseline: Mapping[str, float | None]
    candidate: Mapping[str, float | None]
    reasons: tuple[str, ...]
    blockers: tuple[str, ...]
    drift: str | None = None
    stale: str | None = None
    wait: str | None = None
    step_since: datetime | None = None
    checks: tuple[dict[str, object], ...] = field(default=(), compare=False)
    #: the weight and the step start the shown verdict was made for (it may be an
    #: earlier step's: the caption says so)
    verdict_weight: int | None = None
    verdict_step_since: datetime | None = None


def verdict_caption(card: ServiceCard) -> str | None:
    """Which step the shown verdict was made at, in words: every verdict is shown with
    its own weight, and one made at an earlier step says it is not this step's."""
    if card.verdict is None or card.verdict_weight is None:
        return None
    since = (f", step since {card.verdict_step_since:%Y-%m-%d %H:%M} UTC"
             if card.verdict_step_since else "")
    at = f" {card.evaluated_at:%H:%M} UTC" if card.evaluated_at else ""
    words = f"judged at {card.verdict_weight} %{since}, at{at}"
    earlier = card.verdict_weight != card.weight or (
        card.verdict_step_since is not None and card.step_since is not None
        and card.verdict_step_since != card.step_since)
    if earlier:
        words += f": an earlier step's verdict, not one of the current {card.weight} %"
    return words


def human_duration(td: timedelta) -> str:
    """``1h30m``, rounded to the minute above one minute."""
    secs = max(0, int(td.total_seconds()))
    if secs >= 60:
        secs = secs // 60 * 60
    return format_duration(timedelta(seconds=secs))


def stale_after(plan: Plan) -> timedelta:
    """An evaluation older than this is stale: the worker evaluates every interval, so
    three missed rounds (and never less than two minutes) mean it stopped."""
    return max(3 * plan.interval, timedelta(minutes=2))


def _weight(states: Mapping[str, StateView], service: str) -> int:
    st = states.get(service)
    return st.weight if st else 0


def current_phase(plan: Plan, states: Mapping[str, StateView]) -> str | None:
    """The first phase, in plan order, with a service below its last step."""
    for p in plan.phases:
        if any(_weight(states, s) < plan.settings(s).steps[-1] for s in p.services):
            return p.id
    return None


def phases(plan: Plan, states: Mapping[str, StateView]) -> list[PhaseView]:
    """Each phase with its state: done before the current one, upcoming after it."""
    current = current_phase(plan, states)
    ids = [p.id for p in plan.phases]
    at = ids.index(current) if current is not None else len(ids)
    return [PhaseView(id=p.id, name=p.name, services=tuple(p.services),
                      state=(PhaseState.DONE if i < at else
                             PhaseState.CURRENT if i == at else PhaseState.UPCOMING),
                      weights=tuple((s, _weight(states, s)) for s in p.services))
            for i, p in enumerate(plan.phases)]


def cards(plan: Plan, states: Mapping[str, StateView],
          latest: Mapping[str, tuple[int, Evaluation]], now: datetime) -> list[ServiceCard]:
    return [card(plan, s.name, states.get(s.name), latest.get(s.name), now)
            for s in plan.services]


def card(plan: Plan, service: str, state: StateView | None,
         latest: tuple[int, Evaluation] | None, now: datetime) -> ServiceCard:
    svc, settings = plan.service(service), plan.settings(service)
    weight = state.weight if state else 0
    ev = latest[1] if latest else None
    stale = _stale(plan, ev, now)
    drift = _drift(state)
    status, why = assessment(plan, service, state, latest, now)
    wait = (human_duration(timedelta(seconds=ev.wait_seconds))
            if ev is not None and ev.wait_seconds is not None else None)
    return ServiceCard(
        service=service, title=svc.title or service, route=svc.route,
        phase=settings.phase, weight=weight, next_weight=settings.next_step(weight),
        previous_weight=settings.previous_step(weight),
        status=status, why=why,
        verdict=ev.verdict if ev else None, evaluated_at=ev.at if ev else None,
        evaluation_id=latest[0] if latest else None,
        baseline=_figures(ev, "baseline"), candidate=_figures(ev, "candidate"),
        reasons=ev.reasons if ev else (),
        blockers=_blockers(status, why, ev, stale=stale, drift=drift, wait=wait),
        drift=drift, stale=stale, wait=wait, step_since=state.step_since if state else None,
        checks=tuple(c.contract() for c in ev.checks) if ev else (),
        verdict_weight=ev.weight if ev else None,
        verdict_step_since=ev.step_since if ev else None,
    )


def _figures(ev: Evaluation | None, variant: str) -> dict[str, float | None]:
    if ev is None:
        return {}
    return dict(getattr(ev, variant).contract())


def _stale(plan: Plan, ev: Evaluation | None, now: datetime) -> str | None:
    if ev is None:
        return None
    age = now - ev.at
    if age > stale_after(plan):
        return (f"the newest evaluation is {human_duration(age)} old: "
                "is the worker running?")
    return None


def _drift(state: StateView | None) -> str | None:
    if state is None or state.router_weight is None or state.router_weight == state.weight:
        return None
    since = f" since {state.drift_since:%Y-%m-%d %H:%M} UTC" if state.drift_since else ""
    return (f"the router sends {state.router_weight} % to the candidate, "
            f"the store says {state.weight} %{since}")


def _seen(state: StateView | None, latest: tuple[int, Evaluation] | None) -> Seen | None:
    """The verdict the gate rests on: the latest evaluation, if made at this step."""
    if latest is None:
        return None
    eid, ev = latest
    return seen_at_step(weight=state.weight if state else 0,
                        step_since=state.step_since if state else None, evaluation_id=eid,
                        evaluated_at=ev.at, evaluated_weight=ev.weight, verdict=ev.verdict,
                        reasons=ev.reasons, evaluated_step_since=ev.step_since)


def assessment(plan: Plan, service: str, state: StateView | None,
               latest: tuple[int, Evaluation] | None, now: datetime) -> tuple[RolloutStatus, str]:
    """The gate's own reading of where the service stands (the gate decides again)."""
    return assess(weight=state.weight if state else 0,
                  stored_status=state.status if state else RolloutStatus.WAITING.value,
                  step_since=state.step_since if state else None,
                  settings=plan.settings(service), seen=_seen(state, latest), now=now)


def _blockers(status: RolloutStatus, why: str, ev: Evaluation | None, *, stale: str | None,
              drift: str | None, wait: str | None) -> tuple[str, ...]:
    """What stands between the service and its next step, in words."""
    if status is RolloutStatus.PROMOTED:
        return ()
    out: list[str] = []
    if drift:
        out.append(f"drift: {drift}")
    if stale:
        out.append(f"stale data: {stale}")
    if status not in (RolloutStatus.READY, RolloutStatus.REVERTED) or out:
        out.append(why)
    if ev is not None and status is RolloutStatus.BLOCKED:
        out.extend(f"fails {c.name}: {c.detail}" if c.detail else f"fails {c.name}"
                   for c in ev.checks if c.verdict is Verdict.FAIL)
    if ev is not None and ev.verdict is Verdict.INCONCLUSIVE and wait:
        out.append(f"about {wait} until enough data at the current traffic")
    return tuple(out)


SuccessRow = SuccessResult


def success_rows(plan: Plan, latest: Mapping[str, tuple[int, Evaluation]]) -> list[SuccessRow]:
    """The plan's migration-wide success metrics against the candidates' newest figures."""
    candidates = {s: {k: ev.candidate.get(k) for k in FIGURES} for s, (_, ev) in latest.items()}
    return success_metrics(plan.success_targets(), candidates)

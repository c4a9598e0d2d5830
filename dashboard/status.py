"""What the pages show, as plain values built from the plan and the store's answers.

Pure functions (no Streamlit, no I/O) so the shaping is tested without a browser: where
each phase stands, one card per service, the migration-wide success metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from rollout.evaluation import services_to_evaluate
from rollout.gate import Seen, assess, seen_at_step
from rollout.state import RolloutStatus
from slo.plan import FIGURES, Plan, ServiceSettings
from slo.success import SuccessResult, success_metrics
from slo.units import format_duration
from slo.verdict import Evaluation, Verdict
from store.heartbeat import WorkerRound
from store.views import DecisionView, StateView

__all__ = ["KEY_FIGURES", "DisplayState", "PhaseState", "PhaseView", "ServiceCard",
           "SuccessRow", "by_urgency", "cards", "current_phase", "human_duration", "judged",
           "phases", "stale_after", "success_rows", "verdict_caption", "verdict_is_earlier",
           "worker_alarm", "worker_line"]

#: the figures a card shows, in order
KEY_FIGURES = ("latency_p95_ms", "error_rate", "rps", "memory_mb")


class DisplayState(StrEnum):
    """Where a service stands, for people (``status --json`` keeps the gate's states)."""

    PROGRESSING = "progressing"      # soaking or gathering requests: time will tell
    WAITING = "waiting"              # for something time alone will not bring: data, its phase
    READY = "ready"                  # approve may move it now
    FAILED = "failed"                # the verdict at this step is fail
    AUTO_REVERTED = "auto-reverted"  # the worker sent it back after failed verdicts
    DRIFTED = "drifted"              # the router says another weight than the store
    DONE = "done"                    # at its last step

    @property
    def rank(self) -> int:
        """What needs the migration lead first: lower is sooner."""
        return _DISPLAY_ORDER.index(self)


_DISPLAY_ORDER = (DisplayState.FAILED, DisplayState.AUTO_REVERTED, DisplayState.DRIFTED,
                  DisplayState.READY, DisplayState.PROGRESSING, DisplayState.WAITING,
                  DisplayState.DONE)


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
    #: the gate would approve without an override now (it decides again when asked)
    may_approve: bool = False
    #: what would make approve available: soak left, requests left, a failing check, ...
    needs: tuple[str, ...] = ()
    #: the step's soak so far, and how long until the gate can decide (None: unknown)
    soaked: timedelta | None = None
    min_soak: timedelta | None = None
    ready_in: timedelta | None = None
    steps: tuple[int, ...] = ()
    display: DisplayState = DisplayState.WAITING
    auto_reverted: str | None = None


def verdict_caption(card: ServiceCard) -> str | None:
    """Which step the shown verdict was made at, in words: every verdict is shown with
    its own weight, and one made at an earlier step says it is not this step's."""
    if card.verdict is None or card.verdict_weight is None:
        return None
    since = (f", step since {card.verdict_step_since:%Y-%m-%d %H:%M} UTC"
             if card.verdict_step_since else "")
    at = f" {card.evaluated_at:%H:%M} UTC" if card.evaluated_at else ""
    words = f"judged at {card.verdict_weight} %{since}, at{at}"
    if verdict_is_earlier(card):
        words = (f"last verdict {card.verdict.value.upper()}, {words}: an earlier step's "
                 f"verdict, not one of the current {card.weight} %")
    return words


def verdict_is_earlier(card: ServiceCard) -> bool:
    """The shown verdict was made at another step than the current one (``cutover status``
    shows no verdict then, and neither does the badge)."""
    return card.verdict_weight is not None and (
        card.verdict_weight != card.weight
        or (card.verdict_step_since is not None and card.step_since is not None
            and card.verdict_step_since != card.step_since))


def human_duration(td: timedelta) -> str:
    """``1h30m``, rounded to the minute above one minute."""
    secs = max(0, int(td.total_seconds()))
    if secs >= 60:
        secs = secs // 60 * 60
    return format_duration(timedelta(seconds=secs))


def stale_after(interval: timedelta) -> timedelta:
    """A worker whose newest round is older than this has stopped: it does a round every
    ``interval``, so three missed rounds (and never less than two minutes) mean it is gone."""
    return max(3 * interval, timedelta(minutes=2))


def worker_alarm(last: WorkerRound | None, now: datetime) -> str | None:
    """Why the page may show old news, or None while the worker does its rounds.

    Staleness is the worker's, not a service's: a service at its last step or back at
    0 % is not judged, and its newest evaluation rightly grows old."""
    if last is None:
        return ("no round of the worker is recorded in this store: is `cutover worker` "
                "running?")
    age = now - last.at
    if age <= stale_after(last.interval):
        return None
    return (f"the worker's last round was {human_duration(age)} ago "
            f"({last.at:%Y-%m-%d %H:%M} UTC, by {last.holder}); it runs every "
            f"{human_duration(last.interval)}: is it running?")


def worker_line(last: WorkerRound | None, now: datetime) -> str:
    """The worker's heartbeat in a line, for a caption."""
    if last is None:
        return "worker: no round recorded yet"
    ago = human_duration(now - last.at)
    line = (f"worker {last.holder}: last round {ago} ago, every "
            f"{human_duration(last.interval)}")
    return line + (f"; it had failures ({last.failed})" if not last.ok else "")


def judged(plan: Plan, states: Mapping[str, StateView]) -> frozenset[str]:
    """The services the worker judges every round (the evaluate contract's rule)."""
    return frozenset(services_to_evaluate(plan, {k: v.weight for k, v in states.items()}))


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
          latest: Mapping[str, tuple[int, Evaluation]], now: datetime, *,
          worker_runs: bool = True,
          last_decisions: Mapping[str, DecisionView] | None = None) -> list[ServiceCard]:
    """Every service's card, in plan order (:func:`by_urgency` orders them for a lead)."""
    judging, last = judged(plan, states), last_decisions or {}
    return [card(plan, s.name, states.get(s.name), latest.get(s.name), now,
                 judged=s.name in judging, worker_runs=worker_runs,
                 last_decision=last.get(s.name))
            for s in plan.services]


def by_urgency(cards: Sequence[ServiceCard]) -> list[ServiceCard]:
    """What needs the lead now first: failed, auto-reverted, drifted, ready, progressing,
    waiting, done; plan order within each."""
    return sorted(cards, key=lambda c: c.display.rank)


def card(plan: Plan, service: str, state: StateView | None,
         latest: tuple[int, Evaluation] | None, now: datetime, *, judged: bool = True,
         worker_runs: bool = True, last_decision: DecisionView | None = None) -> ServiceCard:
    """``judged``: the worker judges this service every round; ``worker_runs``: its
    heartbeat is fresh (when it is not, the page says so once, not per service);
    ``last_decision``: the service's newest decision (an auto-revert is said so)."""
    svc, settings = plan.service(service), plan.settings(service)
    weight = state.weight if state else 0
    ev = latest[1] if latest else None
    stale = _stale(plan, ev, now) if judged and worker_runs else None
    drift = _drift(state)
    status, why = assessment(plan, service, state, latest, now)
    wait = (human_duration(timedelta(seconds=ev.wait_seconds))
            if ev is not None and ev.wait_seconds is not None else None)
    step = _Step.of(settings, state, ev, now, status=status)
    needs = _needs(plan, settings, state, ev, status=status, why=why, drift=drift,
                   worker_runs=worker_runs, step=step)
    auto = _auto_reverted(state, last_decision)
    return ServiceCard(
        may_approve=_may_approve(status, weight) and not drift and worker_runs,
        needs=needs, soaked=step.soaked, min_soak=settings.min_soak,
        ready_in=step.ready_in, steps=(0, *settings.steps), auto_reverted=auto,
        display=_display(status, weight, drift=drift, judged=judged, auto=auto,
                         ready_in=step.ready_in, verdict=ev.verdict if ev else None),
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


def _may_approve(status: RolloutStatus, weight: int) -> bool:
    # the gate's rule (rollout.gate): READY, or REVERTED at 0 % where the first step
    # needs no pass; REVERTED above 0 % needs its pass and soak like any step
    return status is RolloutStatus.READY or (status is RolloutStatus.REVERTED and weight == 0)


@dataclass(frozen=True)
class _Step:
    """The step's clock: how long it has soaked, and how long until the gate can decide."""

    soaked: timedelta | None
    soak_left: timedelta | None
    ready_in: timedelta | None

    @classmethod
    def of(cls, settings: ServiceSettings, state: StateView | None, ev: Evaluation | None,
           now: datetime, *, status: RolloutStatus) -> _Step:
        since = state.step_since if state and state.weight > 0 else None
        soaked = max(now - since, timedelta(0)) if since else None
        left = (max(settings.min_soak - soaked, timedelta(0)) if soaked is not None
                else None)
        data = _data_left(ev, now)
        waits = [w for w in (left, data) if w is not None]
        ready_in = (max(waits) if waits and status is RolloutStatus.WAITING else None)
        if (ready_in == timedelta(0) and data is None and ev is not None
                and ev.verdict is Verdict.INCONCLUSIVE):
            # soaked, and the verdict waits for no count of requests: something else holds
            # it (a probe, a source's gap), which the next verdict does not end by itself
            ready_in = None
        return cls(soaked=soaked, soak_left=left, ready_in=ready_in)


def _data_left(ev: Evaluation | None, now: datetime) -> timedelta | None:
    """The judge's estimate of the time until enough requests, counted from its verdict."""
    if ev is None or ev.wait_seconds is None:
        return None
    return max(timedelta(seconds=ev.wait_seconds) - (now - ev.at), timedelta(0))


def _needs(plan: Plan, settings: ServiceSettings, state: StateView | None, ev: Evaluation | None, *,
           status: RolloutStatus, why: str, drift: str | None, worker_runs: bool,
           step: _Step) -> tuple[str, ...]:
    """What would make approve available, in words, most pressing first."""
    weight = state.weight if state else 0
    if settings.next_step(weight) is None or (_may_approve(status, weight) and not drift
                                              and worker_runs):
        return ()
    out: list[str] = []
    if not worker_runs:
        out.append("the worker running again: no verdict is fresh without it")
    if drift:
        out.append(f"the route back at {weight} % (Revert puts it back)")
    if status is RolloutStatus.BLOCKED and ev is not None:
        out += [f"{c.name} passing: {c.detail}" if c.detail else f"{c.name} passing"
                for c in ev.checks if c.verdict is Verdict.FAIL]
        out.append(f"then a pass at {weight} % (or Revert; an override goes past it)")
    elif status in (RolloutStatus.WAITING, RolloutStatus.REVERTED):
        if step.soak_left:
            out.append(f"soak: {human_duration(step.soak_left)} more of "
                       f"{human_duration(settings.min_soak)} at {weight} %")
        if ev is None or ev.weight != weight:
            out.append(f"a verdict at {weight} %: the worker judges every "
                       f"{human_duration(plan.interval)}")
        else:
            out += [c.detail for c in ev.checks if c.verdict is Verdict.INCONCLUSIVE
                    and c.name != "min_soak" and c.detail]
        if not out:
            out.append(why)
    return tuple(out)


def _auto_reverted(state: StateView | None, last: DecisionView | None) -> str | None:
    """``auto-reverted by cutover at 13:20 UTC from 50 % to 0 %: <reason>``, while the
    service still stands where that revert left it."""
    if last is None or last.action != "auto-revert" or last.state != "applied":
        return None
    if state is None or state.weight != last.to_weight:
        return None
    return (f"auto-reverted by {last.actor} at {last.at:%Y-%m-%d %H:%M} UTC from "
            f"{last.from_weight} % to {last.to_weight} %: {last.reason}")


def _display(status: RolloutStatus, weight: int, *, drift: str | None, judged: bool,
             auto: str | None, ready_in: timedelta | None,
             verdict: Verdict | None) -> DisplayState:
    if drift:
        return DisplayState.DRIFTED
    if status is RolloutStatus.PROMOTED:
        return DisplayState.DONE
    if auto:
        return DisplayState.AUTO_REVERTED
    if status is RolloutStatus.BLOCKED:
        return DisplayState.FAILED
    if _may_approve(status, weight):
        # at 0 % outside the phase being migrated it waits its turn
        return DisplayState.READY if weight > 0 or judged else DisplayState.WAITING
    if ready_in is not None or verdict is Verdict.PASS:
        return DisplayState.PROGRESSING
    return DisplayState.WAITING


def _figures(ev: Evaluation | None, variant: str) -> dict[str, float | None]:
    if ev is None:
        return {}
    return dict(getattr(ev, variant).contract())


def _stale(plan: Plan, ev: Evaluation | None, now: datetime) -> str | None:
    if ev is None:
        return None
    age = now - ev.at
    if age > stale_after(plan.interval):
        return (f"the newest evaluation is {human_duration(age)} old while the worker "
                "does its rounds: see the worker's log for its evaluate step")
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

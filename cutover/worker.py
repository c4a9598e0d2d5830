"""The worker: collect, evaluate, apply the auto-revert policy, deliver alerts; again.

One round runs four steps in that order.  Each step is isolated, as slo-generator keeps
a failing exporter from aborting the others: a step that raises is logged with its
traceback, reported in the round's :class:`RoundReport`, and the next steps still run
(alerts about a failing collector must still go out; a judge that fails must not stop
the delivery of the alerts already waiting).  Each collector is isolated the same way.

:func:`run_forever` repeats rounds every interval while this process holds the worker
lease (one leader per store; the others wait and take over when it goes), serves
``/metrics`` and ``/healthz``, and stops cleanly on SIGINT or SIGTERM: the round in
progress finishes, the lease is released.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.engine import Engine

from collectors.base import Collector, CollectReport
from slo.kinds import EventKind
from slo.plan import Plan
from slo.probe_results import ProbeResult
from slo.verdict import Evaluation

if TYPE_CHECKING:  # the worker imports these where it uses them (a fast start for --help)
    from alerts.outbox import DeliveryReport, RetryPolicy
    from cutover.metrics import WorkerMetrics
    from rollout.routers.base import TrafficRouter
    from rollout.state import DecisionOutcome

__all__ = ["RoundReport", "StepName", "StepResult", "handle_signals", "run_forever",
           "run_round"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ProbesFn = Callable[[datetime], Sequence[ProbeResult]]


class WorkerLease(Protocol):
    """What the worker needs of its lease (store.lease.Lease): only its holder leads."""

    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class StepName(StrEnum):
    COLLECT = "collect"        # pull every source into the store
    PROBES = "probes"          # run the probes that are due, store their results
    EVALUATE = "evaluate"      # judge the services in play, store the evaluations
    POLICY = "auto-revert"     # revert services whose verdicts kept failing
    ROUTES = "routes"          # read every route back: drift is recorded, pending settles
    ALERTS = "alerts"          # turn events into deliveries and send them


@dataclass(frozen=True)
class StepResult:
    step: StepName
    ok: bool
    seconds: float
    error: str | None = None   # the exception in one line, when the step raised


@dataclass(frozen=True)
class RoundReport:
    """What one round did; ``ok`` only when every step (and every collector) did."""

    at: datetime
    steps: tuple[StepResult, ...]
    collect_reports: tuple[CollectReport, ...] = ()
    evaluations: tuple[tuple[Evaluation, int], ...] = ()
    reverted: tuple[DecisionOutcome, ...] = ()
    alerts_queued: int = 0
    alerts_delivered: DeliveryReport | None = None
    weights: dict[str, int] = field(default_factory=dict)
    probe_results: tuple[ProbeResult, ...] = ()

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps) and all(r.ok for r in self.collect_reports)

    def step(self, name: StepName) -> StepResult:
        return next(s for s in self.steps if s.step == name)

    def line(self) -> str:
        parts = [f"{s.step}={'ok' if s.ok else 'FAILED'}" for s in self.steps]
        verdicts = ", ".join(f"{e.service} {e.verdict}" for e, _ in self.evaluations)
        return (f"round at {self.at.isoformat()}: {' '.join(parts)}; "
                f"{len(self.evaluations)} evaluated ({verdicts or 'none'}); "
                f"{len(self.reverted)} auto-reverted; {self.alerts_queued} alerts queued")


class _Step:
    """Runs one step, timing it and turning an exception into a failed result."""

    def __init__(self, name: StepName):
        self.name = name
        self.result = StepResult(name, True, 0.0)

    @contextmanager
    def run(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        except Exception as e:
            log.exception("worker: step %s failed", self.name)
            self.result = StepResult(self.name, False, time.perf_counter() - t0,
                                     f"{e.__class__.__name__}: {e}")
        else:
            self.result = StepResult(self.name, True, time.perf_counter() - t0)


def run_round(*, plan: Plan, plan_hash: str, engine: Engine, router: TrafficRouter,
              collectors: Sequence[Collector], now: datetime,
              metrics: WorkerMetrics | None = None, alert_policy: RetryPolicy | None = None,
              probes: ProbesFn | None = None, holder: str | None = None,
              interval: timedelta | None = None) -> RoundReport:
    """One round: collect -> run the due probes -> settle pending decisions and evaluate ->
    auto-revert policy -> read the routes back -> dispatch and deliver alerts (so a drift
    found this round is told this round); then the heartbeat: the round's time and
    outcome, kept in the store for whoever asks whether the worker runs (``holder``: who
    did it; ``interval``: how often it does).

    ``alert_policy``: the outbox's RetryPolicy (default: its own, which paces each
    channel to one message a second); ``probes``: runs the due probes at a time
    (``cutover.probing.ProbeRunner``; None: no probes run, their results age)."""
    t0 = time.perf_counter()
    collect, probing, evaluate, policy, routes, alerts = (_Step(n) for n in StepName)
    probe_results: list[ProbeResult] = []
    weights: dict[str, int] = {}
    reports: list[CollectReport] = []
    evaluations: list[tuple[Evaluation, int]] = []
    reverted: list[DecisionOutcome] = []
    queued: int = 0
    delivered: DeliveryReport | None = None
    began = time.monotonic()
    with collect.run():
        reports = _collect(collectors, now=now)
        _source_events(engine=engine, collectors=collectors, reports=reports, now=now)
    bad = [r for r in reports if not r.ok]
    if bad:  # the reports already say what; the step is failed, the round goes on
        collect.result = StepResult(StepName.COLLECT, False, collect.result.seconds,
                                    "; ".join(r.line() for r in bad))
    with probing.run():
        probe_results = list(probes(now)) if probes is not None else []
    with evaluate.run():
        from rollout.evaluation import evaluate as judge

        # what a crash left pending first, from the routes' read-back: the judge then
        # judges the weight the route carries, not the one the store had before
        _reconcile(engine=engine, plan=plan, router=router, now=now)

        evaluations = list(judge(engine=engine, plan=plan, plan_hash=plan_hash, at=now))
    with policy.run():
        from rollout.gate import auto_revert

        reverted = auto_revert(engine=engine, plan=plan, router=router, now=now)
    failed = [o for o in reverted if o.state == "failed"]
    if failed:  # the gate recorded them failed; the round says so too
        policy.result = StepResult(StepName.POLICY, False, policy.result.seconds,
                                   "; ".join(f"{o.service}: {o.message}" for o in failed))
    with routes.run():
        weights = _read_routes(engine=engine, plan=plan, router=router, now=now)
        _read_baseline(engine=engine, plan=plan, router=router, now=now)
    with alerts.run():
        queued, delivered = _alerts(engine=engine, plan=plan, now=now, began=began,
                                    policy=alert_policy)
    report = RoundReport(
        at=now, steps=(collect.result, probing.result, evaluate.result, policy.result,
                       routes.result, alerts.result), probe_results=tuple(probe_results),
        collect_reports=tuple(reports), evaluations=tuple(evaluations),
        reverted=tuple(reverted), alerts_queued=queued, alerts_delivered=delivered,
        weights=weights)
    _observe(metrics, report, leader=True, engine=engine)
    _heartbeat(engine=engine, report=report, seconds=time.perf_counter() - t0,
               holder=holder, interval=interval or plan.interval)
    log.info("worker: %s", report.line())
    return report


def _heartbeat(*, engine: Engine, report: RoundReport, seconds: float, holder: str | None,
               interval: timedelta) -> None:
    from store.db import session_scope
    from store.heartbeat import record_round

    failed = "; ".join(f"{s.step}: {s.error or 'failed'}" for s in report.steps if not s.ok)
    try:
        with session_scope(engine) as session:
            record_round(session=session, holder=holder or _this_process(), at=report.at,
                         seconds=seconds, interval=interval, ok=report.ok, failed=failed)
    except Exception:  # the round itself is done; a missed heartbeat shows as stale
        log.exception("worker: could not record the round's heartbeat")


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _collect(collectors: Sequence[Collector], *, now: datetime) -> list[CollectReport]:
    out: list[CollectReport] = []
    for c in collectors:
        name = c.name
        try:
            out.append(c.collect(now=now))
        except Exception as e:
            log.exception("worker: collector %s failed", name)
            out.append(CollectReport(source=name, ok=False,
                                     problems=[f"{e.__class__.__name__}: {e}"]))
    return out


def _source_events(*, engine: Engine, collectors: Sequence[Collector],
                   reports: Sequence[CollectReport], now: datetime) -> None:
    """``source-down`` when a collector's pass fails and ``source-recovered`` when it
    succeeds again, for collectors that do not record these themselves.  The open
    condition is read from the store, so a new leader carries it on."""
    from store.db import session_scope
    from store.events import last_event_kind, record_event

    own = {c.name for c in collectors if c.records_source_events}
    for r in reports:
        if r.source in own:
            continue
        down, up = f"source-down:{r.source}", f"source-recovered:{r.source}"
        with session_scope(engine) as s:
            is_down = last_event_kind(session=s, dedup_keys=[down, up]) == "source-down"
            if not r.ok and not is_down:
                record_event(session=s, at=now, kind=EventKind.SOURCE_DOWN, severity="warning",
                             dedup_key=down, summary=f"source {r.source} failed: "
                             + ("; ".join(r.problems) or "no reason given"),
                             data={"source": r.source, "problems": list(r.problems)})
            elif r.ok and is_down:
                record_event(session=s, at=now, kind=EventKind.SOURCE_RECOVERED, dedup_key=up,
                             summary=f"source {r.source} works again",
                             data={"source": r.source})


def _alerts(*, engine: Engine, plan: Plan, now: datetime, began: float,
            policy: RetryPolicy | None) -> tuple[int, DeliveryReport]:
    """``began``: the round's start (time.monotonic()).  Delivery runs on the round's
    clock advanced by the time the round has taken, so a Retry-After is counted from
    when the answer came, not from the start of the round."""
    from alerts.outbox import deliver, dispatch

    queued = 0
    try:
        queued = dispatch(engine=engine, plan=plan, now=now)
    finally:
        # what is already in the outbox goes out even when dispatching new events failed
        sending = now + timedelta(seconds=time.monotonic() - began)
        delivered = deliver(engine=engine, plan=plan, now=sending, policy=policy)
    return queued, delivered


def _read_routes(*, engine: Engine, plan: Plan, router: TrafficRouter,
                 now: datetime) -> dict[str, int]:
    """Each route's weight as the router reports it.  Through the gate's status, which
    records drift (a route patched by hand) and its end as events; a route that cannot be
    read is missing here, never guessed."""
    from rollout.gate import service_status

    rows = service_status(engine=engine, plan=plan, router=router, now=now)
    for row in rows:
        if row.router_error:
            log.warning("worker: cannot read the route of %s: %s", row.service, row.router_error)
    return {r.service: r.router_weight for r in rows if r.router_weight is not None}


def _read_baseline(*, engine: Engine, plan: Plan, router: TrafficRouter, now: datetime) -> None:
    """The baseline's capacity: no ready replica while a service is below 100 % is an
    alert and holds every approve (rollout.baseline)."""
    from rollout.baseline import observe

    cap = observe(engine=engine, plan=plan, router=router, now=now)
    if cap is not None and not cap.known:
        log.warning("worker: cannot read the baseline's capacity: %s", cap.error)
    elif cap is not None and not cap.enough:
        log.warning("worker: %s", cap.words)


def _observe(metrics: WorkerMetrics | None, report: RoundReport | None, *, leader: bool,
             now: datetime | None = None, engine: Engine | None = None) -> None:
    if metrics is None:
        return
    try:
        if report is None:  # a round this worker did not do: only leadership changes
            metrics.observe_round(collect_reports=[], evaluations=[], weights={},
                                  alerts=_alert_counts(engine), leader=leader,
                                  now=now or datetime.now(UTC))
            return
        alerts = _alert_counts(engine)
        alerts["sent"] = report.alerts_delivered.sent if report.alerts_delivered else 0
        metrics.observe_round(collect_reports=list(report.collect_reports),
                              evaluations=[e for e, _ in report.evaluations],
                              weights=report.weights, alerts=alerts, leader=leader,
                              now=report.at)
    except Exception:
        log.exception("worker: could not update the metrics")


def _alert_counts(engine: Engine | None) -> dict[str, int]:
    if engine is None:
        return {}
    from alerts.outbox import pending_counts

    counts = pending_counts(engine=engine)
    return {"pending": counts.get("pending", 0), "failed": counts.get("failed", 0)}


# -- the loop ------------------------------------------------------------------------

def run_forever(*, plan: Plan, plan_hash: str, engine: Engine, router: TrafficRouter,
                collectors: Sequence[Collector], interval: timedelta,
                stop: threading.Event, clock: Clock | None = None,
                wall_seconds: Callable[[timedelta], float] | None = None,
                metrics: WorkerMetrics | None = None, lease: WorkerLease | None = None,
                on_round: Callable[[RoundReport], None] | None = None,
                probes: ProbesFn | None = None) -> int:
    """Rounds every ``interval`` (of ``clock``'s time) until ``stop`` is set; rounds run.

    ``lease`` (default: the store's worker lease): only its holder does rounds, the
    others wait an interval and try again.  ``wall_seconds`` turns the clock's time into
    seconds to sleep (a sped-up demo clock sleeps less)."""
    from store.lease import Lease

    now_of = clock or (lambda: datetime.now(UTC))
    to_wall = wall_seconds or (lambda d: d.total_seconds())
    held: WorkerLease = lease if lease is not None else Lease(engine, name="worker")
    rounds = 0
    _reconcile(engine=engine, plan=plan, router=router, now=now_of())
    try:
        while not stop.is_set():
            started = time.monotonic()
            leading = _lead(held)
            _show_leader(metrics, leading)
            if leading:
                report = run_round(plan=plan, plan_hash=plan_hash, engine=engine,
                                   router=router, collectors=collectors, now=now_of(),
                                   metrics=metrics, probes=probes,
                                   holder=getattr(lease, "holder", None), interval=interval)
                rounds += 1
                if on_round is not None:
                    on_round(report)
            else:
                _observe(metrics, None, leader=False, now=now_of(), engine=engine)
                log.debug("worker: another worker leads; waiting")
            stop.wait(max(0.0, to_wall(interval) - (time.monotonic() - started)))
    finally:
        held.release()
        log.info("worker: stopped after %d rounds", rounds)
    return rounds


def _lead(lease: WorkerLease) -> bool:
    try:
        return bool(lease.acquire())
    except Exception:
        log.exception("worker: cannot take the lease; not leading this round")
        return False


def _show_leader(metrics: WorkerMetrics | None, leading: bool) -> None:
    # at once, not after the round: a first round can take a while, and whoever watches
    # the gauge (a takeover, a dashboard) should not see two standbys meanwhile
    if metrics is not None:
        metrics.leader.set(1 if leading else 0)


def _reconcile(*, engine: Engine, plan: Plan, router: TrafficRouter, now: datetime) -> None:
    """Settle the decisions a crash left pending (their move lease is free), from the
    routes' read-back; at the start of the loop and of every round."""
    try:
        from rollout.gate import reconcile

        for out in reconcile(engine=engine, plan=plan, router=router, now=now):
            log.warning("worker: decision #%s of %s, left pending by its process, settled "
                        "%s from the route's read-back", out.decision_id, out.service,
                        out.state)
    except Exception:
        log.exception("worker: reconciling pending decisions failed; going on")


@contextmanager
def handle_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` (the round in progress finishes) while inside."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _set(signum: int, _frame: FrameType | None) -> None:
        log.info("worker: %s received, stopping after this round",
                 signal.Signals(signum).name)
        stop.set()

    old = {s: signal.signal(s, _set) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)

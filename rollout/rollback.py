"""The emergency rollback: every service back to the baseline at once, as one act.

:func:`preview` says what would move (each service's weight on the store and on its
route, what is pending); :func:`roll_back` does it.  A rollback is never refused: a
decision left pending by a crash (or in flight elsewhere) is settled from the route's
read-back first, and one that cannot be read is marked failed and gone past.  Every
route is patched at once, one thread per service, so the whole rollback takes about one
patch's time instead of one per service; one route that fails never stops the others.

The decisions are one *group* (store.groups): opened before the first patch, closed
once every member is settled, with its outcome and the seconds from the command to the
last route read back.  The members' own events are kept but not sent; the group's one
``rolled-back`` event is the alert.  A process killed mid-rollback leaves settled
decisions and, at worst, pending ones whose route says what happened: the next rollback
settles them, finishes the job and closes the killed group as ``interrupted``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Engine

from rollout import baseline, moves
from rollout.baseline import Capacity
from rollout.routers.base import TrafficRouter
from rollout.state import Action, DecisionState
from slo.errors import ConflictError, CutoverError, GateError
from slo.kinds import EventKind
from slo.plan import Plan
from store.db import session_scope
from store.events import record_event
from store.groups import close_group, group_decisions, open_group, open_groups
from store.rollout import get_state, pending_decisions, settle_decision

__all__ = ["GroupOutcome", "Preview", "PreviewRow", "Result", "Rollback", "ServiceResult",
           "emergency", "preview", "roll_back"]

log = logging.getLogger(__name__)

#: a claim that loses to a concurrent decision is tried again this many times
CLAIM_TRIES = 3


class Result(StrEnum):
    """What the rollback did to one service."""

    APPLIED = "applied"    # the route reads back 0 %, the store says 0 %
    ALREADY = "already"    # at 0 % on the store and on the route: nothing to do
    FAILED = "failed"      # the router refused or failed: the message says why
    PENDING = "pending"    # no answer and no read-back: the next rollback settles it


class GroupOutcome(StrEnum):
    APPLIED = "applied"          # every service is at 0 % (moved or already there)
    PARTIAL = "partial"          # some moved, some failed
    FAILED = "failed"            # none of those that needed moving moved
    NOTHING = "nothing"          # every service was at 0 % already
    INTERRUPTED = "interrupted"  # its process died; a later rollback closed it


@dataclass(frozen=True)
class PreviewRow:
    service: str
    route: str
    weight: int                   # on the store
    router_weight: int | None     # read back from the route now (None: unreadable)
    router_error: str | None = None
    pending_decision: int | None = None

    @property
    def moves(self) -> bool:
        """Whether the rollback has anything to do here (an unreadable route: try)."""
        return not (self.weight == 0 and self.router_weight == 0)


@dataclass(frozen=True)
class Preview:
    rows: tuple[PreviewRow, ...]
    #: the baseline's capacity, when the plan's cluster has one to read
    baseline: Capacity | None = None

    @property
    def moving(self) -> tuple[PreviewRow, ...]:
        return tuple(r for r in self.rows if r.moves)


@dataclass(frozen=True)
class ServiceResult:
    service: str
    route: str
    from_weight: int
    result: Result
    read_back: int | None = None
    message: str = ""
    decision_id: int | None = None
    #: seconds from the start of the rollback to this service's outcome
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result in (Result.APPLIED, Result.ALREADY)

    def contract(self) -> dict[str, Any]:
        return {"service": self.service, "route": self.route,
                "from_weight": self.from_weight, "result": self.result.value,
                "read_back": self.read_back, "message": self.message,
                "decision_id": self.decision_id, "seconds": self.seconds}


@dataclass(frozen=True)
class Rollback:
    group_id: int
    outcome: GroupOutcome
    results: tuple[ServiceResult, ...]
    seconds: float                 # from the command to every route read back
    baseline: dict[str, Any] = field(default_factory=dict)
    closed_interrupted: tuple[int, ...] = ()   # earlier groups this one closed

    @property
    def ok(self) -> bool:
        return self.outcome in (GroupOutcome.APPLIED, GroupOutcome.NOTHING)

    def contract(self) -> dict[str, Any]:
        """``cutover revert --all --json``."""
        return {"group_id": self.group_id, "outcome": self.outcome.value,
                "seconds": self.seconds, "baseline": self.baseline,
                "closed_interrupted": list(self.closed_interrupted),
                "results": [r.contract() for r in self.results]}


# -- preview ------------------------------------------------------------------------

def preview(plan: Plan, *, engine: Engine, router: TrafficRouter) -> Preview:
    """What a rollback would do now: each service's weight on the store and its route,
    what is pending, and the baseline's capacity.  Reads only (it records no drift and
    settles nothing)."""
    rows = []
    for svc in plan.services:
        observed, error = moves._try_read(router, svc.name)
        with session_scope(engine) as s:
            state = get_state(session=s, service=svc.name)
            pending = pending_decisions(session=s, service=svc.name)
        rows.append(PreviewRow(service=svc.name, route=svc.route,
                               weight=state.weight if state else 0, router_weight=observed,
                               router_error=error,
                               pending_decision=pending[0].id if pending else None))
    return Preview(rows=tuple(rows), baseline=baseline.read(baseline.reader_for(plan, router)))


# -- the rollback ---------------------------------------------------------------------

def roll_back(*, engine: Engine, plan: Plan, router: TrafficRouter, actor: str, reason: str,
              now: datetime, clock: Callable[[], float] = time.monotonic,
              started: float | None = None, prepared: dict[str, Any] | None = None,
              on_result: Callable[[ServiceResult], None] | None = None,
              actor_source: str = "unknown") -> Rollback:
    """Every service to 0 % at once; one group, one alert.  Only an operator may, with a
    reason (ConfigError, GateError otherwise: the only refusals, and before anything).

    ``started``: the ``clock()`` reading when the command began (default: now), so the
    seconds include what came first (a baseline scale-up, say); ``prepared``: what was
    done to the baseline's capacity, kept on the group; ``on_result``: called in the
    caller's thread with each service's result as it comes."""
    t0 = clock() if started is None else started
    moves._check_operator(plan, "all services", actor)
    moves._check_reason("all services", reason)
    moves._ensure(engine, plan)
    names = [svc.name for svc in plan.services]
    with session_scope(engine) as s:
        group_id = open_group(session=s, at=now, actor=actor, reason=reason,
                              services=names).id
    log.warning("rollback #%d of %d services by %s: %s", group_id, len(names), actor, reason)
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="rollback") as pool:
        futures = [pool.submit(_one, engine=engine, plan=plan, router=router, service=name,
                               actor=actor, actor_source=actor_source, reason=reason,
                               group_id=group_id, now=now, clock=clock, t0=t0)
                   for name in names]
        for fut in as_completed(futures):
            if on_result is not None:
                on_result(fut.result())
        results = tuple(f.result() for f in futures)
    seconds = clock() - t0
    outcome = _outcome(results)
    closed = _close_interrupted(engine, plan, before=now, keep=group_id)
    with session_scope(engine) as s:
        close_group(session=s, group_id=group_id, outcome=outcome.value, at=now,
                    seconds=seconds, baseline=prepared)
        _alert(s, group_id=group_id, actor=actor, reason=reason, outcome=outcome,
               results=results, seconds=seconds, now=now, prepared=prepared or {})
    log.warning("rollback #%d %s in %.2f s", group_id, outcome, seconds)
    return Rollback(group_id=group_id, outcome=outcome, results=results, seconds=seconds,
                    baseline=prepared or {}, closed_interrupted=closed)


def emergency(*, engine: Engine, plan: Plan, router: TrafficRouter, actor: str, reason: str,
              now: datetime, scale_baseline: bool = False, wait: bool = True,
              wait_timeout: timedelta = timedelta(minutes=2),
              say: Callable[[str], None] = log.warning,
              on_result: Callable[[ServiceResult], None] | None = None,
              clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep,
              actor_source: str = "unknown") -> Rollback:
    """The whole emergency procedure: who and why checked first, then the baseline's
    capacity (read; scaled up to ``baseline.min_replicas`` with ``scale_baseline``; its
    replicas waited for unless ``wait`` is False, at most ``wait_timeout``), then every
    route to 0 %.  The baseline never stops the rollback: short of replicas, forbidden
    to scale or slow to come ready, the traffic moves all the same, and the group
    records what was found and done.  The seconds count from the start."""
    t0 = clock()
    moves._check_operator(plan, "all services", actor)
    moves._check_reason("all services", reason)
    prepared = baseline.make_ready(baseline.reader_for(plan, router), scale=scale_baseline,
                                   wait=wait, timeout=wait_timeout, say=say, clock=clock,
                                   sleep=sleep)
    return roll_back(engine=engine, plan=plan, router=router, actor=actor, reason=reason,
                     now=now, clock=clock, started=t0, prepared=prepared,
                     on_result=on_result, actor_source=actor_source)


def _one(*, engine: Engine, plan: Plan, router: TrafficRouter, service: str, actor: str,
         reason: str, group_id: int, now: datetime, clock: Callable[[], float],
         t0: float, actor_source: str = "unknown") -> ServiceResult:
    """One service to 0 %; never raises (a failure is its result)."""
    route = plan.service(service).route
    try:
        for attempt in range(1, CLAIM_TRIES + 1):
            with moves.move_lease(engine, service, wait=moves.REVERT_WAIT, go_ahead=True):
                result = _attempt(engine=engine, plan=plan, router=router, service=service,
                                  actor=actor, reason=reason, group_id=group_id, now=now,
                                  clock=clock, t0=t0, attempt=attempt,
                                  actor_source=actor_source)
            if result is not None:
                return result
    except CutoverError as e:
        log.warning("%s: rollback failed: %s", service, e)
        message = str(e)
    except Exception as e:  # one service's bug must not stop the others' rollback
        log.exception("%s: rollback failed", service)
        message = f"{type(e).__name__}: {e}"
    return ServiceResult(service=service, route=route, from_weight=_weight(engine, service),
                         result=Result.FAILED, message=message, seconds=clock() - t0)


def _weight(engine: Engine, service: str) -> int:
    with session_scope(engine) as s:
        state = get_state(session=s, service=service)
    return state.weight if state is not None else 0


def _attempt(*, engine: Engine, plan: Plan, router: TrafficRouter, service: str, actor: str,
             reason: str, group_id: int, now: datetime, clock: Callable[[], float],
             t0: float, attempt: int,
             actor_source: str = "unknown") -> ServiceResult | None:
    """One try under the service's move lease (moves.move_lease): None when the claim lost
    to a concurrent decision and the rollback goes again."""
    route = plan.service(service).route
    _settle_pending(engine, plan, router, service, group_id=group_id, now=now)
    with session_scope(engine) as s:
        state = moves._state(s, service)
    from_weight = state.weight
    observed, _ = moves._try_read(router, service)
    if state.weight == 0 and observed == 0:
        return ServiceResult(service=service, route=route, from_weight=0,
                             result=Result.ALREADY, read_back=0,
                             message="already at 0 %", seconds=clock() - t0)
    move = moves._Move(service=service, action=Action.REVERT, from_weight=state.weight,
                      to_weight=0, actor=actor, reason=reason, group_id=group_id,
                      actor_source=actor_source)
    try:
        outcome, _error = moves._apply(engine=engine, plan=plan, router=router,
                                      move=move, version=state.version, now=now)
    except (ConflictError, GateError) as e:
        # another decision claimed the row between our read and our claim: the
        # rollback does not lose to it, it settles it and goes again
        log.info("%s: rollback claim lost (try %d of %d): %s", service, attempt,
                 CLAIM_TRIES, e)
        if attempt == CLAIM_TRIES:
            raise
        return None
    return ServiceResult(service=service, route=route, from_weight=from_weight,
                         result=_RESULT[outcome.state], read_back=outcome.read_back,
                         message=outcome.message, decision_id=outcome.decision_id,
                         seconds=clock() - t0)


_RESULT = {DecisionState.APPLIED: Result.APPLIED, DecisionState.FAILED: Result.FAILED,
           DecisionState.PENDING: Result.PENDING}


def _settle_pending(engine: Engine, plan: Plan, router: TrafficRouter, service: str, *,
                    group_id: int, now: datetime) -> None:
    """Settle whatever is pending on ``service`` from its route, however young; what
    cannot be read is marked failed, superseded by this rollback (whose own patch and
    read-back then say where the route stands)."""
    # the caller holds the move lease: whatever is pending is an orphan (or, past the
    # lease's wait, a decision the rollback goes ahead over)
    moves._settle_orphans(engine=engine, plan=plan, router=router, service=service, now=now)
    with session_scope(engine) as s:
        for d in pending_decisions(session=s, service=service):
            settle_decision(session=s, decision_id=d.id, state="failed", at=now,
                            error=f"superseded by rollback #{group_id}: the route could not "
                                  "be read to settle it")


def _outcome(results: Sequence[ServiceResult]) -> GroupOutcome:
    moved = [r for r in results if r.result is not Result.ALREADY]
    if not moved:
        return GroupOutcome.NOTHING
    ok = [r for r in moved if r.ok]
    if len(ok) == len(moved):
        return GroupOutcome.APPLIED
    return GroupOutcome.PARTIAL if ok else GroupOutcome.FAILED


def _close_interrupted(engine: Engine, plan: Plan, *, before: datetime,
                       keep: int) -> tuple[int, ...]:
    """Close the groups a killed rollback left open, once none of their members is
    pending (this rollback has just settled them), each with its alert."""
    closed = []
    with session_scope(engine) as s:
        for g in open_groups(session=s, before=before):
            if g.id == keep:
                continue
            members = group_decisions(session=s, group_id=g.id)
            if any(d.state is DecisionState.PENDING for d in members):
                continue
            if close_group(session=s, group_id=g.id, outcome=GroupOutcome.INTERRUPTED.value,
                           at=before, seconds=None):
                closed.append(g.id)
                record_event(session=s, at=before, kind=EventKind.ROLLED_BACK, severity="critical",
                             dedup_key=f"rolled-back:{g.id}",
                             summary=f"rollback #{g.id} by {g.actor} was interrupted; "
                                     f"{len(members)} of {len(g.services)} services had a "
                                     f"decision; rollback #{keep} finished the job",
                             data={"group_id": g.id, "actor": g.actor, "reason": g.reason,
                                   "services": list(g.services), "outcome": "interrupted"})
    return tuple(closed)


def _alert(s: Any, *, group_id: int, actor: str, reason: str, outcome: GroupOutcome,
           results: Sequence[ServiceResult], seconds: float, now: datetime,
           prepared: dict[str, Any]) -> None:
    counts = {r: sum(1 for x in results if x.result is r) for r in Result}
    said = ", ".join(f"{n} {r.value}" for r, n in counts.items() if n)
    lines = [_line(r) for r in sorted(results, key=lambda r: r.ok)]
    summary = (f"rollback #{group_id} by {actor}: {outcome.value} ({said}) in "
               f"{seconds:.1f} s")
    record_event(session=s, at=now, kind=EventKind.ROLLED_BACK,
                 severity="critical" if outcome is not GroupOutcome.NOTHING else "warning",
                 dedup_key=f"rolled-back:{group_id}", summary=summary,
                 data={"group_id": group_id, "actor": actor, "reason": reason,
                       "outcome": outcome.value, "seconds": seconds,
                       "services": [r.service for r in results if r.result is not Result.ALREADY],
                       "reasons": lines, "results": [r.contract() for r in results],
                       "baseline": prepared})


def _line(r: ServiceResult) -> str:
    if r.result is Result.ALREADY:
        return f"{r.service}: already at 0 %"
    if r.ok:
        return f"{r.service}: {r.from_weight} % -> 0 % applied"
    return f"{r.service}: {r.from_weight} % -> 0 % {r.result.value}: {r.message}"

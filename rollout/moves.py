"""How a traffic move is made: the checks before it, the claim (a pending decision and the
state's version), the router call, and the settling of what it did; the move lease that
lets one decision at a time touch a service, the orphans a killed process left, the
staleness and refusal records.  rollout.gate's public operations are made of these."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from rollout.assess import (
    Seen,
    seen_at_step,
)
from rollout.routers.base import TrafficRouter
from rollout.state import (
    Action,
    DecisionOutcome,
    DecisionState,
    RolloutStatus,
)
from slo.errors import (
    ConfigError,
    ConflictError,
    CutoverError,
    GateError,
    RouterError,
    StaleError,
    StoreError,
)
from slo.kinds import EventKind
from slo.plan import Plan, ServiceSettings
from store.db import session_scope
from store.evaluations import latest_verdict
from store.events import record_event
from store.lease import Lease
from store.rollout import (
    StateView,
    add_decision,
    add_refusal,
    ensure_states,
    get_state,
    list_decisions,
    pending_decisions,
    service_names,
    settle_decision,
    update_state,
)

__all__ = ["APPROVE_WAIT", "AUTO_ACTOR", "REVERT_WAIT", "move_lease", "reconcile"]

log = logging.getLogger(__name__)

AUTO_ACTOR = "cutover"
#: how long an approve waits for another decision on the same service to finish before
#: it is refused (a live decision takes well under a second unless the API server hangs)
APPROVE_WAIT = 15.0
#: how long a revert waits for it; then it goes ahead over it (a rollback is never
#: refused): a router call times out after 10 s
REVERT_WAIT = 20.0



# -- checks ------------------------------------------------------------------------

def _settings(plan: Plan, service: str) -> ServiceSettings:
    try:
        return plan.settings(service)
    except KeyError:
        names = ", ".join(s.name for s in plan.services)
        raise ConfigError(f"unknown service {service!r}; the plan has {names}") from None


def _check_operator(plan: Plan, service: str, actor: str) -> None:
    if not actor or not plan.may_operate(actor):
        raise GateError(service, f"{actor!r} is not among the plan's operators and may not "
                        "approve or revert")


def _check_reason(service: str, reason: str, *, override: bool = False) -> None:
    if not reason or not reason.strip():
        what = "an override needs" if override else "a decision needs"
        raise ConfigError(f"{service}: {what} a reason (--reason TEXT)")


# -- store helpers -------------------------------------------------------------------

def _ensure(engine: Engine, plan: Plan) -> None:
    """A state row for every service of the plan (weight 0 until a decision moves it)."""
    with session_scope(engine) as s:
        have = set(service_names(session=s))
        missing = {svc.name: (p.id if (p := plan.phase_of(svc.name)) else None)
                   for svc in plan.services if svc.name not in have}
        if missing:  # no write (no lock) when every row is there
            ensure_states(session=s, phases=missing)


def _state(session: Session, service: str) -> StateView:
    state = get_state(session=session, service=service)
    if state is None:  # _ensure ran first; only a concurrent delete gets here
        raise GateError(service, "no rollout state; run the command again")
    return state


def _seen_at_step(session: Session, state: StateView, now: datetime) -> Seen | None:
    latest = latest_verdict(session=session, service=state.service, at_or_before=now)
    if latest is None:
        return None
    return seen_at_step(weight=state.weight, step_since=state.step_since,
                        evaluation_id=latest.id, evaluated_at=latest.at,
                        evaluated_weight=latest.weight, verdict=latest.verdict,
                        reasons=latest.reasons, evaluated_step_since=latest.step_since)


def _try_read(router: TrafficRouter, service: str) -> tuple[int | None, str | None]:
    try:
        return router.read_weight(service), None
    except RouterError as e:
        log.info("cannot read the route of %s: %s", service, e)
        return None, str(e)


# -- claim, router, settle -------------------------------------------------------------

@dataclass(frozen=True)
class _Move:
    service: str
    action: Action
    from_weight: int
    to_weight: int
    actor: str
    reason: str
    override: bool = False
    evaluation_id: int | None = None
    expected_router: int | None = None   # refuse to overwrite a route moved meanwhile
    actor_source: str = "unknown"        # rollout.identity.Source
    group_id: int | None = None          # one act over many services (rollout.rollback)

    def outcome(self, state: DecisionState, *, decision_id: int | None,
                read_back: int | None = None, message: str = "") -> DecisionOutcome:
        return DecisionOutcome(service=self.service, action=self.action,
                               from_weight=self.from_weight, to_weight=self.to_weight,
                               state=state, actor=self.actor, override=self.override,
                               decision_id=decision_id, read_back=read_back, message=message)


def _claim(engine: Engine, move: _Move, *, version: int, now: datetime) -> tuple[int, int]:
    """Bump the version and write the pending decision: (decision id, new version)."""
    with session_scope(engine) as s:
        # the UPDATE first: it takes the row (PostgreSQL) or the write lock (SQLite), so
        # the pending check below cannot race another claim
        new_version = update_state(session=s, service=move.service, expected_version=version,
                                   updated_at=now)
        if move.action is Action.APPROVE:   # a rollback goes ahead over it
            _refuse_if_pending(s, move.service)
        d = add_decision(session=s, at=now, service=move.service, action=move.action.value,
                         from_weight=move.from_weight, to_weight=move.to_weight,
                         actor=move.actor, reason=move.reason, override=move.override,
                         evaluation_id=move.evaluation_id, group_id=move.group_id,
                         actor_source=move.actor_source)
        return d.id, new_version


def _refuse_if_pending(s: Session, service: str) -> None:
    """Under the move lease a pending decision is one whose route could not be read
    back to settle it: an approve on top of it would step from a guess."""
    others = pending_decisions(session=s, service=service)
    if others:
        p = others[0]
        raise GateError(service, f"decision #{p.id} ({p.action} {p.from_weight} -> "
                        f"{p.to_weight} % by {p.actor}) is still pending: its route could "
                        "not be read back to settle it; a revert goes ahead over it")


def _apply(*, engine: Engine, plan: Plan, router: TrafficRouter, move: _Move, version: int,
           now: datetime) -> tuple[DecisionOutcome, CutoverError | None]:
    """Claim, tell the router, settle.  Refusals before the claim raise; a router
    failure after it is recorded and returned with its error."""
    decision_id, version = _claim(engine, move, version=version, now=now)
    try:
        read_back = router.set_weight(move.service, move.to_weight,
                                      expected=move.expected_router)
    except RouterError as e:
        return _after_failure(engine=engine, plan=plan, router=router, move=move,
                              decision_id=decision_id, version=version, error=e, now=now)
    if read_back != move.to_weight:
        route = plan.service(move.service).route
        mismatch = RouterError(route, f"reads back {read_back} % after setting "
                               f"{move.to_weight} %")
        return _settle_failed(engine, move, decision_id=decision_id, version=version,
                              error=mismatch, observed=read_back, now=now)
    with session_scope(engine) as s:
        _settle_applied(s, plan, move, decision_id=decision_id, version=version,
                        read_back=read_back, now=now)
        if move.action is not Action.APPROVE:
            _supersede(s, move, decision_id=decision_id, now=now)
    log.info("%s: %s %d -> %d %% by %s applied (decision #%d)", move.service, move.action,
             move.from_weight, move.to_weight, move.actor, decision_id)
    return move.outcome(DecisionState.APPLIED, decision_id=decision_id, read_back=read_back,
                        message=f"{move.service}: {move.from_weight} -> {move.to_weight} %"), None


def _supersede(s: Session, move: _Move, *, decision_id: int, now: datetime) -> None:
    """A rollback that went ahead over decisions nobody could settle: the route now
    carries the rollback's weight whatever they did, so they end failed."""
    for d in pending_decisions(session=s, service=move.service):
        if d.id == decision_id:
            continue
        settle_decision(session=s, decision_id=d.id, state="failed", at=now,
                        error=f"superseded by {move.action} #{decision_id} to "
                              f"{move.to_weight} %: the route was not read back before it")


def _after_failure(*, engine: Engine, plan: Plan, router: TrafficRouter, move: _Move,
                   decision_id: int, version: int, error: RouterError,
                   now: datetime) -> tuple[DecisionOutcome, CutoverError | None]:
    observed, _ = _try_read(router, move.service)
    if observed == move.to_weight:
        # the change went through although the call failed (a lost answer)
        with session_scope(engine) as s:
            _settle_applied(s, plan, move, decision_id=decision_id, version=version,
                            read_back=observed, now=now)
        return move.outcome(DecisionState.APPLIED, decision_id=decision_id,
                            read_back=observed, message=f"applied despite: {error}"), None
    if observed is None and error.status is None:
        # no answer and no read: it may or may not have happened; reconcile decides
        # raised to the caller too: logged at info so a command line shows one line
        log.info("%s: decision #%d left pending: %s", move.service, decision_id, error)
        return move.outcome(DecisionState.PENDING, decision_id=decision_id,
                            message=str(error)), error
    return _settle_failed(engine, move, decision_id=decision_id, version=version,
                          error=error, observed=observed, now=now)


def _settle_failed(engine: Engine, move: _Move, *, decision_id: int, version: int,
                   error: CutoverError, observed: int | None,
                   now: datetime) -> tuple[DecisionOutcome, CutoverError | None]:
    with session_scope(engine) as s:
        settle_decision(session=s, decision_id=decision_id, state="failed", at=now,
                        error=str(error), read_back=observed)
        values: dict[str, Any] = {"updated_at": now}
        if observed is not None:
            values.update(router_weight=observed, router_checked_at=now)
        update_state(session=s, service=move.service, expected_version=version, **values)
    log.info("%s: %s %d -> %d %% failed (decision #%d): %s", move.service, move.action,
              move.from_weight, move.to_weight, decision_id, error)
    return move.outcome(DecisionState.FAILED, decision_id=decision_id, read_back=observed,
                        message=str(error)), error


def _settle_applied(s: Session, plan: Plan, move: _Move, *, decision_id: int, version: int,
                    read_back: int, now: datetime) -> None:
    settings = _settings(plan, move.service)
    if not settle_decision(session=s, decision_id=decision_id, state="applied", at=now,
                           read_back=read_back):
        raise GateError(move.service, f"decision #{decision_id} was settled by someone else")
    promoted = settings.next_step(move.to_weight) is None
    status = (RolloutStatus.REVERTED if move.action is not Action.APPROVE
              else RolloutStatus.PROMOTED if promoted else RolloutStatus.WAITING)
    update_state(session=s, service=move.service, expected_version=version,
                 weight=move.to_weight, step_since=now, status=status.value,
                 router_weight=read_back, router_checked_at=now, drift_since=None,
                 consecutive_failures=0, phase=settings.phase, updated_at=now)
    _events(s, plan, move, decision_id=decision_id, now=now)
    if move.action is Action.APPROVE and promoted:
        _phase_complete(s, plan, move.service, now=now)


_EVENT = {Action.APPROVE: (EventKind.APPROVED, "info"),
          Action.REVERT: (EventKind.REVERTED, "warning"),
          Action.AUTO_REVERT: (EventKind.AUTO_REVERTED, "critical")}


def _events(s: Session, plan: Plan, move: _Move, *, decision_id: int, now: datetime) -> None:
    kind, severity = _EVENT[move.action]
    data = {"decision_id": decision_id, "from_weight": move.from_weight,
            "to_weight": move.to_weight, "actor": move.actor, "reason": move.reason,
            "override": move.override, "evaluation_id": move.evaluation_id,
            "route": plan.service(move.service).route, "group_id": move.group_id}
    verb = {EventKind.APPROVED: "approved", EventKind.REVERTED: "reverted",
            EventKind.AUTO_REVERTED: "reverted automatically"}[kind]
    mark = " [OVERRIDE]" if move.override else ""
    summary = (f"{move.service}: {move.from_weight} % -> {move.to_weight} % {verb} by "
               f"{move.actor}{mark}: {move.reason}")
    # one key per decision: each is news, not a repeat of an ongoing condition.  A
    # group's members are kept, not sent: the group's one event carries them to chat
    record_event(session=s, at=now, kind=kind, service=move.service, severity=severity,
                 dedup_key=f"{kind}:{move.service}:{decision_id}", summary=summary, data=data,
                 dispatched=move.group_id is not None)
    if move.override:
        record_event(session=s, at=now, kind=EventKind.OVERRIDE, service=move.service,
                     severity="warning", dedup_key=f"override:{move.service}:{decision_id}",
                     summary=f"{move.service}: gate overridden by {move.actor}: {move.reason}",
                     data=data)


def _phase_complete(s: Session, plan: Plan, service: str, *, now: datetime) -> None:
    phase = plan.phase_of(service)
    if phase is None:
        return
    for other in phase.services:
        if other == service:
            continue
        st = get_state(session=s, service=other)
        if st is None or _settings(plan, other).next_step(st.weight) is not None:
            return
    record_event(session=s, at=now, kind=EventKind.PHASE_COMPLETE, service=None,
                 dedup_key=f"phase-complete:{phase.id}",
                 summary=f"phase {phase.id} ({phase.name}) complete: "
                         f"{', '.join(phase.services)} at their last step",
                 data={"phase": phase.id, "services": list(phase.services)})


def _raise_unless_applied(result: tuple[DecisionOutcome, CutoverError | None]) -> DecisionOutcome:
    outcome, error = result
    if error is not None:
        raise error
    return outcome


# -- the move lease, orphans, staleness, refusals ------------------------------------

@contextmanager
def move_lease(engine: Engine, service: str, *, wait: float,
               go_ahead: bool = False) -> Iterator[bool]:
    """Hold ``service``'s move lease inside; yields whether it is held.  Waits up to
    ``wait`` seconds for another decision on it to finish; then refuses (GateError), or
    with ``go_ahead`` (a rollback) goes on without it."""
    lease = Lease(engine, name=f"move:{service}")
    deadline = time.monotonic() + wait
    while not lease.acquire():
        if time.monotonic() >= deadline:
            if not go_ahead:
                raise GateError(service, f"another decision on {service} has been in "
                                f"progress for over {wait:.0f} s; try again")
            log.warning("%s: another decision holds the move lease after %.0f s; the "
                        "rollback goes ahead over it", service, wait)
            break
        time.sleep(0.05)
    try:
        yield lease.held
    finally:
        lease.release()


def _weight_now(engine: Engine, service: str) -> int:
    with session_scope(engine) as s:
        return _state(s, service).weight


def _check_fresh(engine: Engine, service: str, state: StateView, looked: int) -> None:
    """Refuse a decision made on a step that has moved since ``looked``, saying what
    moved it."""
    if state.weight == looked:
        return
    with session_scope(engine) as s:
        moves = [d for d in list_decisions(session=s, service=service, limit=20)
                 if d.state is DecisionState.APPLIED]
    last = moves[0] if moves else None
    if last is not None and last.to_weight == state.weight:
        moved = (f"decision #{last.id}: {last.action} {last.from_weight} -> "
                 f"{last.to_weight} % by {last.actor}")
    else:
        moved = "no decision on record says how"
    raise StaleError(service, seen=looked, current=state.weight, moved=moved)


class _Refusals:
    """A context that records a refusal (GateError, ConflictError) as a decision in state
    refused before it goes on up; ``to`` gives the weight the attempt aimed at."""

    def __init__(self, engine: Engine, *, service: str, action: Action, actor: str,
                 reason: str, override: bool, to: Callable[[int], int], now: datetime):
        self.engine, self.service, self.action = engine, service, action
        self.actor, self.reason, self.override, self.to, self.now = (
            actor, reason, override, to, now)

    def __enter__(self) -> _Refusals:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, _tb: Any) -> None:
        if isinstance(error, GateError | ConflictError):
            why = error.reason if isinstance(error, GateError) else str(error)
            _record_refusal(self, why)


def _record_refusal(r: _Refusals, why: str) -> None:
    try:
        with session_scope(r.engine) as s:
            state = get_state(session=s, service=r.service)
            weight = state.weight if state is not None else 0
            d = add_refusal(session=s, at=r.now, service=r.service, action=r.action.value,
                            from_weight=weight, to_weight=r.to(weight), actor=r.actor,
                            reason=r.reason, why=why, override=r.override)
        log.info("%s: %s by %s refused (decision #%s): %s", r.service, r.action, r.actor,
                 d.id, why)
    except StoreError as e:   # the refusal itself still reaches the caller
        log.error("%s: could not record the refused %s: %s", r.service, r.action, e)



def reconcile(*, engine: Engine, plan: Plan, router: TrafficRouter, now: datetime,
              service: str | None = None) -> list[DecisionOutcome]:
    """Settle the orphans: pending decisions whose move lease is free (their process
    died, or lost its router's answer).  One whose lease is held is being applied and
    is left alone; the worker calls this every round."""
    with session_scope(engine) as s:
        services = sorted({d.service for d in pending_decisions(session=s, service=service)})
    outcomes: list[DecisionOutcome] = []
    for name in services:
        if name not in {svc.name for svc in plan.services}:
            log.warning("decision pending for %s, which the plan no longer has", name)
            continue
        lease = Lease(engine, name=f"move:{name}")
        if not lease.acquire():
            continue   # a live decision: its own process settles it
        try:
            outcomes += _settle_orphans(engine=engine, plan=plan, router=router,
                                        service=name, now=now)
        finally:
            lease.release()
    return outcomes


def _settle_orphans(*, engine: Engine, plan: Plan, router: TrafficRouter, service: str,
                    now: datetime) -> list[DecisionOutcome]:
    """With ``service``'s move lease held, every pending decision of it is an orphan:
    the route is read back; at the decision's weight it was applied, else it failed.  A
    route that cannot be read leaves them pending (a revert then goes ahead over them)."""
    with session_scope(engine) as s:
        orphans = pending_decisions(session=s, service=service)
    if not orphans:
        return []
    _ensure(engine, plan)
    observed, err = _try_read(router, service)
    if observed is None:
        log.warning("%s: %d pending decision(s) stay pending: %s", service, len(orphans), err)
        return []
    outcomes = []
    for d in orphans:
        move = _Move(service=d.service, action=d.action, from_weight=d.from_weight,
                     to_weight=d.to_weight, actor=d.actor, reason=d.reason,
                     override=d.override, evaluation_id=d.evaluation_id, group_id=d.group_id)
        with session_scope(engine) as s:
            version = _state(s, d.service).version
            if observed == d.to_weight:
                _settle_applied(s, plan, move, decision_id=d.id, version=version,
                                read_back=observed, now=now)
                outcomes.append(move.outcome(DecisionState.APPLIED, decision_id=d.id,
                                             read_back=observed, message="reconciled"))
                log.warning("%s: decision #%d settled applied from the route's read-back "
                            "(%d %%): its process did not finish it", service, d.id, observed)
                continue
        error = RouterError(plan.service(d.service).route,
                            f"found pending, its process gone; the route reads {observed} %, "
                            f"not {d.to_weight} %: not applied")
        outcome, _ = _settle_failed(engine, move, decision_id=d.id, version=version,
                                    error=error, observed=observed, now=now)
        outcomes.append(outcome)
    return outcomes


def _check_version(state: StateView, expected: int | None) -> None:
    if expected is not None and state.version != expected:
        raise ConflictError(f"service {state.service}", expected, state.version)


def _drift_words(plan: Plan, service: str, observed: int | None, stored: int) -> str:
    route = plan.service(service).route
    return (f"route {route} shows {observed} % but the store says {stored} % "
            "(changed by hand?)")

"""The gate: who may move a service's traffic, when, and the record of every move.

A change goes in three steps, so that nothing half-applied survives a crash:

1. *claim*: in one transaction, the service's row moves to a new ``version`` (the WHERE
   clause checks the version the caller read) and the decision is written ``pending``;
2. the router is told, and reads the weight back;
3. *settle*: in one transaction, the decision is marked ``applied`` (the state takes
   the new weight, the step's soak starts, the events are recorded) or ``failed`` (the
   state keeps its weight).

The three steps run under the service's *move lease* (``move:<service>``, a
:class:`store.lease.Lease`): one decision per service at a time, across processes and
hosts.  The lease dies with its holder, so a pending decision whose lease is free is an
orphan (its process was killed, or its router call lost its answer): whoever takes the
lease next settles it from the route's read-back first (:func:`reconcile`; the worker does
every round).  No timeout decides it, and a revert never waits on a dead process.

Each decision names the step it moves from (``from_weight``, the weight its caller
looked at; read at the start of the call when not given): an approve, or a one-step
revert, made on a step that has moved since is refused with :class:`StaleError`, which
says what moved it.  A revert to 0 (``revert --to 0``, ``revert --all``, auto-revert) is
never refused: it settles what is pending and goes ahead.  Every refusal is on record,
as a decision in state ``refused`` with the gate's reason.

Approve needs, at the current step, a pass as the latest verdict and ``min_soak`` since
the step began; ``override`` (with a reason) goes past that and past drift, and is
recorded as such on the decision and in an ``override`` event.  Drift (a route changed
by hand) is shown and recorded as an event, never undone except by an operator's
explicit revert."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from rollout import baseline
from rollout.holds import Hold, holds, revert_holds
from rollout.routers.base import TrafficRouter
from rollout.state import (
    Action,
    DecisionOutcome,
    DecisionRecord,
    DecisionState,
    RolloutStatus,
    ServiceStatus,
    may_approve,
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
from slo.units import format_duration
from slo.verdict import Verdict
from store.db import session_scope
from store.evaluations import EvaluationRow, evaluation_history, latest_evaluation
from store.events import record_event
from store.lease import Lease
from store.rollout import (
    Decision,
    ServiceState,
    add_decision,
    add_refusal,
    ensure_states,
    get_state,
    list_decisions,
    pending_decisions,
    service_names,
    set_failures,
    set_observed,
    settle_decision,
    update_state,
)

__all__ = ["AUTO_ACTOR", "APPROVE_WAIT", "REVERT_WAIT", "Seen", "approve", "assess",
           "auto_revert", "decisions", "move_lease", "reconcile", "revert", "revert_all",
           "seen_at_step", "service_status", "step_rows"]

log = logging.getLogger(__name__)

AUTO_ACTOR = "cutover"
#: how long an approve waits for another decision on the same service to finish before
#: it is refused (a live decision takes well under a second unless the API server hangs)
APPROVE_WAIT = 15.0
#: how long a revert waits for it; then it goes ahead over it (a rollback is never
#: refused): a router call times out after 10 s
REVERT_WAIT = 20.0


@dataclass(frozen=True)
class Seen:
    """The verdict the gate rests on: the latest evaluation at the current step."""

    id: int
    verdict: Verdict
    at: datetime
    reason: str
    #: the weight and the step start the verdict was made for (always the current step's)
    weight: int = 0
    step_since: datetime | None = None


# -- the pure part ------------------------------------------------------------------

def assess(*, weight: int, stored_status: str, step_since: datetime | None,
           settings: ServiceSettings, seen: Seen | None,
           now: datetime) -> tuple[RolloutStatus, str]:
    """Where a service stands, and why in words.  READY (and REVERTED at 0 %) may be
    approved without an override."""
    nxt = settings.next_step(weight)
    if nxt is None:
        return RolloutStatus.PROMOTED, f"at the last step ({weight} %): nothing to approve"
    if seen is not None and seen.verdict is Verdict.FAIL:
        return RolloutStatus.BLOCKED, f"the latest verdict at {weight} % is fail: {seen.reason}"
    reverted = stored_status == RolloutStatus.REVERTED.value
    if weight == 0:
        # no candidate traffic, nothing to judge: the first step needs no pass
        if reverted:
            return RolloutStatus.REVERTED, f"reverted to the baseline; approve starts again at {nxt} %"
        return RolloutStatus.READY, f"at 0 %: the first step ({nxt} %) needs no verdict"
    waiting = RolloutStatus.REVERTED if reverted else RolloutStatus.WAITING
    if seen is None:
        return waiting, f"no verdict yet at {weight} %: waiting for data"
    if seen.verdict is not Verdict.PASS:
        return waiting, f"the latest verdict at {weight} % is {seen.verdict.value}: {seen.reason}"
    soaked = now - (step_since or now)
    if soaked < settings.min_soak:
        left = format_duration(settings.min_soak - soaked)
        return waiting, (f"pass, but soaking: {left} more of "
                         f"{format_duration(settings.min_soak)} at {weight} %")
    return RolloutStatus.READY, f"pass at {weight} %, soaked {format_duration(soaked)}"


def seen_at_step(*, weight: int, step_since: datetime | None, evaluation_id: int,
                 evaluated_at: datetime, evaluated_weight: int, verdict: Verdict,
                 reasons: Sequence[str], evaluated_step_since: datetime | None = None
                 ) -> Seen | None:
    """The verdict the gate rests on: the latest evaluation if it was made at this
    weight since this step began (one judged before the step, or at another weight by
    an evaluation racing a step, says nothing about it).  An evaluation that names the
    step it was made for (``evaluated_step_since``) must name this one."""
    if evaluated_weight != weight:
        return None
    if step_since is not None and evaluated_at < step_since:
        return None
    if evaluated_step_since is not None and step_since is not None \
            and evaluated_step_since != step_since:
        return None
    return Seen(id=evaluation_id, verdict=verdict, at=evaluated_at,
                reason=reasons[0] if reasons else "no reason given",
                weight=evaluated_weight, step_since=evaluated_step_since or step_since)


def step_rows(rows: Sequence[EvaluationRow], *, weight: int,
              step_since: datetime | None) -> list[EvaluationRow]:
    """The evaluations made for the step (``weight``, ``step_since``): at that weight, not
    before the step began, and naming that step where the row names one."""
    return [r for r in rows if r.weight == weight
            and (step_since is None or r.at >= step_since)
            and (r.step_since is None or step_since is None or r.step_since == step_since)]


def trailing_failures(verdicts: list[str]) -> int:
    """How many fail verdicts end the list (oldest first)."""
    n = 0
    for v in reversed(verdicts):
        if v != Verdict.FAIL.value:
            break
        n += 1
    return n


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


def _state(session: Session, service: str) -> ServiceState:
    state = get_state(session=session, service=service)
    if state is None:  # _ensure ran first; only a concurrent delete gets here
        raise GateError(service, "no rollout state; run the command again")
    return state


def _seen_at_step(session: Session, state: ServiceState, now: datetime) -> Seen | None:
    row = latest_evaluation(session=session, service=state.service, at_or_before=now)
    if row is None or row.id is None:
        return None
    return seen_at_step(weight=state.weight, step_since=state.step_since, evaluation_id=row.id,
                        evaluated_at=row.at, evaluated_weight=row.weight,
                        verdict=Verdict(row.verdict), reasons=row.reasons,
                        evaluated_step_since=row.step_since)


def _try_read(router: TrafficRouter, service: str) -> tuple[int | None, str | None]:
    try:
        return router.read_weight(service), None
    except RouterError as e:
        log.info("cannot read the route of %s: %s", service, e)
        return None, str(e)


def _record(d: Decision) -> DecisionRecord:
    assert d.id is not None
    return DecisionRecord(
        id=d.id, at=d.at, service=d.service, action=Action(d.action),
        from_weight=d.from_weight, to_weight=d.to_weight, actor=d.actor, reason=d.reason,
        override=d.override, state=DecisionState(d.state), evaluation_id=d.evaluation_id,
        error=d.error, applied_at=d.applied_at, read_back=d.read_back, group_id=d.group_id,
        actor_source=d.actor_source)


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
        assert d.id is not None
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
        if d.id == decision_id or d.id is None:
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


def _check_fresh(engine: Engine, service: str, state: ServiceState, looked: int) -> None:
    """Refuse a decision made on a step that has moved since ``looked``, saying what
    moved it."""
    if state.weight == looked:
        return
    with session_scope(engine) as s:
        moves = [d for d in list_decisions(session=s, service=service, limit=20)
                 if d.state == DecisionState.APPLIED.value]
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


# -- the public operations -----------------------------------------------------------

def approve(*, engine: Engine, plan: Plan, router: TrafficRouter, service: str, actor: str,
            reason: str, override: bool = False, now: datetime,
            expected_version: int | None = None,
            from_weight: int | None = None,
            actor_source: str = "unknown") -> DecisionOutcome:
    """Move ``service`` to its next step if the gate allows (or ``override``).
    ``actor_source`` says where ``actor`` came from (rollout.identity.Source).

    ``from_weight``: the weight the caller looked at (default: the stored weight at the
    start of the call); a step that has moved since is refused.  Raises GateError
    (refused: verdict, soak, drift, operator, another decision), StaleError (the step
    moved since it was looked at), ConflictError (the state changed since
    ``expected_version``), RouterError (the router failed; the decision is recorded
    failed).  Each refusal is recorded as a decision in state refused."""
    settings = _settings(plan, service)
    _check_reason(service, reason, override=override)
    _ensure(engine, plan)
    looked = _weight_now(engine, service) if from_weight is None else from_weight
    with _Refusals(engine, service=service, action=Action.APPROVE, actor=actor,
                   reason=reason, override=override,
                   to=lambda w: settings.next_step(w) or w, now=now):
        _check_operator(plan, service, actor)
        with move_lease(engine, service, wait=APPROVE_WAIT):
            _settle_orphans(engine=engine, plan=plan, router=router, service=service, now=now)
            return _approve(engine=engine, plan=plan, router=router, settings=settings,
                            service=service, actor=actor, reason=reason, override=override,
                            now=now, expected_version=expected_version, looked=looked,
                            actor_source=actor_source)


def _approve(*, engine: Engine, plan: Plan, router: TrafficRouter, settings: ServiceSettings,
             service: str, actor: str, reason: str, override: bool, now: datetime,
             expected_version: int | None, looked: int,
             actor_source: str = "unknown") -> DecisionOutcome:
    with session_scope(engine) as s:
        state = _state(s, service)
        seen = _seen_at_step(s, state, now)
        alarms = holds(session=s, plan=plan, service=service)
        _refuse_if_pending(s, service)
        held = baseline.hold(s)
    _check_version(state, expected_version)
    _check_fresh(engine, service, state, looked)
    nxt = settings.next_step(state.weight)
    if nxt is None:
        raise GateError(service, f"already at the last step ({state.weight} %): nothing to approve")
    status, why = assess(weight=state.weight, stored_status=state.status,
                         step_since=state.step_since, settings=settings, seen=seen, now=now)
    observed = router.read_weight(service)
    used_override = False
    if held:
        if not override:
            raise GateError(service, f"not approved: {held} (--override with a reason goes "
                            "past it)")
        used_override = True
    if not may_approve(status, state.weight):
        if not override:
            raise GateError(service, f"not approved: {why} (--override with a reason goes "
                            "past a verdict)")
        used_override = True
    if alarms:
        if not override:
            raise GateError(service, f"held: {alarms[0].reason} (--override with a reason "
                            "goes past it)")
        used_override = True
    if observed != state.weight:
        if not override:
            raise GateError(service, _drift_words(plan, service, observed, state.weight) +
                            ": revert to put it back, or --override to step from the store's "
                            "weight")
        used_override = True
    move = _Move(service=service, action=Action.APPROVE, from_weight=state.weight,
                 to_weight=nxt, actor=actor, reason=reason, override=used_override,
                 evaluation_id=seen.id if seen else None, expected_router=observed,
                 actor_source=actor_source)
    return _raise_unless_applied(_apply(engine=engine, plan=plan, router=router, move=move,
                                        version=state.version, now=now))


def revert(*, engine: Engine, plan: Plan, router: TrafficRouter, service: str, actor: str,
           reason: str, to: str = "previous", now: datetime,
           expected_version: int | None = None,
           from_weight: int | None = None,
           actor_source: str = "unknown") -> DecisionOutcome:
    """Step ``service`` back one step (``to="previous"``) or to 0 (``to="0"``).

    Always allowed to an operator, whatever is pending (settled from the route first);
    it also puts back a route changed by hand.  A one-step revert made on a step that
    has moved since ``from_weight`` (or ``expected_version``) is refused (StaleError):
    it would step back from a step nobody looked at.  A revert to 0 never is."""
    return _raise_unless_applied(_revert(engine=engine, plan=plan, router=router,
                                         service=service, actor=actor, reason=reason, to=to,
                                         now=now, expected_version=expected_version,
                                         from_weight=from_weight,
                                         actor_source=actor_source))


def _revert(*, engine: Engine, plan: Plan, router: TrafficRouter, service: str, actor: str,
            reason: str, to: str, now: datetime, expected_version: int | None = None,
            from_weight: int | None = None,
            actor_source: str = "unknown") -> tuple[DecisionOutcome, CutoverError | None]:
    if to not in ("previous", "0"):
        raise ConfigError(f"{service}: revert --to takes previous or 0, got {to!r}")
    settings = _settings(plan, service)
    _check_reason(service, reason)
    _ensure(engine, plan)
    looked = _weight_now(engine, service) if from_weight is None else from_weight
    target_of = (lambda w: 0) if to == "0" else settings.previous_step
    with _Refusals(engine, service=service, action=Action.REVERT, actor=actor,
                   reason=reason, override=False, to=target_of, now=now):
        _check_operator(plan, service, actor)
        with move_lease(engine, service, wait=REVERT_WAIT, go_ahead=True):
            settled = _settle_orphans(engine=engine, plan=plan, router=router,
                                      service=service, now=now)
            if from_weight is None:   # a crashed decision that landed: step back from it
                looked = next((o.to_weight for o in settled
                               if o.ok and o.from_weight == looked), looked)
            with session_scope(engine) as s:
                state = _state(s, service)
            if to == "previous":
                _check_version(state, expected_version)
                _check_fresh(engine, service, state, looked)
            target = target_of(state.weight)
            observed, _ = _try_read(router, service)
            if target == state.weight and observed == target:
                raise GateError(service, f"already at {target} % on the store and on the "
                                "route: nothing to revert")
            move = _Move(service=service, action=Action.REVERT, from_weight=state.weight,
                         to_weight=target, actor=actor, reason=reason,
                         actor_source=actor_source)
            return _apply(engine=engine, plan=plan, router=router, move=move,
                          version=state.version, now=now)


def revert_all(*, engine: Engine, plan: Plan, router: TrafficRouter, actor: str,
               reason: str, now: datetime,
               actor_source: str = "unknown") -> list[DecisionOutcome]:
    """Every service back to the baseline (0 %), the emergency rollback.  A service
    already at 0 on the store and on its route (once what is pending is settled) is
    skipped; one that fails does not stop the others: its outcome says FAILED and why."""
    _check_operator(plan, "all services", actor)
    _check_reason("all services", reason)
    _ensure(engine, plan)
    reconcile(engine=engine, plan=plan, router=router, now=now)
    outcomes = []
    for svc in plan.services:
        with session_scope(engine) as s:
            weight = _state(s, svc.name).weight
            pending = pending_decisions(session=s, service=svc.name)
        observed, _ = _try_read(router, svc.name)
        if weight == 0 and observed == 0 and not pending:
            continue
        to_zero = partial(_revert, engine=engine, plan=plan, router=router, service=svc.name,
                          actor=actor, reason=reason, to="0", now=now,
                          actor_source=actor_source)
        outcomes.append(_guarded(to_zero, service=svc.name, action=Action.REVERT,
                                 from_weight=weight, actor=actor))
    return outcomes


#: a move to run: its outcome, and the error that stopped it (None when applied)
Run = Callable[[], tuple[DecisionOutcome, CutoverError | None]]


def _guarded(run: Run, *, service: str, action: Action, from_weight: int,
             actor: str) -> DecisionOutcome:
    """``run()``'s outcome; a refusal before any decision becomes a FAILED outcome."""
    try:
        outcome, _error = run()
        return outcome
    except CutoverError as e:
        log.info("%s: %s refused: %s", service, action, e)
        return DecisionOutcome(service=service, action=action, from_weight=from_weight,
                               to_weight=0, state=DecisionState.FAILED, actor=actor,
                               message=str(e))


def auto_revert(*, engine: Engine, plan: Plan, router: TrafficRouter,
                now: datetime) -> list[DecisionOutcome]:
    """The worker's policy: a service with ``auto_revert.after_failures`` consecutive
    fail verdicts at its current step goes back to 0 %, actor ``cutover``; so does one
    with an Alertmanager alert firing that the plan reverts on (rollout/holds.py)."""
    _ensure(engine, plan)
    outcomes = []
    with session_scope(engine) as s:
        alarms = revert_holds(session=s, plan=plan)
    for svc in plan.services:
        settings = _settings(plan, svc.name)
        with session_scope(engine) as s:
            state = _state(s, svc.name)
        if svc.name in alarms and state.weight > 0:
            outcomes.append(_alarm_revert(engine=engine, plan=plan, router=router,
                                          hold=alarms[svc.name], weight=state.weight, now=now))
            continue
        with session_scope(engine) as s:
            if not settings.auto_revert.enabled or state.weight == 0:
                continue
            # consecutive fails within this one step: a fail of an earlier step, even
            # at the same weight, never counts towards reverting this one
            rows = step_rows(evaluation_history(session=s, service=svc.name,
                                                start=state.step_since, end=now),
                             weight=state.weight, step_since=state.step_since)
            failures = trailing_failures([r.verdict for r in rows])
            if failures != state.consecutive_failures:
                set_failures(session=s, service=svc.name, count=failures)
        if failures < settings.auto_revert.after_failures:
            continue
        last = rows[-1]
        why = last.reasons[0] if last.reasons else "fail"
        reason = (f"{failures} consecutive fail verdicts at {state.weight} % (policy: "
                  f"{settings.auto_revert.after_failures}); latest: {why}")
        auto = partial(_auto, engine=engine, plan=plan, router=router, service=svc.name,
                       reason=reason, evaluation_id=last.id, now=now)
        out = _guarded(auto, service=svc.name, action=Action.AUTO_REVERT,
                       from_weight=state.weight, actor=AUTO_ACTOR)
        if not out.ok:  # nobody is at a terminal: the worker's log must say it
            log.error("%s: auto-revert %d -> 0 %% %s: %s", svc.name, out.from_weight,
                      out.state, out.message)
        outcomes.append(out)
    return outcomes


def _alarm_revert(*, engine: Engine, plan: Plan, router: TrafficRouter, hold: Hold,
                  weight: int, now: datetime) -> DecisionOutcome:
    """A firing alert the plan reverts on (rollout/holds.py): back to 0 %."""
    reason = f"{hold.reason}; the plan reverts on it (alerts.inbox.revert_on)"
    auto = partial(_auto, engine=engine, plan=plan, router=router, service=hold.service,
                   reason=reason, evaluation_id=None, now=now)
    out = _guarded(auto, service=hold.service, action=Action.AUTO_REVERT, from_weight=weight,
                   actor=AUTO_ACTOR)
    if not out.ok:
        log.error("%s: auto-revert on alert %s %d -> 0 %% %s: %s", hold.service,
                  hold.alertname, weight, out.state, out.message)
    return out


def _auto(*, engine: Engine, plan: Plan, router: TrafficRouter, service: str, reason: str,
          evaluation_id: int | None,
          now: datetime) -> tuple[DecisionOutcome, CutoverError | None]:
    with move_lease(engine, service, wait=REVERT_WAIT, go_ahead=True):
        _settle_orphans(engine=engine, plan=plan, router=router, service=service, now=now)
        with session_scope(engine) as s:
            state = _state(s, service)
        move = _Move(service=service, action=Action.AUTO_REVERT, from_weight=state.weight,
                     to_weight=0, actor=AUTO_ACTOR, reason=reason, evaluation_id=evaluation_id,
                     actor_source="system")
        return _apply(engine=engine, plan=plan, router=router, move=move,
                      version=state.version, now=now)


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
        assert d.id is not None
        move = _Move(service=d.service, action=Action(d.action), from_weight=d.from_weight,
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


def _check_version(state: ServiceState, expected: int | None) -> None:
    if expected is not None and state.version != expected:
        raise ConflictError(f"service {state.service}", expected, state.version)


def _drift_words(plan: Plan, service: str, observed: int | None, stored: int) -> str:
    route = plan.service(service).route
    return (f"route {route} shows {observed} % but the store says {stored} % "
            "(changed by hand?)")


# -- reading ---------------------------------------------------------------------------

def service_status(*, engine: Engine, plan: Plan, router: TrafficRouter,
                   now: datetime) -> list[ServiceStatus]:
    """Every service of the plan, in plan order: the ``status --json`` rows.

    Reads each route; drift that starts or ends is recorded (state and event), never
    undone.  It does not settle pending decisions: call :func:`reconcile` first."""
    _ensure(engine, plan)
    return [_one_status(engine, plan, router, svc.name, now) for svc in plan.services]


def _one_status(engine: Engine, plan: Plan, router: TrafficRouter, service: str,
                now: datetime) -> ServiceStatus:
    settings = _settings(plan, service)
    observed, router_error = _try_read(router, service)
    with session_scope(engine) as s:
        state = _state(s, service)
        seen = _seen_at_step(s, state, now)
        pending = pending_decisions(session=s, service=service)
        overridden = _step_overridden(s, state)
        in_flight = bool(pending) and observed in (pending[0].from_weight,
                                                   pending[0].to_weight)
        drift = observed is not None and observed != state.weight and not in_flight
        _note_drift(s, plan, state, observed, drift=drift, now=now)
    status, why = assess(weight=state.weight, stored_status=state.status,
                         step_since=state.step_since, settings=settings, seen=seen, now=now)
    if drift:
        why = _drift_words(plan, service, observed, state.weight) + "; " + why
    if pending:
        p = pending[0]
        why = f"decision #{p.id} pending ({p.action} {p.from_weight} -> {p.to_weight} %); " + why
    return ServiceStatus(
        service=service, phase=settings.phase, weight=state.weight, router_weight=observed,
        drift=drift, next_weight=settings.next_step(state.weight), state=status,
        verdict=seen.verdict.value if seen else None, evaluated_at=seen.at if seen else None,
        evaluated_weight=seen.weight if seen else None,
        evaluated_step_since=seen.step_since if seen else None,
        why=why, version=state.version, step_since=state.step_since,
        evaluation_id=seen.id if seen else None, router_error=router_error,
        pending_decision=pending[0].id if pending else None, override=overridden)


def _step_overridden(s: Session, state: ServiceState) -> bool:
    """Whether the decision that put the service on its current step was an override."""
    for d in list_decisions(session=s, service=state.service, limit=20):
        if d.state == DecisionState.APPLIED.value:
            return d.override and d.to_weight == state.weight
    return False


def _note_drift(s: Session, plan: Plan, state: ServiceState, observed: int | None, *,
                drift: bool, now: datetime) -> None:
    started = drift and state.drift_since is None
    ended = not drift and observed is not None and state.drift_since is not None
    if not (started or ended or (observed is not None and observed != state.router_weight)):
        return  # nothing new: no write on every page refresh
    since = now if started else (None if ended else state.drift_since)
    set_observed(session=s, service=state.service, router_weight=observed, checked_at=now,
                 drift_since=since)
    data = {"route": plan.service(state.service).route, "stored": state.weight,
            "router": observed}
    if started:
        record_event(session=s, at=now, kind=EventKind.DRIFT, service=state.service,
                     severity="warning", data=data,
                     summary=_drift_words(plan, state.service, observed, state.weight) +
                     "; left as it is")
    elif ended:
        record_event(session=s, at=now, kind=EventKind.DRIFT_RESOLVED, service=state.service,
                     data=data, summary=f"{state.service}: route {data['route']} agrees "
                     f"with the store again ({state.weight} %)")


def decisions(*, engine: Engine, service: str | None = None,
              limit: int = 200) -> list[DecisionRecord]:
    """The audit trail, newest first."""
    with session_scope(engine) as s:
        return [_record(d) for d in list_decisions(session=s, service=service, limit=limit)]


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
explicit revert.

Where each part lives: this module is the public operations (approve, revert,
revert_all, auto_revert); what the gate would say, pure, is rollout/assess.py; how a
move is claimed, applied and settled, the move lease and the orphans, rollout/moves.py;
the status read and the audit trail, rollout/status.py.  The names callers used from
here are still here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial

from sqlalchemy.engine import Engine
from sqlmodel import Session

from rollout import baseline
from rollout.assess import (
    Seen,
    assess,
    seen_at_step,
    trailing_failures,
)
from rollout.holds import Hold, holds, revert_holds
from rollout.moves import (
    APPROVE_WAIT,
    AUTO_ACTOR,
    REVERT_WAIT,
    _apply,
    _check_fresh,
    _check_operator,
    _check_reason,
    _check_version,
    _drift_words,
    _ensure,
    _Move,
    _raise_unless_applied,
    _Refusals,
    _refuse_if_pending,
    _seen_at_step,
    _settings,
    _settle_orphans,
    _state,
    _try_read,
    _weight_now,
    move_lease,
    reconcile,
)
from rollout.routers.base import TrafficRouter
from rollout.state import (
    Action,
    DecisionOutcome,
    DecisionState,
    may_approve,
)
from rollout.status import (
    decisions,
    service_status,
)
from slo.errors import (
    ConfigError,
    CutoverError,
    GateError,
)
from slo.plan import Plan, ServiceSettings
from slo.probes import probe_checks
from slo.verdict import Verdict
from store.db import session_scope
from store.evaluations import step_verdicts
from store.probes import latest_probe_results
from store.rollout import (
    pending_decisions,
    set_failures,
)

__all__ = ["AUTO_ACTOR", "APPROVE_WAIT", "REVERT_WAIT", "Seen", "approve", "assess",
           "auto_revert", "decisions", "move_lease", "reconcile", "revert", "revert_all",
           "seen_at_step", "service_status"]

log = logging.getLogger(__name__)


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
        probes_failing = _failing_probes(s, plan, service, now) if seen is None else []
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
    if probes_failing:
        if not override:
            raise GateError(service, f"held: {'; '.join(probes_failing)} (--override with a "
                            "reason goes past it)")
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


def _failing_probes(s: Session, plan: Plan, service: str, now: datetime) -> list[str]:
    """Why the service's probes hold a step no verdict has judged yet (a first step taken
    before its phase's evaluations begin): each failing probe's own words.  Probes need
    no traffic, so what they found counts before any request does."""
    probes = plan.probes_for(service)
    if not probes:
        return []
    results = latest_probe_results(session=s, at=now, probes=[p.name for p in probes])
    return [c.detail for c in probe_checks(probes, results, at=now)
            if c.verdict is Verdict.FAIL]


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
            rows = step_verdicts(session=s, service=svc.name, weight=state.weight,
                                 step_since=state.step_since, end=now)
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

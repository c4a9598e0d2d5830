"""Reading the gate: each service's status (a read that records drift, a route changed
by hand, and its end) and the audit trail of decisions."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from rollout.assess import (
    assess,
)
from rollout.moves import (
    _drift_words,
    _ensure,
    _seen_at_step,
    _settings,
    _state,
    _try_read,
)
from rollout.routers.base import TrafficRouter
from rollout.state import (
    DecisionRecord,
    DecisionState,
    ServiceStatus,
)
from slo.kinds import EventKind
from slo.plan import Plan
from store.db import session_scope
from store.events import record_event
from store.rollout import (
    StateView,
    list_decisions,
    pending_decisions,
    set_observed,
)

__all__ = ["decisions", "service_status"]

log = logging.getLogger(__name__)


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


def _step_overridden(s: Session, state: StateView) -> bool:
    """Whether the decision that put the service on its current step was an override."""
    for d in list_decisions(session=s, service=state.service, limit=20):
        if d.state is DecisionState.APPLIED:
            return d.override and d.to_weight == state.weight
    return False


def _note_drift(s: Session, plan: Plan, state: StateView, observed: int | None, *,
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
        return list_decisions(session=s, service=service, limit=limit)

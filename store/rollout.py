"""Rollout state per service and the decisions that moved it.

``ServiceState`` is one row per service: the weight stored, the step it is on, when that
step began (soak is measured from it) and a ``version`` that every change increments,
so two operators acting at once cannot both move it (optimistic concurrency).
``Decision`` is the audit trail: written *pending* before the router is touched, then
marked applied or failed.  ``DryRunRoute`` holds the weights of the ``dry-run`` router
(the demo's), which changes nothing outside the store.

The functions here are the only SQL the gate runs; each takes the session it works in,
so the gate decides what one transaction holds, and hands back frozen values
(``StateView``, ``DecisionRecord``): the rows stay here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col, select

from slo.errors import ConflictError
from slo.units import iso
from store.db import UtcDateTime

__all__ = [
    "Action",
    "Decision",
    "DecisionRecord",
    "DecisionState",
    "DryRunRoute",
    "ServiceState",
    "StateView",
    "add_decision",
    "add_refusal",
    "all_states",
    "applied_steps_all",
    "decision_record",
    "dry_run_weight",
    "ensure_states",
    "get_state",
    "has_history",
    "list_decisions",
    "pending_decisions",
    "last_applied",
    "service_names",
    "set_dry_run_weight",
    "set_failures",
    "set_observed",
    "settle_decision",
    "update_state",
]


class ServiceState(SQLModel, table=True):
    __tablename__ = "service_state"

    service: str = Field(primary_key=True, max_length=63)
    phase: str | None = Field(default=None, max_length=63)
    weight: int = 0                       # percent of traffic on the candidate, 0..100
    status: str = Field(default="waiting", max_length=24)
    step_since: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    consecutive_failures: int = 0
    router_weight: int | None = None      # last read back from the router
    router_checked_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    version: int = 0
    updated_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    #: since when the router has shown a weight other than ``weight`` (None: no drift)
    drift_since: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


class Decision(SQLModel, table=True):
    __tablename__ = "decision"
    __table_args__ = (Index("ix_decision_service_at", "service", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    service: str = Field(max_length=63)
    action: str = Field(max_length=16)        # approve | revert | auto-revert
    from_weight: int
    to_weight: int
    actor: str = Field(max_length=200)
    #: where the actor's name came from (rollout.identity.Source)
    actor_source: str = Field(default="unknown", max_length=32)
    reason: str = ""
    override: bool = False
    state: str = Field(default="pending", max_length=16)   # pending | applied | failed | refused
    error: str | None = None
    evaluation_id: int | None = None
    applied_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    #: the weight the router reported after the change (None: not read back)
    read_back: int | None = None
    #: the decision group it belongs to (store.groups: an emergency rollback), if any
    group_id: int | None = Field(default=None, index=True)


class DryRunRoute(SQLModel, table=True):
    """The dry-run router's "route": a weight per service, kept in the store only."""

    __tablename__ = "dry_run_route"

    service: str = Field(primary_key=True, max_length=63)
    weight: int = 0
    updated_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


# -- the values handed out ---------------------------------------------------------------

class Action(StrEnum):
    APPROVE = "approve"
    REVERT = "revert"
    AUTO_REVERT = "auto-revert"   # the worker's policy, actor "cutover"


class DecisionState(StrEnum):
    PENDING = "pending"   # written, router not yet confirmed (a crash leaves it here)
    APPLIED = "applied"   # the router reads back the new weight
    FAILED = "failed"     # the router refused or reads back the old weight
    REFUSED = "refused"   # the gate said no: nothing was asked of the router


@dataclass(frozen=True)
class StateView:
    """A service's rollout state as stored (the router weight is the last one read back)."""

    service: str
    phase: str | None
    weight: int
    status: str
    step_since: datetime | None
    consecutive_failures: int
    router_weight: int | None
    router_checked_at: datetime | None
    version: int
    updated_at: datetime | None
    drift_since: datetime | None = None


@dataclass(frozen=True)
class DecisionRecord:
    """One decision of the audit trail (``cutover decisions --json``)."""

    id: int
    at: datetime
    service: str
    action: Action
    from_weight: int
    to_weight: int
    actor: str
    reason: str
    override: bool
    state: DecisionState
    evaluation_id: int | None = None
    error: str | None = None
    applied_at: datetime | None = None
    read_back: int | None = None
    actor_source: str = "unknown"
    group_id: int | None = None

    def contract(self) -> dict[str, Any]:
        return {
            "id": self.id, "at": iso(self.at), "service": self.service,
            "action": self.action.value, "from_weight": self.from_weight,
            "to_weight": self.to_weight, "actor": self.actor, "reason": self.reason,
            "override": self.override, "state": self.state.value,
            "evaluation_id": self.evaluation_id,
            # additions to the contract
            "error": self.error, "applied_at": iso(self.applied_at),
            "read_back": self.read_back, "group_id": self.group_id,
            "actor_source": self.actor_source,
        }


def _state_view(r: ServiceState) -> StateView:
    return StateView(
        service=r.service, phase=r.phase, weight=r.weight, status=r.status,
        step_since=r.step_since, consecutive_failures=r.consecutive_failures,
        router_weight=r.router_weight, router_checked_at=r.router_checked_at,
        version=r.version, updated_at=r.updated_at, drift_since=r.drift_since)


def decision_record(d: Decision) -> DecisionRecord:
    """A row as the value handed out (for store/ only: nothing outside names the row)."""
    assert d.id is not None  # flushed
    return DecisionRecord(
        id=d.id, at=d.at, service=d.service, action=Action(d.action),
        from_weight=d.from_weight, to_weight=d.to_weight, actor=d.actor, reason=d.reason,
        override=d.override, state=DecisionState(d.state), evaluation_id=d.evaluation_id,
        error=d.error, applied_at=d.applied_at, read_back=d.read_back, group_id=d.group_id,
        actor_source=d.actor_source)


# -- service state -------------------------------------------------------------------

def service_names(*, session: Session) -> list[str]:
    """Every service with a state row."""
    return list(session.exec(select(ServiceState.service)).all())


def applied_steps_all(*, session: Session) -> list[tuple[str, int, datetime]]:
    """(service, to weight, when applied) of every applied decision, in the order applied."""
    q = (select(Decision).where(Decision.state == "applied")
         .order_by(col(Decision.applied_at), col(Decision.id)))
    return [(d.service, d.to_weight, d.applied_at or d.at) for d in session.exec(q).all()]


def has_history(*, session: Session) -> bool:
    """Whether any decision or evaluation is stored (the demo wants an empty store)."""
    from store.evaluations import EvaluationRow

    return (session.exec(select(Decision.id).limit(1)).first() is not None
            or session.exec(select(EvaluationRow.id).limit(1)).first() is not None)


def all_states(*, session: Session) -> list[StateView]:
    """Every service's state."""
    return [_state_view(r) for r in session.exec(select(ServiceState)).all()]


def last_applied(*, session: Session, service: str, at: datetime) -> tuple[int, datetime] | None:
    """The weight the last decision applied to ``service`` by ``at`` set, and when it
    was applied (a replay's step at an earlier time); None before the first."""
    q = (select(Decision)
         .where(Decision.service == service, Decision.state == "applied",
                col(Decision.applied_at).is_not(None), col(Decision.applied_at) <= at)
         .order_by(col(Decision.applied_at).desc(), col(Decision.id).desc()).limit(1))
    last = session.exec(q).first()
    if last is None or last.applied_at is None:
        return None
    return last.to_weight, last.applied_at


def ensure_states(*, session: Session, phases: Mapping[str, str | None]) -> None:
    """Insert a row at weight 0 for each service (name -> phase) that has none.

    ``ON CONFLICT DO NOTHING`` so two processes starting at once do not collide."""
    if not phases:
        return
    rows = [{"service": s, "phase": p, "weight": 0, "status": "waiting",
             "consecutive_failures": 0, "version": 0} for s, p in phases.items()]
    dialect = session.get_bind().dialect.name
    table: Any = ServiceState.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).values(rows).on_conflict_do_nothing(
        index_elements=["service"]))


def get_state(*, session: Session, service: str) -> StateView | None:
    row = session.get(ServiceState, service, populate_existing=True)
    return _state_view(row) if row is not None else None


def update_state(*, session: Session, service: str, expected_version: int,
                 **values: Any) -> int:
    """Change the row only if its version is still ``expected_version``; the new version.

    Raises ConflictError when someone else changed it first: the UPDATE's WHERE is the
    check, so it holds on PostgreSQL (the second writer re-reads after the first commits)
    and on SQLite (writers are serialised)."""
    unknown = set(values) - set(ServiceState.model_fields)
    if unknown:
        raise TypeError(f"unknown service_state columns: {sorted(unknown)}")
    new_version = expected_version + 1
    result: Any = session.execute(
        update(ServiceState)
        .where(col(ServiceState.service) == service)
        .where(col(ServiceState.version) == expected_version)
        .values(version=new_version, **values)
    )
    if result.rowcount != 1:
        found = session.exec(select(ServiceState.version)
                             .where(ServiceState.service == service)).first()
        raise ConflictError(f"service {service}", expected_version, found)
    return new_version


def set_observed(*, session: Session, service: str, router_weight: int | None,
                 checked_at: datetime, drift_since: datetime | None) -> None:
    """Record what the router showed.  Observations do not move ``version``: they are
    not decisions, and a page refresh must not invalidate the version an operator saw."""
    session.execute(
        update(ServiceState).where(col(ServiceState.service) == service)
        .values(router_weight=router_weight, router_checked_at=checked_at,
                drift_since=drift_since)
    )


def set_failures(*, session: Session, service: str, count: int) -> None:
    """The run of fail verdicts at the current step, for display; not a decision, so the
    version stays."""
    session.execute(update(ServiceState).where(col(ServiceState.service) == service)
                    .values(consecutive_failures=count))


# -- decisions -----------------------------------------------------------------------

def add_decision(*, session: Session, at: datetime, service: str, action: str,
                 from_weight: int, to_weight: int, actor: str, reason: str,
                 override: bool = False, evaluation_id: int | None = None,
                 group_id: int | None = None, actor_source: str = "unknown") -> DecisionRecord:
    row = Decision(at=at, service=service, action=action, from_weight=from_weight,
                   to_weight=to_weight, actor=actor, reason=reason, override=override,
                   state="pending", evaluation_id=evaluation_id, group_id=group_id,
                   actor_source=actor_source)
    session.add(row)
    session.flush()
    return decision_record(row)


def add_refusal(*, session: Session, at: datetime, service: str, action: str,
                from_weight: int, to_weight: int, actor: str, reason: str, why: str,
                override: bool = False) -> DecisionRecord:
    """An attempt the gate said no to, on record: who, the reason they gave, and the
    gate's reason (``error``).  Written settled: nothing was asked of the router."""
    row = Decision(at=at, service=service, action=action, from_weight=from_weight,
                   to_weight=to_weight, actor=actor, reason=reason, override=override,
                   state="refused", error=why)
    session.add(row)
    session.flush()
    return decision_record(row)


def settle_decision(*, session: Session, decision_id: int, state: str, at: datetime,
                    error: str | None = None, read_back: int | None = None) -> bool:
    """Mark a pending decision applied or failed; False if it was no longer pending."""
    if state not in ("applied", "failed"):
        raise ValueError(f"expected applied or failed, got {state!r}")
    result: Any = session.execute(
        update(Decision).where(col(Decision.id) == decision_id)
        .where(col(Decision.state) == "pending")
        .values(state=state, error=error, read_back=read_back,
                applied_at=at if state == "applied" else None)
    )
    return bool(result.rowcount == 1)


def pending_decisions(*, session: Session, service: str | None = None,
                      before: datetime | None = None) -> list[DecisionRecord]:
    """Pending decisions, oldest first; ``before``: only those made before it."""
    q = select(Decision).where(Decision.state == "pending")
    if service is not None:
        q = q.where(Decision.service == service)
    if before is not None:
        q = q.where(Decision.at <= before)
    return [decision_record(d) for d in session.exec(q.order_by(col(Decision.id))).all()]


def list_decisions(*, session: Session, service: str | None = None,
                   limit: int = 200) -> list[DecisionRecord]:
    """The audit trail, newest first."""
    q = select(Decision)
    if service is not None:
        q = q.where(Decision.service == service)
    q = q.order_by(col(Decision.at).desc(), col(Decision.id).desc()).limit(limit)
    return [decision_record(d) for d in session.exec(q).all()]


# -- the dry-run router's weights ------------------------------------------------------

def dry_run_weight(*, session: Session, service: str) -> int:
    row = session.get(DryRunRoute, service, populate_existing=True)
    return row.weight if row is not None else 0


def set_dry_run_weight(*, session: Session, service: str, weight: int, at: datetime) -> None:
    row = session.get(DryRunRoute, service)
    if row is None:
        session.add(DryRunRoute(service=service, weight=weight, updated_at=at))
    else:
        row.weight, row.updated_at = weight, at
        session.add(row)
    session.flush()

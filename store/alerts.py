"""The alert outbox: one delivery row per (event, chat channel), and the state of each
ongoing condition for repeat throttling.

A delivery moves through :class:`DeliveryState`; every move is a conditional UPDATE
(``WHERE state = ... AND claim_token = ...``) so two workers never both own a row, on
SQLite and on PostgreSQL alike.  A delivery carries a snapshot of its event, so it
stays sendable and readable whatever retention does to the event table; finished rows
(``done``) opt in to ``cutover db prune``, pending ones never go."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, and_, func, or_, update
from sqlmodel import Field, Session, SQLModel, col, select

from slo.kinds import EventKind
from store.db import UtcDateTime
from store.events import EventRow

__all__ = [
    "AlertCondition",
    "AlertDelivery",
    "AlertEvent",
    "ConditionState",
    "DeliveryRecord",
    "DeliveryState",
    "add_delivery",
    "claim_delivery",
    "condition_state",
    "defer_channel",
    "delivery_counts",
    "due_deliveries",
    "firing_events",
    "mark_dispatched",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "recent_deliveries",
    "save_condition",
    "undispatched_events",
]


class DeliveryState(enum.StrEnum):
    PENDING = "pending"   # waiting for its next attempt (next_attempt_at)
    SENDING = "sending"   # claimed by a worker until claimed_until; expired: claimable again
    SENT = "sent"         # the channel answered 2xx; final
    FAILED = "failed"     # gave up (attempts spent or a permanent refusal); final, kept


class AlertDelivery(SQLModel, table=True):
    __tablename__ = "alert_delivery"
    __table_args__ = (
        UniqueConstraint("event_id", "channel", name="uq_alert_delivery_event_channel"),
        Index("ix_alert_delivery_state_next", "state", "next_attempt_at"),
    )
    __prune_column__ = "created_at"  # store.retention: finished rows may go after a while
    __prune_when__ = "done"          # ... but never one still waiting to be sent

    id: int | None = Field(default=None, primary_key=True)
    event_id: int
    channel: str = Field(max_length=100)
    channel_kind: str = Field(max_length=16)
    state: str = Field(default=DeliveryState.PENDING.value, max_length=16)
    attempts: int = 0
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    next_attempt_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    claim_token: str | None = Field(default=None, max_length=32)
    sent_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    last_status: int | None = None
    last_error: str | None = None
    idempotency_key: str = Field(max_length=64)
    done: bool = False                # sent or failed: final
    #: the event as dispatched (id, at, kind, service, severity, dedup_key, summary, data)
    event: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AlertCondition(SQLModel, table=True):
    """The last notification of an ongoing condition (one per dedup key)."""

    __tablename__ = "alert_condition"

    dedup_key: str = Field(primary_key=True, max_length=200)
    active: bool = True
    last_sent_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    last_event_id: int | None = None


@dataclass(frozen=True)
class AlertEvent:
    """An event as the alerts package sees it (a value, detached from the session)."""

    id: int
    at: datetime
    kind: EventKind
    service: str | None
    severity: str
    dedup_key: str
    summary: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    event: AlertEvent
    channel: str
    channel_kind: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_status: int | None
    last_error: str | None
    idempotency_key: str


def _event(row: EventRow) -> AlertEvent:
    assert row.id is not None
    return AlertEvent(id=row.id, at=row.at, kind=EventKind(row.kind), service=row.service,
                      severity=row.severity, dedup_key=row.dedup_key, summary=row.summary,
                      data=dict(row.data or {}))


def _snapshot(e: AlertEvent) -> dict[str, Any]:
    return {"id": e.id, "at": e.at.isoformat(), "kind": e.kind, "service": e.service,
            "severity": e.severity, "dedup_key": e.dedup_key, "summary": e.summary,
            "data": dict(e.data)}


def _from_snapshot(d: dict[str, Any]) -> AlertEvent:
    return AlertEvent(id=int(d["id"]), at=datetime.fromisoformat(d["at"]),
                      kind=EventKind(d["kind"]),
                      service=d.get("service"), severity=d.get("severity", "info"),
                      dedup_key=d.get("dedup_key", ""), summary=d.get("summary", ""),
                      data=d.get("data") or {})


def _record(d: AlertDelivery) -> DeliveryRecord:
    assert d.id is not None
    return DeliveryRecord(
        id=d.id, event=_from_snapshot(d.event), channel=d.channel, channel_kind=d.channel_kind,
        state=DeliveryState(d.state), attempts=d.attempts, created_at=d.created_at,
        next_attempt_at=d.next_attempt_at, sent_at=d.sent_at, last_status=d.last_status,
        last_error=d.last_error, idempotency_key=d.idempotency_key)


# -- dispatch (events -> deliveries) ---------------------------------------------------

def undispatched_events(*, session: Session, limit: int = 500) -> list[AlertEvent]:
    """Oldest first; on PostgreSQL the rows stay locked (skipped by a concurrent
    dispatcher) until the transaction ends."""
    q = (select(EventRow).where(col(EventRow.dispatched).is_(False))
         .order_by(col(EventRow.id)).limit(limit).with_for_update(skip_locked=True))
    return [_event(r) for r in session.exec(q).all()]


def mark_dispatched(*, session: Session, event_ids: list[int]) -> None:
    if event_ids:
        session.execute(update(EventRow).where(col(EventRow.id).in_(event_ids))
                        .values(dispatched=True))


def add_delivery(*, session: Session, event: AlertEvent, channel: str, channel_kind: str,
                 now: datetime, idempotency_key: str) -> None:
    session.add(AlertDelivery(event_id=event.id, channel=channel, channel_kind=channel_kind,
                              created_at=now, next_attempt_at=now, event=_snapshot(event),
                              idempotency_key=idempotency_key))


@dataclass(frozen=True)
class ConditionState:
    active: bool
    last_sent_at: datetime


def condition_state(*, session: Session, dedup_key: str) -> ConditionState | None:
    row = session.get(AlertCondition, dedup_key)
    return ConditionState(active=row.active, last_sent_at=row.last_sent_at) if row else None


def save_condition(*, session: Session, dedup_key: str, active: bool, now: datetime,
                   event_id: int) -> None:
    row = session.get(AlertCondition, dedup_key)
    if row is None:
        row = AlertCondition(dedup_key=dedup_key, active=active, last_sent_at=now,
                             last_event_id=event_id)
    else:
        row.active, row.last_sent_at, row.last_event_id = active, now, event_id
    session.add(row)
    session.flush()


# -- delivery ----------------------------------------------------------------------------

def _due(now: datetime) -> Any:
    return or_(
        and_(col(AlertDelivery.state) == DeliveryState.PENDING.value,
             col(AlertDelivery.next_attempt_at) <= now),
        # a worker that claimed the row died (or hung) past its lease: claimable again
        and_(col(AlertDelivery.state) == DeliveryState.SENDING.value,
             col(AlertDelivery.claimed_until) <= now),
    )


def due_deliveries(*, session: Session, now: datetime, limit: int = 100) -> list[DeliveryRecord]:
    q = (select(AlertDelivery).where(_due(now))
         .order_by(col(AlertDelivery.next_attempt_at), col(AlertDelivery.id)).limit(limit))
    return [_record(d) for d in session.exec(q).all()]


def claim_delivery(*, session: Session, delivery_id: int, token: str, now: datetime,
                   until: datetime) -> bool:
    """Take the row for one attempt; False when another worker has it (or it is done)."""
    res = session.execute(
        update(AlertDelivery)
        .where(col(AlertDelivery.id) == delivery_id, _due(now))
        .values(state=DeliveryState.SENDING.value, claim_token=token, claimed_until=until,
                attempts=AlertDelivery.attempts + 1))  # type: ignore[operator]
    return bool(res.rowcount)  # type: ignore[attr-defined]


def _finish(session: Session, delivery_id: int, token: str, **values: Any) -> bool:
    res = session.execute(
        update(AlertDelivery)
        .where(col(AlertDelivery.id) == delivery_id, col(AlertDelivery.claim_token) == token,
               col(AlertDelivery.state) == DeliveryState.SENDING.value)
        .values(claim_token=None, claimed_until=None, **values))
    return bool(res.rowcount)  # type: ignore[attr-defined]


def mark_sent(*, session: Session, delivery_id: int, token: str, now: datetime,
              status: int | None) -> bool:
    return _finish(session, delivery_id, token, state=DeliveryState.SENT.value, sent_at=now, done=True,
                   last_status=status, last_error=None)


def mark_retry(*, session: Session, delivery_id: int, token: str, next_at: datetime,
               status: int | None, error: str, count_attempt: bool = True) -> bool:
    extra: dict[str, Any] = {}
    if not count_attempt:  # a 429 is the channel pacing us, not a failed attempt
        extra["attempts"] = AlertDelivery.attempts - 1  # type: ignore[operator]
    return _finish(session, delivery_id, token, state=DeliveryState.PENDING.value,
                   next_attempt_at=next_at, last_status=status, last_error=error, **extra)


def mark_failed(*, session: Session, delivery_id: int, token: str, status: int | None,
                error: str) -> bool:
    return _finish(session, delivery_id, token, state=DeliveryState.FAILED.value, done=True,
                   last_status=status, last_error=error)


def defer_channel(*, session: Session, channel: str, until: datetime) -> int:
    """Hold every pending delivery of ``channel`` until ``until`` (after a 429)."""
    res = session.execute(
        update(AlertDelivery)
        .where(col(AlertDelivery.channel) == channel,
               col(AlertDelivery.state) == DeliveryState.PENDING.value,
               col(AlertDelivery.next_attempt_at) < until)
        .values(next_attempt_at=until))
    return int(res.rowcount)  # type: ignore[attr-defined]


# -- reading -----------------------------------------------------------------------------

def firing_events(*, session: Session, channel: str) -> list[AlertEvent]:
    """The last event of every condition still active whose delivery to ``channel`` was
    sent (from the delivery's snapshot: retention may have pruned the event)."""
    q = (select(AlertDelivery)
         .join(AlertCondition, col(AlertCondition.last_event_id) == col(AlertDelivery.event_id))
         .where(col(AlertCondition.active).is_(True), col(AlertDelivery.channel) == channel,
                col(AlertDelivery.state) == DeliveryState.SENT.value)
         .order_by(col(AlertDelivery.event_id)))
    return [_from_snapshot(d.event) for d in session.exec(q).all()]


def delivery_counts(*, session: Session) -> dict[str, int]:
    q = select(AlertDelivery.state, func.count()).group_by(AlertDelivery.state)
    return {str(state): int(n) for state, n in session.exec(q).all()}


def recent_deliveries(*, session: Session, limit: int = 50) -> list[DeliveryRecord]:
    """Newest first."""
    q = select(AlertDelivery).order_by(col(AlertDelivery.id).desc()).limit(limit)
    return [_record(d) for d in session.exec(q).all()]

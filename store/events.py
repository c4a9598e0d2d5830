"""Events: things that happened that the team may need to hear about.

Whoever causes an event (the gate approving a step, the judge turning fail, a collector
losing its source) records it here *in the same transaction* as the change itself, so an
event exists exactly when its cause was committed.  The alerts package turns each event
into deliveries per chat channel (its outbox) and marks it dispatched."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, Session, SQLModel, col, select

from slo.kinds import EventKind
from slo.redact import redact
from store.db import UtcDateTime

__all__ = ["EventRow", "last_event_kind", "pending_events", "record_event"]


class EventRow(SQLModel, table=True):
    __tablename__ = "event"
    __table_args__ = (Index("ix_event_dispatched_id", "dispatched", "id"),)
    __prune_column__ = "at"  # store.retention: `cutover db prune` deletes old rows by this
    __prune_when__ = "dispatched"  # never prune an event the alerts have not fanned out yet

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    kind: str = Field(max_length=32)          # one of slo.plan.EVENTS
    service: str | None = Field(default=None, max_length=63)
    severity: str = Field(default="info", max_length=16)   # info | warning | critical
    #: same key = same ongoing condition (repeats are throttled by repeat_interval)
    dedup_key: str = Field(default="", max_length=200)
    summary: str = Field(default="")
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dispatched: bool = Field(default=False)


def record_event(*, session: Session, at: datetime, kind: EventKind, summary: str,
                 service: str | None = None, severity: str = "info", dedup_key: str = "",
                 data: dict[str, Any] | None = None, dispatched: bool = False) -> int:
    """Record an event; its id.  ``dispatched=True``: kept for the record, never sent on
    its own (another event carries it to chat, e.g. a rollback's one alert for all its
    services).  The summary may quote a remote answer: it is scrubbed of credentials
    here, the last place one can be caught before the store."""
    row = EventRow(at=at, kind=str(kind), service=service, severity=severity,
                   dedup_key=dedup_key or f"{kind}:{service or '*'}", summary=redact(summary),
                   data=data or {}, dispatched=dispatched)
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def pending_events(*, session: Session, limit: int = 500) -> list[EventRow]:
    q = (select(EventRow).where(col(EventRow.dispatched).is_(False))
         .order_by(col(EventRow.id)).limit(limit))
    return list(session.exec(q).all())


def last_event_kind(*, session: Session, dedup_keys: list[str]) -> str | None:
    """The kind of the newest event with one of ``dedup_keys`` (is a condition open?)."""
    q = (select(EventRow.kind).where(col(EventRow.dedup_key).in_(dedup_keys))
         .order_by(col(EventRow.id).desc()).limit(1))
    kind: str | None = session.exec(q).first()
    return kind


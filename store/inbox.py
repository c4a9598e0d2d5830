"""The inbox: alerts about the services that the cluster's Alertmanager sent us.

One row per alert (Alertmanager's fingerprint, a hash of its label set), upserted with
every webhook that names it: firing, then resolved.  A row remembers the service it was
mapped to (or none), so the gate can ask what is firing on a service without reading
labels again.  Text in ``labels`` and ``annotations`` is the far side's: escape it
wherever it is shown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, Session, SQLModel, col, select

from store.db import UtcDateTime

__all__ = ["InboxAlert", "InboxRow", "firing_alerts", "recent_alerts", "save_alerts"]


class InboxRow(SQLModel, table=True):
    __tablename__ = "inbox_alert"
    __table_args__ = (Index("ix_inbox_alert_service_resolved", "service", "resolved"),)
    __prune_column__ = "received_at"  # store.retention: old rows may go...
    __prune_when__ = "resolved"       # ... but never one still firing

    fingerprint: str = Field(primary_key=True, max_length=64)
    alertname: str = Field(max_length=200)
    service: str | None = Field(default=None, max_length=63)
    status: str = Field(max_length=16)          # firing | resolved
    resolved: bool = False
    severity: str | None = Field(default=None, max_length=32)
    starts_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    ends_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    received_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    receiver: str = Field(default="", max_length=200)
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    annotations: dict[str, Any] = Field(default_factory=dict,
                                        sa_column=Column(JSON, nullable=False))


@dataclass(frozen=True)
class InboxAlert:
    """An alert as received, mapped to a plan service (or None)."""

    fingerprint: str
    alertname: str
    service: str | None
    status: str
    severity: str | None
    starts_at: datetime
    ends_at: datetime | None
    received_at: datetime
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    receiver: str = ""

    @property
    def firing(self) -> bool:
        return self.status == "firing"


def _alert(r: InboxRow) -> InboxAlert:
    return InboxAlert(fingerprint=r.fingerprint, alertname=r.alertname, service=r.service,
                      status=r.status, severity=r.severity, starts_at=r.starts_at,
                      ends_at=r.ends_at, received_at=r.received_at, labels=dict(r.labels),
                      annotations=dict(r.annotations), receiver=r.receiver)


def save_alerts(*, session: Session, alerts: Iterable[InboxAlert]) -> int:
    """Upsert by fingerprint; an older report of an alert (Alertmanager retries, HA
    peers) never undoes a newer one.  The number of rows written."""
    written = 0
    for a in alerts:
        row = session.get(InboxRow, a.fingerprint)
        if row is not None and (row.starts_at > a.starts_at or (
                row.starts_at == a.starts_at and row.resolved and a.firing)):
            continue  # a later firing of the same labels, or already resolved: keep it
        row = row or InboxRow(fingerprint=a.fingerprint, alertname=a.alertname,
                              status=a.status, starts_at=a.starts_at,
                              received_at=a.received_at)
        row.alertname, row.service, row.status = a.alertname, a.service, a.status
        row.resolved, row.severity, row.starts_at = not a.firing, a.severity, a.starts_at
        row.ends_at, row.received_at, row.receiver = a.ends_at, a.received_at, a.receiver
        row.labels, row.annotations = dict(a.labels), dict(a.annotations)
        session.add(row)
        written += 1
    session.flush()
    return written


def firing_alerts(*, session: Session, service: str | None = None) -> list[InboxAlert]:
    """What fires now (on ``service``, or on any), oldest first."""
    q = select(InboxRow).where(col(InboxRow.resolved).is_(False))
    if service is not None:
        q = q.where(col(InboxRow.service) == service)
    return [_alert(r) for r in session.exec(q.order_by(col(InboxRow.starts_at))).all()]


def recent_alerts(*, session: Session, limit: int = 50) -> list[InboxAlert]:
    """Newest report first, firing and resolved."""
    q = select(InboxRow).order_by(col(InboxRow.received_at).desc()).limit(limit)
    return [_alert(r) for r in session.exec(q).all()]

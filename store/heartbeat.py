"""The worker's heartbeat: when the leading worker last did a round, and how it went.

One row per lease name, written at the end of every round by the worker that did it.
Whether data is stale is a question about the worker, not about a service: a service
at 100 % or back at 0 % is not judged, so its newest evaluation grows old while the
worker is perfectly well.  Readers (the dashboard, ``cutover status``) compare ``at``
with their clock and the interval the worker wrote."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column
from sqlmodel import Field, Session, SQLModel, select

from store.db import UtcDateTime

__all__ = ["WorkerHeartbeat", "WorkerRound", "last_round", "record_round"]


class WorkerHeartbeat(SQLModel, table=True):
    __tablename__ = "worker_heartbeat"

    name: str = Field(primary_key=True, max_length=100)     # the lease's name
    holder: str = Field(max_length=200)                     # host:pid of the worker
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))  # in its clock
    seconds: float = 0.0                                    # how long the round took
    interval_seconds: float                                 # the worker's interval
    ok: bool = True                                         # every step of it did
    failed: str = Field(default="")                         # the failed steps, in words


@dataclass(frozen=True)
class WorkerRound:
    """The newest round of a worker, as the store holds it."""

    holder: str
    at: datetime
    seconds: float
    interval: timedelta
    ok: bool
    failed: str = ""


def record_round(*, session: Session, holder: str, at: datetime, seconds: float,
                 interval: timedelta, ok: bool, failed: str = "",
                 name: str = "worker") -> None:
    row = session.get(WorkerHeartbeat, name) or WorkerHeartbeat(
        name=name, holder=holder, at=at, interval_seconds=interval.total_seconds())
    row.holder, row.at, row.seconds, row.ok, row.failed = holder, at, seconds, ok, failed[:2000]
    row.interval_seconds = interval.total_seconds()
    session.add(row)
    session.flush()


def last_round(*, session: Session, name: str = "worker") -> WorkerRound | None:
    row = session.exec(select(WorkerHeartbeat).where(WorkerHeartbeat.name == name)).first()
    if row is None:
        return None
    return WorkerRound(holder=row.holder, at=row.at, seconds=row.seconds,
                       interval=timedelta(seconds=row.interval_seconds), ok=row.ok,
                       failed=row.failed)

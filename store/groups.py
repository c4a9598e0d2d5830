"""Decision groups: several decisions made as one act (the emergency rollback).

A group is written before any of its decisions (``open``, ``finished_at`` null) and
closed once every member is settled, with its outcome and the seconds from the command
to the last route read back.  A process killed in between leaves the group open; the
next rollback closes it as ``interrupted`` once its members are settled, so the audit
trail shows what the killed one did and that it did not finish."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, update
from sqlmodel import Field, Session, SQLModel, col, select

from store.db import UtcDateTime
from store.rollout import Decision, DecisionRecord, decision_record

__all__ = ["DecisionGroup", "GroupRecord", "close_group", "get_group", "group_decisions", "list_groups",
           "open_group", "open_groups"]


class DecisionGroup(SQLModel, table=True):
    __tablename__ = "decision_group"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    kind: str = Field(default="rollback", max_length=16)
    actor: str = Field(max_length=200)
    reason: str = ""
    #: the services it set out to move, in plan order
    services: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: applied | partial | failed | nothing | interrupted; None while it runs
    outcome: str | None = Field(default=None, max_length=16)
    finished_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    #: seconds from the command to every route read back (None: not finished)
    seconds: float | None = None
    #: what was done to the baseline's capacity first (read, scaled, waited), if anything
    baseline: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


@dataclass(frozen=True)
class GroupRecord:
    """A decision group as handed out (what was done to the baseline stays in the row:
    the rollback's alert carries it, and nothing reads it back)."""

    id: int
    at: datetime
    kind: str
    actor: str
    reason: str
    services: tuple[str, ...]
    outcome: str | None
    finished_at: datetime | None
    seconds: float | None


def _record(g: DecisionGroup) -> GroupRecord:
    assert g.id is not None  # flushed
    return GroupRecord(id=g.id, at=g.at, kind=g.kind, actor=g.actor, reason=g.reason,
                       services=tuple(g.services), outcome=g.outcome,
                       finished_at=g.finished_at, seconds=g.seconds)


def open_group(*, session: Session, at: datetime, actor: str, reason: str,
               services: list[str], kind: str = "rollback") -> GroupRecord:
    row = DecisionGroup(at=at, kind=kind, actor=actor, reason=reason, services=services)
    session.add(row)
    session.flush()
    return _record(row)


def close_group(*, session: Session, group_id: int, outcome: str, at: datetime,
                seconds: float | None, baseline: dict[str, Any] | None = None) -> bool:
    """Mark an open group finished; False if it was closed already."""
    values: dict[str, Any] = {"outcome": outcome, "finished_at": at, "seconds": seconds}
    if baseline is not None:
        values["baseline"] = baseline
    result: Any = session.execute(
        update(DecisionGroup).where(col(DecisionGroup.id) == group_id)
        .where(col(DecisionGroup.finished_at).is_(None)).values(**values))
    return bool(result.rowcount == 1)


def get_group(*, session: Session, group_id: int) -> GroupRecord | None:
    row = session.get(DecisionGroup, group_id, populate_existing=True)
    return _record(row) if row is not None else None


def open_groups(*, session: Session, before: datetime | None = None) -> list[GroupRecord]:
    """Groups not finished, oldest first; ``before``: only those opened before it."""
    q = select(DecisionGroup).where(col(DecisionGroup.finished_at).is_(None))
    if before is not None:
        q = q.where(DecisionGroup.at <= before)
    return [_record(g) for g in session.exec(q.order_by(col(DecisionGroup.id))).all()]


def list_groups(*, session: Session, limit: int = 50) -> list[GroupRecord]:
    """Newest first."""
    q = select(DecisionGroup).order_by(col(DecisionGroup.id).desc()).limit(limit)
    return [_record(g) for g in session.exec(q).all()]


def group_decisions(*, session: Session, group_id: int) -> list[DecisionRecord]:
    q = select(Decision).where(Decision.group_id == group_id).order_by(col(Decision.id))
    return [decision_record(d) for d in session.exec(q).all()]

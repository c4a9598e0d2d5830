"""Rollout state per service and the decisions that moved it.

``ServiceState`` is one row per service: the weight stored, the step it is on, when that
step began (soak is measured from it) and a ``version`` that every change increments,
so two operators acting at once cannot both move it (optimistic concurrency).
``Decision`` is the audit trail: written *pending* before the router is touched, then
marked applied or failed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from store.db import UtcDateTime

__all__ = ["Decision", "ServiceState"]


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
    reason: str = ""
    override: bool = False
    state: str = Field(default="pending", max_length=16)   # pending | applied | failed
    error: str | None = None
    evaluation_id: int | None = None
    applied_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))

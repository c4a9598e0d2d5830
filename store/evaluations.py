"""Stored evaluations: every verdict the judge gave, with its figures and checks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, Session, SQLModel, col, select

from slo.figures import Figures
from slo.verdict import Check, Evaluation, Verdict
from store.db import UtcDateTime

__all__ = ["EvaluationRow", "evaluation_at", "evaluation_history", "latest_evaluation",
           "save_evaluation", "step_passed", "to_domain"]


class EvaluationRow(SQLModel, table=True):
    __tablename__ = "evaluation"
    __table_args__ = (Index("ix_evaluation_service_at", "service", "at"),)
    __prune_column__ = "at"  # store.retention: `cutover db prune` deletes old rows by this

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(max_length=63)
    phase: str | None = Field(default=None, max_length=63)
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    weight: int
    verdict: str = Field(max_length=16)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    checks: list[dict[str, Any]] = Field(default_factory=list,
                                         sa_column=Column(JSON, nullable=False))
    plan_hash: str = Field(default="", max_length=64)
    wait_seconds: float | None = None
    #: the start of the step the verdict was made for (``weight`` is that step's weight);
    #: None for a verdict at no step, and for rows stored before it was kept
    step_since: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


def save_evaluation(*, session: Session, evaluation: Evaluation) -> EvaluationRow:
    """Store ``evaluation``; one row per (service, at): judging the same service at the
    same time again (a replay, late data) replaces the row and keeps its id."""
    c = evaluation.contract()
    values = dict(
        phase=evaluation.phase, weight=evaluation.weight, verdict=evaluation.verdict.value,
        reasons=list(evaluation.reasons), figures=c["figures"], checks=c["checks"],
        plan_hash=evaluation.plan_hash, wait_seconds=evaluation.wait_seconds,
        step_since=evaluation.step_since,
    )
    row = evaluation_at(session=session, service=evaluation.service, at=evaluation.at)
    if row is None:
        row = EvaluationRow(service=evaluation.service, at=evaluation.at, **values)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    session.add(row)
    session.flush()
    return row


def evaluation_at(*, session: Session, service: str, at: datetime) -> EvaluationRow | None:
    """The evaluation of ``service`` stored for exactly ``at``, if any."""
    q = select(EvaluationRow).where(EvaluationRow.service == service, EvaluationRow.at == at)
    return session.exec(q).first()


def latest_evaluation(*, session: Session, service: str,
                      at_or_before: datetime | None = None) -> EvaluationRow | None:
    q = select(EvaluationRow).where(EvaluationRow.service == service)
    if at_or_before is not None:
        q = q.where(EvaluationRow.at <= at_or_before)
    q = q.order_by(col(EvaluationRow.at).desc(), col(EvaluationRow.id).desc()).limit(1)
    return session.exec(q).first()


def step_passed(*, session: Session, service: str, weight: int, since: datetime,
                before: datetime) -> bool:
    """Whether a verdict before ``before`` passed ``service`` at the step of ``weight``
    that began at ``since``."""
    q = select(EvaluationRow.id).where(
        EvaluationRow.service == service, EvaluationRow.weight == weight,
        EvaluationRow.step_since == since, EvaluationRow.at >= since,
        EvaluationRow.at < before,
        EvaluationRow.verdict == Verdict.PASS.value).limit(1)
    return session.exec(q).first() is not None


def evaluation_history(*, session: Session, service: str | None = None,
                       start: datetime | None = None, end: datetime | None = None,
                       limit: int | None = None) -> list[EvaluationRow]:
    """Oldest first."""
    q = select(EvaluationRow)
    if service is not None:
        q = q.where(EvaluationRow.service == service)
    if start is not None:
        q = q.where(EvaluationRow.at >= start)
    if end is not None:
        q = q.where(EvaluationRow.at <= end)
    q = q.order_by(col(EvaluationRow.at), col(EvaluationRow.id))
    if limit is not None:
        q = q.limit(limit)
    return list(session.exec(q).all())


def to_domain(row: EvaluationRow) -> Evaluation:
    """A stored evaluation as the domain value (figures without their sketches)."""
    def figs(d: dict[str, Any]) -> Figures:
        return Figures(start=row.at, end=row.at, **{k: v for k, v in d.items() if v is not None})
    return Evaluation(
        service=row.service, phase=row.phase, weight=row.weight, at=row.at,
        verdict=Verdict(row.verdict), reasons=tuple(row.reasons),
        baseline=figs(row.figures.get("baseline", {})),
        candidate=figs(row.figures.get("candidate", {})),
        checks=tuple(Check(name=c["name"], verdict=Verdict(c["verdict"]),
                           baseline=c.get("baseline"), candidate=c.get("candidate"),
                           limit=c.get("limit"), detail=c.get("detail", ""))
                     for c in row.checks),
        plan_hash=row.plan_hash, wait_seconds=row.wait_seconds, step_since=row.step_since,
    )

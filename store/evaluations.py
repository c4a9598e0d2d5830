"""Stored evaluations: every verdict the judge gave, with its figures and checks.

The gate and the judge's bookkeeping read a :class:`StoredVerdict` (what was said, for
which step, under which plan; no figures); ``to_domain`` gives the whole evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, Session, SQLModel, col, select

from slo.figures import Figures
from slo.verdict import Check, Evaluation, Verdict
from store.db import UtcDateTime

__all__ = ["EvaluationRow", "StoredVerdict", "evaluation_at", "evaluation_history",
           "latest_evaluation", "latest_verdict", "save_evaluation", "step_passed",
           "step_verdicts", "stored_evaluation", "to_domain", "verdict_at"]


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


@dataclass(frozen=True)
class StoredVerdict:
    """A stored evaluation's verdict and what it was made for: the step (``weight``,
    ``step_since``) and the plan (``plan_hash``).  Its figures stay in the store: the gate
    reads a step's whole history every round and needs none of them."""

    id: int
    service: str
    at: datetime
    weight: int
    verdict: Verdict
    reasons: tuple[str, ...]
    step_since: datetime | None = None
    plan_hash: str = ""


def _verdict(row: EvaluationRow) -> StoredVerdict:
    assert row.id is not None  # flushed
    return StoredVerdict(id=row.id, service=row.service, at=row.at, weight=row.weight,
                         verdict=Verdict(row.verdict), reasons=tuple(row.reasons),
                         step_since=row.step_since, plan_hash=row.plan_hash)


def save_evaluation(*, session: Session, evaluation: Evaluation) -> StoredVerdict:
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
    return _verdict(row)


def evaluation_at(*, session: Session, service: str, at: datetime) -> EvaluationRow | None:
    """The evaluation of ``service`` stored for exactly ``at``, if any."""
    q = select(EvaluationRow).where(EvaluationRow.service == service, EvaluationRow.at == at)
    return session.exec(q).first()


def stored_evaluation(*, session: Session, service: str, at: datetime) -> Evaluation | None:
    """The evaluation stored for ``service`` at exactly ``at``, with its figures and
    checks, as the domain value."""
    row = evaluation_at(session=session, service=service, at=at)
    return to_domain(row) if row is not None else None


def verdict_at(*, session: Session, service: str, at: datetime) -> StoredVerdict | None:
    """The verdict stored for ``service`` at exactly ``at``, if any."""
    row = evaluation_at(session=session, service=service, at=at)
    return _verdict(row) if row is not None else None


def latest_evaluation(*, session: Session, service: str,
                      at_or_before: datetime | None = None) -> EvaluationRow | None:
    q = select(EvaluationRow).where(EvaluationRow.service == service)
    if at_or_before is not None:
        q = q.where(EvaluationRow.at <= at_or_before)
    q = q.order_by(col(EvaluationRow.at).desc(), col(EvaluationRow.id).desc()).limit(1)
    return session.exec(q).first()


def latest_verdict(*, session: Session, service: str,
                   at_or_before: datetime | None = None) -> StoredVerdict | None:
    """The newest verdict of ``service`` (at or before ``at_or_before``)."""
    row = latest_evaluation(session=session, service=service, at_or_before=at_or_before)
    return _verdict(row) if row is not None else None


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


def step_verdicts(*, session: Session, service: str, weight: int, step_since: datetime | None,
                  end: datetime) -> list[StoredVerdict]:
    """The verdicts made for the step (``weight``, ``step_since``) up to ``end``, oldest
    first: at that weight, not before the step began, and naming that step where the row
    names one (rows stored before ``step_since`` was kept name none)."""
    rows = evaluation_history(session=session, service=service, start=step_since, end=end)
    return [_verdict(r) for r in _for_step(rows, weight=weight, step_since=step_since)]


def _for_step(rows: Sequence[EvaluationRow], *, weight: int,
              step_since: datetime | None) -> list[EvaluationRow]:
    return [r for r in rows if r.weight == weight
            and (step_since is None or r.at >= step_since)
            and (r.step_since is None or step_since is None or r.step_since == step_since)]


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

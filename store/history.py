"""The record as of a moment: what a phase report reads (reports/model.py).

Keyword-only functions returning frozen values, so no table row leaves the store; every
one takes ``at`` and reads nothing after it, so a report made later for an earlier
moment says what was known then."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from store.alerts import AlertDelivery
from store.db import as_utc
from store.evaluations import EvaluationRow
from store.events import EventRow
from store.groups import DecisionGroup, group_decisions
from store.rollout import Decision, decision_record
from store.views import DecisionView, decision_view

__all__ = ["AlertLine", "Closing", "RollbackGroup", "alerts_until", "applied_steps",
           "decisions_until", "last_applied_until", "last_fail_since", "newest_with_traffic",
           "rollback_groups", "step_verdicts"]


@dataclass(frozen=True)
class Closing:
    """The newest evaluation of a step: how it ended."""

    id: int | None
    at: datetime
    verdict: str
    figures: dict[str, Any]
    checks: list[dict[str, Any]]
    reasons: list[str]


@dataclass(frozen=True)
class AlertLine:
    at: datetime
    service: str | None
    kind: str
    severity: str
    summary: str
    deliveries: tuple[str, ...]     # "channel: state", by channel
    dispatched: bool


@dataclass(frozen=True)
class RollbackGroup:
    id: int
    at: datetime
    actor: str
    reason: str
    outcome: str | None
    seconds: float | None
    members: tuple[DecisionView, ...]


def applied_steps(*, session: Session, service: str, at: datetime) -> list[tuple[datetime, int]]:
    """(when, to weight) of each decision applied to ``service`` by ``at``, oldest first."""
    q = (select(Decision).where(Decision.service == service, Decision.state == "applied",
                                Decision.at <= at)
         .order_by(col(Decision.at), col(Decision.id)))
    return [(d.at, d.to_weight) for d in session.exec(q).all()]


def last_applied_until(*, session: Session, service: str,
                       at: datetime) -> tuple[datetime, int] | None:
    """(when, to weight) of the newest decision applied to ``service`` by ``at``."""
    q = (select(Decision).where(Decision.service == service, Decision.state == "applied",
                                Decision.at <= at)
         .order_by(col(Decision.at).desc(), col(Decision.id).desc()).limit(1))
    d = session.exec(q).first()
    return (d.at, d.to_weight) if d is not None else None


def step_verdicts(*, session: Session, service: str, weight: int, started: datetime,
                  until: datetime | None, at: datetime) -> tuple[dict[str, int], Closing | None]:
    """A step's verdicts counted, and its closing evaluation: those made at ``weight``
    from ``started`` up to ``until`` (None: ``at``)."""
    where = [EvaluationRow.service == service, EvaluationRow.at >= started,
             EvaluationRow.at <= at, EvaluationRow.weight == weight]
    if until is not None:
        where.append(EvaluationRow.at <= until)
    counts = dict(session.exec(select(EvaluationRow.verdict, func.count())
                               .where(*where).group_by(EvaluationRow.verdict)).all())
    row = session.exec(select(EvaluationRow).where(*where)
                       .order_by(col(EvaluationRow.at).desc(),
                                 col(EvaluationRow.id).desc()).limit(1)).first()
    closing = None if row is None else Closing(
        id=row.id, at=row.at, verdict=row.verdict, figures=row.figures, checks=row.checks,
        reasons=row.reasons)
    return {k: int(v) for k, v in sorted(counts.items())}, closing


def last_fail_since(*, session: Session, service: str, weight: int, since: datetime,
                    at: datetime) -> datetime | None:
    """The newest fail verdict of ``service`` at ``weight`` in [since, at]."""
    found = session.exec(
        select(func.max(EvaluationRow.at)).where(
            EvaluationRow.service == service, EvaluationRow.weight == weight,
            EvaluationRow.verdict == "fail", EvaluationRow.at >= since,
            EvaluationRow.at <= at)).one()
    return as_utc(found) if found is not None else None


def newest_with_traffic(*, session: Session, service: str, at: datetime) -> dict[str, Any] | None:
    """The figures of ``service``'s newest evaluation by ``at`` with traffic on the
    candidate (weight above 0), or None."""
    row = session.exec(
        select(EvaluationRow).where(EvaluationRow.service == service, EvaluationRow.at <= at,
                                    EvaluationRow.weight > 0)
        .order_by(col(EvaluationRow.at).desc(), col(EvaluationRow.id).desc()).limit(1)).first()
    return dict(row.figures) if row is not None else None


def decisions_until(*, session: Session, services: Sequence[str],
                    at: datetime) -> list[DecisionView]:
    q = (select(Decision).where(col(Decision.service).in_(services), Decision.at <= at)
         .order_by(col(Decision.at), col(Decision.id)))
    return [decision_view(decision_record(d)) for d in session.exec(q).all()]


def alerts_until(*, session: Session, services: Sequence[str], at: datetime) -> list[AlertLine]:
    """The events about ``services`` by ``at``, each with what became of its deliveries."""
    rows = session.exec(
        select(EventRow).where(col(EventRow.service).in_(services), EventRow.at <= at)
        .order_by(col(EventRow.at), col(EventRow.id))).all()
    ids = [e.id for e in rows]
    sent: dict[int | None, list[str]] = {}
    if ids:
        for d in session.exec(select(AlertDelivery).where(col(AlertDelivery.event_id).in_(ids))
                              .order_by(col(AlertDelivery.channel))).all():
            sent.setdefault(d.event_id, []).append(f"{d.channel}: {d.state}")
    return [AlertLine(at=e.at, service=e.service, kind=e.kind, severity=e.severity,
                      summary=e.summary, deliveries=tuple(sent.get(e.id, [])),
                      dispatched=e.dispatched) for e in rows]


def rollback_groups(*, session: Session, at: datetime) -> list[RollbackGroup]:
    """The rollback groups by ``at``, oldest first, each with its member decisions."""
    groups = session.exec(select(DecisionGroup).where(DecisionGroup.kind == "rollback",
                                                      DecisionGroup.at <= at)
                          .order_by(col(DecisionGroup.at), col(DecisionGroup.id))).all()
    out = []
    for g in groups:
        assert g.id is not None
        out.append(RollbackGroup(
            id=g.id, at=g.at, actor=g.actor, reason=g.reason, outcome=g.outcome,
            seconds=g.seconds,
            members=tuple(decision_view(d) for d in group_decisions(session=session,
                                                                 group_id=g.id))))
    return out

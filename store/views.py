"""Read-only views of the store for the dashboard: small, cheap queries returning values.

Every function here only reads.  The dashboard caches their results for a few seconds,
so each one is a single query (or two) that stays fast with six weeks of history: the
evaluation series is downsampled *in SQL* (a window function numbers the rows, every
k-th is kept) so a chart never pulls 60 000 JSON blobs to draw 600 points."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal
from sqlmodel import Session, col, select

from slo.verdict import Evaluation
from store.evaluations import EvaluationRow, latest_evaluation, to_domain
from store.events import EventRow
from store.rollout import Decision, DecisionRecord, StateView, all_states, decision_record

__all__ = [
    "DecisionView",
    "EventView",
    "SeriesPoint",
    "StateView",
    "decision_actors",
    "decisions_filtered",
    "evaluation_series",
    "event_counts",
    "latest_evaluations",
    "recent_events",
    "service_states",
]


@dataclass(frozen=True)
class SeriesPoint:
    """One stored evaluation as a point on a chart: figures of both variants."""

    at: datetime
    weight: int
    verdict: str
    baseline: dict[str, float | None]
    candidate: dict[str, float | None]


@dataclass(frozen=True)
class DecisionView:
    """One decision of the audit trail (the ``decisions --json`` item, plus its error)."""

    id: int
    at: datetime
    service: str
    action: str
    from_weight: int
    to_weight: int
    actor: str
    reason: str
    override: bool
    state: str
    error: str | None
    evaluation_id: int | None

    def contract(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "service": self.service, "action": self.action,
                "from_weight": self.from_weight, "to_weight": self.to_weight,
                "actor": self.actor, "reason": self.reason, "override": self.override,
                "state": self.state, "evaluation_id": self.evaluation_id}


@dataclass(frozen=True)
class EventView:
    id: int
    at: datetime
    kind: str
    service: str | None
    severity: str
    summary: str
    dispatched: bool


def evaluation_series(*, session: Session, service: str, start: datetime | None = None,
                      end: datetime | None = None, max_points: int = 600) -> list[SeriesPoint]:
    """The service's evaluations in [start, end], oldest first, at most about
    ``max_points`` of them: every k-th row, plus the newest so the chart ends at now."""
    if max_points < 2:
        raise ValueError(f"expected max_points >= 2, got {max_points}")
    where = _series_where(service=service, start=start, end=end)
    total = session.exec(select(func.count()).select_from(EvaluationRow).where(*where)).one()
    if not total:
        return []
    k = max(1, -(-int(total) // (max_points - 1)))   # ceil: keeps at most max_points - 1
    rn = func.row_number().over(order_by=(col(EvaluationRow.at), col(EvaluationRow.id)))
    numbered = select(col(EvaluationRow.id).label("id"), rn.label("rn")).where(*where).subquery()
    keep = select(numbered.c.id).where(
        ((numbered.c.rn - literal(1)) % literal(k) == 0) | (numbered.c.rn == literal(total)))
    q = (select(EvaluationRow.at, EvaluationRow.weight, EvaluationRow.verdict,
                EvaluationRow.figures)
         .where(col(EvaluationRow.id).in_(keep))
         .order_by(col(EvaluationRow.at), col(EvaluationRow.id)))
    return [SeriesPoint(at=at, weight=weight, verdict=verdict,
                        baseline=dict((figures or {}).get("baseline") or {}),
                        candidate=dict((figures or {}).get("candidate") or {}))
            for at, weight, verdict, figures in session.exec(q).all()]


def _series_where(*, service: str, start: datetime | None, end: datetime | None) -> list[Any]:
    where: list[Any] = [EvaluationRow.service == service]
    if start is not None:
        where.append(EvaluationRow.at >= start)
    if end is not None:
        where.append(EvaluationRow.at <= end)
    return where


def latest_evaluations(*, session: Session,
                       services: Sequence[str]) -> dict[str, tuple[int, Evaluation]]:
    """The newest evaluation of each service (its id, and the evaluation).

    One indexed lookup per service (``ix_evaluation_service_at``, newest first, limit 1):
    a GROUP BY over the whole table would read all of six weeks' rows to find six."""
    out: dict[str, tuple[int, Evaluation]] = {}
    for service in services:
        row = latest_evaluation(session=session, service=service)
        if row is not None and row.id is not None:
            out[service] = (row.id, to_domain(row))
    return out


def service_states(*, session: Session) -> dict[str, StateView]:
    return {v.service: v for v in all_states(session=session)}


def decisions_filtered(*, session: Session, service: str | None = None,
                       action: str | None = None, actor: str | None = None,
                       state: str | None = None, start: datetime | None = None,
                       end: datetime | None = None, text: str | None = None,
                       limit: int = 1000) -> list[DecisionView]:
    """The audit trail, newest first, narrowed by whichever filters are given;
    ``text`` matches the reason, case-insensitively."""
    q = select(Decision)
    for column, value in ((Decision.service, service), (Decision.action, action),
                          (Decision.actor, actor), (Decision.state, state)):
        if value is not None:
            q = q.where(column == value)
    if start is not None:
        q = q.where(Decision.at >= start)
    if end is not None:
        q = q.where(Decision.at <= end)
    if text:
        q = q.where(func.lower(Decision.reason).contains(text.lower(), autoescape=True))
    q = q.order_by(col(Decision.at).desc(), col(Decision.id).desc()).limit(limit)
    return [decision_view(decision_record(d)) for d in session.exec(q).all()]


def decision_view(d: DecisionRecord) -> DecisionView:
    return DecisionView(id=d.id, at=d.at, service=d.service, action=d.action.value,
                        from_weight=d.from_weight, to_weight=d.to_weight, actor=d.actor,
                        reason=d.reason, override=d.override, state=d.state.value,
                        error=d.error, evaluation_id=d.evaluation_id)


def decision_actors(*, session: Session) -> list[str]:
    q = select(Decision.actor).distinct().order_by(col(Decision.actor))
    return list(session.exec(q).all())


def event_counts(*, session: Session, since: datetime | None = None) -> dict[str, int]:
    """How many events of each kind were recorded (since ``since``)."""
    q = select(EventRow.kind, func.count()).group_by(col(EventRow.kind))
    if since is not None:
        q = q.where(EventRow.at >= since)
    return {kind: int(n) for kind, n in session.exec(q).all()}


def recent_events(*, session: Session, limit: int = 50,
                  service: str | None = None) -> list[EventView]:
    q = select(EventRow)
    if service is not None:
        q = q.where(EventRow.service == service)
    q = q.order_by(col(EventRow.at).desc(), col(EventRow.id).desc()).limit(limit)
    return [EventView(id=e.id or 0, at=e.at, kind=e.kind, service=e.service,
                      severity=e.severity, summary=e.summary, dispatched=e.dispatched)
            for e in session.exec(q).all()]

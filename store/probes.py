"""Stored probe results (every run, for the history) and sign-offs (a person's word on
a criterion), converted to the values of ``slo.probe_results`` at this edge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, and_, func
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from slo.probe_results import ANSWERED, ProbeResult, ProbeRuns, Signoff
from slo.verdict import Verdict
from store.db import UtcDateTime, as_utc

__all__ = ["ProbeResultRow", "SignoffRow", "critical_deliveries", "latest_probe_results",
           "probe_history", "undispatched_critical",
           "probe_runs", "record_signoff", "save_probe_result", "signoffs"]


class ProbeResultRow(SQLModel, table=True):
    __tablename__ = "probe_result"
    __table_args__ = (Index("ix_probe_result_probe_at", "probe", "at"),)
    __prune_column__ = "at"  # store.retention: `cutover db prune` deletes old rows by this

    id: int | None = Field(default=None, primary_key=True)
    probe: str = Field(max_length=100)
    kind: str = Field(max_length=32)
    phase: str | None = Field(default=None, max_length=63)
    service: str | None = Field(default=None, max_length=63)
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    verdict: str = Field(max_length=16)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    value: float | None = None
    limit: float | None = None
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    seconds: float = 0.0


class SignoffRow(SQLModel, table=True):
    __tablename__ = "signoff"

    id: int | None = Field(default=None, primary_key=True)
    phase: str = Field(max_length=63)
    criterion: str = Field(max_length=500)
    actor: str = Field(max_length=200)
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    note: str = Field(default="")


def save_probe_result(*, session: Session, result: ProbeResult) -> None:
    row = ProbeResultRow(probe=result.probe, kind=result.kind, phase=result.phase,
                         service=result.service, at=result.at, verdict=result.verdict.value,
                         reasons=list(result.reasons), value=result.value, limit=result.limit,
                         figures=dict(result.figures), seconds=result.seconds)
    session.add(row)
    session.flush()


def _domain(row: ProbeResultRow) -> ProbeResult:
    return ProbeResult(probe=row.probe, kind=row.kind, at=row.at, verdict=Verdict(row.verdict),
                       reasons=tuple(row.reasons), phase=row.phase, service=row.service,
                       value=row.value, limit=row.limit, figures=dict(row.figures),
                       seconds=row.seconds)


def latest_probe_results(*, session: Session, at: datetime | None = None,
                         probes: list[str] | None = None) -> dict[str, ProbeResult]:
    """Each probe's newest result (at or before ``at``), by probe name."""
    newest = select(ProbeResultRow.probe, func.max(ProbeResultRow.at).label("at"))
    if at is not None:
        newest = newest.where(col(ProbeResultRow.at) <= at)
    if probes is not None:
        newest = newest.where(col(ProbeResultRow.probe).in_(probes))
    sub = newest.group_by(col(ProbeResultRow.probe)).subquery()
    q = (select(ProbeResultRow)
         .join(sub, and_(col(ProbeResultRow.probe) == sub.c.probe,
                         col(ProbeResultRow.at) == sub.c.at))
         .order_by(col(ProbeResultRow.id)))
    return {row.probe: _domain(row) for row in session.exec(q).all()}


def probe_history(*, session: Session, probe: str, limit: int = 200,
                  since: datetime | None = None) -> list[ProbeResult]:
    """``probe``'s results, newest first."""
    q = select(ProbeResultRow).where(ProbeResultRow.probe == probe)
    if since is not None:
        q = q.where(col(ProbeResultRow.at) >= since)
    q = q.order_by(col(ProbeResultRow.at).desc(), col(ProbeResultRow.id).desc()).limit(limit)
    return [_domain(r) for r in session.exec(q).all()]


def probe_runs(*, session: Session, probes: list[str], until: datetime) -> list[ProbeRuns]:
    """Each probe's runs up to ``until``, by what they found (``slo.success.uptime``'s
    input).  Inconclusive runs are split apart by the marker of a target that did not
    answer; passes and fails are counted in the database."""
    q = (sa_select(col(ProbeResultRow.probe), col(ProbeResultRow.verdict), func.count(),
                   func.min(ProbeResultRow.at), func.max(ProbeResultRow.at))
         .where(col(ProbeResultRow.probe).in_(probes), col(ProbeResultRow.at) <= until)
         .group_by(col(ProbeResultRow.probe), col(ProbeResultRow.verdict)))
    counts: dict[str, dict[str, int]] = {p: {} for p in probes}
    span: dict[str, list[datetime]] = {p: [] for p in probes}
    for probe, verdict, n, first, last in session.execute(q).all():
        counts[probe][verdict] = int(n)
        span[probe] += [as_utc(first), as_utc(last)]
    silent = (select(ProbeResultRow.probe, ProbeResultRow.figures)
              .where(col(ProbeResultRow.probe).in_(probes), col(ProbeResultRow.at) <= until,
                     ProbeResultRow.verdict == Verdict.INCONCLUSIVE.value))
    for probe, figures in session.exec(silent).all():
        if (figures or {}).get(ANSWERED) is False:
            counts[probe]["unanswered"] = counts[probe].get("unanswered", 0) + 1
    return [_runs(p, counts[p], span[p]) for p in probes]


def _runs(probe: str, counts: dict[str, int], span: list[datetime]) -> ProbeRuns:
    unanswered = counts.get("unanswered", 0)
    return ProbeRuns(probe=probe, passed=counts.get(Verdict.PASS.value, 0),
                     failed=counts.get(Verdict.FAIL.value, 0), unanswered=unanswered,
                     unknown=counts.get(Verdict.INCONCLUSIVE.value, 0) - unanswered,
                     first=min(span, default=None), last=max(span, default=None))


def record_signoff(*, session: Session, signoff: Signoff) -> None:
    row = SignoffRow(phase=signoff.phase, criterion=signoff.criterion, actor=signoff.actor,
                     at=signoff.at, note=signoff.note)
    session.add(row)
    session.flush()


def signoffs(*, session: Session, phase: str | None = None) -> list[Signoff]:
    """Sign-offs, oldest first (a later one on the same criterion adds to the record)."""
    q = select(SignoffRow)
    if phase is not None:
        q = q.where(SignoffRow.phase == phase)
    return [Signoff(phase=r.phase, criterion=r.criterion, actor=r.actor, at=r.at, note=r.note)
            for r in session.exec(q.order_by(col(SignoffRow.at), col(SignoffRow.id))).all()]


# -- what the alert-response probe reads ------------------------------------------------

def critical_deliveries(*, session: Session, since: datetime
                        ) -> list[tuple[str, str, datetime, datetime | None, str]]:
    """Deliveries of critical events that happened since ``since``: (event kind, channel,
    event time, sent time or None, state).  A delivery exists only where a channel's
    filters let the event through, so each of these went to a critical channel."""
    from store.alerts import AlertDelivery
    from store.events import EventRow

    q = (sa_select(col(EventRow.kind), col(AlertDelivery.channel), col(EventRow.at),
                   col(AlertDelivery.sent_at), col(AlertDelivery.state))
         .join(EventRow, col(EventRow.id) == col(AlertDelivery.event_id))
         .where(col(EventRow.severity) == "critical", col(EventRow.at) >= since)
         .order_by(col(EventRow.at)))
    return [(k, c, a, s, st) for k, c, a, s, st in session.execute(q).all()]


def undispatched_critical(*, session: Session, since: datetime) -> list[tuple[str, datetime]]:
    """Critical events not yet fanned out to any channel: (kind, time)."""
    from store.events import EventRow

    q = (sa_select(col(EventRow.kind), col(EventRow.at))
         .where(col(EventRow.severity) == "critical", col(EventRow.dispatched).is_(False),
                col(EventRow.at) >= since))
    return [(k, a) for k, a in session.execute(q).all()]

"""Per-minute rollups of gateway access logs, the checkpoints of the log tailer, and the
lines it could not read.

``LogRollup`` is one row per (service, variant, minute): requests, 5xx answers, bytes
and a :class:`slo.sketch.LogSketch` of latencies (milliseconds).  Sketches of equal
bucket layout add up exactly, so the figures of any window are the sum of its minutes
(the 1 % quantile guarantee of the sketch holds for the merged result too).

``LogCheckpoint`` says how far a log has been read: for a file its identity (device,
inode, a hash of its first KiB) and the byte offset after the last complete line
consumed; for a pod the kubelet timestamp of the last line consumed.  The tailer writes
it *in the same transaction* as the rollups of those lines, so a crash at any moment
neither loses nor double-counts a line.

``LogReject`` counts lines that were not used, per source, file and reason (malformed,
not UTF-8, too long, no service, unknown upstream ...), with a few truncated samples for
the dashboard.  Samples are attacker-controlled text: escape them where shown."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import JSON, BigInteger, Column, LargeBinary, bindparam, func, insert, update
from sqlalchemy import select as core_select
from sqlmodel import Field, Session, SQLModel, col, select

from slo.figure_specs import QUANTILE_FIGURES
from slo.figures import Figures
from slo.sketch import LogSketch
from store.db import UtcDateTime, as_utc

__all__ = [
    "BIGINT_MAX",
    "MAX_SAMPLES",
    "Checkpoint",
    "LogCheckpoint",
    "LogReject",
    "LogRollup",
    "LogTotals",
    "MinuteFigures",
    "RollupDelta",
    "add_rejects",
    "get_checkpoint",
    "list_checkpoints",
    "list_rejects",
    "log_figures",
    "log_minutes",
    "log_rows",
    "minute_requests",
    "rollup_totals",
    "saturate",
    "save_checkpoint",
    "totals_figures",
    "upsert_rollups",
    "variant_requests",
]

#: PostgreSQL's BIGINT (and SQLite's INTEGER): the counters saturate here
BIGINT_MAX = 2**63 - 1
#: samples kept per (source, file, reason), each cut to SAMPLE_CHARS characters
MAX_SAMPLES = 5
SAMPLE_CHARS = 300
MINUTE = timedelta(minutes=1)


class LogRollup(SQLModel, table=True):
    __tablename__ = "log_rollup"

    service: str = Field(primary_key=True, max_length=63)
    variant: str = Field(primary_key=True, max_length=16)   # baseline | candidate
    minute: datetime = Field(sa_column=Column(UtcDateTime(), primary_key=True))
    requests: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))
    errors: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))
    bytes_sent: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))
    sketch: bytes = Field(sa_column=Column(LargeBinary(), nullable=False))


class LogCheckpoint(SQLModel, table=True):
    __tablename__ = "log_checkpoint"

    source: str = Field(primary_key=True, max_length=500)
    #: "file" for the live file of a path source, "done:<head hash>" for a rotated
    #: file read to its end, the pod name for a pod source
    stream: str = Field(primary_key=True, max_length=300)
    device: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))
    inode: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))
    size: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))
    offset: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))
    head_hash: str = Field(default="", max_length=64)
    #: pods: RFC 3339 (nanosecond) timestamp of the last line consumed
    pod_time: str | None = Field(default=None, max_length=40)
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class LogReject(SQLModel, table=True):
    __tablename__ = "log_reject"

    source: str = Field(primary_key=True, max_length=500)
    file: str = Field(primary_key=True, max_length=500)
    reason: str = Field(primary_key=True, max_length=32)
    count: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))
    samples: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    last_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


# -- values ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RollupDelta:
    """What one batch of lines adds to one (service, variant, minute)."""

    service: str
    variant: str
    minute: datetime
    requests: int
    errors: int
    bytes_sent: int
    sketch: LogSketch


@dataclass(frozen=True)
class Checkpoint:
    source: str
    stream: str
    device: int = 0
    inode: int = 0
    size: int = 0
    offset: int = 0
    head_hash: str = ""
    pod_time: str | None = None


class MinuteFigures(NamedTuple):
    """One minute of one variant, for charts: latencies in milliseconds."""

    minute: datetime
    requests: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None


def saturate(n: int) -> int:
    """A counter as stored: never past BIGINT_MAX (PostgreSQL would refuse the row, and
    the pass with it); a count that large is "more than can be counted" either way."""
    return n if n <= BIGINT_MAX else BIGINT_MAX


# -- rollups --------------------------------------------------------------------------

def upsert_rollups(*, session: Session, deltas: Iterable[RollupDelta]) -> int:
    """Add each delta to its row (merging sketches), creating rows as needed.

    Reads the touched rows first and writes them back: portable across SQLite and
    PostgreSQL, and only the worker (one, under its lease) writes rollups.  Rows go
    through SQLAlchemy Core (one executemany for the new rows, one for the changed):
    building ORM objects cost the log collector a tenth of its time (measured)."""
    by_key = {(d.service, d.variant, as_utc(d.minute)): d for d in _merge_deltas(deltas)}
    if not by_key:
        return 0
    session.flush()     # ORM changes pending in this session come first
    table = LogRollup.__table__  # type: ignore[attr-defined]
    services = sorted({k[0] for k in by_key})
    lo = min(k[2] for k in by_key)
    hi = max(k[2] for k in by_key)
    q = core_select(table.c.service, table.c.variant, table.c.minute, table.c.requests,
                    table.c.errors, table.c.bytes_sent, table.c.sketch).where(
        table.c.service.in_(services), table.c.minute >= lo, table.c.minute <= hi)
    existing = {(r.service, r.variant, as_utc(r.minute)): r
                for r in session.connection().execute(q)}
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for key, d in by_key.items():
        row = existing.get(key)
        if row is None:
            new.append({"service": d.service, "variant": d.variant, "minute": key[2],
                        "requests": saturate(d.requests), "errors": saturate(d.errors),
                        "bytes_sent": saturate(d.bytes_sent), "sketch": d.sketch.to_bytes()})
            continue
        merged = LogSketch.from_bytes(row.sketch).merge(d.sketch)
        changed.append({"k_service": d.service, "k_variant": d.variant, "k_minute": key[2],
                        "requests": saturate(row.requests + d.requests),
                        "errors": saturate(row.errors + d.errors),
                        "bytes_sent": saturate(row.bytes_sent + d.bytes_sent),
                        "sketch": merged.to_bytes()})
    conn = session.connection()
    if new:
        conn.execute(insert(table), new)
    if changed:
        conn.execute(update(table).where(table.c.service == bindparam("k_service"),
                                         table.c.variant == bindparam("k_variant"),
                                         table.c.minute == bindparam("k_minute")),
                     changed)
    # rows this session had loaded as objects are stale now: read them again
    session.expire_all()
    return len(by_key)


def _merge_deltas(deltas: Iterable[RollupDelta]) -> list[RollupDelta]:
    acc: dict[tuple[str, str, datetime], RollupDelta] = {}
    for d in deltas:
        key = (d.service, d.variant, as_utc(d.minute))
        prev = acc.get(key)
        if prev is None:
            acc[key] = d
        else:
            sk = LogSketch(dict(prev.sketch.counts), prev.sketch.total_ms).merge(d.sketch)
            acc[key] = RollupDelta(d.service, d.variant, key[2], prev.requests + d.requests,
                                   prev.errors + d.errors, prev.bytes_sent + d.bytes_sent, sk)
    return list(acc.values())


def _rows(session: Session, service: str, variant: str, start: datetime,
          end: datetime) -> Sequence[LogRollup]:
    q = (select(LogRollup)
         .where(LogRollup.service == service, LogRollup.variant == variant,
                col(LogRollup.minute) >= start, col(LogRollup.minute) < end)
         .order_by(col(LogRollup.minute)))
    return session.exec(q).all()


@dataclass(frozen=True)
class LogTotals:
    """Requests, errors and the merged latency sketch of some log minutes; ``plus``
    gives new totals (the sketch is copied, so figures made from these never change)."""

    requests: int = 0
    errors: int = 0
    sketch: LogSketch = field(default_factory=LogSketch)
    last_seen: datetime | None = None

    def plus(self, rows: Sequence[LogRollup]) -> LogTotals:
        if not rows:
            return self
        sketch = LogSketch(dict(self.sketch.counts), self.sketch.total_ms)
        requests, errors = self.requests, self.errors
        for r in rows:
            requests += r.requests
            errors += r.errors
            sketch.merge(LogSketch.from_bytes(r.sketch))
        return LogTotals(requests, errors, sketch, rows[-1].minute)


def log_rows(*, session: Session, service: str, variant: str, start: datetime,
             end: datetime) -> Sequence[LogRollup]:
    """The stored minutes of ``variant`` of ``service`` in [start, end), oldest first."""
    return _rows(session, service, variant, start, end)


def log_figures(*, session: Session, service: str, variant: str, start: datetime,
                end: datetime) -> Figures:
    """Figures of ``variant`` of ``service`` from the minutes in [start, end).

    A minute counts when it starts inside the window, so the window's bounds should
    fall on whole minutes (a partial minute at either edge is in or out whole)."""
    totals = LogTotals().plus(_rows(session, service, variant, start, end))
    return totals_figures(totals, service=service, variant=variant, start=start, end=end)


def totals_figures(totals: LogTotals, *, service: str, variant: str, start: datetime,
                   end: datetime) -> Figures:
    """Pure: the figures of the minutes ``totals`` holds, for the window [start, end)."""
    if totals.last_seen is None:
        return Figures(start=start, end=end, problems=(
            f"logs: no gateway log lines for {service} ({variant}) between "
            f"{start.isoformat()} and {end.isoformat()}",))
    sketch, requests, errors = totals.sketch, totals.requests, totals.errors
    seconds = (end - start).total_seconds()
    figures = Figures(
        start=start, end=end,
        requests=float(requests),
        rps=requests / seconds if seconds > 0 else None,
        errors=float(errors),
        error_rate=errors / requests if requests else None,
        latency_avg_ms=sketch.mean,
        latency=sketch,
        last_seen=totals.last_seen,
        sources=("logs",),
    )
    quantiles: dict[str, Any] = {name: sketch.quantile(q) for name, q in QUANTILE_FIGURES.items()}
    return replace(figures, **quantiles)


def log_minutes(*, session: Session, service: str, variant: str, start: datetime,
                end: datetime) -> list[MinuteFigures]:
    """Per-minute requests, errors and p50/p95/p99 in [start, end), oldest first, for
    the dashboard's and the reports' charts (minutes without lines are absent)."""
    out = []
    for r in _rows(session, service, variant, start, end):
        sk = LogSketch.from_bytes(r.sketch)
        out.append(MinuteFigures(r.minute, r.requests, r.errors, sk.quantile(0.50),
                                 sk.quantile(0.95), sk.quantile(0.99)))
    return out


# -- checkpoints ----------------------------------------------------------------------

def get_checkpoint(*, session: Session, source: str, stream: str) -> Checkpoint | None:
    row = session.get(LogCheckpoint, (source, stream))
    return _checkpoint(row) if row is not None else None


def list_checkpoints(*, session: Session, source: str) -> list[Checkpoint]:
    q = select(LogCheckpoint).where(LogCheckpoint.source == source)
    return [_checkpoint(r) for r in session.exec(q).all()]


def _checkpoint(row: LogCheckpoint) -> Checkpoint:
    return Checkpoint(row.source, row.stream, row.device, row.inode, row.size, row.offset,
                      row.head_hash, row.pod_time)


def save_checkpoint(*, session: Session, checkpoint: Checkpoint, at: datetime) -> None:
    cp = checkpoint
    row = session.get(LogCheckpoint, (cp.source, cp.stream))
    if row is None:
        row = LogCheckpoint(source=cp.source, stream=cp.stream, updated_at=at)
    row.device, row.inode, row.size, row.offset = cp.device, cp.inode, cp.size, cp.offset
    row.head_hash, row.pod_time, row.updated_at = cp.head_hash, cp.pod_time, at
    session.add(row)
    session.flush()


# -- rejected lines -------------------------------------------------------------------

def add_rejects(*, session: Session, source: str, file: str, reason: str, count: int,
                samples: Sequence[str], at: datetime) -> None:
    """Count ``count`` more lines of ``file`` rejected for ``reason``; keep the first
    few samples (cut short: a 100 KB line is not worth storing whole)."""
    if count <= 0:
        return
    key = (source[:500], file[:500], reason[:32])
    row = session.get(LogReject, key)
    if row is None:
        row = LogReject(source=key[0], file=key[1], reason=key[2], count=0, samples=[],
                        last_at=at)
    room = MAX_SAMPLES - len(row.samples)
    cut = [_cut(s) for s in samples[:max(room, 0)]]
    row.count = saturate(row.count + count)
    row.samples = list(row.samples) + cut   # a new list, so the JSON column is rewritten
    row.last_at = at
    session.add(row)
    session.flush()


def _cut(s: str) -> str:
    return s if len(s) <= SAMPLE_CHARS else s[:SAMPLE_CHARS] + f"... ({len(s)} chars)"


def list_rejects(*, session: Session, source: str | None = None) -> list[dict[str, Any]]:
    """Rejected-line counts per source, file and reason, most frequent first."""
    q = select(LogReject).order_by(col(LogReject.count).desc())
    if source is not None:
        q = q.where(LogReject.source == source)
    return [{"source": r.source, "file": r.file, "reason": r.reason, "count": r.count,
             "samples": list(r.samples), "last_at": r.last_at}
            for r in session.exec(q).all()]


def rollup_totals(*, session: Session) -> dict[tuple[str, str], int]:
    """Requests per (service, variant) over all time (tests and the dashboard's overview)."""
    q = (select(LogRollup.service, LogRollup.variant, func.sum(LogRollup.requests))
         .group_by(LogRollup.service, LogRollup.variant))
    return {(s, v): int(n or 0) for s, v, n in session.exec(q).all()}


def variant_requests(*, session: Session, service: str, start: datetime,
                     end: datetime) -> dict[str, int]:
    """Requests of ``service`` per variant, minutes in [start, end)."""
    q = (select(LogRollup.variant, func.sum(LogRollup.requests))
         .where(LogRollup.service == service, col(LogRollup.minute) >= start,
                col(LogRollup.minute) < end)
         .group_by(LogRollup.variant))
    return {v: int(n or 0) for v, n in session.exec(q).all()}


def minute_requests(*, session: Session, service: str, start: datetime, end: datetime
                    ) -> list[tuple[datetime, str, int]]:
    """(minute, variant, requests) of ``service`` in [start, end), oldest first: the
    counts alone (no sketch decoded), for the split the gateway actually sent."""
    q = (select(LogRollup.minute, LogRollup.variant, LogRollup.requests)
         .where(LogRollup.service == service, col(LogRollup.minute) >= start,
                col(LogRollup.minute) < end)
         .order_by(col(LogRollup.minute)))
    return [(as_utc(m), v, int(n)) for m, v, n in session.exec(q).all()]

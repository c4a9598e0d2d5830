"""Series pulled from Prometheus, their checkpoints and the outcomes of pulls.

One row per variant and step (``prom_step``) holds what keeps any window exact: the
step's *increases* of the request counter, the error counter, each histogram bucket and
the latency sum and count, and the step's gauges (memory summed over the variant's
pods, CPU cores, share of targets up).  A window's counts are then sums, its quantiles
come from the summed buckets, and its memory and CPU are averages over the steps.

A row covers ``(at - step, at]``; ``at`` sits on the step grid (multiples of the step
since the epoch), so a re-pull lands on the same keys and the upsert never duplicates.
A re-pull that answers nothing for a column keeps what was stored (nothing is lost).

Variants are keyed by ``target``: the service's name for its candidate, and
:data:`BASELINE` for the plan's baseline (the same series for every service: the
monolith serves every route).  ``prom_outage`` keeps every stretch in which Prometheus
(``target='*'``) or one variant's query did not answer, so a window whose data is
missing says why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any

import orjson
from sqlalchemy import Column, Float, Index, Text, or_
from sqlmodel import Field, Session, SQLModel, col, select

from slo.figure_specs import QUANTILE_FIGURES, quantile_column
from slo.figures import Figures
from slo.redact import redact
from slo.sketch import BucketHistogram
from store.db import UtcDateTime

__all__ = [
    "BASELINE",
    "SOURCE",
    "VALUE_COLUMNS",
    "Outage",
    "PromCheckpoint",
    "PromOutage",
    "PromStep",
    "QueryMark",
    "close_outages",
    "load_checkpoints",
    "open_outage",
    "outages_in",
    "prom_collected",
    "prom_figures",
    "prom_outages",
    "prom_steps",
    "save_checkpoint",
    "series_target",
    "steps_figures",
    "upsert_columns",
    "upsert_steps",
]

#: The target key of the plan's baseline (not a valid service name, so never clashes).
BASELINE = "@baseline"
#: The target key of an outage of the whole Prometheus (down, slow, refusing).
SOURCE = "*"
MIB = 2**20

#: Per-step value columns; the collector's query kinds carry these names.  One column
#: per quantile figure of slo/figure_specs.py (p50, p95, p99), each declared on PromStep
#: below (tests/test_kinds.py names a missing one).
VALUE_COLUMNS: tuple[str, ...] = (
    "requests", "errors", "buckets", "latency_sum", "latency_count", "latency_avg",
    *(quantile_column(q) for q in QUANTILE_FIGURES.values()),
    "memory_bytes", "cpu_cores", "up",
)


def _float() -> Any:
    return Field(default=None, sa_column=Column(Float(), nullable=True))


class PromStep(SQLModel, table=True):
    """What Prometheus says about one variant over one step ``(at - step, at]``."""

    __tablename__ = "prom_step"

    target: str = Field(primary_key=True, max_length=64)
    at: datetime = Field(sa_column=Column(UtcDateTime(), primary_key=True))
    step_seconds: float
    requests: float | None = _float()        # increases over the step ...
    errors: float | None = _float()
    latency_sum: float | None = _float()     # seconds
    latency_count: float | None = _float()
    buckets: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    latency_avg: float | None = _float()     # fallbacks when an override hides the parts
    p50: float | None = _float()
    p95: float | None = _float()
    p99: float | None = _float()
    memory_bytes: float | None = _float()    # gauges at the step
    cpu_cores: float | None = _float()
    up: float | None = _float()


class PromCheckpoint(SQLModel, table=True):
    """How far one query of one variant has been pulled; a changed query starts over."""

    __tablename__ = "prom_checkpoint"

    target: str = Field(primary_key=True, max_length=64)
    kind: str = Field(primary_key=True, max_length=16)
    expr: str = Field(sa_column=Column(Text(), nullable=False))
    until: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class PromOutage(SQLModel, table=True):
    """A stretch in which Prometheus (target ``'*'``) or one query did not answer."""

    __tablename__ = "prom_outage"
    __table_args__ = (Index("ix_prom_outage_target_since", "target", "since"),)

    id: int | None = Field(default=None, primary_key=True)
    target: str = Field(max_length=64)
    kind: str = Field(default="", max_length=16)     # '' for the whole source
    outcome: str = Field(max_length=16)              # collectors' PullOutcome values
    message: str = Field(default="", sa_column=Column(Text(), nullable=False))
    since: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    last_attempt: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    attempts: int = 1


def series_target(*, service: str, variant: str) -> str:
    """The target key of ``variant`` ('baseline' or 'candidate') of ``service``."""
    if variant == "baseline":
        return BASELINE
    if variant == "candidate":
        return service
    raise ValueError(f"expected variant 'baseline' or 'candidate', got {variant!r}")


# -- writing ------------------------------------------------------------------------

def upsert_steps(*, session: Session, target: str, step_seconds: float,
                 rows: Mapping[datetime, Mapping[str, Any]]) -> int:
    """Insert or update one row per step; a column a row leaves out (or sets to None)
    keeps its stored value.  ``buckets`` is a mapping of ``le`` (text) to increase."""
    names = sorted({c for values in rows.values() for c in values})
    return upsert_columns(session=session, target=target, step_seconds=step_seconds,
                          at=list(rows), columns={c: [v.get(c) for v in rows.values()]
                                                  for c in names})


def upsert_columns(*, session: Session, target: str, step_seconds: float,
                   at: Sequence[datetime], columns: Mapping[str, Sequence[Any]]) -> int:
    """:func:`upsert_steps` by columns: ``columns[c][i]`` is column ``c`` at ``at[i]``
    (None keeps what is stored), the shape a collector's arrays already have."""
    unknown = set(columns) - set(VALUE_COLUMNS)
    if unknown:
        raise ValueError(f"unknown series columns {sorted(unknown)}; expected {VALUE_COLUMNS}")
    if not at or not columns:
        return 0
    names = list(columns)
    # weeks of history are hundreds of thousands of rows: one executemany of plain
    # tuples, past SQLAlchemy's per-row processing (names are checked against
    # VALUE_COLUMNS above, so no text from outside reaches the statement)
    sqlite = session.get_bind().dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    sets = ", ".join(["step_seconds = excluded.step_seconds",
                      *(f"{c} = COALESCE(excluded.{c}, prom_step.{c})" for c in names)])
    sql = (f"INSERT INTO prom_step (target, at, step_seconds, {', '.join(names)}) VALUES "
           f"({', '.join([mark] * (len(names) + 3))}) "
           f"ON CONFLICT (target, at) DO UPDATE SET {sets}")
    times = [_sqlite_time(t) if sqlite else t.astimezone(UTC) for t in at]
    values = [_encode_buckets(columns[c]) if c == "buckets" else columns[c] for c in names]
    params = list(zip(repeat(target), times, repeat(step_seconds), *values, strict=False))
    session.connection().exec_driver_sql(sql, params)
    return len(params)


def _encode_buckets(column: Sequence[Any]) -> list[str | None]:
    return [orjson.dumps(v).decode() if v is not None else None for v in column]


def _sqlite_time(t: datetime) -> str:
    """As UtcDateTime stores it on SQLite: naive UTC in SQLAlchemy's DATETIME format."""
    if t.tzinfo is None:
        raise ValueError(f"refusing a naive datetime {t.isoformat()}: pass UTC-aware times")
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True)
class QueryMark:
    """How far one query of a target has been pulled (its checkpoint, as a value)."""

    kind: str
    expr: str
    until: datetime


@dataclass(frozen=True)
class Outage:
    """A stretch in which Prometheus (target ``'*'``) or one query did not answer (a
    stored outage, as a value)."""

    target: str
    kind: str
    outcome: str
    message: str
    since: datetime
    until: datetime | None
    attempts: int


def _outage(row: PromOutage) -> Outage:
    return Outage(target=row.target, kind=row.kind, outcome=row.outcome, message=row.message,
                  since=row.since, until=row.until, attempts=row.attempts)


def load_checkpoints(*, session: Session, target: str) -> dict[str, QueryMark]:
    """Each query kind's checkpoint of ``target``."""
    rows = session.exec(select(PromCheckpoint).where(PromCheckpoint.target == target)).all()
    return {r.kind: QueryMark(kind=r.kind, expr=r.expr, until=r.until) for r in rows}


def save_checkpoint(*, session: Session, target: str, kind: str, expr: str, until: datetime,
                    now: datetime) -> None:
    """Move the checkpoint forward (never back: a backfill of old history keeps it)."""
    row = session.get(PromCheckpoint, (target, kind))
    if row is None:
        session.add(PromCheckpoint(target=target, kind=kind, expr=expr, until=until,
                                   updated_at=now))
        return
    if row.expr != expr:
        row.expr, row.until = expr, until
    else:
        row.until = max(row.until, until)
    row.updated_at = now
    session.add(row)


def _open_rows(session: Session, target: str | None) -> list[PromOutage]:
    q = select(PromOutage).where(col(PromOutage.until).is_(None))
    if target is not None:
        q = q.where(PromOutage.target == target)
    return list(session.exec(q.order_by(col(PromOutage.id))).all())


def open_outage(*, session: Session, target: str, kind: str, outcome: str, message: str,
                at: datetime) -> tuple[Outage, bool]:
    """The open outage of (target, kind), created if none; True when it is new.  The
    message (often a remote answer's words) is stored scrubbed of credentials."""
    message = redact(message)
    q = (select(PromOutage).where(PromOutage.target == target, PromOutage.kind == kind,
                                  col(PromOutage.until).is_(None)))
    row = session.exec(q).first()
    if row is not None:
        row.attempts += 1
        row.last_attempt, row.outcome, row.message = at, outcome, message
        session.add(row)
        return _outage(row), False
    row = PromOutage(target=target, kind=kind, outcome=outcome, message=message, since=at,
                     last_attempt=at)
    session.add(row)
    session.flush()
    return _outage(row), True


def close_outages(*, session: Session, target: str, at: datetime,
                  kinds: Iterable[str] | None = None) -> list[Outage]:
    """Close the open outages of ``target`` (only ``kinds``, if given); those closed."""
    closed = []
    wanted = None if kinds is None else set(kinds)
    for row in _open_rows(session, target):
        if wanted is None or row.kind in wanted:
            row.until = at
            session.add(row)
            closed.append(_outage(row))
    return closed


# -- reading ------------------------------------------------------------------------

def prom_figures(*, session: Session, service: str, variant: str, start: datetime,
                 end: datetime) -> Figures:
    """Figures of ``variant`` of ``service`` from the steps in ``(start, end]``.

    A variant Prometheus never collected gives empty figures and no problem (the plan
    may not ask Prometheus about it); one it collected but whose window has no data,
    gaps or stale data, or that an outage covered, says so in ``problems``."""
    target = series_target(service=service, variant=variant)
    if not _collected(session, target):
        return Figures(start=start, end=end)
    rows = prom_steps(session=session, target=target, after=start, until=end)
    outages = _outages_in(session, target=target, start=start, end=end)
    return window_figures(rows, start=start, end=end, label=_label(target, service),
                          outages=outages)


def prom_steps(*, session: Session, target: str, after: datetime, until: datetime
               ) -> list[PromStep]:
    """The stored steps of ``target`` in ``(after, until]``, oldest first."""
    q = (select(PromStep).where(PromStep.target == target, col(PromStep.at) > after,
                                col(PromStep.at) <= until).order_by(col(PromStep.at)))
    return list(session.exec(q).all())


def prom_outages(*, session: Session, target: str) -> list[PromOutage]:
    """Every outage of ``target`` and of the whole source, oldest first (for a replay,
    which filters them per window with :func:`outages_in`)."""
    q = (select(PromOutage).where(col(PromOutage.target).in_([target, SOURCE]))
         .order_by(col(PromOutage.since)))
    return list(session.exec(q).all())


def outages_in(outages: Sequence[PromOutage], *, start: datetime, end: datetime
               ) -> list[PromOutage]:
    """Pure: the outages that say something about the window [start, end]: those that
    began by its end and were not over before its start, and every open one (an open
    outage says why data is missing for any window, old ones too).  Both paths read it:
    :func:`prom_figures` on what its query narrowed, a replay on every outage."""
    return [o for o in outages if (o.since <= end or o.until is None)
            and (o.until is None or o.until >= start)]


def steps_figures(rows: Sequence[PromStep], outages: Sequence[PromOutage], *, target: str,
                  service: str, start: datetime, end: datetime) -> Figures:
    """Pure: :func:`prom_figures` from steps and outages already read (``outages`` may
    hold more than the window's: they are filtered here)."""
    return window_figures(rows, start=start, end=end, label=_label(target, service),
                          outages=outages_in(outages, start=start, end=end))


def _label(target: str, service: str) -> str:
    return "the baseline" if target == BASELINE else f"the candidate of {service}"


def prom_collected(*, session: Session, service: str, variant: str) -> bool:
    """Whether Prometheus was ever collected for ``variant`` of ``service`` (a checkpoint
    or an outage): without it :func:`prom_figures` gives empty figures."""
    return _collected(session, series_target(service=service, variant=variant))


def _collected(session: Session, target: str) -> bool:
    q = select(PromCheckpoint.kind).where(PromCheckpoint.target == target).limit(1)
    if session.exec(q).first() is not None:
        return True
    q2 = select(PromOutage.id).where(PromOutage.target == target).limit(1)
    return session.exec(q2).first() is not None


def _outages_in(session: Session, *, target: str, start: datetime,
                end: datetime) -> list[PromOutage]:
    """The window's outages: SQL narrows to the target's (and the source's) not over
    before ``start``; :func:`outages_in`, the one statement of which count, says the rest."""
    q = (select(PromOutage)
         .where(col(PromOutage.target).in_([target, SOURCE]),
                or_(col(PromOutage.until).is_(None), col(PromOutage.until) >= start))
         .order_by(col(PromOutage.since)))
    return outages_in(session.exec(q).all(), start=start, end=end)


@dataclass(frozen=True)
class _Sums:
    requests: float | None
    errors: float | None
    covered_seconds: float
    histogram: BucketHistogram | None
    latency_sum: float | None
    latency_count: float | None


def window_figures(rows: Sequence[PromStep], *, start: datetime, end: datetime, label: str,
                   outages: Sequence[PromOutage] = ()) -> Figures:
    """Pure: the figures of the steps ``rows`` (all inside ``(start, end]``)."""
    problems = _coverage_problems(rows, start=start, end=end, label=label, outages=outages)
    if not rows:
        return Figures(start=start, end=end, problems=tuple(problems))
    s = _sums(rows)
    latency = _latency(rows, s)
    up = [r.up for r in rows if r.up is not None]
    if up and up[-1] == 0:
        problems.append(f"every Prometheus target of {label} is down (up = 0) at "
                        f"{_hm(rows[-1].at)}")
    seen = [r.at for r in rows if _has_value(r)]
    memory = _mean(r.memory_bytes for r in rows)
    return Figures(
        start=start, end=end, requests=s.requests,
        rps=s.requests / s.covered_seconds if s.requests is not None and s.covered_seconds
        else None,
        errors=s.errors,
        error_rate=s.errors / s.requests if s.errors is not None and s.requests else None,
        memory_mb=memory / MIB if memory is not None else None,
        cpu_cores=_mean(r.cpu_cores for r in rows),
        latency=s.histogram, last_seen=max(seen, default=None),
        sources=("prometheus",) if seen else (), problems=tuple(problems), **latency,
    )


def _sums(rows: Sequence[PromStep]) -> _Sums:
    counted = [r for r in rows if r.requests is not None]
    requests = sum(r.requests for r in counted if r.requests is not None) if counted else None
    # no 5xx series at a step with requests means no errors, not unknown errors
    errors = sum(r.errors or 0.0 for r in counted) if counted else None
    buckets: dict[float, float] = {}
    for r in rows:
        for le, v in orjson.loads(r.buckets).items() if r.buckets else ():
            if math.isfinite(v):
                buckets[float(le)] = buckets.get(float(le), 0.0) + v
    lsum = _total(r.latency_sum for r in rows)
    hist = BucketHistogram(buckets, lsum or 0.0) if buckets else None
    return _Sums(requests, errors, sum(r.step_seconds for r in counted), hist, lsum,
                 _total(r.latency_count for r in rows))


def _latency(rows: Sequence[PromStep], s: _Sums) -> dict[str, float | None]:
    """Quantiles from the summed buckets and the average from sum / count; where an
    override hid those parts, the per-step values weighted by the step's requests."""
    out: dict[str, float | None] = {}
    for name, q in QUANTILE_FIGURES.items():
        fallback = quantile_column(q)   # the column of the per-step quantile: p50, p95, p99
        value = s.histogram.quantile(q) if s.histogram is not None else None
        out[name] = value if value is not None else _weighted_ms(rows, fallback)
    if s.latency_sum is not None and s.latency_count:
        out["latency_avg_ms"] = s.latency_sum / s.latency_count * 1000
    else:
        out["latency_avg_ms"] = _weighted_ms(rows, "latency_avg")
    return out


def _weighted_ms(rows: Sequence[PromStep], column: str) -> float | None:
    pairs = [(getattr(r, column), r.requests or 0.0) for r in rows
             if getattr(r, column) is not None and math.isfinite(getattr(r, column))]
    weight = sum(w for _, w in pairs)
    if not pairs:
        return None
    if weight <= 0:
        return sum(v for v, _ in pairs) / len(pairs) * 1000
    return sum(v * w for v, w in pairs) / weight * 1000


def _coverage_problems(rows: Sequence[PromStep], *, start: datetime, end: datetime,
                       label: str, outages: Sequence[PromOutage]) -> list[str]:
    # a variant's own "Prometheus down" marker says what the source's row says: once
    why = "; ".join(dict.fromkeys(_outage_text(o) for o in outages))
    because = f" ({why})" if why else ""
    if not rows:
        return [f"no Prometheus data for {label} between {_hm(start)} and {_hm(end)}"
                f"{because}"]
    step = rows[-1].step_seconds
    # coverage of the request counter where there is one (gauges outlive a scrape gap
    # by Prometheus' 5-minute lookback), else of anything
    counted = [r for r in rows if r.requests is not None]
    have = {r.at for r in (counted or [r for r in rows if _has_value(r)])}
    missing = [t for t in _grid(start, end, step) if t not in have]
    if not missing:
        return []
    problems = []
    runs = _runs(missing, step)
    last = _grid(start, end, step)[-1]
    for first, final in runs:
        n = int(round((final - first).total_seconds() / step)) + 1
        if final == last:
            newest = max(have, default=None)
            problems.append(f"Prometheus data for {label} is stale: newest point "
                            f"{_hm(newest) if newest else 'none'}, {n} step(s) before "
                            f"the window's end are missing{because}")
        else:
            problems.append(f"Prometheus data for {label} has a gap of {n} step(s) from "
                            f"{_hm(first - timedelta(seconds=step))} to {_hm(final)}{because}")
    return problems


def _outage_text(o: PromOutage) -> str:
    who = ("Prometheus" if o.target == SOURCE or not o.kind else f"the {o.kind} query")
    until = f"until {_hm(o.until)}" if o.until else "still"
    return f"{who} {o.outcome} since {_hm(o.since)}, {until}: {o.message}"


def _grid(start: datetime, end: datetime, step: float) -> list[datetime]:
    """The step times in ``(start, end]``: multiples of ``step`` since the epoch."""
    s, e = start.timestamp(), end.timestamp()
    first = math.floor(s / step) * step + step
    n = max(0, math.floor((e - first) / step) + 1)
    return [datetime.fromtimestamp(first + i * step, UTC) for i in range(n)]


def _runs(times: Sequence[datetime], step: float) -> list[tuple[datetime, datetime]]:
    runs: list[tuple[datetime, datetime]] = []
    for t in times:
        if runs and (t - runs[-1][1]).total_seconds() <= step * 1.01:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    return runs


def _has_value(r: PromStep) -> bool:
    return any(getattr(r, c) is not None for c in VALUE_COLUMNS)


def _mean(values: Iterable[float | None]) -> float | None:
    vs = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vs) / len(vs) if vs else None


def _total(values: Iterable[float | None]) -> float | None:
    vs = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vs) if vs else None


def _hm(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")

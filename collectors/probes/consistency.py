"""``kind: consistency``: the monolith's database and the service's hold the same rows
(week 4: "all sample data migrated successfully", "data consistency maintained").

Per table pair, each round: a checksum of the chosen columns over key ranges of
``chunk_rows`` keys (row counts with it), so a mismatch names the range, then the keys;
and the replication lag (newest ``updated_at`` on each side).  Bounded work: at most
``chunks_per_round`` ranges per table per round, big tables walked over rounds (the walk
position is kept by the process; ranges found different are checked again every round
until they agree).  Every statement runs in a read-only transaction under a statement
timeout; every scan is bounded by a key range found through the key's index with a
LIMIT, never a full table scan.

On PostgreSQL the checksum is computed in the database (``md5(string_agg(...))``, one
row back per range); elsewhere (SQLite, or two different databases) rows of the range
are hashed here."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from collectors.probes.base import Outcome, ProbeContext, ProbeUnreachable, secret
from slo.errors import ConfigError
from slo.probe_specs import ConsistencyProbe, TablePair
from slo.verdict import Verdict

__all__ = ["Chunk", "run"]

SHOWN_KEYS = 10


@dataclass(frozen=True)
class Chunk:
    """Keys in (lo, hi]; ``lo`` None: from the first key; ``hi`` None: to the last."""

    lo: Any
    hi: Any

    def text(self) -> str:
        return f"keys {'start' if self.lo is None else f'> {self.lo}'} .. " \
            f"{'end' if self.hi is None else f'<= {self.hi}'}"


@dataclass
class _Walk:
    after: Any = None                       # where the next round starts
    bad: list[Chunk] = field(default_factory=list)
    cycle_rows: int = 0                     # baseline rows seen in this pass over the table
    last_total: int | None = None           # rows of the last complete pass


@contextmanager
def _read_only(engine: Engine, timeout_ms: int) -> Iterator[Connection]:
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION READ ONLY"))
            conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
        try:
            yield conn
        finally:
            conn.rollback()


def _engines(spec: ConsistencyProbe, ctx: ProbeContext) -> tuple[Engine, Engine]:
    urls = (secret(ctx, env=spec.baseline_db_env, file=spec.baseline_db_file,
                   what=f"probe {spec.name}'s monolith database"),
            secret(ctx, env=spec.candidate_db_env, file=spec.candidate_db_file,
                   what=f"probe {spec.name}'s service database"))
    cache = ctx.state.setdefault(f"{spec.name}:engines", {})
    out = []
    for url, where in zip(urls, (spec.baseline_db_env or spec.baseline_db_file,
                                 spec.candidate_db_env or spec.candidate_db_file), strict=True):
        key = hashlib.sha256(url.encode()).hexdigest()
        if key not in cache:
            cache[key] = _engine(spec, url, str(where))
        out.append(cache[key])
    return out[0], out[1]


def _engine(spec: ConsistencyProbe, url: str, where: str) -> Engine:
    # SQLAlchemy quotes a URL it cannot read in its message: never let it reach a log
    try:
        if url.startswith("sqlite"):
            return create_engine(url, pool_pre_ping=True)
        return create_engine(url, pool_pre_ping=True, pool_size=1, max_overflow=1)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError):
        raise ConfigError(f"probe {spec.name}: the value of {where} is not a database URL "
                          "(expected e.g. postgresql+psycopg://user@host/db)") from None


def _where(key: str, chunk: Chunk) -> tuple[str, dict[str, Any]]:
    parts, params = [], {}
    if chunk.lo is not None:
        parts.append(f"{key} > :lo")
        params["lo"] = chunk.lo
    if chunk.hi is not None:
        parts.append(f"{key} <= :hi")
        params["hi"] = chunk.hi
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


def _upper(conn: Connection, pair: TablePair, after: Any, rows: int) -> Any:
    """The key ``rows`` keys after ``after`` (through the key's index), None past the end."""
    where = f" WHERE {pair.key} > :after" if after is not None else ""
    q = text(f"SELECT {pair.key} FROM {pair.table}{where} ORDER BY {pair.key} "
             f"LIMIT 1 OFFSET {rows - 1}")
    row = conn.execute(q, {"after": after} if after is not None else {}).first()
    return row[0] if row is not None else None


def _row_hash(row: Any) -> str:
    return hashlib.md5("|".join("\\N" if v is None else str(v) for v in row).encode(),
                       usedforsecurity=False).hexdigest()


def _digest(conn: Connection, table: str, pair: TablePair, chunk: Chunk, *,
            in_db: bool, limit: int) -> tuple[int, str]:
    where, params = _where(pair.key, chunk)
    cols = ", ".join(pair.columns)
    if in_db:
        q = text(f"SELECT count(*), coalesce(md5(string_agg(md5(ROW({cols})::text), '' "
                 f"ORDER BY {pair.key})), '') FROM (SELECT {pair.key}, {cols} FROM {table}"
                 f"{where} ORDER BY {pair.key} LIMIT {limit}) AS chunk")
        n, digest = conn.execute(q, params).one()
        return int(n), str(digest)
    rows = conn.execute(text(f"SELECT {pair.key}, {cols} FROM {table}{where} "
                             f"ORDER BY {pair.key} LIMIT {limit}"), params).all()
    h = hashlib.md5(usedforsecurity=False)
    for r in rows:
        h.update(_row_hash(r[1:]).encode())
    return len(rows), h.hexdigest()


def _keys(conn: Connection, table: str, pair: TablePair, chunk: Chunk, *, in_db: bool,
          limit: int) -> dict[Any, str]:
    where, params = _where(pair.key, chunk)
    cols = ", ".join(pair.columns)
    if in_db:
        q = text(f"SELECT {pair.key}, md5(ROW({cols})::text) FROM {table}{where} "
                 f"ORDER BY {pair.key} LIMIT {limit}")
        return {k: h for k, h in conn.execute(q, params).all()}
    q = text(f"SELECT {pair.key}, {cols} FROM {table}{where} ORDER BY {pair.key} LIMIT {limit}")
    return {r[0]: _row_hash(r[1:]) for r in conn.execute(q, params).all()}


def _newest(conn: Connection, table: str, column: str) -> datetime | None:
    value = conn.execute(text(f"SELECT max({column}) FROM {table}")).scalar()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value if isinstance(value, datetime) else None


class _Table:
    """One table pair's round: which ranges to check, what they say."""

    def __init__(self, spec: ConsistencyProbe, pair: TablePair, walk: _Walk,
                 a: Connection, b: Connection):
        self.spec, self.pair, self.walk, self.a, self.b = spec, pair, walk, a, b
        self.in_db = a.dialect.name == b.dialect.name == "postgresql"
        # a range of the candidate may hold extra rows: read a little past chunk_rows
        self.limit = 2 * spec.chunk_rows + 1
        self.reasons: list[str] = []
        self.figures: dict[str, Any] = {"ranges_checked": 0, "ranges_different": 0}

    def chunks(self) -> list[Chunk]:
        out = list(self.walk.bad)
        for _ in range(self.spec.chunks_per_round):
            hi = _upper(self.a, self.pair, self.walk.after, self.spec.chunk_rows)
            chunk = Chunk(self.walk.after, hi)
            if chunk not in out:
                out.append(chunk)
            if hi is None:          # reached the end: the next round starts over
                self.walk.after = None
                break
            self.walk.after = hi
        return out

    def check(self) -> bool:
        bad: list[Chunk] = []
        for chunk in self.chunks():
            na, da = _digest(self.a, self.pair.table, self.pair, chunk, in_db=self.in_db,
                             limit=self.limit)
            nb, db = _digest(self.b, self.pair.other, self.pair, chunk, in_db=self.in_db,
                             limit=self.limit)
            self.figures["ranges_checked"] += 1
            if chunk not in self.walk.bad:
                self._count(na, chunk)
            if (na, da) != (nb, db):
                bad.append(chunk)
                self.reasons.append(self._explain(chunk, na, nb))
        self.walk.bad = bad
        self.figures["ranges_different"] = len(bad)
        self.figures["rows_last_pass"] = self.walk.last_total
        return not bad

    def _count(self, rows: int, chunk: Chunk) -> None:
        self.walk.cycle_rows += rows
        if chunk.hi is None:
            self.walk.last_total, self.walk.cycle_rows = self.walk.cycle_rows, 0

    def _explain(self, chunk: Chunk, na: int, nb: int) -> str:
        ka = _keys(self.a, self.pair.table, self.pair, chunk, in_db=self.in_db, limit=self.limit)
        kb = _keys(self.b, self.pair.other, self.pair, chunk, in_db=self.in_db, limit=self.limit)
        missing = [k for k in ka if k not in kb]
        extra = [k for k in kb if k not in ka]
        changed = [k for k in ka if k in kb and ka[k] != kb[k]]
        parts = [f"{label} {_keys_text(keys)}" for label, keys in (
            ("missing from the service:", missing), ("only in the service:", extra),
            ("different:", changed)) if keys]
        return (f"{self.pair.table} {chunk.text()}: {na} rows in the monolith, {nb} in the "
                f"service; " + "; ".join(parts or ["same keys, order-dependent difference"]))

    def lag(self) -> float | None:
        if self.pair.updated_at is None:
            return None
        ta = _newest(self.a, self.pair.table, self.pair.updated_at)
        tb = _newest(self.b, self.pair.other, self.pair.updated_at)
        if ta is None or tb is None:
            return None
        seconds = max(0.0, (ta - tb).total_seconds())
        self.figures["lag_seconds"] = seconds
        if seconds > self.spec.max_lag.total_seconds():
            self.reasons.append(f"{self.pair.table}: the service's newest {self.pair.updated_at}"
                                f" is {seconds:.0f} s behind the monolith's "
                                f"(limit {self.spec.max_lag.total_seconds():.0f} s)")
        return seconds


def _keys_text(keys: list[Any]) -> str:
    shown = ", ".join(str(k) for k in keys[:SHOWN_KEYS])
    return shown + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


def run(spec: ConsistencyProbe, ctx: ProbeContext) -> Outcome:
    ea, eb = _engines(spec, ctx)
    walks: dict[str, _Walk] = ctx.state.setdefault(f"{spec.name}:walks", {})
    timeout = int(spec.statement_timeout.total_seconds() * 1000)
    reasons: list[str] = []
    figures: dict[str, Any] = {}
    worst_lag: float | None = None
    ok = True
    try:
        with _read_only(ea, timeout) as a, _read_only(eb, timeout) as b:
            for pair in spec.tables:
                table = _Table(spec, pair, walks.setdefault(pair.table, _Walk()), a, b)
                ok &= table.check()
                lag = table.lag()
                if lag is not None:
                    worst_lag = max(worst_lag or 0.0, lag)
                    ok &= lag <= spec.max_lag.total_seconds()
                reasons += table.reasons
                figures[pair.table] = table.figures
    except (OperationalError, DBAPIError) as e:
        raise ProbeUnreachable(spec.name, f"database: {_db_error(e)}") from None
    if not ok:
        return Outcome(Verdict.FAIL, tuple(reasons), value=worst_lag,
                       limit=spec.max_lag.total_seconds(), figures=figures)
    checked = sum(f["ranges_checked"] for f in figures.values())
    return Outcome(Verdict.PASS, (f"{checked} key ranges of {len(spec.tables)} tables agree"
                                  + (f"; lag {worst_lag:.0f} s" if worst_lag is not None else ""),),
                   value=worst_lag, limit=spec.max_lag.total_seconds(), figures=figures)


def _db_error(e: DBAPIError) -> str:
    """The driver's complaint without the statement or the URL."""
    orig = getattr(e, "orig", None)
    first = str(orig or e).strip().splitlines()[0] if str(orig or e).strip() else ""
    return f"{type(orig or e).__name__}: {first[:200]}"

"""Retention: delete rows older than a cut-off from the tables that opt in.

A table opts in with a class attribute naming its UTC datetime column::

    class EvaluationRow(SQLModel, table=True):
        __prune_column__ = "at"

and may name a boolean column that must be true before a row may go, so nothing that
still has work pending is lost (an event not yet dispatched, say)::

        __prune_when__ = "dispatched"

Tables without the attribute (decisions: the audit trail; service state; checkpoints)
are never touched.  Rows go in batches, each its own short transaction, so a prune of
millions of rows neither holds long locks nor grows the WAL or the rollback journal
without bound, and an interrupted prune keeps what it already did.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Table, delete, select, tuple_
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from slo.errors import ConfigError, StoreError
from store.db import UtcDateTime

__all__ = ["BATCH_SIZE", "PrunableTable", "prunable_tables", "prune"]

log = logging.getLogger(__name__)

BATCH_SIZE = 5000


@dataclass(frozen=True)
class PrunableTable:
    """A table that opted in: its time column, and the optional must-be-true column."""

    table: Table
    column: Column[Any]
    when: Column[Any] | None = None

    @property
    def name(self) -> str:
        return self.table.name


def prunable_tables() -> list[PrunableTable]:
    """Every table class with ``__prune_column__``, in table-name order."""
    import store.tables  # noqa: F401  (registers every table module)

    found: dict[str, PrunableTable] = {}
    for mapper in SQLModel._sa_registry.mappers:  # type: ignore[attr-defined]
        cls = mapper.class_
        column_name = cls.__dict__.get("__prune_column__")
        if column_name is None:
            continue
        table = mapper.local_table
        if not isinstance(table, Table):
            raise StoreError(f"{cls.__name__}: retention needs a plain table")
        found[table.name] = PrunableTable(
            table, _column(cls, table, column_name, want=UtcDateTime),
            _column(cls, table, cls.__dict__["__prune_when__"], want=None)
            if "__prune_when__" in cls.__dict__ else None)
    return [found[name] for name in sorted(found)]


def _column(cls: type, table: Table, name: str, *, want: type | None) -> Column[Any]:
    if name not in table.c:
        raise StoreError(f"{cls.__name__}: retention column {name!r} is not a column of "
                         f"table {table.name!r}")
    col = table.c[name]
    if want is not None and not isinstance(col.type, want):
        raise StoreError(f"{cls.__name__}.{name}: retention needs a UtcDateTime column, "
                         f"got {col.type!r}")
    return col


def prune(*, engine: Engine, older_than: timedelta, now: datetime,
          batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Delete rows older than ``now - older_than``; the number deleted per table."""
    if older_than <= timedelta(0):
        raise ConfigError(f"expected a positive age to prune, got {older_than}")
    if now.tzinfo is None:
        raise ConfigError(f"expected a UTC-aware now, got {now.isoformat()}")
    if batch_size < 1:
        raise ConfigError(f"expected a batch size of at least 1, got {batch_size}")
    cutoff = now - older_than
    counts = {t.name: _prune_table(engine, t, cutoff=cutoff, batch_size=batch_size)
              for t in prunable_tables()}
    log.info("pruned rows older than %s: %s", cutoff.isoformat(), counts)
    return counts


def _prune_table(engine: Engine, t: PrunableTable, *, cutoff: datetime,
                 batch_size: int) -> int:
    pk = list(t.table.primary_key.columns)
    if not pk:
        raise StoreError(f"table {t.name!r} has no primary key: cannot prune it in batches")
    doomed = select(*pk).where(t.column < cutoff)
    if t.when is not None:
        doomed = doomed.where(t.when.is_(True))
    doomed = doomed.order_by(*pk).limit(batch_size)
    key = pk[0] if len(pk) == 1 else tuple_(*pk)
    # DELETE ... WHERE pk IN (SELECT pk ... LIMIT n): portable (SQLite and PostgreSQL
    # have no common DELETE ... LIMIT), one short transaction per batch
    stmt = delete(t.table).where(key.in_(doomed))
    total = 0
    while True:
        with engine.begin() as conn:
            n = conn.execute(stmt).rowcount
        total += n
        if n < batch_size:
            return total

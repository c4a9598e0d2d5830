"""Retention: `cutover db prune` deletes old rows of the tables that opt in, only those,
in batches, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Boolean, Column, Integer, MetaData, Table, func, insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from cutover.cli import main
from slo.errors import ConfigError, StoreError
from store.db import UtcDateTime, make_engine, session_scope, upgrade
from store.evaluations import EvaluationRow
from store.events import EventRow
from store.retention import PrunableTable, _column, _prune_table, prunable_tables, prune
from store.rollout import Decision

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _evaluation(at: datetime, service: str = "auth") -> EvaluationRow:
    return EvaluationRow(service=service, at=at, weight=10, verdict="pass")


def _event(at: datetime, *, dispatched: bool = True) -> EventRow:
    return EventRow(at=at, kind="verdict-changed", summary="x", dispatched=dispatched)


def _count(engine: Engine, table: type) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(table)).one()[0])  # type: ignore[call-overload]


def test_tables_opt_in_by_attribute() -> None:
    names = {t.name: t.column.name for t in prunable_tables()}
    assert names["evaluation"] == "at"
    assert names["event"] == "at"
    assert "decision" not in names, "the audit trail is never pruned"


def test_prune_deletes_only_old_rows(engine: Engine) -> None:
    with session_scope(engine) as s:
        for days in (200, 120, 91, 30, 1):
            s.add(_evaluation(NOW - days * DAY, service=f"s{days}"))
            s.add(_event(NOW - days * DAY))
        s.add(Decision(at=NOW - 365 * DAY, service="auth", action="approve", from_weight=0,
                       to_weight=10, actor="ana", reason="old", state="applied"))
    counts = prune(engine=engine, older_than=90 * DAY, now=NOW)
    assert counts["evaluation"] == 3 and counts["event"] == 3
    with Session(engine) as s:
        left = sorted(r.service for r in s.exec(select(EvaluationRow)).scalars())  # type: ignore[call-overload]
    assert left == ["s1", "s30"]
    assert _count(engine, EventRow) == 2
    assert _count(engine, Decision) == 1, "decisions are kept"


def test_row_exactly_at_the_cutoff_is_kept(engine: Engine) -> None:
    with session_scope(engine) as s:
        s.add(_evaluation(NOW - 90 * DAY))
        s.add(_evaluation(NOW - 90 * DAY - timedelta(seconds=1), service="older"))
    assert prune(engine=engine, older_than=90 * DAY, now=NOW)["evaluation"] == 1
    assert _count(engine, EvaluationRow) == 1


def test_prune_in_batches_removes_everything_old(engine: Engine) -> None:
    with session_scope(engine) as s:
        for i in range(11):
            s.add(_evaluation(NOW - 100 * DAY + i * timedelta(minutes=1), service=f"s{i}"))
        s.add(_evaluation(NOW))
    counts = prune(engine=engine, older_than=90 * DAY, now=NOW, batch_size=3)
    assert counts["evaluation"] == 11
    assert _count(engine, EvaluationRow) == 1


def test_nothing_to_prune_is_zero(engine: Engine) -> None:
    counts = prune(engine=engine, older_than=DAY, now=NOW)
    assert {"evaluation", "event"} <= set(counts)
    assert set(counts.values()) == {0}


@pytest.mark.parametrize("older_than", [timedelta(0), -DAY])
def test_age_must_be_positive(sqlite_engine: Engine, older_than: timedelta) -> None:
    with pytest.raises(ConfigError, match="positive age"):
        prune(engine=sqlite_engine, older_than=older_than, now=NOW)


def test_naive_now_is_refused(sqlite_engine: Engine) -> None:
    with pytest.raises(ConfigError, match="UTC-aware"):
        prune(engine=sqlite_engine, older_than=DAY, now=NOW.replace(tzinfo=None))


# -- the convention's edges, on a table of the test's own (kept out of SQLModel's metadata,
#    which the migrations must match) ------------------------------------------------

def _outbox(engine: Engine) -> Table:
    md = MetaData()
    t = Table("outbox_test", md, Column("id", Integer, primary_key=True),
              Column("at", UtcDateTime(), nullable=False),
              Column("done", Boolean, nullable=False))
    md.create_all(engine)
    return t


def test_rows_with_work_pending_are_kept(engine: Engine) -> None:
    t = _outbox(engine)
    with engine.begin() as conn:
        conn.execute(insert(t), [{"at": NOW - 100 * DAY, "done": d} for d in (True, False, True)])
    n = _prune_table(engine, PrunableTable(t, t.c.at, t.c.done), cutoff=NOW - 90 * DAY,
                     batch_size=1)
    assert n == 2
    with engine.connect() as conn:
        assert conn.execute(select(t.c.done)).scalars().all() == [False]


def test_a_wrong_column_name_says_which_class() -> None:
    t = Table("x", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer))
    with pytest.raises(StoreError, match=r"Thing: retention column 'at' is not a column"):
        _column(type("Thing", (), {}), t, "at", want=UtcDateTime)
    with pytest.raises(StoreError, match=r"Thing.n: retention needs a UtcDateTime column"):
        _column(type("Thing", (), {}), t, "n", want=UtcDateTime)


# -- the command ------------------------------------------------------------------------

def test_cli_prune_prints_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    eng = make_engine(url)
    upgrade(eng)
    now = datetime.now(UTC)
    with session_scope(eng) as s:
        s.add(_evaluation(now - 100 * DAY))
        s.add(_evaluation(now - 10 * DAY, service="recent"))
    eng.dispose()
    assert main(["db", "prune", "--older-than", "90d", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "pruned rows older than 90d" in out
    assert "  evaluation: 1" in out and "  event: 0" in out


@pytest.mark.parametrize("bad", ["ninety days", "0d"])
def test_cli_bad_age_is_exit_2(tmp_path: Path, bad: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "prune", "--older-than", bad, "--db",
                 f"sqlite:///{tmp_path / 'c.db'}"]) == 2
    assert "--older-than" in capsys.readouterr().err


def test_cli_prune_on_a_store_not_upgraded_is_exit_2(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "prune", "--older-than", "90d", "--db",
                 f"sqlite:///{tmp_path / 'empty.db'}"]) == 2
    assert "cutover db upgrade" in capsys.readouterr().err

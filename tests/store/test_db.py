"""The store on SQLite and PostgreSQL: migrations, UTC at the edge, repository basics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError

from slo.errors import ConfigError
from slo.figures import Figures
from slo.verdict import Check, Evaluation, Verdict
from store.db import make_engine, schema_is_current, session_scope, upgrade
from store.evaluations import evaluation_history, latest_evaluation, save_evaluation, to_domain
from store.events import pending_events, record_event
from store.tables import metadata

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_migrations_match_the_tables(engine: Engine) -> None:
    """Every table and column the code declares is created by the migrations, no more."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert schema_is_current(engine)


def test_fresh_database_is_not_current(db_url: str) -> None:
    eng = make_engine(db_url)
    assert not schema_is_current(eng)
    upgrade(eng)
    upgrade(eng)  # idempotent
    assert schema_is_current(eng)
    assert "evaluation" in inspect(eng).get_table_names()


def _evaluation(at: datetime, verdict: Verdict = Verdict.PASS, service: str = "auth") -> Evaluation:
    base = Figures(start=at - timedelta(minutes=10), end=at, requests=5000, rps=8.3,
                   error_rate=0.002, latency_p95_ms=39.8)
    cand = Figures(start=at - timedelta(minutes=10), end=at, requests=600, rps=1.0,
                   error_rate=0.0, latency_p95_ms=41.2, memory_mb=None)
    return Evaluation(service=service, phase="week-2", weight=25, at=at, verdict=verdict,
                      reasons=("p95 latency 41.2 ms <= 1.10 x baseline 39.8 ms",),
                      baseline=base, candidate=cand,
                      checks=(Check("latency_p95_ms", Verdict.PASS, 39.8, 41.2, 43.78, "ok"),),
                      plan_hash="abc")


def test_times_come_back_utc_aware(engine: Engine) -> None:
    at = datetime(2026, 11, 26, 13, 0, tzinfo=timezone(timedelta(hours=1)))  # 12:00 UTC
    with session_scope(engine) as s:
        save_evaluation(session=s, evaluation=_evaluation(at))
    with session_scope(engine) as s:
        row = latest_evaluation(session=s, service="auth")
        assert row is not None
        assert row.at == T0 and row.at.tzinfo is not None
        assert row.at.utcoffset() == timedelta(0)


def test_naive_times_are_refused(engine: Engine) -> None:
    # SQLAlchemy wraps the type's error in StatementError; the message is ours
    with pytest.raises(StatementError, match="refusing a naive datetime"), session_scope(engine) as s:
        record_event(session=s, at=datetime(2026, 11, 26, 12, 0), kind="drift", summary="x")


def test_evaluations_round_trip_and_order(engine: Engine) -> None:
    with session_scope(engine) as s:
        for i, v in enumerate([Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE]):
            save_evaluation(session=s, evaluation=_evaluation(T0 + timedelta(minutes=i), v))
        save_evaluation(session=s, evaluation=_evaluation(T0, service="files"))
    with session_scope(engine) as s:
        latest = latest_evaluation(session=s, service="auth")
        assert latest is not None and latest.verdict == "inconclusive"
        before = latest_evaluation(session=s, service="auth", at_or_before=T0 + timedelta(seconds=90))
        assert before is not None and before.verdict == "fail"
        hist = evaluation_history(session=s, service="auth")
        assert [r.verdict for r in hist] == ["pass", "fail", "inconclusive"]
        ev = to_domain(hist[0])
    assert ev.candidate.memory_mb is None          # null stays null, never a number
    assert ev.baseline.latency_p95_ms == 39.8
    assert ev.checks[0].limit == 43.78
    assert ev.contract()["figures"]["candidate"]["requests"] == 600


def test_events_are_pending_until_dispatched(engine: Engine) -> None:
    with session_scope(engine) as s:
        record_event(session=s, at=T0, kind="approved", service="auth", summary="auth 10 -> 25",
                     data={"from": 10, "to": 25})
        record_event(session=s, at=T0, kind="drift", service="files", summary="hand patch")
    with session_scope(engine) as s:
        rows = pending_events(session=s)
        assert [r.kind for r in rows] == ["approved", "drift"]
        assert rows[0].dedup_key == "approved:auth" and rows[0].data == {"from": 10, "to": 25}
        rows[0].dispatched = True
        s.add(rows[0])
    with session_scope(engine) as s:
        assert [r.kind for r in pending_events(session=s)] == ["drift"]


def test_bad_database_urls() -> None:
    with pytest.raises(ConfigError, match="expected a database URL"):
        make_engine("not a url")
    with pytest.raises(ConfigError, match="unsupported database 'mysql'"):
        make_engine("mysql://root@localhost/x")


def test_sqlite_uses_wal(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


@pytest.mark.postgres
def test_concurrent_upgrades_on_postgres(pg_database: str) -> None:
    """Several pods run `cutover db upgrade` at once on a fresh database: all succeed.
    (Processes, as on a cluster: Alembic's context is per process.)"""
    import subprocess
    import sys

    from tests.conftest import ROOT, _reset_pg

    _reset_pg(pg_database)
    procs = [subprocess.Popen([sys.executable, "-m", "cutover", "db", "upgrade", "--db", pg_database],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0, 0, 0], results
    assert schema_is_current(make_engine(pg_database))

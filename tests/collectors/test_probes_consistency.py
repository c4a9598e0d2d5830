"""The consistency probe on two real PostgreSQL databases (and on two SQLite files): rows
changed, missing and lagging are named by key range and then by key; big tables are
walked over rounds; every statement runs read-only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from collectors.probes.base import ProbeContext
from collectors.probes.runner import run_probe
from slo.plan import Plan
from slo.probe_results import ProbeResult
from slo.probe_specs import ConsistencyProbe
from slo.verdict import Verdict
from tests.conftest import PG_ADMIN

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
T = NOW - timedelta(hours=1)
ROWS = 250


def _fill(engine: Engine, *, rows: int = ROWS) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE samples (id integer PRIMARY KEY, sample_name text, "
                          "status text, priority integer, updated_at timestamp)"))
        conn.execute(text("INSERT INTO samples VALUES (:id, :n, :s, :p, :u)"),
                     [{"id": i, "n": f"sample-{i:04d}", "s": "queued" if i % 3 else "done",
                       "p": i % 5, "u": (T + timedelta(seconds=i)).replace(tzinfo=None)}
                      for i in range(1, rows + 1)])


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two databases holding the same 250 samples: the monolith's and the service's URLs."""
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'monolith.db'}", f"sqlite:///{tmp_path / 'service.db'}"]
    else:
        names = [f"probe_{side}_{uuid.uuid4().hex[:8]}" for side in ("mono", "svc")]
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for n in names:
                conn.execute(text(f'CREATE DATABASE "{n}"'))
        urls = [PG_ADMIN.rsplit("/", 1)[0] + f"/{n}" for n in names]
    for url in urls:
        eng = create_engine(url)
        _fill(eng)
        eng.dispose()
    yield urls[0], urls[1]
    if request.param == "postgres":
        with admin.connect() as conn:
            for n in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))
        admin.dispose()


def _spec(**kw: object) -> ConsistencyProbe:
    base: dict[str, object] = dict(
        kind="consistency", name="samples-consistent", baseline_db_env="MONO_DB",
        candidate_db_env="SVC_DB", chunk_rows=100, chunks_per_round=10,
        tables=[{"table": "samples", "key": "id",
                 "columns": ["sample_name", "status", "priority"], "updated_at": "updated_at"}])
    return ConsistencyProbe.model_validate({**base, **kw})


def _run(plan: Plan, urls: tuple[str, str], spec: ConsistencyProbe | None = None,
         ctx: ProbeContext | None = None) -> ProbeResult:
    ctx = ctx or ProbeContext(plan=plan, now=NOW, env={"MONO_DB": urls[0], "SVC_DB": urls[1]})
    return run_probe((plan.phase("week-4"), None, spec or _spec()), ctx)


def _service(urls: tuple[str, str], sql: str) -> None:
    eng = create_engine(urls[1])
    with eng.begin() as conn:
        conn.execute(text(sql))
    eng.dispose()


def test_the_same_rows_agree(plan: Plan, databases: tuple[str, str]) -> None:
    result = _run(plan, databases)
    assert result.verdict is Verdict.PASS, result.reasons
    assert result.reasons == ("3 key ranges of 1 tables agree; lag 0 s",)
    assert result.figures["samples"]["rows_last_pass"] == ROWS


def test_changed_missing_and_extra_rows_name_the_range_then_the_keys(
        plan: Plan, databases: tuple[str, str]) -> None:
    _service(databases, "UPDATE samples SET status = 'lost' WHERE id = 42")
    _service(databases, "DELETE FROM samples WHERE id IN (150, 151)")
    _service(databases, "INSERT INTO samples VALUES (9999, 'stray', 'queued', 1, NULL)")
    result = _run(plan, databases)
    assert result.verdict is Verdict.FAIL
    assert result.reasons == (
        "samples keys start .. <= 100: 100 rows in the monolith, 100 in the service; "
        "different: 42",
        "samples keys > 100 .. <= 200: 100 rows in the monolith, 98 in the service; "
        "missing from the service: 150, 151",
        "samples keys > 200 .. end: 50 rows in the monolith, 51 in the service; "
        "only in the service: 9999")


def test_a_lagging_service_fails_on_lag(plan: Plan, databases: tuple[str, str]) -> None:
    eng = create_engine(databases[0])
    with eng.begin() as conn:   # the monolith took a write the service has not seen yet
        conn.execute(text("UPDATE samples SET updated_at = :u WHERE id = 7"),
                     {"u": (NOW - timedelta(seconds=5)).replace(tzinfo=None)})
    eng.dispose()
    result = _run(plan, databases)
    assert result.verdict is Verdict.FAIL
    assert result.value == pytest.approx(3600 - 5 - ROWS, abs=1)
    assert "the service's newest updated_at is" in result.reasons[0]


def test_a_big_table_is_walked_over_rounds_and_a_difference_is_kept(
        plan: Plan, databases: tuple[str, str]) -> None:
    ctx = ProbeContext(plan=plan, now=NOW, env={"MONO_DB": databases[0], "SVC_DB": databases[1]})
    spec = _spec(chunk_rows=50, chunks_per_round=2)
    _service(databases, "UPDATE samples SET priority = 99 WHERE id = 30")
    first = _run(plan, databases, spec, ctx)          # keys 1..100: finds id 30
    second = _run(plan, databases, spec, ctx)         # keys 101..200, and 1..50 again
    assert first.verdict is second.verdict is Verdict.FAIL
    assert first.figures["samples"]["ranges_checked"] == 2
    assert second.figures["samples"]["ranges_checked"] == 3
    assert any("different: 30" in r for r in second.reasons)
    _service(databases, "UPDATE samples SET priority = 0 WHERE id = 30")   # repaired
    third = _run(plan, databases, spec, ctx)          # keys 201..end, and 1..50 again
    assert third.verdict is Verdict.PASS, third.reasons
    fourth = _run(plan, databases, spec, ctx)         # a pass over the table completed
    assert fourth.figures["samples"]["rows_last_pass"] == ROWS


@pytest.mark.postgres
def test_statements_run_read_only_under_a_timeout(pg_database: str) -> None:
    from sqlalchemy.exc import DBAPIError

    from collectors.probes.consistency import _read_only

    eng = create_engine(pg_database)
    with _read_only(eng, 1000) as conn, pytest.raises(DBAPIError, match="read-only"):
        conn.execute(text("CREATE TABLE probe_wrote_here (i integer)"))
    with _read_only(eng, 50) as conn, pytest.raises(DBAPIError, match="statement timeout"):
        conn.execute(text("SELECT pg_sleep(1)"))
    eng.dispose()


def test_sqlite_connections_are_query_only(plan: Plan, tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    from collectors.probes.consistency import _read_only

    eng = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    _fill(eng, rows=3)
    with _read_only(eng, 1000) as conn, pytest.raises(OperationalError, match="readonly"):
        conn.execute(text("DELETE FROM samples"))
    eng.dispose()


def test_an_unset_url_or_an_unreachable_database_is_inconclusive_without_the_url(
        plan: Plan) -> None:
    unset = _run(plan, ("", ""), ctx=ProbeContext(plan=plan, now=NOW, env={}))
    assert unset.verdict is Verdict.INCONCLUSIVE
    assert "environment variable MONO_DB is not set" in unset.reasons[0]
    url = "postgresql+psycopg://probe:pw-s3cret@127.0.0.1:1/none"
    down = _run(plan, (url, url))
    assert down.verdict is Verdict.INCONCLUSIVE and down.reasons[0].startswith("could not run")
    assert "pw-s3cret" not in " ".join(down.reasons)


def test_a_url_that_is_no_database_url_is_named_by_its_variable_only(
        plan: Plan, caplog: pytest.LogCaptureFixture) -> None:
    bad = "postgres:/app:pw-s3cret@db/mono"
    result = _run(plan, (bad, bad))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "the value of MONO_DB is not a database URL" in result.reasons[0]
    assert "pw-s3cret" not in " ".join(result.reasons) + caplog.text

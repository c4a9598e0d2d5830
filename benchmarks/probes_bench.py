"""What the consistency probe costs: a full pass over two tables of N rows (1,000,000 by
default) in two PostgreSQL databases, walked in key ranges as the worker would, beside a
plain ``SELECT count(*)`` and a full-table ``md5(string_agg(...))`` aggregate over the
same tables in the same run.  Wall time, rows read per second and the probe process's
peak memory.  Run by hand: ``python benchmarks/probes_bench.py [N] [CHUNK_ROWS]``."""

from __future__ import annotations

import resource
import sys
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import create_engine, text

from collectors.probes.base import ProbeContext
from collectors.probes.runner import run_probe
from slo.planfile import parse_plan
from slo.probe_specs import ConsistencyProbe
from tests.conftest import PLAN_PATH, plan_text_without_probes

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
COLUMNS = ["sample_name", "project_id", "status", "priority", "flow_cell_type"]


def _database(rows: int) -> tuple[str, str]:
    name = f"bench_probe_{uuid.uuid4().hex[:8]}"
    with create_engine(PG, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG.rsplit("/", 1)[0] + f"/{name}"
    with create_engine(url).begin() as c:
        c.execute(text("CREATE TABLE samples (id bigint PRIMARY KEY, sample_name text, "
                       "project_id integer, status text, priority integer, "
                       "flow_cell_type text, updated_at timestamptz)"))
        c.execute(text("INSERT INTO samples SELECT i, 'sample-' || i, i % 97, "
                       "(ARRAY['queued','sequencing','done'])[1 + i % 3], i % 5, 'R10.4.1', "
                       "timestamptz '2026-11-26 11:00:00+00' + i * interval '1 ms' "
                       "FROM generate_series(1, :n) AS i"), {"n": rows})
        c.execute(text("ANALYZE samples"))
    return url, name


def _drop(names: list[str]) -> None:
    with create_engine(PG, isolation_level="AUTOCOMMIT").connect() as c:
        for n in names:
            c.execute(text(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))


def _timed(url: str, sql: str) -> float:
    eng = create_engine(url)
    with eng.connect() as c:
        t0 = time.perf_counter()
        c.execute(text(sql)).all()
        seconds = time.perf_counter() - t0
    eng.dispose()
    return seconds


def main(rows: int = 1_000_000, chunk_rows: int = 10_000) -> None:
    plan = parse_plan(plan_text_without_probes(PLAN_PATH.read_text()))
    (a, na), (b, nb) = _database(rows), _database(rows)
    try:
        count = _timed(a, "SELECT count(*) FROM samples") + _timed(b, "SELECT count(*) FROM samples")
        cols = ", ".join(COLUMNS)
        agg = (f"SELECT md5(string_agg(md5(ROW({cols})::text), '' ORDER BY id)) FROM samples")
        md5 = _timed(a, agg) + _timed(b, agg)
        chunks = -(-rows // chunk_rows) + 1
        spec = ConsistencyProbe.model_validate({
            "kind": "consistency", "name": "bench", "baseline_db_env": "A",
            "candidate_db_env": "B", "chunk_rows": chunk_rows, "chunks_per_round": chunks,
            "statement_timeout": "60s",
            "tables": [{"table": "samples", "columns": COLUMNS, "updated_at": "updated_at"}]})
        ctx = ProbeContext(plan=plan, now=NOW, env={"A": a, "B": b})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        result = run_probe((plan.phase("week-4"), None, spec), ctx)
        probe = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert result.verdict.value == "pass", result.reasons
        per_round = ConsistencyProbe.model_validate({**spec.model_dump(), "chunks_per_round": 10})
        t0 = time.perf_counter()
        run_probe((plan.phase("week-4"), None, per_round),
                  ProbeContext(plan=plan, now=NOW, env={"A": a, "B": b}))
        one_round = time.perf_counter() - t0
    finally:
        _drop([na, nb])
    read = 2 * rows
    print(f"two tables of {rows:,} rows on PostgreSQL; probe ranges of {chunk_rows:,} keys")
    print(f"{'what':<44} {'wall s':>8} {'rows read/s':>14}")
    for what, secs in (("SELECT count(*) (both tables)", count),
                       ("full-table md5(string_agg) (both tables)", md5),
                       ("consistency probe, a full pass", probe)):
        print(f"{what:<44} {secs:>8.2f} {read / secs:>14,.0f}")
    print(f"{'consistency probe, one round (10 ranges)':<44} {one_round:>8.2f} "
          f"{2 * 10 * chunk_rows / one_round:>14,.0f}")
    print(f"probe vs full md5: {probe / md5:.2f}x the wall time; peak RSS of this process "
          f"{peak / 1024:.0f} MiB ({(peak - before) / 1024:+.0f} MiB during the pass)")


if __name__ == "__main__":
    main(*(int(x) for x in sys.argv[1:3]))

"""Log rollups, checkpoints and rejected lines on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from slo.sketch import LogSketch
from store.db import session_scope
from store.figures import variant_figures
from store.rollups import (
    MAX_SAMPLES,
    Checkpoint,
    RollupDelta,
    add_rejects,
    get_checkpoint,
    list_checkpoints,
    list_rejects,
    log_figures,
    log_minutes,
    save_checkpoint,
    upsert_rollups,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _delta(minute: int, values: list[float], *, errors: int = 0, variant: str = "candidate",
           service: str = "auth") -> RollupDelta:
    return RollupDelta(service, variant, T0 + timedelta(minutes=minute), len(values), errors,
                       100 * len(values), LogSketch.of(values))


def test_upserts_merge_into_existing_minutes(engine: Engine) -> None:
    rnd = random.Random(3)
    batches = [[rnd.lognormvariate(3, 1) for _ in range(500)] for _ in range(4)]
    with session_scope(engine) as s:
        upsert_rollups(session=s, deltas=[_delta(0, batches[0], errors=3),
                                          _delta(1, batches[1], errors=1)])
    with session_scope(engine) as s:     # a later pass adds to the same minutes
        upsert_rollups(session=s, deltas=[_delta(0, batches[2], errors=2),
                                          _delta(1, batches[3])])
    every = sorted(v for b in batches for v in b)
    with session_scope(engine) as s:
        f = log_figures(session=s, service="auth", variant="candidate", start=T0,
                        end=T0 + timedelta(minutes=10))
    assert f.requests == 2000 and f.errors == 6
    assert f.error_rate == pytest.approx(6 / 2000)
    assert f.rps == pytest.approx(2000 / 600)
    assert f.latency_avg_ms == pytest.approx(sum(every) / len(every))
    for q in (0.5, 0.95, 0.99):
        exact = every[math.floor(q * (len(every) - 1))]
        assert f.get(f"latency_p{int(q * 100)}_ms") == pytest.approx(exact, rel=0.01)
    assert f.last_seen == T0 + timedelta(minutes=1)
    assert isinstance(f.latency, LogSketch) and f.latency.count == 2000


def test_window_is_half_open_and_variants_apart(engine: Engine) -> None:
    with session_scope(engine) as s:
        upsert_rollups(session=s, deltas=[_delta(0, [10.0] * 5), _delta(5, [20.0] * 7),
                                          _delta(0, [99.0], variant="baseline")])
    with session_scope(engine) as s:
        f = log_figures(session=s, service="auth", variant="candidate", start=T0,
                        end=T0 + timedelta(minutes=5))
        rows = log_minutes(session=s, service="auth", variant="candidate", start=T0,
                           end=T0 + timedelta(minutes=6))
    assert f.requests == 5
    assert [(r.minute, r.requests) for r in rows] == [(T0, 5), (T0 + timedelta(minutes=5), 7)]
    assert rows[1].p50 == pytest.approx(20.0, rel=0.01)


def test_no_data_is_none_with_a_reason_never_zero(engine: Engine) -> None:
    with session_scope(engine) as s:
        f = log_figures(session=s, service="files", variant="baseline", start=T0,
                        end=T0 + timedelta(minutes=10))
        combined = variant_figures(session=s, service="files", variant="baseline", start=T0,
                                   end=T0 + timedelta(minutes=10))
    assert f.requests is None and f.error_rate is None and f.latency_p95_ms is None
    assert f.problems and "no gateway log lines for files (baseline)" in f.problems[0]
    assert combined.requests is None


def test_checkpoints_round_trip(engine: Engine) -> None:
    cp = Checkpoint("/var/log/a.log", "file", 2049, 1234567, 10_000_000_000, 9_999_999_999, "ab" * 32)
    with session_scope(engine) as s:
        save_checkpoint(session=s, checkpoint=cp, at=T0)
        save_checkpoint(session=s, checkpoint=Checkpoint("pods", "gw-1", offset=2,
                                                         pod_time="2026-11-26T12:00:00.5Z"), at=T0)
    with session_scope(engine) as s:
        assert get_checkpoint(session=s, source="/var/log/a.log", stream="file") == cp
        save_checkpoint(session=s, checkpoint=Checkpoint(cp.source, "file", offset=5), at=T0)
    with session_scope(engine) as s:
        assert [c.offset for c in list_checkpoints(session=s, source=cp.source)] == [5]
        assert get_checkpoint(session=s, source="pods", stream="gw-1").pod_time.endswith(".5Z")


def test_rejects_count_and_keep_a_few_short_samples(engine: Engine) -> None:
    with session_scope(engine) as s:
        for i in range(4):
            add_rejects(session=s, source="src", file="/var/log/a.log", reason="malformed",
                        count=3, samples=[f"bad {i}", "<b>" + "x" * 5000], at=T0)
    with session_scope(engine) as s:
        (row,) = list_rejects(session=s, source="src")
    assert row["count"] == 12
    assert len(row["samples"]) == MAX_SAMPLES
    assert row["samples"][0] == "bad 0"
    assert max(len(x) for x in row["samples"]) < 400

"""The Prometheus series store: upserts that never duplicate nor lose, and window
figures (sums, summed buckets, averages) with their problems named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from slo.sketch import BucketHistogram
from store.db import session_scope
from store.series import (
    BASELINE,
    PromOutage,
    PromStep,
    close_outages,
    open_outage,
    prom_figures,
    save_checkpoint,
    series_target,
    upsert_steps,
    window_figures,
)

T = datetime(2026, 11, 20, 12, tzinfo=UTC)


def steps(n: int, *, start: datetime = T, **values: float) -> dict[datetime, dict[str, object]]:
    row: dict[str, object] = {"requests": 300.0, "errors": 3.0, "latency_sum": 15.0,
                              "latency_count": 300.0, "memory_bytes": 200 * 2**20,
                              "cpu_cores": 0.25, "up": 1.0,
                              "buckets": {"0.05": 200.0, "0.1": 290.0, "+Inf": 300.0}}
    row.update(values)
    return {start + timedelta(seconds=30 * (i + 1)): dict(row) for i in range(n)}


def store(engine: Engine, rows: dict[datetime, dict[str, object]], target: str = "auth") -> None:
    with session_scope(engine) as s:
        upsert_steps(session=s, target=target, step_seconds=30, rows=rows)
        save_checkpoint(session=s, target=target, kind="requests", expr="q", until=max(rows),
                        now=max(rows))


def figures(engine: Engine, end: datetime, *, minutes: int = 10, variant: str = "candidate"):  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return prom_figures(session=s, service="auth", variant=variant,
                            start=end - timedelta(minutes=minutes), end=end)


def test_upsert_never_duplicates_and_keeps_what_a_repull_lacks(engine: Engine) -> None:
    store(engine, steps(20))
    # a re-pull that answers only the requests column, with corrected numbers
    store(engine, {t: {"requests": 330.0} for t in steps(20)})
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(PromStep)).one() == 20
        row = s.exec(select(PromStep)).first()
    assert row is not None and row.requests == 330.0 and row.cpu_cores == 0.25
    assert row.at.tzinfo is not None


def test_window_figures_from_sums_and_summed_buckets(engine: Engine) -> None:
    store(engine, steps(20))
    f = figures(engine, T + timedelta(minutes=10))
    assert f.problems == () and f.sources == ("prometheus",)
    assert f.requests == 6000 and f.errors == 60 and f.error_rate == 0.01
    assert f.rps == 10.0
    assert f.latency_avg_ms == pytest.approx(50.0)
    want = BucketHistogram({0.05: 4000, 0.1: 5800, float("inf"): 6000})
    assert f.latency_p50_ms == pytest.approx(want.quantile(0.5))
    assert f.latency_p95_ms == pytest.approx(want.quantile(0.95))
    assert f.memory_mb == 200 and f.cpu_cores == 0.25
    assert f.last_seen == T + timedelta(minutes=10)


def test_no_5xx_series_means_no_errors(engine: Engine) -> None:
    store(engine, {t: {k: v for k, v in r.items() if k != "errors"} for t, r in steps(20).items()})
    f = figures(engine, T + timedelta(minutes=10))
    assert f.errors == 0 and f.error_rate == 0


def test_gap_and_stale_data_are_named(engine: Engine) -> None:
    rows = steps(20)
    for t in sorted(rows)[5:8] + sorted(rows)[-2:]:
        del rows[t]
    store(engine, rows)
    f = figures(engine, T + timedelta(minutes=10))
    assert len(f.problems) == 2
    assert "gap of 3 step(s)" in f.problems[0]
    assert "stale" in f.problems[1] and "2 step(s)" in f.problems[1]


def test_outage_explains_missing_data(engine: Engine) -> None:
    store(engine, steps(10))
    with session_scope(engine) as s:
        open_outage(session=s, target="*", kind="", outcome="down", message="cannot connect",
                    at=T + timedelta(minutes=5, seconds=10))
    f = figures(engine, T + timedelta(minutes=10))
    assert any("stale" in p and "Prometheus down since" in p and "cannot connect" in p
               for p in f.problems), f.problems
    with session_scope(engine) as s:
        closed = close_outages(session=s, target="*", at=T + timedelta(minutes=20))
    assert [o.until for o in closed] == [T + timedelta(minutes=20)]


def test_outage_with_complete_data_is_no_problem(engine: Engine) -> None:
    with session_scope(engine) as s:
        open_outage(session=s, target="*", kind="", outcome="down", message="x", at=T)
        close_outages(session=s, target="*", at=T + timedelta(minutes=1))
    store(engine, steps(20))    # pulled again after it came back
    assert figures(engine, T + timedelta(minutes=10)).problems == ()


def test_never_collected_variant_is_empty_without_problems(engine: Engine) -> None:
    f = figures(engine, T + timedelta(minutes=10))
    assert f.empty and f.problems == () and f.sources == ()


def test_collected_variant_without_data_in_window_says_so(engine: Engine) -> None:
    store(engine, steps(20))
    f = figures(engine, T + timedelta(hours=5))
    assert f.requests is None and "no Prometheus data for the candidate of auth" in f.problems[0]


def test_baseline_is_one_series_for_every_service(engine: Engine) -> None:
    store(engine, steps(20, requests=600.0), target=BASELINE)
    assert series_target(service="files", variant="baseline") == BASELINE
    with Session(engine) as s:
        a = prom_figures(session=s, service="auth", variant="baseline", start=T,
                         end=T + timedelta(minutes=10))
        b = prom_figures(session=s, service="files", variant="baseline", start=T,
                         end=T + timedelta(minutes=10))
    assert a.requests == b.requests == 12000
    assert "baseline" in str(series_target.__doc__)


def test_every_target_down_is_a_problem() -> None:
    rows = [PromStep(target="auth", at=t, step_seconds=30, **{k: v for k, v in r.items()
                                                              if k != "buckets"})
            for t, r in steps(4, up=0.0).items()]
    f = window_figures(rows, start=T, end=T + timedelta(minutes=2), label="x")
    assert any("up = 0" in p for p in f.problems)


def test_bad_variant_and_columns_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="variant"):
        series_target(service="auth", variant="canary")
    with Session(engine) as s, pytest.raises(ValueError, match="unknown series columns"):
        upsert_steps(session=s, target="auth", step_seconds=30, rows={T: {"nope": 1.0}})


def test_outage_rows_round_trip(engine: Engine) -> None:
    with session_scope(engine) as s:
        _, new1 = open_outage(session=s, target="auth", kind="cpu_cores", outcome="query-error",
                              message="bad", at=T)
        _, new2 = open_outage(session=s, target="auth", kind="cpu_cores", outcome="query-error",
                              message="bad", at=T + timedelta(minutes=1))
    with Session(engine) as s:
        row = s.exec(select(PromOutage)).one()
    assert (new1, new2, row.attempts, row.last_attempt) == (True, False, 2, T + timedelta(minutes=1))

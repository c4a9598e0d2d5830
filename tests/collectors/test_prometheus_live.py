"""The Prometheus collector against Debian's real prometheus on a backfilled fleet:
figures from the store equal what direct PromQL says over the same window."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from collectors.prometheus import PrometheusCollector
from slo.plan import Plan
from store.db import make_engine, upgrade
from store.events import EventRow
from store.series import BASELINE, PromOutage, PromStep, prom_figures
from tests.collectors.conftest import END, GAP, RESTART, T0, plan_for
from tests.support.prom import PromServer, available, instant_value

pytestmark = [pytest.mark.prometheus,
              pytest.mark.skipif(not available(), reason="needs Debian's prometheus")]

FIRST = T0 + timedelta(minutes=1)   # a step after the first sample: rate needs two
MIB = 2**20


def collected(plan: Plan, prometheus: PromServer, engine: Engine, **kw: object) -> object:
    c = PrometheusCollector(plan=plan_for(plan, prometheus.url), engine=engine, **kw)  # type: ignore[arg-type]
    return c.collect(now=END, start=FIRST, end=END)


@pytest.fixture(scope="module")
def pulled(plan: Plan, prometheus: PromServer, store_url: str) -> Iterator[tuple[Engine, object]]:
    """The fleet pulled once per module into a fresh store (SQLite, PostgreSQL)."""
    engine = make_engine(store_url)
    upgrade(engine)
    yield engine, collected(plan, prometheus, engine)
    engine.dispose()


def figures(engine: Engine, service: str, variant: str, start, end):  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return prom_figures(session=s, service=service, variant=variant, start=start, end=end)


@functools.cache   # the same answers serve SQLite and PostgreSQL
def direct(url: str, *, job: str, errors: str, at: float, window: str) -> dict[str, float | None]:
    """The window's figures by direct PromQL, as a person would check them."""
    sel = f'job="{job}"'
    req = instant_value(url, f"sum(increase(http_requests_total{{{sel}}}[{window}]))", at)
    err = instant_value(url, f"sum(increase(http_requests_total{{{sel},{errors}}}[{window}]))", at)
    q = {p: instant_value(url, f"histogram_quantile({p}, sum by (le) (increase("
                               f"http_request_duration_seconds_bucket{{{sel}}}[{window}])))", at)
         for p in (0.5, 0.95, 0.99)}
    lsum = instant_value(url, f"sum(increase(http_request_duration_seconds_sum{{{sel}}}[{window}]))", at)
    lcnt = instant_value(url, f"sum(increase(http_request_duration_seconds_count{{{sel}}}[{window}]))", at)
    cpu = instant_value(url, f"sum(increase(process_cpu_seconds_total{{{sel}}}[{window}]))", at)
    # memory: the mean over the window's steps of the sum over pods
    mem = instant_value(url, f"avg_over_time(sum(process_resident_memory_bytes{{{sel}}})"
                             f"[{window}:30s])", at)
    return {"requests": req, "errors": err, "p50": q[0.5], "p95": q[0.95], "p99": q[0.99],
            "avg": lsum / lcnt if lsum is not None and lcnt else None,
            "cpu": cpu, "memory": mem}


CASES = [  # (service, variant, job, how the variant counts errors)
    ("auth", "baseline", "nanopore-monolith", 'status_code=~"5.."'),
    ("auth", "candidate", "python-auth", 'status="5xx"'),
    ("files", "candidate", "python-files", 'status="5xx"'),
]


@pytest.mark.parametrize(("service", "variant", "job", "errors"), CASES)
@pytest.mark.parametrize("minutes", [(30, 40), (35, 55)])   # 35..55 holds auth's restart
def test_figures_match_direct_promql(plan: Plan, prometheus: PromServer, pulled: tuple[Engine, object],
                                     service: str, variant: str, job: str, errors: str,
                                     minutes: tuple[int, int]) -> None:
    engine, report = pulled
    start, end = T0 + timedelta(minutes=minutes[0]), T0 + timedelta(minutes=minutes[1])
    got = figures(engine, service, variant, start, end)
    want = direct(prometheus.url, job=job, errors=errors, at=end.timestamp(),
                  window=f"{minutes[1] - minutes[0]}m")
    assert report.items > 0  # type: ignore[attr-defined]
    assert got.problems == ()
    assert got.sources == ("prometheus",)
    assert got.requests == pytest.approx(want["requests"], rel=1e-9)
    assert got.errors == pytest.approx(want["errors"], rel=1e-9)
    assert got.errors > 0
    assert got.error_rate == pytest.approx(want["errors"] / want["requests"], rel=1e-9)
    assert got.rps == pytest.approx(want["requests"] / ((minutes[1] - minutes[0]) * 60))
    assert got.latency_p50_ms == pytest.approx(want["p50"] * 1000, rel=1e-9)
    assert got.latency_p95_ms == pytest.approx(want["p95"] * 1000, rel=1e-9)
    assert got.latency_p99_ms == pytest.approx(want["p99"] * 1000, rel=1e-9)
    assert got.latency_avg_ms == pytest.approx(want["avg"] * 1000, rel=1e-9)
    assert got.cpu_cores == pytest.approx(want["cpu"] / ((minutes[1] - minutes[0]) * 60), rel=1e-6)
    assert got.last_seen == end


def test_memory_is_summed_over_pods_and_averaged(plan: Plan, prometheus: PromServer,
                                                 pulled: tuple[Engine, object]) -> None:
    engine = pulled[0]
    start, end = T0 + timedelta(minutes=30), T0 + timedelta(minutes=40)
    got = figures(engine, "auth", "baseline", start, end)
    want = direct(prometheus.url, job="nanopore-monolith", errors='status_code=~"5.."',
                  at=end.timestamp(), window="10m")
    # the subquery [10m:30s] also takes the step at the window's start: 21 steps
    first = instant_value(prometheus.url,
                          'sum(process_resident_memory_bytes{job="nanopore-monolith"})',
                          start.timestamp())
    assert first is not None and want["memory"] is not None
    assert got.memory_mb == pytest.approx((want["memory"] * 21 - first) / 20 / MIB, rel=1e-9)
    assert 700 < got.memory_mb < 900   # two pods of ~400 MiB


def test_restart_does_not_lose_or_double_count(plan: Plan, prometheus: PromServer,
                                               pulled: tuple[Engine, object]) -> None:
    engine = pulled[0]
    around = figures(engine, "auth", "candidate", RESTART - timedelta(minutes=5),
                     RESTART + timedelta(minutes=5))
    # ~22 rps for 10 minutes; a reset read as a drop would make it negative or tiny
    assert around.requests == pytest.approx(22 * 600, rel=0.1)


def test_gap_is_reported_not_hidden(plan: Plan, prometheus: PromServer, pulled: tuple[Engine, object]) -> None:
    engine = pulled[0]
    got = figures(engine, "files", "candidate", GAP[0] - timedelta(minutes=5),
                  GAP[1] + timedelta(minutes=5))
    assert any("gap" in p for p in got.problems), got.problems
    inside = figures(engine, "files", "candidate", GAP[0] + timedelta(minutes=6),
                     GAP[1] - timedelta(minutes=1))
    assert inside.requests is None
    assert inside.problems


def test_empty_result_is_recorded(plan: Plan, prometheus: PromServer, pulled: tuple[Engine, object]) -> None:
    engine, report = pulled
    assert report.ok  # type: ignore[attr-defined]  # Prometheus answered; that samples has no series is data, not a failure
    assert any(p.startswith("service samples: no series matched (requests, ") for p in report.problems)  # type: ignore[attr-defined]
    with Session(engine) as s:
        outages = s.exec(select(PromOutage).where(PromOutage.target == "samples")).all()
        events = s.exec(select(EventRow)).all()
    assert {o.outcome for o in outages} == {"empty"}
    assert events == []   # an idle service is no alert
    got = figures(engine, "samples", "candidate", T0 + timedelta(minutes=30),
                  T0 + timedelta(minutes=40))
    assert got.requests is None and got.sources == ()
    assert any("no Prometheus data" in p and "empty" in p for p in got.problems)


def test_repull_never_duplicates(plan: Plan, prometheus: PromServer, pulled: tuple[Engine, object]) -> None:
    engine, first = pulled
    with Session(engine) as s:
        n1 = s.exec(select(func.count()).select_from(PromStep)).one()
    again = collected(plan, prometheus, engine)
    with Session(engine) as s:
        n2 = s.exec(select(func.count()).select_from(PromStep)).one()
        base = s.exec(select(func.count()).select_from(PromStep)
                      .where(PromStep.target == BASELINE)).one()
    assert first.items == again.items  # type: ignore[attr-defined]
    assert n1 == n2
    assert base == 119 * 2 + 1   # FIRST..END at 30 s


def test_resume_from_checkpoint_without_from(plan: Plan, prometheus: PromServer,
                                             engine: Engine) -> None:
    c = PrometheusCollector(plan=plan_for(plan, prometheus.url), engine=engine,
                            initial_lookback=timedelta(minutes=40))
    c.collect(now=T0 + timedelta(minutes=41))     # no checkpoint: the last 40 minutes
    c.collect(now=T0 + timedelta(minutes=70))     # from the checkpoint on
    c.collect(now=T0 + timedelta(minutes=90))
    got = figures(engine, "auth", "candidate", T0 + timedelta(minutes=5), T0 + timedelta(minutes=90))
    want = instant_value(prometheus.url, 'sum(increase(http_requests_total{job="python-auth"}[85m]))',
                         (T0 + timedelta(minutes=90)).timestamp())
    assert got.problems == ()
    assert got.requests == pytest.approx(want, rel=1e-9)


def test_bad_override_is_recorded_and_others_go_on(plan: Plan, prometheus: PromServer,
                                                   sqlite_engine: Engine) -> None:
    svc = plan.service("files")
    broken = svc.model_copy(update={"prometheus": svc.prometheus.model_copy(  # type: ignore[union-attr]
        update={"cpu_cores": "sum(rate(process_cpu_seconds_total{{selector}}[{window}])"})})
    bad_plan = plan.model_copy(update={"services": [s if s.name != "files" else broken
                                                    for s in plan.services]})
    report = collected(bad_plan, prometheus, sqlite_engine)
    assert not report.ok
    assert any("service files cpu_cores: query refused (HTTP 400): " in p for p in report.problems)
    got = figures(sqlite_engine, "files", "candidate", T0 + timedelta(minutes=30),
                  T0 + timedelta(minutes=40))
    assert got.requests is not None and got.cpu_cores is None
    with Session(sqlite_engine) as s:
        events = s.exec(select(EventRow)).all()
    assert [(e.kind, e.service) for e in events] == [("source-down", "files")]


def test_chunks_stay_under_the_point_limit(plan: Plan, prometheus: PromServer,
                                           sqlite_engine: Engine) -> None:
    calls: list[tuple[int, int]] = []
    small = PrometheusCollector(plan=plan_for(plan, prometheus.url), engine=sqlite_engine,
                                max_points=50, progress=lambda d, t: calls.append((d, t)))
    report = small.collect(now=END, start=FIRST, end=END)
    total = calls[-1][1]
    assert calls == [(i + 1, total) for i in range(total)]
    assert total == 7 * 5        # 7 variants x ceil(239 steps / 50)
    got = figures(sqlite_engine, "auth", "candidate", FIRST, END)
    assert got.problems == () and report.items > 0


def test_step_shorter_than_two_scrapes_is_diagnosed_and_rate_window_fixes_it(
        plan: Plan, prometheus: PromServer, sqlite_engine: Engine) -> None:
    """A 10 s step over a 15 s scrape: rate() over one step sees one sample at most."""
    fine = plan_for(plan, prometheus.url).model_copy()
    src = fine.sources.prometheus.model_copy(update={"step": timedelta(seconds=10)})  # type: ignore[union-attr]
    short = fine.model_copy(update={"sources": fine.sources.model_copy(update={"prometheus": src})})
    start, end = T0 + timedelta(minutes=30), T0 + timedelta(minutes=40)
    report = PrometheusCollector(plan=short, engine=sqlite_engine).collect(
        now=end, start=start, end=end)
    assert any("service auth: gauges answer but rate() over 10s does not" in p
               for p in report.problems)
    widened = PrometheusCollector(plan=short, engine=sqlite_engine,
                                  rate_window=timedelta(seconds=30))
    assert widened.rate_window == "30s"
    widened.collect(now=end, start=start, end=end)
    got = figures(sqlite_engine, "auth", "candidate", start + timedelta(minutes=1), end)
    assert got.problems == ()
    assert got.requests == pytest.approx(22 * 540, rel=0.1)

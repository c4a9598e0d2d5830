"""The judge's edge cases, each named for what it is, under fixed inference (one interval
per look over the plan's window; the shipped plans use anytime inference, whose edge
cases are in test_sequential.py)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from slo.figures import Figures
from slo.judge import BurnInputs, judge
from slo.plan import Plan, ServiceSettings, TargetSpec
from slo.verdict import Evaluation, Verdict
from tests.slo.judgekit import AT, figures, sketch

SOAKED = timedelta(minutes=20)
BASE = figures(150_000, 450)        # the monolith: 0.30 % errors, p95 ~ 58 ms


@pytest.fixture
def settings(plan: Plan) -> ServiceSettings:
    return replace(plan.settings("auth"), inference="fixed")


def run(settings: ServiceSettings, candidate: Figures, *, baseline: Figures = BASE,
        weight: int = 10, soak: timedelta | None = SOAKED, **kw: object) -> Evaluation:
    kw.setdefault("group_totals", {"memory_mb": 200.0, "cpu_cores": 0.2})
    return judge(service="auth", phase="week-2", weight=weight, at=AT, baseline=baseline,
                 candidate=candidate, settings=settings, soak=soak, **kw)  # type: ignore[arg-type]


def check(ev: Evaluation, name: str) -> list[str]:
    return [c.verdict.value for c in ev.checks if c.name == name]


def test_healthy(settings: ServiceSettings) -> None:
    ev = run(settings, figures(17_000, 51))
    assert ev.verdict is Verdict.PASS, ev.reasons
    assert ev.wait_seconds is None
    names = {c.name for c in ev.checks}
    assert {"min_requests", "min_soak", "data", "error_rate", "latency_p95_ms",
            "latency_avg_ms", "memory_mb", "cpu_cores"} <= names
    assert any(r.startswith("p95 latency ") and "<= 1.10 x baseline" in r for r in ev.reasons)
    assert ev.contract()["verdict"] == "pass"


def test_reason_reads_like_the_contract_example(settings: ServiceSettings) -> None:
    base = replace(figures(150_000, 450, median_ms=20.6), latency_p95_ms=39.8)
    cand = replace(figures(17_000, 51, median_ms=21.35), latency_p95_ms=41.2)
    ev = run(settings, cand, baseline=base)
    assert "p95 latency 41.2 ms <= 1.10 x baseline 39.8 ms" in " ".join(ev.reasons)
    p95 = next(c for c in ev.checks if c.name == "latency_p95_ms")
    assert p95.baseline == 39.8 and p95.candidate == 41.2 and p95.limit == pytest.approx(43.78)


def test_no_traffic(settings: ServiceSettings) -> None:
    ev = run(settings, figures(0, 0), weight=0, soak=None)
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert ev.reasons[0] == "the candidate takes no traffic (weight 0 %): approve a first step"
    assert ev.wait_seconds is None


def test_no_traffic_at_a_weight(settings: ServiceSettings) -> None:
    ev = run(settings, figures(0, 0))
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert "no candidate requests in the last 10m at weight 10 %" in ev.reasons


def test_not_enough_requests(settings: ServiceSettings) -> None:
    # 4.1 req/s for 100 s: 410 requests, 90 short of 500, about 22 s more
    cand = replace(figures(410, 0), rps=4.1)
    ev = run(settings, cand)
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert ("410 of 500 candidate requests in the window: less than a minute more at the "
            "current 4.1 req/s") in ev.reasons
    assert ev.wait_seconds == pytest.approx(90 / 4.1)
    assert any(r.endswith("judged once the window holds 500 candidate requests")
               for r in ev.reasons)


def test_not_enough_requests_says_minutes(settings: ServiceSettings) -> None:
    cand = replace(figures(350, 0), rps=0.4)     # 150 missing at 0.4/s: 375 s
    ev = run(settings, cand)
    assert "350 of 500 candidate requests in the window: about 7 more minutes at the current " \
           "0.4 req/s" not in ev.reasons         # a 10m window at 0.4/s holds 240: never
    assert any("never 500: raise the weight or lengthen the window" in r for r in ev.reasons)
    cand = replace(figures(350, 0), rps=1.0)
    ev = run(settings, cand)
    assert ("350 of 500 candidate requests in the window: about 3 more minutes at the "
            "current 1.0 req/s") in ev.reasons
    assert ev.wait_seconds == pytest.approx(150)


def test_not_soaked(settings: ServiceSettings) -> None:
    ev = run(settings, figures(17_000, 51), soak=timedelta(minutes=9))
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert ev.reasons == ("soaked 9m of 15m at 10 %: about 6 more minutes",)
    assert ev.wait_seconds == pytest.approx(360)


def test_soak_unknown_is_never_a_pass(settings: ServiceSettings) -> None:
    ev = run(settings, figures(17_000, 51), soak=None)
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert "soak cannot be measured" in ev.reasons[0]


def test_baseline_missing(settings: ServiceSettings) -> None:
    ev = run(settings, figures(17_000, 51), baseline=Figures(start=BASE.start, end=AT))
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert any(r.startswith("no figures for the baseline in the window") for r in ev.reasons)
    assert check(ev, "latency_p95_ms") == ["inconclusive"]
    assert "inconclusive" in check(ev, "error_rate")


def test_baseline_without_traffic(settings: ServiceSettings) -> None:
    ev = run(settings, figures(17_000, 51), baseline=figures(0, 0), weight=100)
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert "error rate vs baseline: baseline has no requests in the window" in ev.reasons


def test_source_down(settings: ServiceSettings) -> None:
    cand = replace(figures(17_000, 51), problems=("prometheus: connection refused",))
    ev = run(settings, cand)
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert ev.reasons == ("candidate data: prometheus: connection refused",)


def test_stale_data(settings: ServiceSettings) -> None:
    cand = replace(figures(17_000, 51), last_seen=AT - timedelta(minutes=7))
    ev = run(settings, cand)
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert ev.reasons[0].startswith("candidate data is 7m old (newest 11:53 UTC)")


def test_missing_figure_is_never_a_pass(settings: ServiceSettings) -> None:
    ev = run(settings, replace(figures(17_000, 51), cpu_cores=None))
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert ev.reasons == ("CPU: has no CPU figure",)


def test_near_tolerance(settings: ServiceSettings) -> None:
    # p95 1.08 x baseline with 1,700 requests: within the tolerance, but noise may hide more
    ev = run(settings, figures(1_700, 5, median_ms=32.4))
    assert ev.verdict is Verdict.INCONCLUSIVE
    reason = next(r for r in ev.reasons if r.startswith("p95 latency"))
    assert "is within noise of 1.10 x baseline" in reason and "98% interval" in reason
    assert "needs about" in reason


def test_clear_regression_latency(settings: ServiceSettings) -> None:
    ev = run(settings, figures(17_000, 51, median_ms=45))
    assert ev.verdict is Verdict.FAIL
    assert re.match(r"p95 latency 8\d\.\d ms > 1\.10 x baseline 57\.4 ms \(98% interval ",
                    ev.reasons[0]), ev.reasons


def test_clear_regression_errors(settings: ServiceSettings) -> None:
    ev = run(settings, figures(17_000, 255))
    assert ev.verdict is Verdict.FAIL
    assert "error rate 1.50 % > max 1.00 %" in ev.reasons[0]
    assert check(ev, "error_rate") == ["fail", "fail"]


def test_small_difference_is_not_a_regression(settings: ServiceSettings) -> None:
    """A 2 % latency shift on a million requests is 'significant' and irrelevant."""
    base = figures(1_000_000, 3000, latency_samples=200_000)
    cand = figures(1_000_000, 3000, median_ms=30.6, latency_samples=200_000)
    assert run(settings, cand, baseline=base).verdict is Verdict.PASS


def test_a_few_errors_on_little_traffic_do_not_fail(settings: ServiceSettings) -> None:
    """Flagger's trap: 1 error in 20 requests is 5 %, and proves nothing."""
    ev = run(settings, figures(20, 1))
    assert ev.verdict is Verdict.INCONCLUSIVE


def test_regression_fails_before_soak_and_min_requests(settings: ServiceSettings) -> None:
    ev = run(settings, figures(400, 200), soak=timedelta(minutes=2))
    assert ev.verdict is Verdict.FAIL
    assert ev.wait_seconds is None


def test_fast_burn_fails_inside_the_window(settings: ServiceSettings) -> None:
    # the window still looks fine (recent trouble diluted), the last minutes burn hard
    cand = figures(17_000, 51)
    recent = figures(8_500, 2_550, window=timedelta(minutes=5))
    hour = figures(100_000, 17_000, window=timedelta(hours=1))
    burn = BurnInputs(candidate={timedelta(minutes=5): recent, timedelta(hours=1): hour,
                                 timedelta(minutes=30): cand, timedelta(hours=6): cand},
                      baseline={timedelta(minutes=5): figures(75_000, 225,
                                                              window=timedelta(minutes=5))})
    ev = run(settings, cand, burn=burn)
    assert ev.verdict is Verdict.FAIL
    assert check(ev, "error_budget_burn_1h_5m") == ["fail"]
    assert check(ev, "error_rate_5m") == ["fail"]
    assert "(fast burn)" in " ".join(ev.reasons)


def test_recent_window_alone_never_fails_a_healthy_canary(settings: ServiceSettings) -> None:
    five = timedelta(minutes=5)
    burn = BurnInputs(candidate={five: figures(8_500, 26, window=five)},
                      baseline={five: figures(75_000, 225, window=five)})
    ev = run(settings, figures(17_000, 51), burn=burn)
    assert ev.verdict is Verdict.INCONCLUSIVE   # the 30m/1h/6h windows are missing
    assert check(ev, "error_rate_5m") == ["pass"]
    assert "error budget burn over 1h: candidate has no figures" in ev.reasons


def test_total_scope_sums_the_phase(settings: ServiceSettings) -> None:
    ev = run(settings, figures(17_000, 51), group_totals={"memory_mb": 320.0, "cpu_cores": 0.3})
    assert ev.verdict is Verdict.FAIL
    assert ev.reasons == ("memory in total over the phase 320 MiB > max 300 MiB",)
    ev = run(settings, figures(17_000, 51), group_totals={})
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert "some service of the phase has no memory figure" in ev.reasons[0]


def test_point_latency_without_sketch_needs_data(settings: ServiceSettings) -> None:
    few = figures(600, 1, with_sketch=False)
    base = figures(150_000, 450, with_sketch=False)
    ev = run(settings, few, baseline=base)
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert any("comes without a distribution and from 600 requests (under 1,000)" in r
               for r in ev.reasons)
    ev = run(settings, figures(17_000, 51, with_sketch=False), baseline=base)
    assert ev.verdict is Verdict.PASS
    near = replace(figures(17_000, 51, with_sketch=False),
                   latency_p95_ms=(base.latency_p95_ms or 0) * 1.12)
    ev = run(settings, near, baseline=base)
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert "without a latency distribution the noise cannot be measured" in ev.reasons[0]
    far = replace(near, latency_p95_ms=(base.latency_p95_ms or 0) * 1.3)
    assert run(settings, far, baseline=base).verdict is Verdict.FAIL


def test_min_on_traffic_counts_good_requests(settings: ServiceSettings) -> None:
    s = replace(settings, targets={"requests": TargetSpec(min=10_000)})
    assert run(s, figures(12_000, 0)).verdict is Verdict.PASS
    ev = run(s, figures(12_000, 3_000))
    assert ev.verdict is Verdict.FAIL and ev.reasons == ("requests 9,000 < min 10,000",)


def test_no_targets_still_needs_data(settings: ServiceSettings) -> None:
    s = replace(settings, targets={})
    assert run(s, figures(17_000, 51)).verdict is Verdict.PASS
    assert run(s, figures(100, 0)).verdict is Verdict.INCONCLUSIVE


def test_confidence_comes_from_the_plan(settings: ServiceSettings) -> None:
    cand = figures(2_000, 6, median_ms=30.5)
    loose = run(replace(settings, confidence=0.6), cand)
    strict = run(replace(settings, confidence=0.999), cand)
    assert check(loose, "latency_p95_ms") == ["pass"]
    assert check(strict, "latency_p95_ms") == ["inconclusive"]
    assert any("100% interval" in r or "99.9" in r or "interval" in r for r in strict.reasons)


def test_bucket_histogram_latency(settings: ServiceSettings) -> None:
    from slo.sketch import BucketHistogram

    def hist(n: float, scale: float) -> BucketHistogram:
        sk = sketch(int(n), median_ms=30 * scale)
        bounds = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.25, float("inf")]
        cum: dict[float, float] = {}
        for le in bounds:
            cum[le] = float(sum(c for i, c in sk.counts.items()
                                if i == -(10**6) or 2 * 1.0202**i / 2.0202 <= le * 1000))
        return BucketHistogram(cum, total_seconds=(sk.total_ms or 0) / 1000)

    base = replace(BASE, latency=hist(20_000, 1.0))
    ok = replace(figures(17_000, 51), latency=hist(17_000, 1.0))
    bad = replace(figures(17_000, 51, median_ms=60), latency=hist(17_000, 2.0))
    assert check(run(settings, ok, baseline=base), "latency_p95_ms") == ["pass"]
    assert check(run(settings, bad, baseline=base), "latency_p95_ms") == ["fail"]


def test_tolerance_comes_from_the_plan(plan_text: str) -> None:
    """A stricter error tolerance in the plan turns the same evidence into a fail."""
    from slo.planfile import parse_plan

    loose = replace(parse_plan(plan_text).settings("auth"), inference="fixed")
    strict = replace(parse_plan(plan_text.replace(
        "  auto_revert: {after_failures: 3}\n",
        "  auto_revert: {after_failures: 3}\n  tolerance: {error_min_ratio: 1.0, error_budget_share: 0}\n",
    )).settings("auth"), inference="fixed")
    assert loose.tolerance.error_min_ratio == 1.5 and strict.tolerance.error_min_ratio == 1.0
    at = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    kw = dict(start=at - timedelta(minutes=10), end=at, last_seen=at, sources=("logs",))
    base = Figures(requests=200_000, errors=400, error_rate=0.002, rps=333.0, **kw)
    cand = Figures(requests=60_000, errors=168, error_rate=0.0028, rps=100.0, **kw)
    verdicts = {}
    for name, settings in (("loose", loose), ("strict", strict)):
        ev = judge(service="auth", phase="week-2", weight=25, at=at, baseline=base,
                   candidate=cand, settings=settings, soak=timedelta(hours=1))
        verdicts[name] = next(c for c in ev.checks
                              if c.name == "error_rate" and "x baseline" in c.detail).verdict
    assert verdicts == {"loose": Verdict.PASS, "strict": Verdict.FAIL}

"""Confidence sequences: they hold at every look at once, where intervals do not; the
vectorised and the one-look paths agree; the judge under anytime inference."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from scipy import stats

from slo.judge import BurnInputs, fallible_checks, judge
from slo.plan import Plan, ServiceSettings
from slo.planfile import parse_plan
from slo.sequential import (
    DETECTOR_GRID,
    block,
    block_alpha,
    detector_index,
    detector_starts,
    quantile_rank_bounds,
    quantile_rank_cs,
    share_bounds,
    share_cs,
    share_excludes,
    union_alpha,
)
from slo.verdict import Evaluation, Verdict
from tests.slo.judgekit import AT, figures

LOOKS, PATHS, PER_LOOK = 400, 300, 60   # 400 looks of 60 more answers each, 300 paths


def _paths(p: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    errors = rng.binomial(PER_LOOK, p, size=(PATHS, LOOKS)).cumsum(axis=1)
    n = np.broadcast_to(np.arange(1, LOOKS + 1) * PER_LOOK, errors.shape).astype(float)
    return errors.astype(float), n


def test_a_share_sequence_holds_at_every_look() -> None:
    """At 5 %, the true share is outside the sequence at some look of at most ~5 % of
    the paths; a 95 % interval at every look misses it on far more (the reason for it)."""
    p = 0.01
    x, n = _paths(p, seed=3)
    lo, hi = share_cs(x, n, 0.05)
    ever_cs = np.any((lo > p) | (hi < p), axis=1).mean()
    ilo = stats.beta.ppf(0.025, x, n - x + 1)
    ihi = stats.beta.ppf(0.975, x + 1, n - x)
    ever_interval = np.any((np.nan_to_num(ilo) > p) | (ihi < p), axis=1).mean()
    assert ever_cs <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / PATHS)
    assert ever_interval > 3 * 0.05


def test_one_look_and_vectorised_agree() -> None:
    for x, n in ((0, 1000), (3, 1000), (30, 10_000), (0.5, 3.2), (7, 7.5), (1000, 1000)):
        lo, hi = share_bounds(x, n, 0.001)
        vlo, vhi = share_cs(x, n, 0.001)
        assert lo == pytest.approx(float(vlo), rel=1e-6, abs=1e-12)
        assert hi == pytest.approx(float(vhi), rel=1e-6, abs=1e-12)
    for n in (20.0, 1000.0, 123_456.0):
        assert quantile_rank_bounds(n, 0.95, 0.001) == tuple(
            float(r) for r in quantile_rank_cs(n, 0.95, 0.001))


def test_a_share_is_excluded_exactly_when_it_lies_outside_the_sequence() -> None:
    x = np.array([0.0, 3, 30, 30, 300])
    n = np.array([1000.0, 1000, 10_000, 10_000, 20_000])
    lo, hi = share_cs(x, n, 0.001)
    for p in (lo * 0.999, lo * 1.001 + 1e-9, (lo + hi) / 2, hi * 0.999, hi * 1.001):
        assert np.array_equal(share_excludes(x, n, np.minimum(p, 1 - 1e-12), 0.001),
                              (p < lo) | (p > hi))


def test_more_errors_never_lower_a_bound() -> None:
    x = np.arange(0, 60)
    lo, hi = share_cs(x, 5000, 0.001)
    assert np.all(np.diff(lo) >= 0) and np.all(np.diff(hi) >= 0)


def test_no_answers_is_the_whole_range() -> None:
    assert share_bounds(0, 0, 0.01) == (0.0, 1.0)
    lo, hi = share_cs(0, 0, 0.01)
    assert (float(lo), float(hi)) == (0.0, 1.0)


def test_quantile_ranks_bracket_the_quantile_at_every_look() -> None:
    """Uniform answers: the q-quantile is q; the answers at the ranks bracket it."""
    rng = np.random.default_rng(5)
    misses = 0
    for _ in range(100):
        u = rng.random(LOOKS * 20)
        for n in range(200, len(u) + 1, 400):
            lo_r, hi_r = quantile_rank_bounds(float(n), 0.95, 0.05)
            s = np.sort(u[:n])
            low = s[int(lo_r)] if lo_r >= 0 else 0.0
            high = s[int(hi_r)] if hi_r < n else 1.0
            if not low <= 0.95 <= high:
                misses += 1
                break
    assert misses <= 5 + 2 * np.sqrt(5 * 0.95)


def test_blocks_share_a_check_without_exceeding_it() -> None:
    assert sum(block_alpha(0.01, k) for k in range(100_000)) < 0.01
    start, k = block(AT, AT + timedelta(minutes=9), timedelta(minutes=2))
    assert (start, k) == (AT + timedelta(minutes=6), 3)       # 3..4 spans of data
    assert block(AT, AT + timedelta(seconds=50), timedelta(minutes=2)) == (AT, 0)
    assert union_alpha(0.01, 10) == 0.001


# -- the judge, anytime ---------------------------------------------------------------

@pytest.fixture
def anytime(plan: Plan) -> ServiceSettings:
    s = plan.settings("auth")
    targets = {k: v for k, v in s.targets.items() if k not in ("memory_mb", "cpu_cores")}
    return replace(s, targets=targets, inference="anytime")


def _run(settings: ServiceSettings, n: int, share: float, *, rps: float = 3.0,
         late: tuple[timedelta, float] | None = None, passed_before: bool = False
         ) -> Evaluation:
    """A step of ``n`` candidate requests at ``share`` errors; ``late``: the last
    (minutes, share) of it at another share (a regression that began late)."""
    span = timedelta(seconds=n / rps)
    since = {}
    if late is not None:
        minutes, late_share = late
        for start in detector_starts(AT - span, AT):
            w = AT - start
            k = rps * w.total_seconds()
            bad = rps * min(w, minutes).total_seconds()
            since[start] = figures(k, round(bad * late_share + (k - bad) * share), window=w)
    short = {s: figures(max(1, round(rps * s.total_seconds())),
                        round(rps * s.total_seconds() * share), window=s)
             for s in (timedelta(minutes=m) for m in (2, 5, 30, 60, 360))}
    base_short = {s: figures(round(9 * rps * s.total_seconds()),
                             round(9 * rps * s.total_seconds() * 0.003), window=s)
                  for s in (timedelta(minutes=2), timedelta(minutes=5))}
    return judge(service="auth", phase="week-2", weight=10, at=AT,
                 baseline=figures(9 * n, round(9 * n * 0.003), window=span),
                 candidate=figures(n, round(n * share), window=span), settings=settings,
                 soak=span, step_since=AT - span, evidence_start=AT - span,
                 burn=BurnInputs(candidate=short, baseline=base_short, since=since),
                 passed_before=passed_before)


def test_the_shipped_plan_has_six_checks_that_can_fail_a_step(anytime: ServiceSettings) -> None:
    # p95 ratio, error max and ratio, average max (each comparison with the baseline
    # together with its regression detector); 2 burn rules
    assert fallible_checks(anytime) == 6


def test_a_healthy_step_passes_on_its_own_requests_and_says_its_guarantee(
        anytime: ServiceSettings) -> None:
    ev = _run(anytime, 60_000, 0.003)
    assert ev.verdict is Verdict.PASS, ev.reasons
    assert ev.reasons[-1].startswith("anytime-valid: a candidate within its targets and "
                                     "tolerance is failed at some look of this step with "
                                     "probability under 1.00 %")
    assert "6 checks that can fail share it, 0.0017 each" in ev.reasons[-1]


def test_too_few_requests_says_how_long_the_step_needs(anytime: ServiceSettings) -> None:
    ev = _run(anytime, 2_000, 0.003)
    assert ev.verdict is Verdict.INCONCLUSIVE
    assert ev.wait_seconds is not None and ev.wait_seconds > 0
    assert not any("never" in r for r in ev.reasons), ev.reasons   # the step's window grows


def test_five_times_the_errors_fails(anytime: ServiceSettings) -> None:
    ev = _run(anytime, 20_000, 0.015)
    assert ev.verdict is Verdict.FAIL
    assert any(c.name == "error_rate" and c.verdict is Verdict.FAIL for c in ev.checks)


def test_the_plan_keys(plan_text: str) -> None:
    shipped = "  inference: anytime\n  false_fail: 0.01\n"
    assert shipped in plan_text   # the shipped plan states its choice
    assert parse_plan(plan_text).settings("auth").inference == "anytime"
    text = plan_text.replace(shipped, "  inference: fixed\n  false_fail: 0.02\n")
    s = parse_plan(text).settings("auth")
    assert (s.inference, s.false_fail) == ("fixed", 0.02)
    bad = plan_text.replace(shipped, "  inference: often\n")
    with pytest.raises(Exception, match="inference"):
        parse_plan(bad)


# -- regression detectors -------------------------------------------------------------

def test_detector_starts_are_on_the_grid_and_include_the_step() -> None:
    evidence = AT - timedelta(hours=3)
    starts = detector_starts(evidence, AT)
    assert starts[0] == evidence and starts == sorted(set(starts))
    assert all(detector_index(evidence, s) is not None for s in starts)
    assert AT - timedelta(minutes=2) in starts and AT - timedelta(minutes=160) in starts
    assert detector_starts(AT, AT) == []
    assert detector_index(evidence, evidence + DETECTOR_GRID / 2) is None   # off the grid


def test_detectors_hold_at_every_look_of_every_start() -> None:
    """Healthy paths judged every 30 s for 4 hours at 3 req/s: the true share leaves the
    sequence of some start at some look on at most alpha of the paths (the e-detector's
    union over starts), at the weights the judge uses."""
    rng = np.random.default_rng(11)
    p, alpha, paths, bins = 0.003, 0.05, 200, 480            # 30-s bins, 4 hours
    n = rng.poisson(90, size=(paths, bins))
    cn = np.concatenate([np.zeros((paths, 1)), n.cumsum(axis=1)], axis=1)
    cx = np.concatenate([np.zeros((paths, 1)), rng.binomial(n, p).cumsum(axis=1)], axis=1)
    ends, firsts, ks = [], [], []
    for t in range(1, bins + 1):
        for start in detector_starts(AT, AT + t * timedelta(seconds=30)):
            k = detector_index(AT, start)
            assert k is not None
            ends.append(t)
            firsts.append(k * int(DETECTOR_GRID / timedelta(seconds=30)))
            ks.append(k)
    lo, hi = share_cs(cx[:, ends] - cx[:, firsts], cn[:, ends] - cn[:, firsts],
                      np.array([block_alpha(alpha, k) for k in ks]))
    missed = np.any((lo > p) | (hi < p), axis=1).mean()
    assert missed <= alpha + 2 * np.sqrt(alpha * (1 - alpha) / paths)


def test_a_regression_late_in_a_step_fails_on_its_own_minutes(anytime: ServiceSettings) -> None:
    """Five hours healthy, then 20 minutes at 5x the errors (28 req/s, 10 % of 283): the
    step's average is still within the limit, the detector's window since the change
    is not."""
    n = 28 * (5 * 3600 + 1200)
    ev = _run(anytime, n, 0.003, rps=28, late=(timedelta(minutes=20), 0.015))
    assert ev.verdict is Verdict.FAIL, ev.reasons
    failed = [c for c in ev.checks if c.verdict is Verdict.FAIL]
    assert [c.name for c in failed] == ["error_rate_recent"]
    assert "anytime sequence at error" in failed[0].detail
    healthy = _run(anytime, n, 0.003, rps=28, late=(timedelta(minutes=20), 0.003))
    assert healthy.verdict is Verdict.PASS, healthy.reasons


def test_a_step_that_passed_stays_passed_while_nothing_fails(anytime: ServiceSettings) -> None:
    """A check that cannot tell now stands passed when an earlier look passed; a fail
    still decides, and a gate (too few requests) still holds the verdict."""
    unsure = _run(anytime, 9_000, 0.0045)
    assert unsure.verdict is Verdict.INCONCLUSIVE, unsure.reasons
    held = _run(anytime, 9_000, 0.0045, passed_before=True)
    assert held.verdict is Verdict.PASS, held.reasons
    assert any("held at an earlier look of this step" in r for r in held.reasons)
    assert _run(anytime, 20_000, 0.015, passed_before=True).verdict is Verdict.FAIL
    assert _run(anytime, 200, 0.003, passed_before=True).verdict is Verdict.INCONCLUSIVE


def test_a_held_pass_never_stands_on_a_missing_figure(anytime: ServiceSettings) -> None:
    """The step passed earlier; now the candidate's latency comes without a distribution
    (and too few requests to trust its point): that check cannot tell, and stays so."""
    span = timedelta(hours=1)
    ev = judge(service="auth", phase="week-2", weight=10, at=AT,
               baseline=figures(90_000, 270, window=span),
               candidate=figures(600, 2, window=span, with_sketch=False), settings=anytime,
               soak=span, step_since=AT - span, evidence_start=AT - span, passed_before=True)
    assert ev.verdict is Verdict.INCONCLUSIVE, ev.reasons
    assert any("comes without a distribution" in r for r in ev.reasons), ev.reasons

"""The judge's laws, checked by Hypothesis over generated canaries.

- more bad requests never turn a fail into anything else (so never into a pass);
- more errors at the same traffic, slower latency or more memory never improve a verdict;
- a verdict is never pass on missing data: a figure a target needs, the baseline, the
  soak, a source's answer or fresh data taken away gives at most inconclusive.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta
from functools import lru_cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slo.figures import Figures
from slo.judge import BurnInputs, judge
from slo.plan import FIGURES, ServiceSettings
from slo.planfile import parse_plan
from slo.verdict import Evaluation, Verdict
from tests.conftest import PLAN_PATH
from tests.slo.judgekit import AT, figures, sketch, with_bad_requests

#: more examples for a deeper run by hand: JUDGE_EXAMPLES=1000 pytest ...
EXAMPLES = int(os.environ.get("JUDGE_EXAMPLES", "60"))
RANK = {Verdict.FAIL: 0, Verdict.INCONCLUSIVE: 1, Verdict.PASS: 2}
FIVE = timedelta(minutes=5)


@lru_cache(maxsize=1)
def _settings() -> ServiceSettings:
    return parse_plan(PLAN_PATH.read_text(), source=str(PLAN_PATH)).settings("auth")


@lru_cache(maxsize=64)
def _sketch(n: int, median: float):  # type: ignore[no-untyped-def]
    return sketch(n, median_ms=median)


def _figures(requests: int, errors: int, median: float, memory: float) -> Figures:
    f = figures(requests, errors, median_ms=median, memory_mb=memory, latency_samples=0)
    sk = _sketch(min(requests, 3000), median)
    return replace(f, latency=sk if sk.count else None, latency_p95_ms=sk.quantile(0.95),
                   latency_p50_ms=sk.quantile(0.5), latency_p99_ms=sk.quantile(0.99),
                   latency_avg_ms=sk.mean)


@st.composite
def canaries(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(0, 30_000))
    rate = draw(st.sampled_from([0.0, 0.001, 0.003, 0.008, 0.02, 0.1, 0.5]))
    return {
        "requests": n,
        "errors": min(n, int(n * rate + draw(st.integers(0, 5)))),
        "median": draw(st.sampled_from([20.0, 30.0, 32.0, 33.0, 40.0, 60.0])),
        "memory": draw(st.sampled_from([150.0, 250.0, 299.0, 320.0])),
        "soak": draw(st.sampled_from([None, 5, 15, 60])),
        "weight": draw(st.sampled_from([0, 10, 25, 50])),
        "with_burn": draw(st.booleans()),
    }


BASELINE = _figures(150_000, 450, 30.0, 0.0)


def _judge(c: dict[str, object], candidate: Figures, *, baseline: Figures = BASELINE,
           soak: object = "given", totals: dict[str, float] | None = None) -> Evaluation:
    minutes = c["soak"] if soak == "given" else soak
    burn = None
    if c["with_burn"]:
        burn = BurnInputs(candidate={span: candidate for span in
                                     (FIVE, timedelta(minutes=30), timedelta(hours=1),
                                      timedelta(hours=6))},
                          baseline={FIVE: baseline})
    return judge(service="auth", phase="week-2", weight=c["weight"], at=AT,  # type: ignore[arg-type]
                 baseline=baseline, candidate=candidate, settings=_settings(),
                 soak=None if minutes is None else timedelta(minutes=minutes),  # type: ignore[arg-type]
                 group_totals=totals if totals is not None else
                 {"memory_mb": candidate.memory_mb or 0.0, "cpu_cores": 0.2}, burn=burn)


def _candidate(c: dict[str, object]) -> Figures:
    return _figures(c["requests"], c["errors"], c["median"], c["memory"])  # type: ignore[arg-type]


LAWS = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@LAWS
@given(canaries(), st.integers(1, 20_000))
def test_more_bad_requests_never_turn_a_fail_into_a_pass(c: dict[str, object], k: int) -> None:
    cand = _candidate(c)
    before = _judge(c, cand).verdict
    after = _judge(c, with_bad_requests(cand, k)).verdict
    if before is Verdict.FAIL:
        assert after is Verdict.FAIL
    assert not (before is not Verdict.PASS and after is Verdict.PASS and k > (cand.requests or 0))


@LAWS
@given(canaries(), st.integers(1, 5_000))
def test_more_errors_at_the_same_traffic_never_improve(c: dict[str, object], k: int) -> None:
    cand = _candidate(c)
    n, x = cand.requests or 0, cand.errors or 0
    worse = replace(cand, errors=min(n, x + k), error_rate=min(n, x + k) / n if n else None)
    assert RANK[_judge(c, worse).verdict] <= RANK[_judge(c, cand).verdict]


@LAWS
@given(canaries(), st.sampled_from([1.02, 1.1, 1.5, 3.0]), st.floats(0, 200))
def test_verdict_is_monotone_in_latency_and_memory(c: dict[str, object], slower: float,
                                                   fatter: float) -> None:
    cand = _candidate(c)
    worse = _figures(c["requests"], c["errors"], c["median"] * slower,  # type: ignore[arg-type,operator]
                     c["memory"] + fatter)  # type: ignore[operator]
    assert RANK[_judge(c, worse).verdict] <= RANK[_judge(c, cand).verdict]


MISSING = st.sampled_from(
    [f"figure:{name}" for name in FIGURES if name not in ("rps", "requests")]
    + ["requests", "baseline", "soak", "problem", "stale", "totals", "latency-and-sketch"])


@LAWS
@given(canaries(), MISSING)
def test_never_pass_on_missing_data(c: dict[str, object], what: str) -> None:
    cand, base, soak, totals = _candidate(c), BASELINE, "given", None
    if what.startswith("figure:"):
        name = what.split(":", 1)[1]
        if name not in _settings().targets:
            return
        cand = replace(cand, **{name: None})
        if name.startswith("latency"):
            cand = replace(cand, latency=None)
        if name == "error_rate":
            cand = replace(cand, errors=None)
        if name == "memory_mb":
            totals = {"cpu_cores": 0.2}       # the phase total cannot be summed either
    elif what == "requests":
        cand = replace(cand, requests=None, rps=None)
    elif what == "baseline":
        base = Figures(start=BASELINE.start, end=AT)
    elif what == "soak":
        soak = None
    elif what == "problem":
        cand = replace(cand, problems=("prometheus: HTTP 503",))
    elif what == "stale":
        cand = replace(cand, last_seen=AT - timedelta(minutes=30))
    elif what == "totals":
        totals = {}
    else:
        cand = replace(cand, latency=None, latency_p95_ms=None)
    assert _judge(c, cand, baseline=base, soak=soak, totals=totals).verdict is not Verdict.PASS


@LAWS
@given(canaries())
def test_pass_needs_the_gates(c: dict[str, object]) -> None:
    ev = _judge(c, _candidate(c))
    if ev.verdict is Verdict.PASS:
        assert (c["requests"] or 0) >= _settings().min_requests  # type: ignore[operator]
        assert c["soak"] is not None and c["soak"] >= 15  # type: ignore[operator]
        assert c["weight"] > 0  # type: ignore[operator]
        assert ev.wait_seconds is None
    if ev.verdict is Verdict.INCONCLUSIVE:
        assert ev.reasons and all(r for r in ev.reasons)

"""The judge against simple re-implementations of peer rules, on labelled canaries.

    python benchmarks/judge_bench.py [--seed 1] [--per-kind 400] [--runs 40]

Canaries are generated minute by minute (Poisson requests, binomial 5xx, lognormal
latency drawn straight into the sketch's buckets) over the plan's 10-minute window, at
250-400 req/s in total with 10, 25 or 50 % on the candidate, the monolith answering
0.2-0.5 % 5xx (the contract's example: 0.21 %) at a p95 of about 40-140 ms:

  healthy     the candidate behaves as the monolith (latency within -5..+3 %)
  regressed   p95 1.5-3x the monolith's, or an error share 3-10x
  near        p95 1.07-1.13x (the tolerance is 1.10x): the wrong side is a wrong verdict
  starved     healthy, but fewer requests than min_requests in the window
  missing     healthy, with one piece of data gone (baseline, a source, freshness, latency)

Peer rules, as each project documents its default behaviour (simplified):

  flagger  fixed thresholds: success rate >= 99 %, p99 <= 500 ms; no data = failed check
  keptn    point estimates: p95 <= +10 % of the baseline, errors <= +0 % and < 1 %,
           average < 100 ms; key SLIs p95 and errors; score >= 90 pass, >= 75 warning;
           a relative objective without a baseline passes
  kayenta  Mann-Whitney U per metric over per-minute values (error share, p95, average)
           at 98 %; score = share of metrics not significantly higher; >= 95 pass,
           < 75 fail, else marginal; metrics without data are left out (all out: 100)

Then time to fail: 283 req/s, 10 % on the candidate, an hour healthy, then 5x the
baseline's error share; every rule judges at the end of every minute.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy import stats

from slo.figures import Figures
from slo.judge import BurnInputs, judge
from slo.plan import ServiceSettings
from slo.planfile import parse_plan
from slo.sketch import LogSketch, bucket_index, bucket_value
from slo.verdict import Verdict

ROOT = Path(__file__).resolve().parent.parent
AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WINDOW = 10
GAMMA = 1.01 / 0.99
GRID = np.arange(bucket_index(0.05), bucket_index(120_000) + 1)
LOG_UPPER = GRID * math.log(GAMMA)
VALUES = np.array([bucket_value(int(i)) for i in GRID])
P, F, INC = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE


# -- traffic, minute by minute ------------------------------------------------------

@dataclass(frozen=True)
class Minute:
    requests: int
    errors: int
    sketch: LogSketch


@dataclass(frozen=True)
class Behaviour:
    rps: float
    error_share: float
    median_ms: float
    sigma: float


def _probs(median: float, sigma: float) -> np.ndarray:
    cdf = stats.norm.cdf((LOG_UPPER - math.log(median)) / sigma)
    p = np.diff(np.concatenate([[0.0], cdf]))
    return p / p.sum()


def minute(rng: np.random.Generator, b: Behaviour) -> Minute:
    n = int(rng.poisson(b.rps * 60))
    x = int(rng.binomial(n, b.error_share)) if n else 0
    counts = rng.multinomial(n, _probs(b.median_ms, b.sigma)) if n else np.zeros(len(GRID))
    nz = np.nonzero(counts)[0]
    sk = LogSketch(counts={int(GRID[i]): int(counts[i]) for i in nz},
                   total_ms=float(np.sum(counts[nz] * VALUES[nz])))
    return Minute(n, x, sk)


def window_figures(minutes: list[Minute], *, at: datetime, memory: float = 200.0,
                   cpu: float = 0.2) -> Figures:
    n = sum(m.requests for m in minutes)
    x = sum(m.errors for m in minutes)
    sk = LogSketch()
    for m in minutes:
        sk.merge(LogSketch(dict(m.sketch.counts), m.sketch.total_ms))
    secs = 60.0 * len(minutes)
    return Figures(
        start=at - timedelta(seconds=secs), end=at, requests=n, rps=n / secs, errors=x,
        error_rate=x / n if n else None, latency_avg_ms=sk.mean,
        latency_p50_ms=sk.quantile(0.5), latency_p95_ms=sk.quantile(0.95),
        latency_p99_ms=sk.quantile(0.99), memory_mb=memory, cpu_cores=cpu,
        latency=sk if n else None, last_seen=at - timedelta(seconds=30) if n else None,
        sources=("bench",))


def counts_figures(rng: np.random.Generator, b: Behaviour, span: timedelta, *,
                   at: datetime) -> Figures:
    """Counts only (the long burn windows need no latency)."""
    n = int(rng.poisson(b.rps * span.total_seconds()))
    x = int(rng.binomial(n, b.error_share)) if n else 0
    return Figures(start=at - span, end=at, requests=n, errors=x, rps=n / span.total_seconds(),
                   error_rate=x / n if n else None, last_seen=at - timedelta(seconds=30))


# -- a canary: what every rule sees -------------------------------------------------

@dataclass(frozen=True)
class Canary:
    kind: str
    expect: str                 # "pass" | "fail" | "inconclusive" | "not-fail" | "not-pass"
    baseline: Figures
    candidate: Figures
    base_minutes: tuple[Minute, ...]
    cand_minutes: tuple[Minute, ...]
    burn: BurnInputs


def make_canary(rng: np.random.Generator, kind: str) -> Canary:
    total = rng.uniform(250, 400)
    weight = int(rng.choice([10, 25, 50]))
    p_b = rng.uniform(0.002, 0.005)
    med, sigma = rng.uniform(20, 60), rng.uniform(0.3, 0.6)
    base = Behaviour(total * (100 - weight) / 100, p_b, med, sigma)
    cand = Behaviour(total * weight / 100, p_b, med * rng.uniform(0.95, 1.03), sigma)
    expect = "pass"
    if kind == "regressed-latency":
        cand, expect = replace(cand, median_ms=med * rng.uniform(1.5, 3.0)), "fail"
    elif kind == "regressed-errors":
        cand, expect = replace(cand, error_share=p_b * rng.uniform(3, 10)), "fail"
    elif kind == "near":
        ratio = rng.uniform(1.07, 1.13)
        cand = replace(cand, median_ms=med * ratio)
        expect = "not-fail" if ratio <= 1.10 else "not-pass"
    elif kind == "starved":
        cand, expect = replace(cand, rps=rng.uniform(0.05, 0.75)), "inconclusive"
    bm = [minute(rng, base) for _ in range(WINDOW)]
    cm = [minute(rng, cand) for _ in range(WINDOW)]
    return _canary(rng, kind, expect, bm, cm, base, cand, memory=rng.uniform(120, 260))


def _canary(rng: np.random.Generator, kind: str, expect: str, bm: list[Minute],
            cm: list[Minute], base: Behaviour, cand: Behaviour, *, memory: float,
            at: datetime = AT, history: list[Minute] | None = None) -> Canary:
    recent = {timedelta(minutes=k): (window_figures(bm[-k:], at=at), window_figures(cm[-k:], at=at))
              for k in (2, 5)}
    longer = {}
    for span in (timedelta(minutes=30), timedelta(hours=1), timedelta(hours=6)):
        if history is not None:   # counts only: the burn checks need no latency
            ms = history[-int(span.total_seconds() // 60):]
            n, x = sum(m.requests for m in ms), sum(m.errors for m in ms)
            longer[span] = Figures(start=at - span, end=at, requests=n, errors=x,
                                   rps=n / span.total_seconds(), error_rate=x / n if n else None,
                                   last_seen=at)
        else:
            longer[span] = counts_figures(rng, cand, span, at=at)
    burn = BurnInputs(candidate={**{s: c for s, (_, c) in recent.items()}, **longer},
                      baseline={s: b for s, (b, _) in recent.items()})
    return Canary(kind, expect, window_figures(bm, at=at),
                  window_figures(cm, at=at, memory=memory), tuple(bm), tuple(cm), burn)


MISSING = ("baseline gone", "source down", "stale", "no latency", "candidate gone")


def with_missing(c: Canary, what: str) -> Canary:
    empty = Figures(start=c.candidate.start, end=c.candidate.end)
    if what == "baseline gone":
        return replace(c, baseline=empty, base_minutes=())
    if what == "source down":
        return replace(c, candidate=replace(c.candidate, problems=("prometheus: timed out",)))
    if what == "stale":
        return replace(c, candidate=replace(c.candidate, last_seen=AT - timedelta(minutes=20)))
    if what == "no latency":
        return replace(c, candidate=replace(c.candidate, latency=None, latency_p95_ms=None,
                                            latency_p99_ms=None, latency_p50_ms=None,
                                            latency_avg_ms=None),
                       cand_minutes=tuple(Minute(m.requests, m.errors, LogSketch())
                                          for m in c.cand_minutes))
    return replace(c, candidate=empty, cand_minutes=())


# -- the rules ----------------------------------------------------------------------

Rule = Callable[[Canary], Verdict]


def ours(settings: ServiceSettings) -> Rule:
    def rule(c: Canary) -> Verdict:
        return judge(service="auth", phase="week-2", weight=10, at=AT, baseline=c.baseline,
                     candidate=c.candidate, settings=settings, soak=timedelta(hours=1),
                     group_totals={"memory_mb": c.candidate.memory_mb or 0.0,
                                   "cpu_cores": c.candidate.cpu_cores or 0.0},
                     burn=c.burn).verdict
    return rule


def flagger(c: Canary) -> Verdict:
    f = c.candidate
    if not f.requests or f.error_rate is None or f.latency_p99_ms is None:
        return F      # "no values found for metric": a failed check
    return P if f.error_rate <= 0.01 and f.latency_p99_ms <= 500 else F


def keptn(c: Canary) -> Verdict:
    f, b = c.candidate, c.baseline
    def rel(cv: float | None, bv: float | None, ratio: float) -> bool:
        if cv is None:
            return False
        return True if bv is None else cv <= bv * ratio
    objectives = {  # name: (passed, key SLI)
        "p95": (rel(f.latency_p95_ms, b.latency_p95_ms, 1.10), True),
        "errors": (rel(f.error_rate, b.error_rate, 1.0) and (f.error_rate or 0) < 0.01
                   and f.error_rate is not None, True),
        "avg": (f.latency_avg_ms is not None and f.latency_avg_ms < 100, False),
    }
    if any(key and not ok for ok, key in objectives.values()):
        return F
    score = 100 * sum(ok for ok, _ in objectives.values()) / len(objectives)
    return P if score >= 90 else (INC if score >= 75 else F)


def kayenta(c: Canary) -> Verdict:
    def series(ms: tuple[Minute, ...], what: str) -> list[float]:
        out = []
        for m in ms:
            if m.requests == 0 or (what != "err" and m.sketch.count == 0):
                continue
            out.append(m.errors / m.requests if what == "err" else
                       (m.sketch.quantile(0.95) if what == "p95" else m.sketch.mean) or 0.0)
        return out
    judged = passed = 0
    for what in ("err", "p95", "avg"):
        xs, ys = series(c.base_minutes, what), series(c.cand_minutes, what)
        if len(xs) < 3 or len(ys) < 3:
            continue                 # NoData: left out of the score
        judged += 1
        p = stats.mannwhitneyu(ys, xs, alternative="two-sided").pvalue
        high = p < 0.02 and float(np.median(ys)) > float(np.median(xs))
        passed += not high
    score = 100.0 if judged == 0 else 100 * passed / judged
    return P if score >= 95 else (F if score < 75 else INC)


# -- the runs -------------------------------------------------------------------------

def labelled(rng: np.random.Generator, per_kind: int) -> list[Canary]:
    kinds = ["healthy", "regressed-latency", "regressed-errors", "near", "starved"]
    out = []
    for kind in kinds:
        n = per_kind // 2 if kind.startswith("regressed") else per_kind
        out += [make_canary(rng, kind) for _ in range(n)]
    healthy = [c for c in out if c.kind == "healthy"]
    for i, what in enumerate(MISSING * (per_kind // len(MISSING))):
        out.append(replace(with_missing(healthy[i % len(healthy)], what), kind="missing",
                           expect="not-pass"))
    return out


def score(rule: Rule, canaries: list[Canary]) -> dict[str, float]:
    def share(kind: str, ok: Callable[[Verdict], bool]) -> float:
        vs = [rule(c) for c in canaries if c.kind.startswith(kind)]
        return 100.0 * sum(ok(v) for v in vs) / max(len(vs), 1)
    near = [(c.expect, rule(c)) for c in canaries if c.kind == "near"]
    wrong = sum((e == "not-fail" and v is F) or (e == "not-pass" and v is P) for e, v in near)
    return {
        "healthy passed %": share("healthy", lambda v: v is P),
        "regressed failed %": share("regressed", lambda v: v is F),
        "starved inconclusive %": share("starved", lambda v: v is INC),
        "near wrong side %": 100.0 * wrong / max(len(near), 1),
        "pass on missing data": sum(rule(c) is P for c in canaries if c.kind == "missing"),
    }


def time_to_fail(rules: dict[str, Rule], *, runs: int, seed: int, p_b: float,
                 factor: float = 5.0) -> dict[str, tuple[list[float], int]]:
    """Minutes from the regression's start to the first fail, per rule; and how many
    healthy minutes (the hour before) each rule judged fail."""
    out: dict[str, tuple[list[float], int]] = {name: ([], 0) for name in rules}
    for r in range(runs):
        rng = np.random.default_rng(seed * 1000 + r)
        base = Behaviour(283 * 0.9, p_b, 30.0, 0.45)
        cand = Behaviour(283 * 0.1, p_b, 30.0, 0.45)
        bad = replace(cand, error_share=p_b * factor)
        hist = [minute(rng, cand) for _ in range(360)]
        bm = [minute(rng, base) for _ in range(WINDOW)]
        healthy_fails = {name: 0 for name in rules}
        for m in range(-20, 16):
            if m > 0:
                hist.append(minute(rng, bad))
            else:
                hist.append(minute(rng, cand))
            bm.append(minute(rng, base))
            at = AT + timedelta(minutes=m)
            c = _canary(rng, "series", "", bm[-WINDOW:], hist[-WINDOW:], base, cand,
                        memory=200.0, at=at, history=hist)
            c = replace(c, baseline=replace(c.baseline, last_seen=at),
                        candidate=replace(c.candidate, last_seen=at))
            for name, rule in rules.items():
                v = rule(c)
                if m <= 0 and v is F:
                    healthy_fails[name] += 1
                if m > 0 and v is F and len(out[name][0]) <= r:
                    out[name][0].append(float(m))
        for name in rules:
            if len(out[name][0]) <= r:
                out[name][0].append(math.inf)
            out[name] = (out[name][0], out[name][1] + healthy_fails[name])
    return out


def flagger_1m(c: Canary) -> Verdict:
    """Flagger checks every interval (1m) over that interval's metrics."""
    last = c.cand_minutes[-1:] if c.cand_minutes else ()
    return flagger(replace(c, candidate=window_figures(list(last), at=c.candidate.end)))


def _minutes(v: float) -> str:
    return "never" if math.isinf(v) else f"{v:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-kind", type=int, default=400)
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    plan = parse_plan((ROOT / "plans" / "nanopore.yaml").read_text(), source="nanopore.yaml")
    # one window judged once, as the peers judge it: the fixed judge (judge_steps.py has
    # the shipped anytime judge over whole steps)
    settings = replace(plan.settings("auth"), inference="fixed")
    rules: dict[str, Rule] = {"cutover judge": ours(settings), "flagger (fixed)": flagger,
                              "keptn (point ratio)": keptn, "kayenta (Mann-Whitney)": kayenta}
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    canaries = labelled(rng, args.per_kind)
    gen = time.perf_counter() - t0
    counts = {k: sum(c.kind.startswith(k) for c in canaries)
              for k in ("healthy", "regressed", "near", "starved", "missing")}
    print(f"labelled canaries: {counts} (generated in {gen:.1f} s)")
    results = {}
    for name, rule in rules.items():
        t = time.perf_counter()
        results[name] = score(rule, canaries)
        # score() judges each canary once, the near ones twice
        verdicts = len(canaries) + counts["near"]
        results[name]["ms per verdict"] = 1000 * (time.perf_counter() - t) / verdicts
    cols = list(next(iter(results.values())))
    print()
    print(f"{'rule':<24}" + "".join(f"{c:>24}" for c in cols))
    for name, r in results.items():
        print(f"{name:<24}" + "".join(
            f"{r[c]:>24.0f}" if c == "pass on missing data" else f"{r[c]:>24.1f}" for c in cols))
    print(f"{'goal':<24}{'>= 99':>24}{'>= 99':>24}{'100':>24}{'low':>24}{'0':>24}")
    print()
    print(f"time to fail after the error share turns 5x, 283 req/s at 10 %, {args.runs} runs "
          "(minutes: median / worst; healthy minutes judged fail in the 20 before)")
    ttf_rules = dict(rules)
    ttf_rules["flagger (fixed)"] = flagger_1m
    header = f"{'baseline 5xx share':<20}" + "".join(f"{n:>26}" for n in ttf_rules)
    print(header)
    for p_b in (0.001, 0.0021, 0.005):
        res = time_to_fail(ttf_rules, runs=args.runs, seed=args.seed, p_b=p_b)
        cells = []
        for name in ttf_rules:
            times, false_fails = res[name]
            med, worst = float(np.median(times)), max(times)
            cells.append(f"{_minutes(med)} / {_minutes(worst)} ({false_fails} ff)")
        print(f"{p_b:<20.2%}" + "".join(f"{c:>26}" for c in cells))
    print(f"{'goal':<20}{'<= 3 / <= 3 (0 ff)':>26}")


if __name__ == "__main__":
    main()

"""The judge over whole steps at the seed's traffic: the fixed-confidence judge against
anytime-valid inference, in the same run, on the same simulated traffic.

    python benchmarks/judge_steps.py [--seed 1] [--looks 100000] [--runs 5]

The seed's gateway carries 283 req/s shared by six services: 30-60 req/s a service,
3-6 req/s to a candidate at 10 %.  Traffic is drawn in 30-second bins (the worker's
round): Poisson requests, binomial 5xx at the monolith's 0.3 %, lognormal latency
(median 40 ms, sigma 0.5) drawn straight into the sketch's buckets.  The judge runs in
process, once per bin, on exactly what the worker would give it: the step's requests
(anytime) or the plan's 10-minute window cut at the step (fixed), the short windows, the
burn windows.  The shipped plan's targets, without memory and CPU (no noise to judge).

1. healthy steps: the candidate drawn from exactly the baseline's distribution, judged
   every 30 s for a simulated day per step (a week per step is 20,160 looks: too few
   steps in 100,000 looks to show a 1 % rate, so steps are a day and the table says so);
   the share of steps with any fail, for each judge.  The anytime judge runs on every
   look through a screen (``could_fail``: each check's fail condition loosened, for all
   looks at once with the judge's own sequences) and the judge itself on the looks it
   flags; a sample of the other looks, and every look of failing steps, check that the
   screen misses none.  The fixed judge goes through the judge on every look, so at
   2 cores it gets fewer looks (``--fixed-looks``, steps of ``--fixed-hours``).
2. time to a fail after a regression starts, an hour into a healthy step (5x errors,
   p95 x1.5 and x2), at 3, 6, 28 and 71 req/s on the candidate; the median over runs.
3. time to a pass from a healthy step's start, and whether it stays passed.
4. a re-approval after a revert: a candidate that regressed at 50 % (p95 x2, 5x errors)
   is reverted to 0 % and re-approved to 10 %, where it is healthy; every look of the
   first 30 minutes of the new step goes through the real evaluation path
   (``rollout.backtest``, which cuts every window at the step's evidence start), once
   with the step timeline known and once with the re-approval's boundary hidden (one
   step from the start: windows slide across it, as the first round's judge read them).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy import stats

from slo.figures import Figures
from slo.judge import BURN_RULES, RECENT_WINDOWS, BurnInputs, fallible_checks, judge
from slo.plan import ServiceSettings
from slo.planfile import parse_plan
from slo.sequential import (
    block,
    detector_starts,
    quantile_rank_cs,
    share_excludes,
    union_alpha,
)
from slo.sketch import RELATIVE_ACCURACY, LogSketch, bucket_index, bucket_value
from slo.verdict import Verdict

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
BIN = timedelta(seconds=30)
GAMMA = 1.01 / 0.99
GRID = np.arange(bucket_index(2.0), bucket_index(4000.0) + 1)
LOG_UPPER = GRID * math.log(GAMMA)
VALUES = np.array([bucket_value(int(i)) for i in GRID])
BASE_ERRORS, MEDIAN_MS, SIGMA = 0.003, 40.0, 0.5


def _probs(median: float) -> np.ndarray:
    cdf = stats.norm.cdf((LOG_UPPER - math.log(median)) / SIGMA)
    p = np.diff(np.concatenate([[0.0], cdf]))
    return p / p.sum()


@dataclass
class Variant:
    """A variant's traffic bin by bin, as prefix sums (any window is two lookups)."""

    requests: np.ndarray   # (bins + 1,)
    errors: np.ndarray     # (bins + 1,)
    buckets: np.ndarray    # (bins + 1, len(GRID))

    @classmethod
    def draw(cls, rng: np.random.Generator, rps: np.ndarray, share: np.ndarray,
             median: np.ndarray) -> Variant:
        n = rng.poisson(rps * BIN.total_seconds())
        x = rng.binomial(n, share)
        buckets = np.zeros((len(n), len(GRID)), dtype=np.int32)
        probs = {m: _probs(m) for m in np.unique(median)}
        for i, (k, m) in enumerate(zip(n, median, strict=True)):
            if k:
                buckets[i] = rng.multinomial(k, probs[m])
        z = np.zeros(1, dtype=np.int64)
        return cls(np.concatenate([z, np.cumsum(n)]), np.concatenate([z, np.cumsum(x)]),
                   np.vstack([np.zeros((1, len(GRID)), dtype=np.int64),
                              np.cumsum(buckets, axis=0, dtype=np.int64)]))

    def figures(self, lo: int, hi: int, *, sketch: bool = True) -> Figures:
        start, end = T0 + lo * BIN, T0 + hi * BIN
        n = float(self.requests[hi] - self.requests[lo])
        x = float(self.errors[hi] - self.errors[lo])
        secs = max((hi - lo) * BIN.total_seconds(), 1.0)
        if n <= 0 or hi <= lo:
            return Figures(start=start, end=end, requests=0.0, errors=0.0, rps=0.0,
                           last_seen=end - BIN)
        sk = None
        extra = {}
        if sketch:
            counts = self.buckets[hi] - self.buckets[lo]
            nz = np.nonzero(counts)[0]
            sk = LogSketch(counts={int(GRID[i]): int(counts[i]) for i in nz},
                           total_ms=float(np.sum(counts[nz] * VALUES[nz])))
            extra = dict(latency_avg_ms=sk.mean, latency_p50_ms=sk.quantile(0.5),
                         latency_p95_ms=sk.quantile(0.95), latency_p99_ms=sk.quantile(0.99))
        return Figures(start=start, end=end, requests=n, errors=x, error_rate=x / n,
                       rps=n / secs, latency=sk, last_seen=end - BIN, sources=("bench",),
                       **extra)


def settings(inference: str) -> ServiceSettings:
    plan = parse_plan((ROOT / "plans" / "nanopore.yaml").read_text(), source="nanopore.yaml")
    s = plan.settings("auth")
    targets = {k: v for k, v in s.targets.items() if k not in ("memory_mb", "cpu_cores")}
    return replace(s, targets=targets, inference=inference)  # type: ignore[arg-type]


def look(s: ServiceSettings, base: Variant, cand: Variant, t: int, weight: int, *,
         passed_before: bool = False):
    """The judge at the end of bin ``t`` of a step that began at bin 0 (``passed_before``:
    an earlier look of the step passed, as the worker reads it from the store)."""
    at = T0 + t * BIN
    anytime = s.inference == "anytime"
    win = int(s.window / BIN)
    main_lo = 0 if anytime else max(0, t - win)

    def lo_of(span: timedelta, *, restart: bool) -> int:
        if restart and anytime:
            start, _ = block(T0, at, span)
            return int((start - T0) / BIN)
        return max(0, t - int(span / BIN))

    shorts = set(RECENT_WINDOWS) | {r.short for r in BURN_RULES}
    cand_burn = {span: cand.figures(lo_of(span, restart=span in shorts), t,
                                    sketch=span in RECENT_WINDOWS)
                 for span in {*RECENT_WINDOWS, *(r.short for r in BURN_RULES),
                              *(r.long for r in BURN_RULES)}}
    base_burn = {span: base.figures(lo_of(span, restart=True), t) for span in RECENT_WINDOWS}
    since = ({start: cand.figures(int((start - T0) / BIN), t)
              for start in detector_starts(T0, at)} if anytime else {})
    return judge(service="auth", phase="week-2", weight=weight, at=at,
                 baseline=base.figures(main_lo, t), candidate=cand.figures(main_lo, t),
                 settings=s, soak=at - T0, step_since=T0, evidence_start=T0,
                 burn=BurnInputs(candidate=cand_burn, baseline=base_burn, since=since),
                 passed_before=passed_before)


def looks(s: ServiceSettings, base: Variant, cand: Variant, weight: int, ts: range):
    """The judge at each bin of ``ts`` in turn, carrying whether the step has passed."""
    passed = False
    for t in ts:
        ev = look(s, base, cand, t, weight, passed_before=passed)
        passed = passed or ev.verdict is Verdict.PASS
        yield t, ev


def traffic(rng: np.random.Generator, *, service_rps: float, weight: int, bins: int,
            cand_share: np.ndarray | None = None, cand_median: np.ndarray | None = None
            ) -> tuple[Variant, Variant]:
    ones = np.ones(bins)
    base = Variant.draw(rng, ones * service_rps * (100 - weight) / 100, ones * BASE_ERRORS,
                        ones * MEDIAN_MS)
    cand = Variant.draw(rng, ones * service_rps * weight / 100,
                        cand_share if cand_share is not None else ones * BASE_ERRORS,
                        cand_median if cand_median is not None else ones * MEDIAN_MS)
    return base, cand


# -- 1. healthy steps -----------------------------------------------------------------

HEALTHY_CONFIGS = [(30, 10), (30, 25), (60, 10), (60, 25)]
#: looks of each anytime step that also go to the judge to check the screen (below)
CHECKED_LOOKS = 20


def could_fail(s: ServiceSettings, base: Variant, cand: Variant) -> np.ndarray:
    """For each look t = 1..bins of a step, whether the anytime judge could fail it.

    Every check's fail condition, loosened to one that holds whenever the check fails:
    each candidate sequence at the largest share of ``false_fail`` any check gets, the
    baseline at its point estimate (the judge compares with its bound, beyond it), the
    burn rules on their short windows' shares.  Computed for every look of the step at
    once with the judge's own sequences (``slo.sequential``); only the looks it flags go
    to the judge itself, and a sample of the others checks that it misses none."""
    bins = len(cand.requests) - 1
    t_all = np.arange(1, bins + 1)
    share = union_alpha(s.false_fail, fallible_checks(s))
    error, p95, avg = (s.targets[k] for k in ("error_rate", "latency_p95_ms", "latency_avg_ms"))
    assert error.max and error.max_ratio_to_baseline and p95.max_ratio_to_baseline and avg.max
    budget = error.max
    rho = max(error.max_ratio_to_baseline, s.tolerance.error_min_ratio)
    allowed = max(p95.max_ratio_to_baseline, s.tolerance.latency_ratio)
    allowance = s.tolerance.error_budget_share * budget
    # the step's baseline at every look: error share and p95 (the sketch's rank rule)
    nb, xb = base.requests[1:].astype(float), base.errors[1:].astype(float)
    pb = xb / np.maximum(nb, 1)
    cum = np.cumsum(base.buckets[1:], axis=1)
    rank = np.floor(0.95 * (nb - 1))
    p95b = VALUES[np.minimum((cum <= rank[:, None]).sum(axis=1), len(GRID) - 1)]
    # every (look, detector start) pair; start 0 is the step itself
    ends, los = [], []
    for t in t_all:
        for start in detector_starts(T0, T0 + int(t) * BIN):
            ends.append(t)
            los.append(int((start - T0) / BIN))
    end, lo = np.array(ends), np.array(los)
    n = (cand.requests[end] - cand.requests[lo]).astype(float)
    x = (cand.errors[end] - cand.errors[lo]).astype(float)
    limit = rho * pb[end - 1] + allowance
    flag = (x > limit * n) & share_excludes(x, n, limit, share, prior_mean=budget)
    whole = lo == 0
    flag |= whole & (x > budget * n) & share_excludes(x, n, budget, share, prior_mean=budget)
    lo_rank, _ = quantile_rank_cs(n, 0.95, share)
    for part in np.array_split(np.arange(len(end)), max(1, len(end) // 2000)):
        counts = np.cumsum(cand.buckets[end[part]] - cand.buckets[lo[part]], axis=1)
        j = (counts <= lo_rank[part, None]).sum(axis=1)
        low = VALUES[np.minimum(j, len(GRID) - 1)] * (1 - RELATIVE_ACCURACY)
        flag[part] |= (lo_rank[part] >= 0) & (low > allowed * p95b[end[part] - 1])
    mean = (cand.buckets[end] @ VALUES) / np.maximum(n, 1)
    flag |= whole & (mean > avg.max)
    out = np.zeros(bins + 1, dtype=bool)
    np.logical_or.at(out, end, flag)
    for rule in BURN_RULES:
        starts = np.array([int((block(T0, T0 + int(t) * BIN, rule.short)[0] - T0) / BIN)
                           for t in t_all])
        nr = cand.requests[t_all] - cand.requests[starts]
        xr = cand.errors[t_all] - cand.errors[starts]
        out[1:] |= xr > rule.factor * budget * np.maximum(nr, 1)
    return out[1:]


def check_screen(rng: np.random.Generator) -> str:
    """The screen against the judge on every look of steps that do fail (a regression an
    hour in): it must flag every look the judge fails."""
    s = settings("anytime")
    bins, fails, flagged = 240, 0, 0
    for err, lat, rps in ((5, 1, 30), (1, 1.5, 30), (1, 1.2, 283), (3, 1, 283)):
        share = np.where(np.arange(bins) >= 120, BASE_ERRORS * err, BASE_ERRORS)
        median = np.where(np.arange(bins) >= 120, MEDIAN_MS * lat, MEDIAN_MS)
        base, cand = traffic(rng, service_rps=rps, weight=10, bins=bins, cand_share=share,
                             cand_median=median)
        flags = could_fail(s, base, cand)
        failed = np.array([look(s, base, cand, t, 10).verdict is Verdict.FAIL
                           for t in range(1, bins + 1)])
        assert not np.any(failed & ~flags), "the screen missed a look the judge fails"
        fails, flagged = fails + int(failed.sum()), flagged + int(flags.sum())
    return (f"screen check: on {4 * bins} looks of failing steps the judge failed {fails}, "
            f"the screen flagged {flagged}, and missed none")


def healthy(rng: np.random.Generator, looks: int, step_hours: float,
            configs: list[tuple[int, int]], fixed_looks: int, fixed_hours: float
            ) -> list[list[str]]:
    """The anytime judge on ``looks`` (screened, see :func:`could_fail`) and the fixed
    judge on ``fixed_looks`` (every look through the judge: it is the slow one)."""
    rows = []
    for service_rps, weight in configs:
        cells = []
        for k, hours, total in (("fixed", fixed_hours, fixed_looks), ("anytime", step_hours,
                                                                      looks)):
            s = settings(k)
            bins = int(hours * 120)  # 30-second looks
            steps = max(1, total // (bins * len(configs)))
            failed = judged = 0
            for _ in range(steps):
                base, cand = traffic(rng, service_rps=service_rps, weight=weight, bins=bins)
                if k == "fixed":
                    ts = list(range(1, bins + 1))
                else:
                    flags = could_fail(s, base, cand)
                    ts = [int(t) + 1 for t in np.nonzero(flags)[0]]
                    for t in rng.choice(bins, size=min(CHECKED_LOOKS, bins), replace=False):
                        ev = look(s, base, cand, int(t) + 1, weight)
                        assert flags[t] or ev.verdict is not Verdict.FAIL, "screen missed a fail"
                judged += len(ts)
                if any(look(s, base, cand, t, weight).verdict is Verdict.FAIL for t in ts):
                    failed += 1
            cells.append(f"{failed}/{steps} steps of {hours:g} h ({steps * bins:,} looks, "
                         f"{judged:,} judged)")
        rows.append([f"{service_rps} req/s at {weight} % ({service_rps * weight / 100:g} "
                     "req/s)", *cells])
    return rows


# -- 2. time to fail ------------------------------------------------------------------

REGRESSIONS = {"5x errors": (5.0, 1.0), "p95 x1.5": (1.0, 1.5), "p95 x2": (1.0, 2.0)}
FAIL_CONFIGS = [(30, 10), (60, 10), (283, 10), (283, 25)]


def time_to_fail(rng: np.random.Generator, runs: int, *, onset_bins: int = 120,
                 cap_bins: int = 120) -> list[list[str]]:
    judges = {k: settings(k) for k in ("fixed", "anytime")}
    rows = []
    for name, (err, lat) in REGRESSIONS.items():
        for service_rps, weight in FAIL_CONFIGS:
            bins = onset_bins + cap_bins
            got: dict[str, list[float]] = {k: [] for k in judges}
            for _ in range(runs):
                share = np.where(np.arange(bins) >= onset_bins, BASE_ERRORS * err, BASE_ERRORS)
                median = np.where(np.arange(bins) >= onset_bins, MEDIAN_MS * lat, MEDIAN_MS)
                base, cand = traffic(rng, service_rps=service_rps, weight=weight, bins=bins,
                                     cand_share=share, cand_median=median)
                for k, s in judges.items():
                    first = next((t for t, ev in looks(s, base, cand, weight,
                                                       range(1, bins + 1))
                                  if t > onset_bins and ev.verdict is Verdict.FAIL), None)
                    got[k].append(math.inf if first is None
                                  else (first - onset_bins) * BIN.total_seconds() / 60)
            rows.append([name, f"{service_rps * weight / 100:.1f} req/s ({weight} % of "
                         f"{service_rps})", _minutes(got["fixed"], cap_bins),
                         _minutes(got["anytime"], cap_bins)])
    return rows


def _minutes(values: list[float], cap_bins: int) -> str:
    m = statistics.median(values)
    cap = cap_bins * BIN.total_seconds() / 60
    missed = sum(1 for v in values if math.isinf(v))
    text = f"> {cap:.0f} min" if math.isinf(m) else f"{m:.1f} min"
    return text + (f" ({missed}/{len(values)} not in {cap:.0f} min)" if missed and not
                   math.isinf(m) else "")


# -- 3. time to pass ------------------------------------------------------------------

PASS_CONFIGS = [(30, 10), (30, 25), (60, 10), (283, 10)]


def time_to_pass(rng: np.random.Generator, runs: int, *, cap_bins: int = 360,
                 after_bins: int = 60) -> list[list[str]]:
    judges = {k: settings(k) for k in ("fixed", "anytime")}
    rows = []
    for service_rps, weight in PASS_CONFIGS:
        firsts: dict[str, list[float]] = {k: [] for k in judges}
        stays: dict[str, list[float]] = {k: [] for k in judges}
        for _ in range(runs):
            base, cand = traffic(rng, service_rps=service_rps, weight=weight, bins=cap_bins)
            for k, s in judges.items():
                verdicts: list[Verdict] = []
                first = None
                # up to the first pass and an hour on
                for t, ev in looks(s, base, cand, weight, range(1, cap_bins + 1)):
                    verdicts.append(ev.verdict)
                    if first is None and verdicts[-1] is Verdict.PASS:
                        first = t - 1
                    if first is not None and t - 1 - first >= after_bins:
                        break
                firsts[k].append(math.inf if first is None
                                 else (first + 1) * BIN.total_seconds() / 60)
                if first is not None:
                    after = verdicts[first:]
                    stays[k].append(sum(v is Verdict.PASS for v in after) / len(after))
        rows.append([f"{service_rps * weight / 100:.1f} req/s ({weight} % of {service_rps})",
                     *(_pass_cell(firsts[k], stays[k], cap_bins) for k in judges)])
    return rows


def _pass_cell(firsts: list[float], stays: list[float], cap_bins: int) -> str:
    cap = cap_bins * BIN.total_seconds() / 60
    m = statistics.median(firsts)
    if math.isinf(m):
        return f"no pass in {cap / 60:.0f} h"
    held = f"; pass at {100 * statistics.mean(stays):.0f} % of later looks" if stays else ""
    return f"{m:.0f} min{held}"


# -- 4. a re-approval after a revert ----------------------------------------------------

#: minutes: 50 % (regressed) from 0, reverted to 0 % at 20, re-approved to 10 % at 25,
#: judged every 30 s until 55
REAPPROVAL = ((0, 50), (20, 0), (25, 10))
REAPPROVAL_END = 55


def reapproval(rng: np.random.Generator, runs: int, service_rps: float = 60.0
               ) -> list[list[str]]:
    from sqlalchemy import create_engine

    from rollout.backtest import StepChange, backtest

    bins = int(timedelta(minutes=REAPPROVAL_END) / BIN)
    minute = np.arange(bins) * BIN.total_seconds() / 60
    weight = np.zeros(bins)
    for since, w in REAPPROVAL:
        weight[minute >= since] = w
    bad = weight >= 50
    plan = parse_plan((ROOT / "plans" / "nanopore.yaml").read_text(), source="nanopore.yaml")
    targets = {k: v for k, v in (plan.defaults.targets or {}).items()
               if k not in ("memory_mb", "cpu_cores")}
    engine = create_engine("sqlite://")
    known = [StepChange("auth", w, T0 + timedelta(minutes=m)) for m, w in REAPPROVAL]
    hidden = [StepChange("auth", 10, T0)]
    new_step = T0 + timedelta(minutes=REAPPROVAL[-1][0])
    rows = []
    for inference in ("fixed", "anytime"):
        p = plan.model_copy(update={"defaults": plan.defaults.model_copy(
            update={"targets": targets, "inference": inference})})
        fails: dict[str, list[int]] = {"known": [], "hidden": []}
        for _ in range(runs):
            base = Variant.draw(rng, service_rps * (100 - weight) / 100,
                                np.full(bins, BASE_ERRORS), np.full(bins, MEDIAN_MS))
            cand = Variant.draw(rng, service_rps * weight / 100,
                                np.where(bad, 5 * BASE_ERRORS, BASE_ERRORS),
                                np.where(bad, 2 * MEDIAN_MS, MEDIAN_MS))

            def figures(*, session: object, service: str, variant: str, start: datetime,
                        end: datetime, base: Variant = base, cand: Variant = cand) -> Figures:
                lo, hi = (max(0, min(bins, int((x - T0) / BIN))) for x in (start, end))
                return (cand if variant == "candidate" else base).figures(lo, hi)

            for name, steps in (("known", known), ("hidden", hidden)):
                looks = list(backtest(engine=engine, plan=p, start=new_step + BIN,
                                      end=T0 + timedelta(minutes=REAPPROVAL_END), every=BIN,
                                      steps=steps, service="auth", figures_fn=figures))
                fails[name].append(sum(e.verdict is Verdict.FAIL for e in looks))
        n = int((timedelta(minutes=REAPPROVAL_END) - timedelta(minutes=25)) / BIN)
        rows.append([inference, *(f"{sum(fails[k])} of {runs * n} looks "
                                  f"({sum(f > 0 for f in fails[k])}/{runs} steps)"
                                  for k in ("known", "hidden"))])
    return rows


def table(title: str, head: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--looks", type=int, default=100_000,
                    help="healthy looks in all, over both traffic levels and weights")
    ap.add_argument("--step-hours", type=float, default=24.0, help="length of a healthy step")
    ap.add_argument("--fixed-looks", type=int, default=8_000,
                    help="healthy looks for the fixed judge (every one judged)")
    ap.add_argument("--fixed-hours", type=float, default=4.0,
                    help="length of a healthy step for the fixed judge")
    ap.add_argument("--configs", type=int, default=len(HEALTHY_CONFIGS),
                    help="how many of the healthy traffic levels (3, 7.5, 6, 15 req/s)")
    ap.add_argument("--runs", type=int, default=5, help="runs per regression and per pass")
    ap.add_argument("--only", choices=("healthy", "fail", "pass", "reapproval"),
                    help="one section")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    if args.only in (None, "healthy"):
        table("1. Healthy steps judged every 30 s: steps with any fail",
              ["traffic", "fixed", "anytime"],
              healthy(rng, args.looks, args.step_hours, HEALTHY_CONFIGS[:args.configs],
                      args.fixed_looks, args.fixed_hours))
        print("\n" + check_screen(rng))
    if args.only in (None, "fail"):
        table("2. Time to a fail after a regression starts, an hour into the step (median)",
              ["regression", "candidate", "fixed", "anytime"],
              time_to_fail(rng, args.runs))
    if args.only in (None, "pass"):
        table("3. Time to a pass from the step's start (median), and how it holds an hour on",
              ["candidate", "fixed", "anytime"], time_to_pass(rng, args.runs))
    if args.only in (None, "reapproval"):
        table("4. A re-approval to 10 % after a revert from a regressed 50 %: fails in the "
              "new step's first 30 minutes (60 req/s, looks every 30 s)",
              ["inference", "steps known (cutover)", "re-approval hidden (windows slide "
               "across it)"], reapproval(rng, args.runs))
    print(f"\nwall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

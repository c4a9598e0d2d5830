"""The judge: figures of the baseline and the candidate in, a verdict with reasons out.

Three verdicts, and the rule that joins them (``_overall``): any check that *fails* makes
the verdict fail; else any check that cannot tell makes it inconclusive; else it passes.
A check fails only on evidence and passes only on evidence:

- comparisons with the baseline and limits on sampled figures (error share, latency
  quantiles, average latency) use confidence intervals at the plan's ``confidence``: a
  check fails when the whole interval lies beyond the limit, passes when the whole of it
  lies within, and otherwise says how many more requests would settle it;
- figures with no sampling noise to speak of (memory, CPU, request counts) are compared
  as they are;
- before any of that, the gates: the candidate takes traffic, has ``min_requests`` in the
  window, has soaked ``min_soak``, and its data is fresh and complete.  A gate can make
  the verdict inconclusive, never pass, and never hides a failure proven by the data.

Two allowances keep "no increase" from being unprovable (a ratio of exactly 1.0 can never
be shown to hold within noise): an error share counts as increased only beyond
1.5 x the baseline's plus a tenth of the error budget (with 0.2 % errors and a 1 % budget:
beyond 0.4 %), and a latency only beyond 1.05 x (five times the sketches' accuracy).  Both
are the plan's ``tolerance`` (defaults, phase or service may set them) and are stated in
the reasons.  With them a 3x error regression fails and a healthy canary
passes, each 99 % of the time, from about 15,000 requests at 0.2 % errors
(``benchmarks/judge_bench.py``); with fewer, the verdict is inconclusive and says how many
more requests would settle it.

Error budget burn: the multiwindow, multi-burn-rate rule of the SRE workbook (chapter 5,
"Alerting on SLOs"): 14.4x over both 1h and 5m, or 6x over both 6h and 30m, the budget
being the ``error_rate`` target's ``max``.  A burn check fails on the lower bound of the
error share, so a handful of requests cannot fake a burn.  The same short window also
and a 2m one re-run the baseline comparisons of error share and latency ("recent"
checks), so a regression fails within minutes, before it has filled the plan's window.  Both only fail
or stand aside: the plan's window decides a pass.

Under the plan's ``inference: anytime`` every interval above is a confidence sequence
(``slo.sequential``) over the step's own requests, valid at every look at once: the
plan's ``false_fail`` is shared over every check that can fail a step
(:func:`fallible_checks`), a check fails on its share and passes on a sequence at
``confidence``; instead of the recent windows, each comparison with the baseline has a
regression detector (sequences from every minute of the step, ``slo.sequential``), the
burn rules' short windows read sequences restarted block by block, a pass shown at a look
of the step stands while no check fails (``passed_before``), and the reasons end with the
guarantee.  ``fixed`` is the judge as described above.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from slo.figure_specs import FIGURE_SPECS, format_value
from slo.figures import Figures
from slo.plan import FIGURES, ServiceSettings, TargetSpec, Tolerance
from slo.sequential import (
    block,
    block_alpha,
    detector_index,
    mean_sequence,
    quantile_sequence,
    share_sequence,
    union_alpha,
)
from slo.sketch import BucketHistogram, LogSketch
from slo.stats import (
    Interval,
    diff_interval,
    mean_interval,
    quantile_interval,
    share_interval,
)
from slo.verdict import Check, CheckKind, Evaluation, Verdict

__all__ = ["BURN_RULES", "RECENT_SUFFIX", "RECENT_WINDOWS", "STARVED_STRICTNESS", "TOTAL_FIGURES",
           "BurnInputs", "BurnRule", "fallible_checks", "judge", "overall"]

#: the allowances of comparisons with the baseline are the plan's ``tolerance``
#: (slo.plan.Tolerance): 1.5 x + a tenth of the budget for errors, 1.05 x for latency
#: windows of the recent comparisons: the fast-burn pair's short window (5m), and 2m so a
#: step change shows undiluted within two minutes (the shorter, the noisier: each fails
#: only on its own evidence, so a healthy canary far inside the limits never trips one)
RECENT_WINDOWS = (timedelta(minutes=2), timedelta(minutes=5))
#: budget when no error_rate max is set, for the allowance only (no burn checks then)
_DEFAULT_BUDGET = 0.01
#: below min_requests, checks fail only at 1 - (1 - confidence) / this
STARVED_STRICTNESS = 100
#: figures a target with scope "total" sums over the phase's services
TOTAL_FIGURES = ("memory_mb", "cpu_cores", "rps")
#: without a distribution a point estimate counts only with this many requests in the
#: tail beyond the quantile, and only beyond a 2.5 % band around each figure
_POINT_TAIL = 50
_POINT_BAND = 0.025
_QUANTILES = {s.name: s.quantile for s in FIGURE_SPECS if s.quantile is not None}
_LABELS = {s.name: s.label for s in FIGURE_SPECS}
_RANK = {Verdict.FAIL: 0, Verdict.INCONCLUSIVE: 1, Verdict.PASS: 2}


@dataclass(frozen=True)
class BurnRule:
    """Page when the burn rate exceeds ``factor`` over both windows (SRE workbook)."""

    long: timedelta
    short: timedelta
    factor: float


BURN_RULES = (BurnRule(timedelta(hours=1), timedelta(minutes=5), 14.4),
              BurnRule(timedelta(hours=6), timedelta(minutes=30), 6.0))


@dataclass(frozen=True)
class BurnInputs:
    """Figures over the burn windows, each ending at the evaluation time.

    ``candidate`` needs the windows of :data:`BURN_RULES` (5m, 30m, 1h, 6h) and of
    :data:`RECENT_WINDOWS`; ``baseline`` those of :data:`RECENT_WINDOWS`.  A missing window
    makes its check inconclusive (burn) or absent (recent)."""

    candidate: Mapping[timedelta, Figures] = field(default_factory=dict)
    baseline: Mapping[timedelta, Figures] = field(default_factory=dict)
    #: anytime inference: the candidate's figures from each start of
    #: :func:`slo.sequential.detector_starts` to the evaluation time, by start
    since: Mapping[datetime, Figures] = field(default_factory=dict)


@dataclass(frozen=True)
class _Ctx:
    """What every check needs, resolved once."""

    baseline: Figures
    candidate: Figures
    confidence: float
    budget: float
    window: timedelta
    tolerance: Tolerance = Tolerance()
    label: str = ""        # appended to check names, e.g. "_5m"
    starved: int = 0       # min_requests when the candidate has fewer, else 0
    #: where the step's own evidence begins, when it cuts the plan's window short
    evidence: datetime | None = None
    #: anytime inference: every interval is a confidence sequence (slo.sequential) and
    #: ``confidence`` is one minus the check's share of the plan's ``false_fail``
    anytime: bool = False
    #: the error share sequences' Beta prior (mean, weight); None: slo.sequential's
    #: default around the budget, one expected error's worth
    share_prior: tuple[float, float] | None = None


# -- the entry point ---------------------------------------------------------------

def judge(*, service: str, phase: str | None, weight: int, at: datetime, baseline: Figures,
          candidate: Figures, settings: ServiceSettings, soak: timedelta | None,
          group_totals: Mapping[str, float] | None = None, burn: BurnInputs | None = None,
          plan_hash: str = "", stale_after: timedelta = timedelta(minutes=3),
          step_since: datetime | None = None, evidence_start: datetime | None = None,
          passed_before: bool = False) -> Evaluation:
    """Judge ``candidate`` against ``baseline`` and the service's targets at ``at``.

    ``soak`` is how long the current step has run (None: no step or unknown);
    ``step_since`` is when that step began and ``evidence_start`` where its own evidence
    begins (the figures are cut there by the caller; the verdict says so);
    ``group_totals`` holds, per figure of :data:`TOTAL_FIGURES`, the candidates' sum over
    the phase's services (a figure absent: some service had none); ``stale_after`` is
    how old the newest data point may be; ``passed_before``: an earlier look of this
    step passed (anytime inference keeps that pass while no check fails)."""
    error_target = settings.targets.get("error_rate")
    budget = error_target.max if error_target and error_target.max else None
    anytime = settings.inference == "anytime"
    fallible = fallible_checks(settings, burn=burn is not None)
    share = union_alpha(settings.false_fail, fallible)
    span = settings.window if not anytime or evidence_start is None else at - evidence_start
    ctx = _Ctx(baseline=baseline, candidate=candidate,
               confidence=1 - share if anytime else _confidence(candidate, settings),
               budget=budget or _DEFAULT_BUDGET, window=max(span, timedelta(seconds=1)),
               tolerance=settings.tolerance, starved=settings.min_requests
               if (candidate.requests or 0) < settings.min_requests else 0,
               evidence=evidence_start if evidence_start is not None
               and (anytime or evidence_start > at - settings.window) else None,
               anytime=anytime)
    checks: list[Check] = []
    checks += _kinded(CheckKind.GATE, _gates(ctx, weight=weight, at=at, settings=settings,
                                             soak=soak, stale_after=stale_after,
                                             evidence_start=evidence_start))
    # anytime: a check fails on the sequence at its share of false_fail and passes on
    # one at the plan's confidence (also anytime-valid: a candidate beyond its limit is
    # passed at some look with probability under 1 - confidence)
    pass_ctx = (replace(ctx, confidence=settings.confidence, share_prior=_pass_prior(ctx.budget))
                if anytime else None)
    # anytime: a comparison with the baseline over the whole step is its detector's
    # first start (k = 0), at that start's weight of the check's share
    ratio_ctx = replace(ctx, confidence=1 - block_alpha(share, 0)) if anytime else ctx
    for name in FIGURES:
        spec = settings.targets.get(name)
        if spec is not None:
            found = _target_checks(ctx, name, spec, group_totals or {}, ratio_ctx=ratio_ctx)
            if pass_ctx is not None:
                found = _two_levels(found, _target_checks(pass_ctx, name, spec,
                                                          group_totals or {}))
            checks += found
    if burn is not None:
        blocks = _Blocks(evidence_start, at, share) if anytime else None
        checks += _kinded(CheckKind.RECENT, (
            _detector_checks(ratio_ctx, settings, burn, evidence_start, share)
            if anytime else _recent_checks(ctx, settings, burn)))
        if budget:
            checks += _kinded(CheckKind.BURN, [
                _burn_check(ctx, rule, burn, budget, min_requests=settings.min_requests,
                            blocks=blocks, confidence=settings.confidence)
                for rule in BURN_RULES])
    if anytime and passed_before:
        checks = _held_passes(checks)
    verdict = overall(checks)
    waits = [c.wait_seconds for c in checks
             if c.verdict is Verdict.INCONCLUSIVE and c.wait_seconds is not None]
    ordered = sorted(checks, key=lambda c: (_RANK[c.verdict], _order(c, verdict)))
    guarantee = (_guarantee_words(settings, fallible, share, evidence_start),) if anytime else ()
    return Evaluation(
        service=service, phase=phase, weight=weight, at=at, verdict=verdict,
        reasons=tuple(c.detail for c in ordered
                      if c.verdict is not Verdict.PASS or verdict is Verdict.PASS) + guarantee,
        baseline=baseline, candidate=candidate, checks=tuple(ordered), plan_hash=plan_hash,
        wait_seconds=max(waits) if verdict is Verdict.INCONCLUSIVE and waits else None,
        extra={"confidence": settings.confidence}, step_since=step_since,
    )


#: sampled figures: the ones whose checks can be wrong by chance (memory, CPU and counts
#: are compared as they are)
_SAMPLED = ("error_rate", "latency_avg_ms", *_QUANTILES)


def _two_levels(fails: list[Check], passes: list[Check]
                ) -> list[Check]:
    """Each check judged at the guarantee's level (``fails``) and at the pass level: fail
    only on the first, pass only on the second, else inconclusive with the first's words
    (the sequences are nested, so a pass at one level is never a fail at the other)."""
    out = []
    for f, p in zip(fails, passes, strict=True):
        if f.verdict is Verdict.FAIL or p.verdict is not Verdict.PASS:
            out.append(f if f.verdict is not Verdict.INCONCLUSIVE or p.verdict
                       is not Verdict.INCONCLUSIVE else p)
        else:
            out.append(p)
    return out


def _pass_prior(budget: float) -> tuple[float, float]:
    """The pass sequences' prior for an error share: half the budget, ten budgets' worth
    of requests (1,000 at a 1 % budget).  A pass waits on shares well inside the limit
    over the thousands of requests a step at low traffic gathers, where the fail
    sequences' prior (one error's worth) is loose; fixed by the plan, before any data."""
    return budget / 2, 10 / budget


def fallible_checks(settings: ServiceSettings, *, burn: bool = True) -> int:
    """How many checks can fail a step on noise under anytime inference: each limit on a
    sampled figure (a comparison with the baseline together with its regression
    detector: the step is the detector's first start) and the burn-rate rules.  Each gets
    an equal share of ``false_fail`` (a union bound)."""
    main = sum((spec.max is not None) + (spec.min is not None)
               + (spec.max_ratio_to_baseline is not None)
               for name, spec in settings.targets.items() if name in _SAMPLED)
    if not burn:
        return max(main, 1)
    error = settings.targets.get("error_rate")
    rules = len(BURN_RULES) if error is not None and error.max else 0
    return max(main + rules, 1)


def _held_passes(checks: list[Check]) -> list[Check]:
    """An earlier look of the step passed: every sampled check passed then, on sequences
    valid at every look, so a check that cannot tell now still stands passed (the chance
    that a candidate beyond a limit is ever passed already counts every look).  Only
    while nothing fails and every check that cannot tell is such a check with a figure
    now: a gate (data, freshness, traffic) or a missing figure still holds the verdict."""
    if any(c.verdict is Verdict.FAIL for c in checks) or any(
            c.verdict is Verdict.INCONCLUSIVE and (c.name not in _SAMPLED or c.candidate is None)
            for c in checks):
        return checks   # a gate holds it, or a figure is missing: never a pass on no data
    return [Check(c.name, Verdict.PASS, c.baseline, c.candidate, c.limit,
                   f"{_LABELS[c.name]} held at an earlier look of this step (an anytime "
                   f"pass stands while no check fails); now: {c.detail}", kind=c.kind)
            if c.verdict is Verdict.INCONCLUSIVE else c for c in checks]


@dataclass(frozen=True)
class _Blocks:
    """Where the restarted sequences of the short windows stand (slo.sequential.block)."""

    evidence: datetime | None
    at: datetime
    share: float

    def confidence(self, span: timedelta) -> float:
        if self.evidence is None:
            return 1 - self.share
        _, k = block(self.evidence, self.at, span)
        return 1 - block_alpha(self.share, k)


def _guarantee_words(settings: ServiceSettings, fallible: int, share: float,
                     evidence: datetime | None) -> str:
    base = (f"anytime-valid: a candidate within its targets and tolerance is failed at some "
            f"look of this step with probability under {_pct(settings.false_fail)}, however "
            f"long and often it is judged ({fallible} checks that can fail share it, "
            f"{share:.2g} each; confidence sequences, the average latency's approximate; "
            f"the comparisons with the baseline also from every minute of the step); "
            f"a pass rests on sequences at {settings.confidence * 100:.4g} %")
    if evidence is None:
        return base + "; the step's start is unknown, so the short windows slide and the bound is not kept"
    return base


def _kinded(kind: CheckKind, checks: list[Check]) -> list[Check]:
    return [replace(c, kind=kind) for c in checks]


def _order(check: Check, verdict: Verdict) -> int:
    """Reasons lead with what matters: for an inconclusive verdict the gate that holds it
    (too few requests, soak), otherwise the targets, then the recent and burn checks."""
    gate = check.kind is CheckKind.GATE
    extra = check.kind in (CheckKind.RECENT, CheckKind.BURN)
    if verdict is Verdict.INCONCLUSIVE:
        return 0 if gate else (2 if extra else 1)
    return 2 if gate else (1 if extra else 0)


def _confidence(candidate: Figures, settings: ServiceSettings) -> float:
    """The plan's confidence; below ``min_requests`` a hundred times stricter, so that
    only overwhelming evidence fails a starved canary (3 errors in 44 requests happen to
    a healthy service; 30 do not): starved traffic is inconclusive, not a coin flip."""
    if (candidate.requests or 0) < settings.min_requests:
        return 1 - (1 - settings.confidence) / STARVED_STRICTNESS
    return settings.confidence


def overall(checks: Iterable[Check]) -> Verdict:
    """Fail beats inconclusive beats pass; no checks at all is inconclusive."""
    seen = {c.verdict for c in checks}
    if Verdict.FAIL in seen:
        return Verdict.FAIL
    if Verdict.INCONCLUSIVE in seen or not seen:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS


# -- gates: enough fresh data? --------------------------------------------------------

def _gates(ctx: _Ctx, *, weight: int, at: datetime, settings: ServiceSettings,
           soak: timedelta | None, stale_after: timedelta,
           evidence_start: datetime | None) -> list[Check]:
    out = [_traffic_gate(ctx, weight, settings), _soak_gate(weight, soak, settings)]
    if weight > 0 and evidence_start is not None and evidence_start >= at:
        # the step is younger than its first whole minute of evidence: nothing of its own
        left = (evidence_start - at).total_seconds()
        out.append(_inc("step", f"the step's own requests count from {evidence_start:%H:%M} "
                         f"UTC (its first whole minute, after the previous weight's data has "
                         f"left every rate): {_wait_words(left)}", wait_seconds=left))
        return out
    out += _data_gates(ctx, at=at, stale_after=stale_after)
    return out


def _rate(f: Figures, window: timedelta) -> float | None:
    if f.rps is not None:
        return f.rps
    if f.requests is not None:
        return f.requests / max(window.total_seconds(), 1.0)
    return None


def _traffic_gate(ctx: _Ctx, weight: int, settings: ServiceSettings
                  ) -> Check:
    need = settings.min_requests
    n, rate = ctx.candidate.requests, _rate(ctx.candidate, ctx.window)
    name = "min_requests"
    if n is None:
        return _inc(name, "no request count for the candidate: no source covers it yet",
                    limit=need)
    if n <= 0:
        why = (f"the candidate takes no traffic (weight {weight} %): approve a first step"
               if weight <= 0 else
               f"no candidate requests in the last {_dur(ctx.window)} at weight {weight} %")
        return _inc(name, why, candidate=n, limit=need)
    if n < need:
        wait, how = _requests_wait(missing=need - n, rate=rate, window=ctx.window, need=need,
                                   grows=ctx.anytime)
        where = (f"since {ctx.evidence:%H:%M} UTC (this step's own)" if ctx.evidence
                 else "in the window")
        return _inc(name, f"{_num(n)} of {need} candidate requests {where}: {how}",
                    candidate=n, limit=need, wait_seconds=wait)
    return Check(name, Verdict.PASS, candidate=n, limit=need,
                 detail=f"{_num(n)} candidate requests >= {need} needed")


def _requests_wait(*, missing: float, rate: float | None, window: timedelta, need: float,
                   grows: bool = False) -> tuple[float | None, str]:
    """How long until ``missing`` more requests arrive, in seconds and in words; None
    when they never will (no traffic, or the window cannot hold ``need`` at this rate;
    ``grows``: the window is the step's, which holds every request to come)."""
    if not rate or rate <= 0:
        return None, "no estimate without candidate traffic"
    holds = rate * window.total_seconds()
    if holds < need and not grows:
        return None, (f"at the current {rate:.1f} req/s a {_dur(window)} window holds about "
                      f"{_num(holds)} requests, never {_num(need)}: raise the weight or "
                      "lengthen the window")
    secs = missing / rate
    return secs, f"{_wait_words(secs)} at the current {rate:.1f} req/s"


def _soak_gate(weight: int, soak: timedelta | None, settings: ServiceSettings
               ) -> Check:
    need = settings.min_soak
    if weight <= 0:
        return _inc("min_soak", "no step has started: nothing soaks at weight 0 %",
                    limit=need.total_seconds())
    if soak is None:
        return _inc("min_soak", "the current step's start is unknown: soak cannot be measured",
                    limit=need.total_seconds())
    if soak < need:
        left = (need - soak).total_seconds()
        return _inc("min_soak", f"soaked {_dur(soak)} of {_dur(need)} at {weight} %: "
                    f"{_wait_words(left)}", candidate=soak.total_seconds(),
                    limit=need.total_seconds(), wait_seconds=left)
    return Check("min_soak", Verdict.PASS, candidate=soak.total_seconds(),
                 limit=need.total_seconds(),
                 detail=f"soaked {_dur(soak)} >= {_dur(need)} at {weight} %")


def _data_gates(ctx: _Ctx, *, at: datetime, stale_after: timedelta
                ) -> list[Check]:
    out: list[Check] = []
    for variant, f in (("baseline", ctx.baseline), ("candidate", ctx.candidate)):
        for problem in f.problems:
            # the source's own words say what is missing; it resolves when it is not
            out.append(_inc("source", f"{variant} data: {problem}"))
        if f.empty:
            out.append(_inc("data", f"no figures for the {variant} in the window: check that "
                             "the collectors run and cover it"))
        elif f.last_seen is not None and at - f.last_seen > stale_after:
            out.append(_inc("freshness", f"{variant} data is {_dur(at - f.last_seen)} old "
                             f"(newest {f.last_seen:%H:%M} UTC): the collectors are behind or "
                             "stopped; resolves when they catch up"))
    if not out:
        out.append(Check("data", Verdict.PASS, detail="baseline and candidate data complete "
                          "and fresh"))
    return out


# -- targets -------------------------------------------------------------------------

def _target_checks(ctx: _Ctx, name: str, spec: TargetSpec, totals: Mapping[str, float], *,
                   ratio_ctx: _Ctx | None = None) -> list[Check]:
    out: list[Check] = []
    total = spec.scope == "total" and name in TOTAL_FIGURES
    for kind, limit in (("max", spec.max), ("min", spec.min)):
        if limit is not None:
            out.append(_total_check(name, kind, limit, totals) if total
                       else _absolute_check(ctx, name, kind, limit))
    if spec.max_ratio_to_baseline is not None:
        out.append(_ratio_check(ratio_ctx or ctx, name, spec.max_ratio_to_baseline,
                                totals if total else None))
    return out


def _absolute_check(ctx: _Ctx, name: str, kind: str, limit: float
                    ) -> Check:
    est = _estimate(ctx, name, ctx.candidate)
    sign = "<=" if kind == "max" else ">="
    label = _label(name, ctx)
    if isinstance(est, str):
        return _inc(name + ctx.label, f"{label}: {est}", limit=limit)
    verdict = _decide(est, limit, limit, upper=kind == "max")
    shown = _fmt(name, est.point)
    if verdict is Verdict.INCONCLUSIVE:
        wait, how = _noise_wait(ctx, est, limit)
        return _inc(name + ctx.label, f"{label} {shown} is within noise of the {kind} "
                    f"{_fmt(name, limit)} ({_ci(name, est, ctx)}): {how}",
                    candidate=est.point, limit=limit, wait_seconds=wait)
    held = verdict is Verdict.PASS
    op = sign if held else (">" if kind == "max" else "<")
    return Check(name + ctx.label, verdict, candidate=est.point, limit=limit,
                 detail=f"{label} {shown} {op} {kind} {_fmt(name, limit)}"
                 + _ci_note(name, est, ctx))


def _total_check(name: str, kind: str, limit: float, totals: Mapping[str, float]
                 ) -> Check:
    label = f"{_LABELS[name]} in total over the phase"
    value = totals.get(name)
    if value is None:
        return _inc(name, f"{label}: some service of the phase has no {_LABELS[name]} figure",
                    limit=limit)
    held = value <= limit if kind == "max" else value >= limit
    op = ("<=" if held else ">") if kind == "max" else (">=" if held else "<")
    return Check(name, Verdict.PASS if held else Verdict.FAIL, candidate=value, limit=limit,
                 detail=f"{label} {_fmt(name, value)} {op} {kind} {_fmt(name, limit)}")


def _ratio_check(ctx: _Ctx, name: str, ratio: float, totals: Mapping[str, float] | None
                 ) -> Check:
    label, cname = _label(name, ctx), name + ctx.label
    if name == "error_rate":
        return _error_ratio_check(ctx, ratio)
    base = _estimate(ctx, name, ctx.baseline, halves=True)
    cand: Interval | str
    if totals is not None:
        t = totals.get(name)
        cand = Interval(t, t, t, math.inf) if t is not None else "no total over the phase"
    else:
        cand = _estimate(ctx, name, ctx.candidate, halves=True)
    for variant, est in (("baseline", base), ("candidate", cand)):
        if isinstance(est, str):
            return _inc(cname, f"{label} vs baseline: {variant} {est}")
    assert isinstance(base, Interval) and isinstance(cand, Interval)
    allowed = max(ratio, ctx.tolerance.latency_ratio) if name in _QUANTILES or name == \
        "latency_avg_ms" else ratio
    limit = allowed * base.point
    # the limit moves with the baseline: fail against its upper bound, pass against its lower
    verdict = _decide(cand, allowed * base.hi, allowed * base.lo, upper=True)
    shown = (f"{label} {_fmt(name, cand.point)} {{op}} {ratio:.2f} x baseline "
             f"{_fmt(name, base.point)}")
    extra = f" (allowing {allowed:.2f} x)" if allowed != ratio else ""
    if verdict is Verdict.INCONCLUSIVE:
        wait, how = _noise_wait(ctx, cand, limit)
        return _inc(cname, shown.format(op="is within noise of") + extra
                    + f" ({_ci(name, cand, ctx)}): {how}", baseline=base.point,
                    candidate=cand.point, limit=limit, wait_seconds=wait)
    op = "<=" if verdict is Verdict.PASS else ">"
    return Check(cname, verdict, baseline=base.point, candidate=cand.point, limit=limit,
                 detail=shown.format(op=op) + extra + _ci_note(name, cand, ctx))


def _error_ratio_check(ctx: _Ctx, ratio: float) -> Check:
    """Candidate share vs baseline share: within while ``pc - rho pb <= allowance`` with
    ``rho = max(ratio, tolerance.error_min_ratio)``; the interval of that difference decides."""
    name, label = "error_rate" + ctx.label, _label("error_rate", ctx)
    cand = _estimate(ctx, "error_rate", ctx.candidate, halves=True)
    base = _estimate(ctx, "error_rate", ctx.baseline, halves=True)
    for variant, est in (("baseline", base), ("candidate", cand)):
        if isinstance(est, str):
            return _inc(name, f"{label} vs baseline: {variant} {est}")
    assert isinstance(base, Interval) and isinstance(cand, Interval)
    rho = max(ratio, ctx.tolerance.error_min_ratio)
    allowance = ctx.tolerance.error_budget_share * ctx.budget
    # anytime: both sequences hold at once (each at half the check's error), so the
    # difference lies between the far ends; fixed: MOVER from the two intervals
    diff = (Interval(cand.point - rho * base.point, cand.lo - rho * base.hi,
                     cand.hi - rho * base.lo, min(cand.n, base.n))
            if ctx.anytime else diff_interval(cand, base, rho))
    limit = rho * base.point + allowance
    shown = (f"{label} {_pct(cand.point)} {{op}} {ratio:.2f} x baseline {_pct(base.point)} "
             f"(allowing {rho:.2f} x + {_pp(allowance)}: {_pct(limit)})")
    if diff.lo > allowance:
        return Check(name, Verdict.FAIL, baseline=base.point, candidate=cand.point, limit=limit,
                     detail=shown.format(op=">") + f"; {_ci('error_rate', cand, ctx)}")
    if diff.hi <= allowance:
        return Check(name, Verdict.PASS, baseline=base.point, candidate=cand.point, limit=limit,
                     detail=shown.format(op="<="))
    wait, how = _noise_wait(ctx, diff, allowance)
    return _inc(name, shown.format(op="is within noise of")
                + f" ({_ci('error_rate', cand, ctx)}): {how}", baseline=base.point,
                candidate=cand.point, limit=limit, wait_seconds=wait)


# -- estimates -----------------------------------------------------------------------

def _estimate(ctx: _Ctx, name: str, f: Figures, *, halves: bool = False) -> Interval | str:
    """The figure with its interval, or why there is none (in words).  ``halves``: one
    of the two sides of a comparison, which under anytime inference share the check's
    error (each takes half, so both hold together)."""
    confidence = 1 - (1 - ctx.confidence) / 2 if halves and ctx.anytime else ctx.confidence
    if name == "error_rate":
        mean, weight = ctx.share_prior or (ctx.budget, None)
        return _share(f, confidence, anytime=ctx.anytime, prior_mean=mean, prior_weight=weight)
    if name in _QUANTILES or name == "latency_avg_ms":
        return _latency(name, f, confidence, anytime=ctx.anytime)
    value = _goodput(f, name) if name in ("requests", "rps") else f.get(name)
    if value is None:
        return f"has no {_LABELS[name]} figure"
    return Interval(value, value, value, math.inf)


def _goodput(f: Figures, name: str) -> float | None:
    """Requests (or rate) without the 5xx answers: serving errors is not throughput, and
    more bad requests must never lift a ``min`` on traffic from fail to pass."""
    value = f.get(name)
    if value is None:
        return None
    if f.requests and f.errors is not None:
        return value * max(0.0, 1 - f.errors / f.requests)
    if f.error_rate is not None:
        return value * max(0.0, 1 - f.error_rate)
    return value


def _share(f: Figures, confidence: float, *, anytime: bool = False,
           prior_mean: float = _DEFAULT_BUDGET, prior_weight: float | None = None
           ) -> Interval | str:
    n = f.requests
    if n is None:
        return "has no request count"
    if n <= 0:
        return "has no requests in the window"
    x = f.errors if f.errors is not None else (
        f.error_rate * n if f.error_rate is not None else None)
    if x is None:
        return "has no error count"
    if anytime:
        return share_sequence(x, n, 1 - confidence, prior_mean=prior_mean,
                              prior_weight=prior_weight)
    return share_interval(x, n, confidence)


def _latency(name: str, f: Figures, confidence: float, *, anytime: bool = False
             ) -> Interval | str:
    sketch: LogSketch | BucketHistogram | None = f.latency
    if sketch is not None and sketch.count > 0:
        if anytime:
            est = (mean_sequence(sketch, 1 - confidence) if name == "latency_avg_ms"
                   else quantile_sequence(sketch, _QUANTILES[name], 1 - confidence))
        else:
            est = (mean_interval(sketch, confidence) if name == "latency_avg_ms"
                   else quantile_interval(sketch, _QUANTILES[name], confidence))
        if est is not None:
            shown = f.get(name)
            # the figure as the contract shows it, with the sketch's interval around it
            point = shown if shown is not None and est.lo <= shown <= est.hi else est.point
            return Interval(point, est.lo, est.hi, est.n)
    return _point_latency(name, f)


def _point_latency(name: str, f: Figures) -> Interval | str:
    """No distribution: a point estimate, trusted only with enough requests in the tail,
    and only outside a band around the limit (see ``_decide``: its interval is the band)."""
    value = f.get(name)
    if value is None:
        return f"has no {_LABELS[name]} figure"
    q = _QUANTILES.get(name, 0.5)
    need = _POINT_TAIL / (1 - q) if q >= 0.5 else _POINT_TAIL / q
    if f.requests is None or f.requests < need:
        return (f"{_fmt(name, value)} comes without a distribution and from "
                f"{_num(f.requests or 0)} requests (under {_num(need)}): it cannot tell "
                "noise from change")
    # n is unknown: no number of requests narrows a band that is not an interval
    return Interval(value, value * (1 - _POINT_BAND), value * (1 + _POINT_BAND), math.inf)


def _decide(est: Interval, fail_limit: float, pass_limit: float, *, upper: bool) -> Verdict:
    """An upper limit fails when the interval's low end is above it and passes when its
    high end is at or below it; a lower limit the other way round."""
    if upper:
        if est.lo > fail_limit:
            return Verdict.FAIL
        return Verdict.PASS if est.hi <= pass_limit else Verdict.INCONCLUSIVE
    if est.hi < fail_limit:
        return Verdict.FAIL
    return Verdict.PASS if est.lo >= pass_limit else Verdict.INCONCLUSIVE


def _noise_wait(ctx: _Ctx, est: Interval, limit: float) -> tuple[float | None, str]:
    """More requests shrink an interval as 1/sqrt(n): the requests needed for its half
    width to fit between the estimate and the limit, as time at the current traffic."""
    if ctx.starved:
        return None, f"judged once the window holds {ctx.starved} candidate requests"
    gap = abs(est.point - limit)
    rate = _rate(ctx.candidate, ctx.window)
    if not math.isfinite(est.n):
        return None, ("without a latency distribution the noise cannot be measured: "
                      "a log source or a Prometheus histogram would settle it")
    if gap <= 0 or not math.isfinite(est.half_width) or est.n <= 0:
        return None, "at the limit itself: more data will not settle it soon"
    need = est.n * (est.half_width / gap) ** 2
    wait, how = _requests_wait(missing=need - est.n, rate=rate, window=ctx.window, need=need,
                               grows=ctx.anytime)
    return wait, f"needs about {_num(need)} requests; {how}"


# -- recent window and burn rates ------------------------------------------------------

def _recent_checks(ctx: _Ctx, settings: ServiceSettings, burn: BurnInputs
                   ) -> list[Check]:
    """The baseline comparisons again over the last minutes, fail-only: a regression
    shows here minutes before it dominates the plan's window."""
    out: list[Check] = []
    for span in RECENT_WINDOWS:
        cand, base = burn.candidate.get(span), burn.baseline.get(span)
        if settings.window <= span or cand is None or base is None:
            continue
        rctx = _Ctx(baseline=base, candidate=cand, confidence=_confidence(cand, settings),
                    budget=ctx.budget, window=span, tolerance=ctx.tolerance,
                    label="_" + _dur(span))
        for name in ("error_rate", *_QUANTILES):
            spec = settings.targets.get(name)
            if spec is None or spec.max_ratio_to_baseline is None:
                continue
            check = _ratio_check(rctx, name, spec.max_ratio_to_baseline, None)
            if check.verdict is not Verdict.FAIL:
                check = Check(check.name, Verdict.PASS, check.baseline, check.candidate,
                              check.limit, f"last {_dur(span)}: no {_LABELS[name]} regression "
                              "shown (this check only fails; the window decides a pass)")
            out.append(check)
    return out


#: the name suffix of the regression detectors' checks (anytime inference)
RECENT_SUFFIX = "_recent"


def _detector_checks(ctx: _Ctx, settings: ServiceSettings, burn: BurnInputs,
                     evidence: datetime | None, share: float
                     ) -> list[Check]:
    """Anytime: the baseline comparisons again over the windows from the later starts of
    the step (``slo.sequential``'s detectors), fail-only: a regression that begins hours
    into a step fails on the minutes since it began, not on the step's average.  ``ctx``
    is the comparison over the whole step (the detector's first start): its baseline is
    the one every start is compared with (the step's baseline holds far more requests
    than any window of it)."""
    if evidence is None or not burn.since:
        return []
    out: list[Check] = []
    for name in ("error_rate", *_QUANTILES):
        spec = settings.targets.get(name)
        if spec is None or spec.max_ratio_to_baseline is None:
            continue
        base = _estimate(ctx, name, ctx.baseline, halves=True)
        if isinstance(base, str):
            continue   # the step's own comparison says what is missing
        check = _detector(ctx, name, spec.max_ratio_to_baseline, base, burn.since,
                          evidence=evidence, share=share)
        out.append(check)
    return out


def _detector(ctx: _Ctx, name: str, ratio: float, base: Interval,
              since: Mapping[datetime, Figures], *, evidence: datetime, share: float) -> Check:
    """The worst window from a later start of the step that shows the candidate beyond
    its limit on a sequence at that start's weight of half the check's share (the other
    half: the step itself and the baseline), or a pass that only says none does."""
    tol = ctx.tolerance
    if name == "error_rate":
        allowed, allowance = max(ratio, tol.error_min_ratio), tol.error_budget_share * ctx.budget
    else:
        allowed, allowance = max(ratio, tol.latency_ratio), 0.0
    fail_at = allowed * base.hi + allowance
    limit = allowed * base.point + allowance
    label, cname = _LABELS[name], name + RECENT_SUFFIX
    worst: tuple[float, datetime, Interval, float] | None = None
    for start, f in since.items():
        k = detector_index(evidence, start)
        if not k:
            continue   # off the grid, or the step itself (its own comparison)
        alpha = block_alpha(share / 2, k)
        cand = _estimate(replace(ctx, confidence=1 - alpha), name, f)
        if isinstance(cand, str) or not math.isfinite(cand.n):
            continue   # no count or no distribution: a detector needs a sequence
        excess = (cand.lo - fail_at) / max(limit, 1e-12)
        if excess > 0 and (worst is None or excess > worst[0]):
            worst = (excess, start, cand, alpha)
    if worst is None:
        return Check(cname, Verdict.PASS, baseline=base.point, limit=limit,
                     detail=f"recent {label}: no regression shown in a window from any later "
                     "minute of the step (this check only fails; the step decides a pass)")
    _, start, cand, alpha = worst
    hi = "open" if math.isinf(cand.hi) else _fmt(name, cand.hi)
    return Check(cname, Verdict.FAIL, baseline=base.point, candidate=cand.point, limit=limit,
                 detail=f"{label} since {start:%H:%M} UTC {_fmt(name, cand.point)} > "
                 f"{ratio:.2f} x the step's baseline {_fmt(name, base.point)} (allowing "
                 f"{allowed:.2f} x" + (f" + {_pp(allowance)}" if allowance else "")
                 + f": {_fmt(name, limit)}; anytime sequence at error {alpha:.2g} "
                 f"{_fmt(name, cand.lo)} .. {hi})")


def _burn_check(ctx: _Ctx, rule: BurnRule, burn: BurnInputs, budget: float, *,
                min_requests: int, blocks: _Blocks | None = None, confidence: float = 0.98
                ) -> Check:
    """Under anytime inference the short window reads a restarted sequence at its
    block's share and the long one a plain interval at ``confidence``: a burn fails only
    when both show it, so the short window's sequence alone keeps the guarantee."""
    name = f"error_budget_burn_{_dur(rule.long)}_{_dur(rule.short)}"
    rates: list[Interval] = []
    for span in (rule.long, rule.short):
        f = burn.candidate.get(span)
        if blocks is not None:
            est = ("has no figures" if f is None else
                   _share(f, blocks.confidence(span), anytime=True, prior_mean=budget)
                   if span == rule.short else _share(f, confidence))
            if isinstance(est, str):
                return _inc(name, f"error budget burn over {_dur(span)}: candidate {est}")
            rates.append(est)
            continue
        est = _share(f, ctx.confidence) if f is not None else "has no figures"
        if f is not None and not isinstance(est, str) and est.n < min_requests:
            est = _share(f, 1 - (1 - ctx.confidence) / STARVED_STRICTNESS)
        if isinstance(est, str):
            return _inc(name, f"error budget burn over {_dur(span)}: candidate {est}")
        rates.append(est)
    lows = [r.lo / budget for r in rates]
    points = [r.point / budget for r in rates]
    words = (f"error budget burn {points[0]:.1f}x over {_dur(rule.long)}, {points[1]:.1f}x "
             f"over {_dur(rule.short)} of a {_pct(budget)} budget")
    if min(lows) > rule.factor:
        return Check(name, Verdict.FAIL, candidate=points[1], limit=rule.factor,
                     detail=f"{words}: above {rule.factor}x in both (fast burn)")
    return Check(name, Verdict.PASS, candidate=points[1], limit=rule.factor,
                 detail=f"{words}: not above {rule.factor}x in both")


# -- words ---------------------------------------------------------------------------

def _inc(name: str, detail: str, *, baseline: float | None = None,
         candidate: float | None = None, limit: float | None = None,
         wait_seconds: float | None = None) -> Check:
    return Check(name, Verdict.INCONCLUSIVE, baseline=baseline, candidate=candidate,
                 limit=limit, detail=detail, wait_seconds=wait_seconds)


def _label(name: str, ctx: _Ctx) -> str:
    suffix = f" (last {ctx.label[1:]})" if ctx.label else ""
    return _LABELS[name] + suffix


def _fmt(name: str, v: float) -> str:
    return format_value(name, v)


def _ci(name: str, est: Interval, ctx: _Ctx) -> str:
    hi = "open" if math.isinf(est.hi) else _fmt(name, est.hi)
    kind = "anytime sequence" if ctx.anytime else "interval"
    return f"{ctx.confidence * 100:.4g}% {kind} {_fmt(name, est.lo)} .. {hi}"


def _ci_note(name: str, est: Interval, ctx: _Ctx) -> str:
    if not math.isfinite(est.n) or est.lo == est.hi:
        return ""
    return f" ({_ci(name, est, ctx)})"


def _pct(v: float) -> str:
    return f"{v * 100:.2f} %"


def _pp(v: float) -> str:
    return f"{v * 100:.2f} pp"


def _num(v: float) -> str:
    if v >= 100 or float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:.1f}"


def _dur(td: timedelta) -> str:
    secs = int(round(td.total_seconds()))
    if secs >= 3600 and secs % 3600 == 0:
        return f"{secs // 3600}h"
    if secs >= 60 and secs % 60 == 0:
        return f"{secs // 60}m"
    if secs >= 60:
        return f"{secs // 60}m{secs % 60:02d}s"
    return f"{secs}s"


def _wait_words(secs: float) -> str:
    minutes = secs / 60
    if minutes <= 1:
        return "less than a minute more"
    if minutes < 90:
        return f"about {math.ceil(minutes)} more minutes"
    return f"about {minutes / 60:.1f} more hours"


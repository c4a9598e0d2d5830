"""Probes: the seed's success criteria that no latency or error figure measures (sessions
held, files intact, data consistent, deployment and recovery times, alert response,
monitoring coverage, the traffic split the gateway really made), as checks the gate
weighs beside the judge's.

This module is pure: the probes' configuration (the plan's ``probes:`` lists, per phase
and per service), the judgement of what a probe measured into a :class:`ProbeResult`,
and the turning of stored results into :class:`~slo.verdict.Check` rows of a service's
evaluation.  The collectors (``collectors/probes``) do the measuring.

A probe's result is pass, fail or inconclusive like a verdict.  At the gate:

- a probe that failed fails the step (``on_fail: fail``, the default) or holds it
  (``on_fail: hold``: the step is inconclusive, so it cannot be approved, and is never
  auto-reverted for it), with the probe's reasons;
- a probe never run, or whose newest result is older than its ``stale_after``, is
  inconclusive: never a pass.

Credentials never sit in the plan: every URL that may carry one (databases, endpoints
with a token) is named by ``*_env`` (an environment variable) or ``*_file`` (a mounted
file), and results never quote those values."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from scipy.stats import norm

from slo.probe_results import ProbeResult
from slo.probe_specs import PROBE_KINDS, ProbeBase, ProbeSpec
from slo.units import format_duration
from slo.verdict import Check, Evaluation, Verdict

__all__ = [
    "PROBE_KINDS",
    "ProbeSpec",
    "combine",
    "judge_durations",
    "judge_split",
    "probe_checks",
    "weigh",
]

# -- judging what a probe measured ------------------------------------------------------

def judge_split(*, candidate: int, total: int, weight: float, confidence: float,
                min_difference: float, min_requests: int) -> tuple[Verdict, str]:
    """The measured share against the route's weight (a percentage).

    Under the weight ``p`` each request goes to the candidate with probability ``p``, so
    the count is Binomial(n, p); the share is drift when it lies outside the two-sided
    normal interval ``p ± z·sqrt(p(1-p)/n)`` and differs by more than ``min_difference``
    (at ``p`` = 0 or 1 there is no noise: any request on the wrong side is drift)."""
    p = weight / 100
    if total < min_requests:
        return Verdict.INCONCLUSIVE, (f"{total} requests in the window, {min_requests} needed "
                                      "to tell the split")
    share = candidate / total
    z = norm.ppf(0.5 + confidence / 2)
    noise = z * math.sqrt(p * (1 - p) / total)
    said = f"route says {weight:g} %, the gateway sent {100 * share:.1f} % of {total} requests"
    off = abs(share - p)
    if off > max(noise, min_difference if 0 < p < 1 else 0.0):
        return Verdict.FAIL, f"{said}: outside the ±{100 * max(noise, min_difference):.1f} " \
            "points noise allows"
    return Verdict.PASS, f"{said} (within ±{100 * max(noise, min_difference):.1f} points)"


def judge_durations(*, what: str, durations: Sequence[tuple[str, float | None]],
                    limit: timedelta, unfinished: Sequence[tuple[str, float]] = ()
                    ) -> tuple[Verdict, list[str], float | None]:
    """Durations in seconds (named) against a limit: fail when one is over it (or one
    unfinished has already run past it); inconclusive with nothing to judge.
    Returns the verdict, the reasons and the worst duration."""
    lim = limit.total_seconds()
    over = [(n, s) for n, s in durations if s is not None and s > lim]
    over += [(n, s) for n, s in unfinished if s > lim]
    known = [s for _, s in durations if s is not None]
    worst = max(known + [s for _, s in unfinished], default=None)
    if over:
        return Verdict.FAIL, [f"{n}: {what} {_secs(s)} > {_secs(lim)} (still going)"
                              if (n, s) in unfinished else
                              f"{n}: {what} {_secs(s)} > {_secs(lim)}" for n, s in over], worst
    if not known:
        going = [f"{n}: {what} not finished yet ({_secs(s)} so far)" for n, s in unfinished]
        return Verdict.INCONCLUSIVE, going or [f"no {what} to judge yet"], worst
    worst_name = max(((n, s) for n, s in durations if s is not None), key=lambda x: x[1])[0]
    return Verdict.PASS, [f"{len(known)} judged, the longest {worst_name}: {what} "
                          f"{_secs(worst or 0)} <= {_secs(lim)}"], worst


def _secs(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """Fail if any fails; pass only if all pass (and there is at least one)."""
    vs = list(verdicts)
    if Verdict.FAIL in vs:
        return Verdict.FAIL
    return Verdict.PASS if vs and all(v is Verdict.PASS for v in vs) else Verdict.INCONCLUSIVE


# -- at the gate ----------------------------------------------------------------------

def probe_checks(probes: Iterable[ProbeBase], results: Mapping[str, ProbeResult], *,
                 at: datetime) -> list[Check]:
    """One check per probe from its newest result at or before ``at``: never run or
    stale is inconclusive, never a pass."""
    out = []
    for probe in probes:
        result = results.get(probe.name)
        name = f"probe:{probe.name}"
        if result is None:
            out.append(Check(name, Verdict.INCONCLUSIVE, detail=f"probe {probe.name} has "
                             "not run yet"))
            continue
        age = at - result.at
        if age > probe.max_age:
            out.append(Check(name, Verdict.INCONCLUSIVE, candidate=result.value,
                             limit=result.limit,
                             detail=f"probe {probe.name}: newest result is "
                             f"{format_duration(age)} old (stale after "
                             f"{format_duration(probe.max_age)})"))
            continue
        verdict = result.verdict
        if verdict is Verdict.FAIL and probe.on_fail == "hold":
            verdict = Verdict.INCONCLUSIVE
        what = "; ".join(result.reasons[:3]) or result.verdict.value
        held = " (holds the step)" if verdict is not result.verdict else ""
        out.append(Check(name, verdict, candidate=result.value, limit=result.limit,
                         detail=f"probe {probe.name} {result.verdict.value}{held}: {what}"))
    return out


def weigh(evaluation: Evaluation, checks: Sequence[Check]) -> Evaluation:
    """The judge's evaluation with the probes' checks weighed in: a failed check fails
    it, an inconclusive one keeps a pass from standing; their details join the reasons."""
    if not checks:
        return evaluation
    verdicts = [evaluation.verdict] + [c.verdict for c in checks]
    verdict = (Verdict.FAIL if Verdict.FAIL in verdicts else
               Verdict.INCONCLUSIVE if Verdict.INCONCLUSIVE in verdicts else Verdict.PASS)
    if verdict is Verdict.PASS:
        reasons = tuple(evaluation.reasons) + tuple(c.detail for c in checks)
    else:   # what keeps the step from passing comes first: alerts quote the first reasons
        worst = Verdict.FAIL if verdict is Verdict.FAIL else Verdict.INCONCLUSIVE
        first = tuple(c.detail for c in checks if c.verdict is worst)
        rest = tuple(c.detail for c in checks if c.verdict is not worst
                     and c.verdict is not Verdict.PASS)
        own = tuple(evaluation.reasons)
        reasons = (own + first + rest) if evaluation.verdict is worst else (first + own + rest)
    return replace(evaluation, verdict=verdict, reasons=reasons,
                   checks=tuple(evaluation.checks) + tuple(checks))

"""Anytime-valid confidence sequences: intervals that hold at every look at once.

A fixed-confidence interval judged every worker round (30 s) for the days a step lasts
is wrong at *some* look almost surely: the looks add up.  A confidence sequence (CS)
``C_t`` covers the true value at *all* times simultaneously with probability at least
``1 - alpha`` (Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Ann. Statist. 2021), so a gate that fails only when
the whole CS lies beyond a limit fails a candidate within the limit, over every look of
a step however long and however often judged, with probability at most ``alpha``.

Each CS here is a mixture martingale bounded with Ville's inequality (P(sup M_t >= 1/a)
<= a for a nonnegative martingale with M_0 = 1):

- a share (5xx of all answers): the beta-binomial mixture.  For a true share ``p`` and
  ``x`` errors in ``n`` answers, ``M(p) = B(a + x, b + n - x) / B(a, b) / (p^x (1-p)^(n-x))``
  (a Beta(a, b) mixture of likelihood ratios); the CS is ``{p : M(p) < 1/alpha}``
  (Howard et al. 2021, section 3; Waudby-Smith and Ramdas 2023 for the betting view);
- a latency quantile: the count of answers at or below the true ``q``-quantile is a sum
  of Bernoulli(q) draws whatever the distribution, so the share CS at ``p = q`` bounds
  that count, and the order statistics of those ranks bound the quantile (Howard and
  Ramdas, "Sequential estimation of quantiles", Bernoulli 2022, the fixed-quantile case);
- a mean latency: the two-sided normal mixture (Robbins 1970; Howard et al. 2021,
  eq. (14)) with the sample variance plugged in.  Latencies are not sub-Gaussian with a
  known scale, so this one is an approximation; the judge says so.

Every function takes numpy arrays (or scalars) and broadcasts, so a benchmark can judge
100,000 looks in one call; the bisections run a fixed number of vectorised steps.

Looks at a *sliding* window are not a growing sample, and no CS covers them.  The
judge's comparisons with the baseline read windows from starts on a grid instead (the
regression detectors below), and the burn rules' short windows CSs restarted at block
boundaries (``block``): block
``k`` of length ``span`` starts ``k * span`` after the step's evidence began, its CS runs
over that block's data for two spans, and gets ``alpha / ((k + 1) (k + 2))`` of the
check's share: these sum to ``alpha`` over every block of a step of any length.  The
price is a threshold that grows with the log of the step's age, so a regression that
starts days into a step is caught a little later than one in its first hour.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import betaln

from slo.sketch import RELATIVE_ACCURACY
from slo.stats import Interval, Sketch, bucket_variance, value_at_rank

__all__ = ["BISECTIONS", "DETECTOR_GRID", "DETECTOR_SPANS", "block", "block_alpha",
           "detector_index", "detector_starts", "mean_cs", "mean_sequence",
           "quantile_rank_bounds", "quantile_rank_cs", "quantile_sequence", "share_bounds",
           "share_cs", "share_excludes", "share_sequence", "union_alpha"]

#: steps of each bisection: 2^-60 of the bracket is far below any count or share we show
BISECTIONS = 60

Array = Any  # numpy array or float


def _mixture_log_marginal(x: Array, n: Array, a: Array, b: Array) -> Array:
    """log of the mixture's marginal likelihood: the part of log M(p) without ``p``."""
    return betaln(a + x, b + n - x) - betaln(a, b)


def _log_mixture(marginal: Array, x: Array, n: Array, p: Array) -> Array:
    """log M(p) of the beta-binomial mixture (see the module's docstring)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = np.where(x > 0, x * np.log(p), 0.0) + np.where(n - x > 0, (n - x) * np.log1p(-p), 0.0)
    return marginal - ll


def share_cs(x: Array, n: Array, alpha: Array, *, prior_mean: Array = 0.01,
             prior_weight: Array | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The beta-binomial confidence sequence for a share: ``(lo, hi)`` arrays.

    ``x`` errors of ``n`` answers (fractional counts allowed: rates x seconds); the prior
    Beta(a, b) has mean ``prior_mean`` and ``a + b = prior_weight`` (default
    ``1 / prior_mean``: one expected error's worth), fixed before the data as Ville needs.
    It sets where the sequence is tightest, never its validity.  With no answers the
    sequence is the whole of 0..1."""
    x, n, alpha = (np.asarray(v, dtype=np.float64) for v in (x, n, alpha))
    x = np.clip(x, 0.0, np.maximum(n, 0.0))
    m = np.asarray(prior_mean, dtype=np.float64)
    w = 1.0 / m if prior_weight is None else np.asarray(prior_weight, dtype=np.float64)
    a, b = m * w, (1 - m) * w
    level = np.log(1.0 / alpha)
    safe_n = np.maximum(n, 1e-12)
    phat = np.clip(x / safe_n, 0.0, 1.0)
    # log M is convex in p with its minimum (<= 0 < level) at the share seen: one root on
    # each side, found by bisection (M above the level means p is outside the sequence)
    marginal = _mixture_log_marginal(x, n, a, b)
    lo = _bisect(lambda p: _log_mixture(marginal, x, n, p) >= level,
                 np.zeros_like(phat), phat, outside_low=True)
    hi = _bisect(lambda p: _log_mixture(marginal, x, n, p) >= level,
                 phat, np.ones_like(phat), outside_low=False)
    lo = np.where(x <= 0, 0.0, lo)
    hi = np.where(x >= n, 1.0, hi)
    empty = n <= 0
    return np.where(empty, 0.0, lo), np.where(empty, 1.0, hi)


def share_excludes(x: Array, n: Array, p: Array, alpha: Array, *, prior_mean: Array = 0.01,
                   prior_weight: Array | None = None) -> np.ndarray:
    """Whether the share sequence of :func:`share_cs` leaves out ``p`` (one evaluation of
    the mixture, no bisection: ``M(p) >= 1 / alpha``), for every element at once."""
    x, n, p, alpha = (np.asarray(v, dtype=np.float64) for v in (x, n, p, alpha))
    x = np.clip(x, 0.0, np.maximum(n, 0.0))
    m = np.asarray(prior_mean, dtype=np.float64)
    w = 1.0 / m if prior_weight is None else np.asarray(prior_weight, dtype=np.float64)
    log_m = _log_mixture(_mixture_log_marginal(x, n, m * w, (1 - m) * w), x, n, p)
    return np.asarray((n > 0) & (log_m >= np.log(1.0 / alpha)))


def _bisect(outside: Any, left: np.ndarray, right: np.ndarray, *, outside_low: bool
            ) -> np.ndarray:
    """The boundary between "outside" and "inside" on [left, right], for every element at
    once; ``outside_low``: the outside is the left end (a lower bound), else the right.
    Returns the inside end of the final bracket, so the bound is never too tight."""
    lo, hi = left.astype(np.float64).copy(), right.astype(np.float64).copy()
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        out = outside(mid)
        if outside_low:
            lo, hi = np.where(out, mid, lo), np.where(out, hi, mid)
        else:
            lo, hi = np.where(out, lo, mid), np.where(out, mid, hi)
    return lo if outside_low else hi


def quantile_rank_cs(n: Array, q: float, alpha: Array) -> tuple[np.ndarray, np.ndarray]:
    """Ranks bracketing the ``q``-quantile at every look: ``(lo_rank, hi_rank)``, 0-based.

    With ``S`` the answers at or below the true quantile (a sum of Bernoulli(q) draws),
    the share CS at ``p = q`` holds ``S`` between ``L`` and ``U`` at every time; so the
    answer of 0-based rank ``ceil(L) - 1`` is at or below the quantile and the one of rank
    ``floor(U)`` above it.  A rank below 0 means no lower bound (0), a rank at ``n`` or
    beyond none above (open).  The prior is centred on ``q`` with ``a + b`` of
    ``1 / min(q, 1 - q)``."""
    n = np.asarray(n, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    w = 1.0 / min(q, 1 - q)
    a, b = q * w, (1 - q) * w
    level = np.log(1.0 / alpha)

    def outside(s: np.ndarray) -> np.ndarray:
        # here the count moves and p = q stays: the marginal is recomputed each step
        return np.asarray(_log_mixture(_mixture_log_marginal(s, n, a, b), s, n,
                                       np.full_like(s, q)) >= level)

    centre = n * q
    low = _bisect(outside, np.zeros_like(centre), centre, outside_low=True)
    high = _bisect(outside, centre, n.copy(), outside_low=False)
    # at the ends of 0..n the mixture may never reach the level: no bound on that side
    low = np.where(outside(np.zeros_like(n)), low, 0.0)
    high = np.where(outside(n.copy()), high, n)
    return np.ceil(low - 1e-9) - 1, np.floor(high + 1e-9)


def mean_cs(mean: Array, var: Array, n: Array, alpha: Array, *, tuned_for: float = 500.0
            ) -> tuple[np.ndarray, np.ndarray]:
    """The normal-mixture confidence sequence for a mean: ``(lo, hi)``.

    ``|S_n - n mu| < sqrt((V + rho) log((V + rho) / (rho alpha^2)))`` with ``V = n var``
    and ``rho = tuned_for * var`` (tightest near ``tuned_for`` answers).  Exact for
    Gaussian data of a known variance; with the sample variance, an approximation."""
    mean, var, n, alpha = (np.asarray(v, dtype=np.float64) for v in (mean, var, n, alpha))
    var = np.maximum(var, 1e-12)
    v, rho = n * var, tuned_for * var
    half = np.sqrt((v + rho) * np.log((v + rho) / (rho * alpha ** 2))) / np.maximum(n, 1e-12)
    return mean - half, mean + half


# -- how a guarantee is shared out ----------------------------------------------------

def union_alpha(false_fail: float, checks: int) -> float:
    """Each of ``checks`` checks that can fail a step gets an equal share of the step's
    ``false_fail`` (Bonferroni: the chance that any is wrong is at most the sum)."""
    return false_fail / max(checks, 1)


def block(evidence_start: datetime, at: datetime, span: timedelta) -> tuple[datetime, int]:
    """The restarted CS a short window of ``span`` reads at ``at``: its start and index.

    Block ``k`` starts ``k * span`` after the evidence began and is read until two spans
    after its start, so a look sees between one and two spans of data (less only in the
    step's first span, block 0)."""
    age = max((at - evidence_start).total_seconds(), 0.0)
    k = max(int(age // span.total_seconds()) - 1, 0)
    return evidence_start + k * span, k


def block_alpha(alpha: float, k: int) -> float:
    """Block ``k``'s share of ``alpha``: ``1 / ((k + 1) (k + 2))``, summing to 1 over k."""
    return alpha / ((k + 1) * (k + 2))


# -- regression detectors: sequences from every start on a grid -----------------------
#
# A regression that begins hours into a step hides in the step's average for as long
# again.  The detectors read, at each look, windows that start on a one-minute grid
# after the step's evidence began and end at the look.  Start ``k`` (k minutes in) runs
# its own mixture martingale ``M_k`` over its window, weighted ``w_k = 1 / ((k + 1)
# (k + 2))``; ``X_t = sum_k w_k M_k(t)`` (``M_k = 1`` before its start) is one
# nonnegative martingale with ``X_0 = 1`` (the e-detector of Shin, Ramdas and Rinaldo,
# "E-detectors: a nonparametric framework for sequential change detection", 2023), so
# Ville bounds every start at every look at once: a sequence from start ``k`` at level
# ``alpha w_k`` fails the true value at some look of some start with probability at most
# ``alpha``.  A look may read any few of the starts (each term only lowers ``X_t``), so
# the judge reads the starts ``DETECTOR_SPANS`` back and the step's own start (k = 0,
# the whole step).  The price of a late start is ``log(1 / w_k)``: about 8 nats an hour
# into a step, 15 a day in.

#: the grid the detectors' windows start on, from the step's evidence start
DETECTOR_GRID = timedelta(minutes=1)
#: how far back (rounded down to the grid) the windows a look reads start
DETECTOR_SPANS = tuple(timedelta(minutes=m) for m in (2, 5, 10, 20, 40, 80, 160))


def detector_starts(evidence_start: datetime, at: datetime) -> list[datetime]:
    """The starts of the windows the detectors read at ``at``: the step's evidence start
    and the grid points ``DETECTOR_SPANS`` before ``at`` (at or before it), oldest first;
    none before the step's first whole grid step of evidence."""
    if at <= evidence_start:
        return []
    grid = DETECTOR_GRID.total_seconds()
    starts = {evidence_start}
    for span in DETECTOR_SPANS:
        k = int((at - span - evidence_start).total_seconds() // grid)
        if k > 0:
            starts.add(evidence_start + k * DETECTOR_GRID)
    return sorted(starts)


def detector_index(evidence_start: datetime, start: datetime) -> int | None:
    """The grid index ``k`` of a window's start, None when it is not on the grid (a
    window that starts between grid points is no term of the detector)."""
    secs = (start - evidence_start).total_seconds()
    grid = DETECTOR_GRID.total_seconds()
    k = round(secs / grid)
    if k < 0 or abs(secs - k * grid) > 1e-6:
        return None
    return k



# -- one look at a time: the same bounds with scalar root finding ----------------------

def _log_mixture_scalar(x: float, n: float, p: float, a: float, b: float) -> float:
    ll = (x * math.log(p) if x > 0 else 0.0) + ((n - x) * math.log1p(-p) if n - x > 0 else 0.0)
    return _betaln(a + x, b + n - x) - _betaln(a, b) - ll


def _betaln(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def share_bounds(x: float, n: float, alpha: float, *, prior_mean: float = 0.01,
                 prior_weight: float | None = None) -> tuple[float, float]:
    """:func:`share_cs` for one share (Brent's method on floats: the judge's path)."""
    if n <= 0:
        return 0.0, 1.0
    x = min(max(x, 0.0), n)
    w = 1.0 / prior_mean if prior_weight is None else prior_weight   # share_cs's prior
    a, b = prior_mean * w, (1 - prior_mean) * w
    level = math.log(1.0 / alpha)
    phat = x / n

    def f(p: float) -> float:
        return _log_mixture_scalar(x, n, p, a, b) - level

    # log M is below the level at the share seen and rises towards 0 and 1; where it
    # stays below the level up to an end, the sequence reaches that end
    tiny, top = 1e-300, 1 - 1e-16
    lo = 0.0 if x <= 0 or f(tiny) < 0 else float(brentq(f, tiny, phat, xtol=1e-15, rtol=1e-12))
    hi = 1.0 if x >= n or f(top) < 0 else float(brentq(f, phat, top, xtol=1e-15, rtol=1e-12))
    return lo, hi


def quantile_rank_bounds(n: float, q: float, alpha: float) -> tuple[float, float]:
    """:func:`quantile_rank_cs` for one look (Brent's method on floats)."""
    w = 1.0 / min(q, 1 - q)
    a, b = q * w, (1 - q) * w
    level = math.log(1.0 / alpha)

    def g(s: float) -> float:
        return _log_mixture_scalar(s, n, q, a, b) - level

    centre = n * q
    low = float(brentq(g, 0.0, centre, xtol=1e-9)) if n > 0 and g(0.0) > 0 else 0.0
    high = float(brentq(g, centre, n, xtol=1e-9)) if n > 0 and g(n) > 0 else n
    return math.ceil(low - 1e-9) - 1, math.floor(high + 1e-9)


# -- the judge's figures as sequences -------------------------------------------------

def share_sequence(x: float, n: float, alpha: float, *, prior_mean: float = 0.01,
                   prior_weight: float | None = None) -> Interval:
    """:func:`share_cs` for one share, as the judge's Interval."""
    if n <= 0:
        return Interval(math.nan, 0.0, 1.0, 0.0)
    x = min(max(x, 0.0), n)
    lo, hi = share_bounds(x, n, alpha, prior_mean=prior_mean, prior_weight=prior_weight)
    return Interval(x / n, lo, hi, n)


def quantile_sequence(sketch: Sketch, q: float, alpha: float) -> Interval | None:
    """The ``q``-quantile's sequence read from the sketch's buckets (None when empty):
    the answers of the ranks :func:`quantile_rank_cs` gives, widened by the sketch's
    1 % accuracy; an upper rank past the data leaves the upper bound open."""
    n = float(sketch.count)
    if n <= 0:
        return None
    lo_rank, hi_rank = quantile_rank_bounds(n, q, alpha)
    point = sketch.quantile(q)
    assert point is not None  # non-empty sketch
    lo = 0.0 if lo_rank < 0 else value_at_rank(sketch, lo_rank, n) * (1 - RELATIVE_ACCURACY)
    hi = math.inf if hi_rank >= n else value_at_rank(sketch, hi_rank, n) * (1 + RELATIVE_ACCURACY)
    return Interval(point, min(lo, point), max(hi, point), n)


def mean_sequence(sketch: Sketch, alpha: float) -> Interval | None:
    """The mean latency's (approximate) sequence, the spread read from the buckets."""
    n = float(sketch.count)
    mean = sketch.mean
    if n <= 1 or mean is None:
        return None
    var = bucket_variance(sketch, mean)
    lo, hi = mean_cs(mean, var, n, alpha)
    pad = mean * RELATIVE_ACCURACY
    return Interval(mean, max(0.0, float(lo) - pad), float(hi) + pad, n)

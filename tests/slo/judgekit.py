"""Figures for the judge's tests: deterministic latency sketches, plain counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
from scipy import stats

from slo.figures import Figures
from slo.sketch import LogSketch

AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def sketch(n: int, *, median_ms: float = 30.0, sigma: float = 0.4) -> LogSketch:
    """n latencies at the lognormal's evenly spaced quantiles: no randomness, exact shape."""
    if n <= 0:
        return LogSketch()
    u = (np.arange(n) + 0.5) / n
    return LogSketch.of(np.exp(np.log(median_ms) + sigma * stats.norm.ppf(u)))


def figures(requests: float, errors: float, *, median_ms: float = 30.0, sigma: float = 0.4,
            memory_mb: float | None = 200.0, cpu_cores: float | None = 0.2,
            window: timedelta = WINDOW, at: datetime = AT, with_sketch: bool = True,
            latency_samples: int | None = None) -> Figures:
    """Figures of one variant over ``window`` ending at ``at``; the sketch holds
    ``latency_samples`` values (default: one per request, capped for speed)."""
    n_lat = int(min(requests, 20_000) if latency_samples is None else latency_samples)
    sk = sketch(n_lat, median_ms=median_ms, sigma=sigma)
    secs = window.total_seconds()
    return Figures(
        start=at - window, end=at, requests=requests, rps=requests / secs, errors=errors,
        error_rate=errors / requests if requests else None,
        latency_avg_ms=sk.mean, latency_p50_ms=sk.quantile(0.5),
        latency_p95_ms=sk.quantile(0.95), latency_p99_ms=sk.quantile(0.99),
        memory_mb=memory_mb, cpu_cores=cpu_cores, latency=sk if with_sketch else None,
        last_seen=at - timedelta(seconds=30) if requests else None,
        sources=("test",),
    )


def with_bad_requests(f: Figures, k: float) -> Figures:
    """The same figures with ``k`` more requests, every one of them a 5xx."""
    n, x = (f.requests or 0) + k, (f.errors or 0) + k
    secs = (f.end - f.start).total_seconds()
    return replace(f, requests=n, errors=x, error_rate=x / n if n else None, rps=n / secs)

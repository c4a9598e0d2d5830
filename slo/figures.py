"""Figures of one variant over one window: the judge's input, the store's output."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from slo.plan import FIGURES
from slo.sketch import BucketHistogram, LogSketch

__all__ = ["Figures", "combine"]


@dataclass(frozen=True)
class Figures:
    """What the sources say about one variant between ``start`` and ``end``.

    A figure is None when no source gives it: never a sentinel number.  ``errors`` is
    the count of 5xx answers (the judge's two-proportion test needs counts, not only the
    share).  ``latency`` is the distribution behind the quantiles when a source has one.
    ``sources`` names who gave figures; ``problems`` says which source did not answer or
    which data is missing or stale, in words.  ``last_seen`` is the newest data point."""

    start: datetime
    end: datetime
    requests: float | None = None
    rps: float | None = None
    error_rate: float | None = None
    latency_avg_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    memory_mb: float | None = None
    cpu_cores: float | None = None
    errors: float | None = None
    latency: LogSketch | BucketHistogram | None = field(default=None, compare=False)
    last_seen: datetime | None = None
    sources: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def get(self, name: str) -> float | None:
        if name not in FIGURES:
            raise KeyError(name)
        value: float | None = getattr(self, name)
        return value

    def contract(self) -> dict[str, Any]:
        """The ``figures.<variant>`` object of ``cutover evaluate --json``: machine output,
        so every figure at full precision, with the count behind the error share
        (``errors`` beside ``error_rate``) so a reader can redo the arithmetic."""
        out: dict[str, Any] = {k: getattr(self, k) for k in FIGURES}
        out["errors"] = self.errors
        return out

    @property
    def empty(self) -> bool:
        return all(getattr(self, k) is None for k in FIGURES)


def combine(primary: Figures, secondary: Figures) -> Figures:
    """Figures from two sources for the same variant and window: each figure from
    ``primary`` where it has one (the gateway log is the most direct evidence of
    requests and latency), else from ``secondary`` (Prometheus: memory and CPU)."""
    values: dict[str, Any] = {}
    for f in fields(Figures):
        if f.name in ("start", "end"):
            continue
        a, b = getattr(primary, f.name), getattr(secondary, f.name)
        if f.name in ("sources", "problems"):
            values[f.name] = tuple(dict.fromkeys(a + b))
        elif f.name == "last_seen":
            values[f.name] = max((t for t in (a, b) if t is not None), default=None)
        elif f.name == "latency":
            values[f.name] = a if primary.latency_p95_ms is not None else (b if a is None else a)
        else:
            values[f.name] = a if a is not None else b
    # counts and their shares must come from one source, never half from each
    if primary.requests is not None:
        values["errors"], values["error_rate"] = primary.errors, primary.error_rate
    return replace(primary, **values)

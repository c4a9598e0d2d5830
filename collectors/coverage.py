"""Monitoring coverage: does every variant's every query answer, and is the plan's step
not finer than the scrape?

:func:`monitoring_coverage` asks the plan's Prometheus (through ``prometheus-api-client``'s
``PrometheusConnect``) each query of :meth:`slo.plan.Plan.variant_queries` once, at
``at``, over a five-minute window (a presence check, not a figure), and for a query that
answers nothing says which label values of its metric do exist, so a wrong selector is
seen at once.  Used by ``cutover plan check --live``.

The step check: Prometheus keeps no scrape interval beside the data, so it is read off
the data, as samples per ten minutes of the variant's request counter; a step below it
leaves steps without a sample (rate() over one step then answers nothing)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from collectors.promql import DEFAULT_QUERIES, render
from slo.plan import Plan, VariantQueries

__all__ = ["CHECK_WINDOW", "Coverage", "QueryCheck", "monitoring_coverage"]

log = logging.getLogger(__name__)

CHECK_WINDOW = "5m"
#: a query whose empty answer is normal: no 5xx series means no errors yet
MAY_BE_EMPTY_KEYS = frozenset({"error_rps"})
MAX_VALUES = 8
_METRIC = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!=|!~|=)\s*"')


class Prom(Protocol):
    """What this module needs of ``PrometheusConnect``."""

    def custom_query(self, query: str, params: dict[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True)
class QueryCheck:
    variant: str           # the baseline's name or the service's
    service: str | None    # None: the baseline
    figure: str            # the plan's query key (rps, error_rps, latency_quantile, ...)
    query: str             # the PromQL as asked
    series: int            # how many series answered
    may_be_empty: bool     # no 5xx series is normal: no errors yet
    error: str | None = None
    exists: str = ""       # for an empty answer: the label values its metric does have

    @property
    def ok(self) -> bool:
        return self.error is None and (self.series > 0 or self.may_be_empty)

    def line(self) -> str:
        who = f"{self.variant} ({'baseline' if self.service is None else 'service'})"
        if self.error:
            return f"{who} {self.figure}: the query failed: {self.error}\n    {self.query}"
        if self.series:
            return f"{who} {self.figure}: {self.series} series"
        note = " (normal while there are no errors)" if self.may_be_empty else ""
        return (f"{who} {self.figure}: no series{note}\n    {self.query}"
                + (f"\n    what exists: {self.exists}" if self.exists else ""))


@dataclass(frozen=True)
class Coverage:
    checks: tuple[QueryCheck, ...]
    #: (variant, seconds between samples) where the plan's step is finer than that
    coarse: tuple[tuple[str, float], ...]
    step_seconds: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and not self.coarse

    def missing(self) -> list[QueryCheck]:
        return [c for c in self.checks if not c.ok]


def monitoring_coverage(prom: Prom, plan: Plan, at: datetime) -> Coverage:
    """Every variant's every query asked once at ``at``; see the module docstring."""
    if plan.sources.prometheus is None:
        return Coverage(checks=(), coarse=(), step_seconds=0.0)
    step = plan.sources.prometheus.step.total_seconds()
    checks: list[QueryCheck] = []
    coarse: list[tuple[str, float]] = []
    for vq in plan.variant_queries():
        checks += [_check(prom, vq, key, template, at) for key, template in _templates(vq)]
        interval = _scrape_interval(prom, vq, at)
        if interval is not None and step < interval:
            coarse.append((vq.variant, interval))
    return Coverage(checks=tuple(checks), coarse=tuple(coarse), step_seconds=step)


def _templates(vq: VariantQueries) -> Iterable[tuple[str, str]]:
    return {**DEFAULT_QUERIES, **vq.templates}.items()


def _check(prom: Prom, vq: VariantQueries, key: str, template: str, at: datetime) -> QueryCheck:
    query = render(template, selector=vq.selector, window=CHECK_WINDOW, quantile=0.95)
    base = dict(variant=vq.variant, service=vq.service, figure=key, query=query,
                may_be_empty=key in MAY_BE_EMPTY_KEYS)
    try:
        result = prom.custom_query(query, params={"time": at.timestamp()})
    except Exception as e:  # the library raises its own and requests' errors
        return QueryCheck(series=0, error=f"{type(e).__name__}: {e}"[:300], **base)  # type: ignore[arg-type]
    series = len(result) if isinstance(result, list) else 0
    exists = "" if series else _what_exists(prom, query, at)
    return QueryCheck(series=series, exists=exists, **base)  # type: ignore[arg-type]


def _what_exists(prom: Prom, query: str, at: datetime) -> str:
    """``metric: label=a, b; label2=c`` for each metric of ``query`` and each label its
    selector names; ``metric: no series at all`` when the metric itself is missing."""
    labels = sorted(set(_LABEL.findall(query)) - {"le"})
    out = []
    for metric in dict.fromkeys(_METRIC.findall(query)):
        found = []
        for label in labels:
            try:
                rows = prom.custom_query(f"count by ({label}) ({metric})",
                                         params={"time": at.timestamp()})
            except Exception as e:  # a hint is best effort
                log.debug("coverage hint for %s by %s failed: %s", metric, label, e)
                continue
            values = sorted({r["metric"].get(label, "") for r in rows} - {""})
            if values:
                more = f", ... ({len(values)})" if len(values) > MAX_VALUES else ""
                found.append(f"{label}={', '.join(values[:MAX_VALUES])}{more}")
        out.append(f"{metric}: {'; '.join(found)}" if found else f"{metric}: no series at "
                   "all (or none with those labels)")
    return " | ".join(out)


def _scrape_interval(prom: Prom, vq: VariantQueries, at: datetime) -> float | None:
    """Seconds between samples of the variant's request counter (None: no data)."""
    rps = render({**DEFAULT_QUERIES, **vq.templates}["rps"], selector=vq.selector,
                 window=CHECK_WINDOW)
    metric = _METRIC.search(rps)
    if metric is None:
        return None
    inner = rps[metric.start():]
    inner = inner[: inner.index("}") + 1] if "}" in inner else metric.group(1)
    try:
        rows = prom.custom_query(f"max(count_over_time({inner}[10m]))",
                                 params={"time": at.timestamp()})
    except Exception:
        return None
    if not rows:
        return None
    samples = float(rows[0]["value"][1])
    return 600.0 / samples if samples > 0 else None

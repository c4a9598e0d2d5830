"""Monitoring coverage, both questions in one place.

- :func:`monitoring_coverage` ("100 % of services monitored", the coverage probe's
  question): every variant of every service has live ``up`` series and the series the
  figures its targets need, over the last two steps, through the collector's client; a
  gap names the variant and the figure.
- :func:`query_coverage` (``cutover plan check --live``): does every variant's every
  query answer, and is the plan's step not finer than the scrape?

:func:`query_coverage` asks the plan's Prometheus (through ``prometheus-api-client``'s
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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np

from collectors.prometheus import QueryFailed
from collectors.promql import (
    DEFAULT_QUERIES,
    MAY_BE_EMPTY,
    Kind,
    quantile_kind,
    render,
    step_queries,
)
from slo.figure_specs import QUANTILE_FIGURES
from slo.plan import Plan, VariantQueries
from slo.units import format_duration

__all__ = ["CHECK_WINDOW", "FIGURE_KINDS", "Coverage", "Gap", "QueryCheck", "QueryCoverage",
           "monitoring_coverage", "query_coverage"]

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
class QueryCoverage:
    checks: tuple[QueryCheck, ...]
    #: (variant, seconds between samples) where the plan's step is finer than that
    coarse: tuple[tuple[str, float], ...]
    step_seconds: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and not self.coarse

    def missing(self) -> list[QueryCheck]:
        return [c for c in self.checks if not c.ok]


def query_coverage(prom: Prom, plan: Plan, at: datetime) -> QueryCoverage:
    """Every variant's every query asked once at ``at``; see the module docstring."""
    if plan.sources.prometheus is None:
        return QueryCoverage(checks=(), coarse=(), step_seconds=0.0)
    step = plan.sources.prometheus.step.total_seconds()
    checks: list[QueryCheck] = []
    coarse: list[tuple[str, float]] = []
    for vq in plan.variant_queries():
        checks += [_check(prom, vq, key, template, at) for key, template in _templates(vq)]
        interval = _scrape_interval(prom, vq, at)
        if interval is not None and step < interval:
            coarse.append((vq.variant, interval))
    return QueryCoverage(checks=tuple(checks), coarse=tuple(coarse), step_seconds=step)


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


# -- the coverage probe's question: each needed figure has live series --------------------

#: the stored series each figure is made from (any one kind of a tuple's alternatives)
FIGURE_KINDS: dict[str, tuple[frozenset[Kind], ...]] = {
    "requests": (frozenset({Kind.REQUESTS}),),
    "rps": (frozenset({Kind.REQUESTS}),),
    "error_rate": (frozenset({Kind.REQUESTS}), frozenset({Kind.ERRORS})),
    "latency_avg_ms": (frozenset({Kind.LATENCY_AVG, Kind.LATENCY_SUM}),),
    **{name: (frozenset({Kind.BUCKETS, quantile_kind(q)}),)
       for name, q in QUANTILE_FIGURES.items()},
    "memory_mb": (frozenset({Kind.MEMORY}),),
    "cpu_cores": (frozenset({Kind.CPU}),),
}


@dataclass(frozen=True)
class Gap:
    variant: str     # "monolith" or the service's name
    figure: str      # "up" or a figure of the evaluate contract
    why: str

    def text(self) -> str:
        return f"{self.variant}: {self.figure} {self.why}"


@dataclass(frozen=True)
class Coverage:
    variants: tuple[str, ...]
    gaps: tuple[Gap, ...]

    @property
    def complete(self) -> bool:
        return not self.gaps


def _variants(plan: Plan) -> Iterator[tuple[str, VariantQueries | None, set[str]]]:
    """(name, its queries, the figures its targets need) for the baseline and each
    service; the queries as the plan fills them (a preset's, then its own overrides)."""
    queries = {vq.variant: vq for vq in plan.variant_queries()}
    needed: set[str] = set()
    for svc in plan.services:
        figures = set(plan.settings(svc.name).targets)
        needed |= figures
        yield svc.name, queries.get(svc.name), figures
    yield plan.baseline.name, queries.get(plan.baseline.name), needed


def monitoring_coverage(prom: object, plan: Plan, at: datetime) -> Coverage:
    """Ask ``prom`` (a ``collectors.prometheus.PromClient``) for each variant's series
    over the last two scrape steps before ``at``.  Raises SourceUnavailable when
    Prometheus itself does not answer (that is not a gap in coverage)."""
    src = plan.sources.prometheus
    step = src.step if src else timedelta(seconds=30)
    window = format_duration(src.rate_window or step) if src else "1m"
    gaps: list[Gap] = []
    names = []
    for name, vp, figures in _variants(plan):
        names.append(name)
        if vp is None:
            gaps.append(Gap(name, "up", "has no prometheus selector in the plan"))
            continue
        live = _live_kinds(prom, vp, window=window, at=at, step=step, gaps=gaps, name=name)
        if Kind.UP not in live:
            gaps.append(Gap(name, "up", "has no live series (no target scraped)"))
        for figure in sorted(figures):
            for alternatives in FIGURE_KINDS.get(figure, ()):
                if not alternatives & live and not alternatives <= MAY_BE_EMPTY:
                    gaps.append(Gap(name, figure, "has no live series for its query"))
    return Coverage(tuple(names), tuple(gaps))


def _live_kinds(prom: object, vp: VariantQueries, *, window: str, at: datetime,
                step: timedelta, gaps: list[Gap], name: str) -> set[Kind]:
    live: set[Kind] = set()
    for q in step_queries(selector=vp.selector, step=window, overrides=vp.templates):
        try:
            series = prom.query_range(q.expr, start=at - 2 * step, end=at,  # type: ignore[attr-defined]
                                      step_seconds=step.total_seconds())
        except QueryFailed as e:
            gaps.append(Gap(name, q.kind.value, f"query refused: {e.detail[:200]}"))
            continue
        answered = any(len(s) and np.isfinite(s.values).any() for s in series)
        if answered and (q.kind is not Kind.UP or any((s.values > 0).any() for s in series)):
            live.add(q.kind)
    return live

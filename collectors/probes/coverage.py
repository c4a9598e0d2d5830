"""Monitoring coverage: every variant of every service has live ``up`` series and the
figures its targets need ("100 % of services monitored").  A missing one names the
variant and the figure.

:func:`monitoring_coverage` is a plain function of a Prometheus client, the plan and a
time, so ``plan check --live`` can ask the same question the probe asks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from collectors.probes.base import Outcome, ProbeContext, ProbeUnreachable
from collectors.prometheus import QueryFailed, SourceUnavailable
from collectors.promql import MAY_BE_EMPTY, Kind, step_queries
from slo.plan import Plan, VariantQueries
from slo.probe_specs import CoverageProbe
from slo.units import format_duration
from slo.verdict import Verdict

__all__ = ["FIGURE_KINDS", "Coverage", "Gap", "monitoring_coverage", "run"]

#: the stored series each figure is made from (any one kind of a tuple's alternatives)
FIGURE_KINDS: dict[str, tuple[frozenset[Kind], ...]] = {
    "requests": (frozenset({Kind.REQUESTS}),),
    "rps": (frozenset({Kind.REQUESTS}),),
    "error_rate": (frozenset({Kind.REQUESTS}), frozenset({Kind.ERRORS})),
    "latency_avg_ms": (frozenset({Kind.LATENCY_AVG, Kind.LATENCY_SUM}),),
    "latency_p50_ms": (frozenset({Kind.BUCKETS, Kind.P50}),),
    "latency_p95_ms": (frozenset({Kind.BUCKETS, Kind.P95}),),
    "latency_p99_ms": (frozenset({Kind.BUCKETS, Kind.P99}),),
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


def run(spec: CoverageProbe, ctx: ProbeContext) -> Outcome:
    if ctx.prom is None:
        raise ProbeUnreachable(spec.name, "the plan has no Prometheus source to ask")
    try:
        coverage = monitoring_coverage(ctx.prom, ctx.plan, ctx.now)
    except SourceUnavailable as e:
        raise ProbeUnreachable(spec.name, f"Prometheus: {e}") from None
    n = len(coverage.variants)
    figures = {"variants": n, "gaps": [g.text() for g in coverage.gaps]}
    if coverage.gaps:
        return Outcome(Verdict.FAIL, tuple(g.text() for g in coverage.gaps),
                       value=len(coverage.gaps), limit=0, figures=figures)
    return Outcome(Verdict.PASS, (f"all {n} variants have live up series and their figures",),
                   value=0, limit=0, figures=figures)

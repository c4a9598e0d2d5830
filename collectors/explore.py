"""The PromQL behind each figure of each variant, and running it: what the dashboard's
Explore page shows so a lead can see why a figure says what it says.

:func:`figure_query` builds one figure's query from the variant's templates (defaults,
the preset, the plan's overrides: :meth:`slo.plan.Plan.variant_queries`), in the figure's
own unit (ms, MiB), so its answer sits on the same axis as the stored figure.
:func:`run_range` runs any query through ``prometheus-api-client`` into a ``pandas`` frame
(``MetricRangeDataFrame``: one row per sample, the labels as columns)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from collectors.promql import DEFAULT_QUERIES, render
from slo.figure_specs import QUANTILE_FIGURES
from slo.plan import FIGURES, Plan, VariantQueries
from slo.units import format_duration

__all__ = ["EXPLORABLE", "base_queries", "figure_query", "run_range", "variant_queries_of"]

_QUANTILE = QUANTILE_FIGURES
#: the figures a query stands behind (``requests`` is the rate times the window)
EXPLORABLE: tuple[str, ...] = ("rps", *(f for f in FIGURES if f != "rps"))


def variant_queries_of(plan: Plan, *, service: str, variant: str) -> VariantQueries | None:
    """``variant``: ``baseline`` or ``candidate`` of ``service``; None when Prometheus is
    not asked about it."""
    want = None if variant == "baseline" else service
    return next((vq for vq in plan.variant_queries() if vq.service == want), None)


def figure_query(vq: VariantQueries, figure: str, *, window: timedelta) -> str:
    """The PromQL whose answer is ``figure`` over ``window``, placeholders filled."""
    t = {**DEFAULT_QUERIES, **vq.templates}
    w = format_duration(window).replace(" ", "")

    def r(key: str, quantile: float | None = None) -> str:
        return render(t[key], selector=vq.selector, window=w, quantile=quantile)

    if figure == "rps":
        return r("rps")
    if figure == "requests":
        return f"({r('rps')}) * {window.total_seconds():g}"
    if figure == "error_rate":
        return f"({r('error_rps')}) / ({r('rps')})"
    if figure in _QUANTILE:
        return f"({r('latency_quantile', _QUANTILE[figure])}) * 1000"
    if figure == "latency_avg_ms":
        return f"({r('latency_avg')}) * 1000"
    if figure == "memory_mb":
        return f"({r('memory_bytes')}) / 1048576"
    if figure == "cpu_cores":
        return r("cpu_cores")
    raise ValueError(f"no query stands behind figure {figure!r}; expected one of "
                     f"{', '.join(EXPLORABLE)}")


def base_queries(vq: VariantQueries, *, window: timedelta) -> dict[str, str]:
    """Per figure, the query in the metric's own unit (seconds, bytes), as OpenSLO
    documents carry them; ``rps`` and ``error_rps`` for the error share."""
    t = {**DEFAULT_QUERIES, **vq.templates}
    w = format_duration(window).replace(" ", "")

    def r(key: str, quantile: float | None = None) -> str:
        return render(t[key], selector=vq.selector, window=w, quantile=quantile)

    out = {"rps": r("rps"), "error_rps": r("error_rps"), "latency_avg_ms": r("latency_avg"),
           "memory_mb": r("memory_bytes"), "cpu_cores": r("cpu_cores")}
    out.update({f: r("latency_quantile", q) for f, q in _QUANTILE.items()})
    return out


def run_range(prom: Any, query: str, *, start: datetime, end: datetime, step: str) -> Any:
    """The query's answer over ``[start, end]`` as a ``MetricRangeDataFrame`` (an empty
    ``DataFrame`` when nothing answers)."""
    import pandas as pd
    from prometheus_api_client import MetricRangeDataFrame

    answer = prom.custom_query_range(query, start_time=start, end_time=end, step=step)
    if not answer:
        return pd.DataFrame(columns=["value"])
    return MetricRangeDataFrame(answer)

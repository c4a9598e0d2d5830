"""PromQL templates: the default query of each figure, the plan's overrides, and the
per-step queries the collector derives from them.

A template names its placeholders ``{selector}``, ``{window}`` and ``{quantile}``; they
are replaced as plain text (never ``str.format``), so PromQL's own braces stay as
written: ``http_requests_total{{selector},status=~"5.."}`` becomes
``http_requests_total{job="x",status=~"5.."}``.

What the store keeps is per-step *increases* (requests, errors, each histogram bucket,
latency sum and count) and per-step gauges (memory, CPU, up), so that any window's
figures are sums and its quantiles come from the summed buckets.  The per-step queries
are the figure templates with ``{window}`` set to the step: ``rate(x[30s]) * 30`` is the
increase over that step, and ``rate`` already handles counter resets.  ``rate`` needs
two samples in its range, so this is exact when the scrape interval is at most half the
step (or scrapes sit on the step grid); for slower scrapes the collector takes a wider
``rate_window`` and each step holds the rate over it (smoothed, no longer exact).  Latency needs the
parts behind the figure: the bucket expression inside ``histogram_quantile`` and the
numerator and denominator of the average; :func:`step_queries` takes them apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from slo.figure_specs import QUANTILE_FIGURES, quantile_column

__all__ = [
    "DEFAULT_QUERIES",
    "INCREASES",
    "MAY_BE_EMPTY",
    "QUANTILES",
    "Kind",
    "StepQuery",
    "bucket_expression",
    "render",
    "split_ratio",
    "step_queries",
]

#: The default query per figure key of the plan (ARCHITECTURE.md: the defaults assume
#: ``http_requests_total`` with a ``status`` label, ``http_request_duration_seconds``
#: histograms, ``process_resident_memory_bytes``, ``process_cpu_seconds_total``, ``up``).
#: ``status=~"5.."`` matches both ``"500"`` and FastAPI's grouped ``"5xx"``.
DEFAULT_QUERIES: dict[str, str] = {
    "rps": "sum(rate(http_requests_total{{selector}}[{window}]))",
    "error_rps": 'sum(rate(http_requests_total{{selector},status=~"5.."}[{window}]))',
    "latency_quantile": (
        "histogram_quantile({quantile}, "
        "sum by (le) (rate(http_request_duration_seconds_bucket{{selector}}[{window}])))"
    ),
    "latency_avg": (
        "sum(rate(http_request_duration_seconds_sum{{selector}}[{window}])) / "
        "sum(rate(http_request_duration_seconds_count{{selector}}[{window}]))"
    ),
    "memory_bytes": "sum(process_resident_memory_bytes{{selector}})",
    "cpu_cores": "sum(rate(process_cpu_seconds_total{{selector}}[{window}]))",
    "up": "avg(up{{selector}})",
}

#: The quantiles of the evaluate contract (p50, p95, p99), from slo/figure_specs.py.
QUANTILES: tuple[float, ...] = tuple(QUANTILE_FIGURES.values())


class Kind(StrEnum):
    """What one stored per-step series is; the value is the store's column name."""

    REQUESTS = "requests"            # increase of the request counter over the step
    ERRORS = "errors"                # increase of the 5xx counter over the step
    BUCKETS = "buckets"              # increase of each le bucket over the step
    LATENCY_SUM = "latency_sum"      # increase of the duration sum (seconds)
    LATENCY_COUNT = "latency_count"  # increase of the duration count
    LATENCY_AVG = "latency_avg"      # fallback: the average itself (seconds)
    P50 = "p50"                      # fallback: a quantile itself (seconds); one kind
    P95 = "p95"                      # per quantile figure, named quantile_column(q)
    P99 = "p99"                      # (tests/test_kinds.py checks they agree)
    MEMORY = "memory_bytes"          # gauge, summed over the variant's pods
    CPU = "cpu_cores"                # CPU seconds per second over the step
    UP = "up"                        # share of the variant's targets up


def quantile_kind(q: float) -> Kind:
    """The kind (and store column) of quantile ``q``'s per-step value."""
    return Kind(quantile_column(q))


#: Kinds whose query answers a rate to be multiplied by the step (an increase).
INCREASES = frozenset({Kind.REQUESTS, Kind.ERRORS, Kind.BUCKETS, Kind.LATENCY_SUM,
                       Kind.LATENCY_COUNT})
#: Kinds whose empty answer is normal: no 5xx series means no errors.
MAY_BE_EMPTY = frozenset({Kind.ERRORS})


@dataclass(frozen=True)
class StepQuery:
    """One range query of one variant: its kind and the PromQL, placeholders filled."""

    kind: Kind
    expr: str

    @property
    def by_le(self) -> bool:
        return self.kind is Kind.BUCKETS


def render(template: str, *, selector: str, window: str, quantile: float | None = None) -> str:
    """Replace the placeholders as plain text, so PromQL's braces stay as written."""
    out = template.replace("{selector}", selector).replace("{window}", window)
    if quantile is not None:
        out = out.replace("{quantile}", repr(quantile))
    return out


_HQ = re.compile(r"^\s*histogram_quantile\s*\(\s*\{quantile\}\s*,(?P<inner>.*)\)\s*$", re.S)


def bucket_expression(template: str) -> str | None:
    """The bucket expression of ``histogram_quantile({quantile}, EXPR)``, or None when
    the template has another shape (then the quantiles themselves are stored)."""
    m = _HQ.match(template)
    if m is None:
        return None
    inner = m.group("inner").strip()
    return inner if _balanced(inner) and "{quantile}" not in inner else None


def split_ratio(template: str) -> tuple[str, str] | None:
    """``A / B`` at the top level (outside brackets and quotes) as ``(A, B)``, else None."""
    cuts = [i for i, depth in _top_level(template) if depth == 0 and template[i] == "/"]
    if len(cuts) != 1:
        return None
    a, b = template[: cuts[0]].strip(), template[cuts[0] + 1:].strip()
    return (a, b) if a and b and _balanced(a) and _balanced(b) else None


def _top_level(text: str) -> list[tuple[int, int]]:
    """(index, bracket depth) of each character outside string literals."""
    out: list[tuple[int, int]] = []
    depth, quote = 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        else:
            out.append((i, depth))
    return out


def _balanced(text: str) -> bool:
    depth, quote = 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0 and not quote


def step_queries(*, selector: str, step: str,
                 overrides: Mapping[str, str] | None = None) -> list[StepQuery]:
    """The per-step range queries of one variant: defaults, with its overrides on top.

    ``step`` (a PromQL duration) fills ``{window}``: each answer is the rate over one
    step, which the collector turns into the step's increase."""
    t = {**DEFAULT_QUERIES, **(overrides or {})}

    def r(template: str, quantile: float | None = None) -> str:
        return render(template, selector=selector, window=step, quantile=quantile)

    out = [StepQuery(Kind.REQUESTS, r(t["rps"])), StepQuery(Kind.ERRORS, r(t["error_rps"]))]
    inner = bucket_expression(t["latency_quantile"])
    if inner is not None:
        out.append(StepQuery(Kind.BUCKETS, r(inner)))
    else:
        out += [StepQuery(quantile_kind(q), r(t["latency_quantile"], q)) for q in QUANTILES]
    parts = split_ratio(t["latency_avg"])
    if parts is not None:
        out += [StepQuery(Kind.LATENCY_SUM, r(parts[0])),
                StepQuery(Kind.LATENCY_COUNT, r(parts[1]))]
    else:
        out.append(StepQuery(Kind.LATENCY_AVG, r(t["latency_avg"])))
    out += [StepQuery(Kind.MEMORY, r(t["memory_bytes"])), StepQuery(Kind.CPU, r(t["cpu_cores"])),
            StepQuery(Kind.UP, r(t["up"]))]
    return out

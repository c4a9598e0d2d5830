"""What each figure is, in one table: its name, what people call it, its unit, how it is
printed, and the quantile behind it.  Everything that names, labels or prints a figure
reads this (the plan's ``FIGURES``, the judge's reasons, the dashboard, the reports), so
a new figure is one entry here plus where its numbers come from (a query key in
collectors/promql.py and a column of the store).

One formatter, :func:`format_value`: the same value reads the same on a verdict's
reason, a dashboard card and a phase report."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FIGURE_SPECS", "QUANTILE_FIGURES", "SPECS", "FigureSpec", "format_value", "label",
           "quantile", "quantile_column"]


@dataclass(frozen=True)
class FigureSpec:
    name: str                      # the key of the evaluate contract and the plan
    label: str                     # in words, for people ("p95 latency")
    unit: str                      # "ms", "%", "req/s", "MiB", "cores", "" (a count)
    decimals: int                  # digits after the point when printed
    quantile: float | None = None  # the latency quantile it is
    share: bool = False            # a fraction 0..1, printed as a percentage
    evaluated: bool = True         # False: a success metric only probes measure
    whole_from: float | None = None  # from this value on, no decimals (283 req/s)

    def format(self, value: float) -> str:
        if self.share:
            return f"{value * 100:.{self.decimals}f} %"
        if not self.unit:   # a count: whole numbers with separators, small shares of one
            return f"{value:,.0f}" if value >= 100 or float(value).is_integer() else (
                f"{value:.1f}")
        whole = self.whole_from is not None and abs(value) >= self.whole_from
        return f"{value:.{0 if whole else self.decimals}f} {self.unit}"


FIGURE_SPECS: tuple[FigureSpec, ...] = (
    FigureSpec("requests", "requests", "", 0),
    FigureSpec("rps", "request rate", "req/s", 1, whole_from=100),
    FigureSpec("error_rate", "error rate", "%", 2, share=True),
    FigureSpec("latency_avg_ms", "average latency", "ms", 1),
    FigureSpec("latency_p50_ms", "p50 latency", "ms", 1, quantile=0.50),
    FigureSpec("latency_p95_ms", "p95 latency", "ms", 1, quantile=0.95),
    FigureSpec("latency_p99_ms", "p99 latency", "ms", 1, quantile=0.99),
    FigureSpec("memory_mb", "memory", "MiB", 0),
    FigureSpec("cpu_cores", "CPU", "cores", 2),
    # a share of probe runs: 99.9 % and 99.95 % must read apart
    FigureSpec("uptime", "uptime", "%", 3, share=True, evaluated=False),
)
SPECS: dict[str, FigureSpec] = {s.name: s for s in FIGURE_SPECS}


#: the latency quantile figures, in order (p50, p95, p99): figure name -> quantile
QUANTILE_FIGURES: dict[str, float] = {s.name: s.quantile for s in FIGURE_SPECS
                                      if s.quantile is not None}


def quantile_column(q: float) -> str:
    """The short name of quantile ``q``: the store's column of its per-step value, the
    promql kind, the chart's legend ("p50", "p95", "p99", "p999" for 0.999)."""
    return "p" + f"{q * 100:g}".replace(".", "")


def label(name: str) -> str:
    """The figure in words; an unknown name as it is."""
    spec = SPECS.get(name)
    return spec.label if spec else name


def quantile(name: str) -> float | None:
    spec = SPECS.get(name)
    return spec.quantile if spec else None


def format_value(name: str, value: float | None, *, missing: str = "—") -> str:
    """``value`` of figure ``name`` with its unit; ``missing`` when there is none.  A
    name this table does not know is printed as a plain number."""
    if value is None:
        return missing
    spec = SPECS.get(name)
    return spec.format(value) if spec else f"{value:.4g}"

"""One formatter, one unit per figure: what the dashboard, the reports and the targets
beside them all show."""

from __future__ import annotations

import pytest

from slo.plan import TargetSpec
from slo.success import target_text
from slo.units import figure_of, figure_scale, figure_unit, format_figure


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("error_rate", 0.0007587, "0.08 %"),
    ("error_rate_5m", 0.0026, "0.26 %"),          # a check over a recent window
    ("uptime", 0.9995, "99.950 %"),
    ("latency_p95_ms", 49.903, "49.9 ms"),
    ("latency_p95_ms_2m", 52.98, "53.0 ms"),
    ("rps", 34.31, "34.3 req/s"),
    ("rps", 250.4, "250 req/s"),
    ("memory_mb", 41.48, "41 MiB"),
    ("cpu_cores", 0.0169, "0.02 cores"),
    ("requests", 5272.0, "5,272"),
    ("min_requests", 500, "500"),
    ("min_soak", 12781.18, "3h33m1s"),             # was 1.278e+04
    ("error_budget_burn_1h_5m", 0.0966, "0.1x"),
    ("data", None, "\u2014"),
])
def test_each_figure_in_its_one_unit(name: str, value: float | None, shown: str) -> None:
    assert format_figure(name, value) == shown


def test_units_and_scales_for_chart_axes() -> None:
    assert (figure_of("latency_p95_ms_5m"), figure_unit("latency_p95_ms_5m")) == \
        ("latency_p95_ms", "ms")
    assert (figure_unit("error_rate"), figure_scale("error_rate")) == ("%", 100.0)
    assert (figure_unit("rps"), figure_scale("rps")) == ("req/s", 1.0)
    assert format_figure("latency_avg_ms", None, missing="n/a") == "n/a"


def test_a_target_reads_in_the_unit_of_its_figure() -> None:
    """A success metric's target beside its figure: ``0.06 %`` beside ``<= 1.00 %``, not
    beside ``<= 0.01``."""
    assert target_text(TargetSpec(max=0.01), "error_rate") == "<= 1.00 %"
    assert target_text(TargetSpec(min=200, scope="total"), "rps") == ">= 200 req/s (total)"
    assert target_text(TargetSpec(max=300, scope="total"), "memory_mb") == "<= 300 MiB (total)"
    assert target_text(TargetSpec(max=0.01)) == "<= 0.01", "no figure: bare numbers"

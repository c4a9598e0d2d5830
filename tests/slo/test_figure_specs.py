"""One table of figures, one formatter: the judge, the dashboard and the reports print a
value the same way, and every figure of the contract has its entry."""

from __future__ import annotations

import pytest

from dashboard.components import LABELS, fmt
from reports.text import fmt_value
from slo.figure_specs import SPECS, format_value
from slo.plan import FIGURES


def test_every_figure_of_the_contract_has_a_spec_and_a_label() -> None:
    assert set(FIGURES) <= set(SPECS)
    assert tuple(n for n, s in SPECS.items() if s.evaluated) == FIGURES
    assert set(LABELS) >= set(FIGURES)


@pytest.mark.parametrize(("name", "value", "text"), [
    ("error_rate", 0.0031, "0.31 %"), ("latency_p95_ms", 41.27, "41.3 ms"),
    ("rps", 3.14, "3.1 req/s"), ("rps", 283.4, "283 req/s"), ("memory_mb", 511.6, "512 MiB"),
    ("cpu_cores", 0.125, "0.12 cores"), ("requests", 12345.0, "12,345"),
    ("requests", 7.5, "7.5"), ("uptime", 0.9995, "99.950 %"),
])
def test_one_value_reads_the_same_everywhere(name: str, value: float, text: str) -> None:
    assert format_value(name, value) == fmt(name, value) == fmt_value(name, value) == text


def test_a_missing_value_says_so_in_each_place_s_words() -> None:
    assert fmt("rps", None) == "—" and fmt_value("rps", None) == "n/a"

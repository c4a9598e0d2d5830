"""A success metric's target reads in the unit of its figure (through the one formatter,
slo.figure_specs)."""

from __future__ import annotations

from slo.plan import TargetSpec
from slo.success import target_text


def test_a_target_reads_in_the_unit_of_its_figure() -> None:
    """``0.06 %`` beside ``<= 1.00 %``, not beside ``<= 0.01``."""
    assert target_text(TargetSpec(max=0.01), "error_rate") == "<= 1.00 %"
    assert target_text(TargetSpec(min=200, scope="total"), "rps") == ">= 200 req/s (total)"
    assert target_text(TargetSpec(max=300, scope="total"), "memory_mb") == "<= 300 MiB (total)"
    assert target_text(TargetSpec(min=0.999), "uptime") == ">= 99.900 %"
    assert target_text(TargetSpec(max=0.01)) == "<= 0.01", "no figure: bare numbers"

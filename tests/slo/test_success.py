"""Migration-wide success metrics: totals sum, others take the worst service, no data is
never met."""

from slo.plan import TargetSpec
from slo.success import success_metrics, target_text


def test_no_figures_is_never_met() -> None:
    [r] = success_metrics({"error_rate": TargetSpec(max=0.01)}, {"auth": {"error_rate": None}})
    assert r.met is None and r.status == "no data"


def test_total_sums_and_worst_service() -> None:
    targets = {"memory_mb": TargetSpec(max=300, scope="total"), "rps": TargetSpec(min=200),
               "latency_avg_ms": TargetSpec(max=100)}
    figures = {"auth": {"memory_mb": 120.0, "rps": 150.0, "latency_avg_ms": 30.0},
               "files": {"memory_mb": 200.0, "rps": 250.0, "latency_avg_ms": 120.0}}
    r = {x.figure: x for x in success_metrics(targets, figures)}
    assert (r["memory_mb"].value, r["memory_mb"].met) == (320.0, False)
    assert r["memory_mb"].basis == "sum over 2 services"
    assert (r["rps"].value, r["rps"].basis, r["rps"].met) == (150.0, "worst service: auth", False)
    assert (r["latency_avg_ms"].value, r["latency_avg_ms"].status) == (120.0, "not met")


def test_target_text() -> None:
    assert target_text(TargetSpec(min=200, scope="total")) == ">= 200 (total)"
    assert target_text(TargetSpec(max=0.01, max_ratio_to_baseline=1.0)) == "<= 0.01, <= 1 x baseline"

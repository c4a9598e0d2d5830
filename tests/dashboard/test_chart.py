"""The service page's chart: the weight drawn from the decisions themselves (a revert to
0 % shows, with no evaluation made at 0 %), its axis always 0 to 100 %, and decision
labels that would overlap stacked apart, each step shaded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.components import chart_figure
from store.views import DecisionView, SeriesPoint

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def point(minutes: int, weight: int) -> SeriesPoint:
    return SeriesPoint(at=T0 + timedelta(minutes=minutes), weight=weight, verdict="fail",
                       baseline={"error_rate": 0.003}, candidate={"error_rate": 0.04})


def decision(minutes: float, action: str, frm: int, to: int) -> DecisionView:
    return DecisionView(id=int(minutes), at=T0 + timedelta(minutes=minutes), service="ai",
                        action=action, from_weight=frm, to_weight=to, actor="cutover",
                        reason="3 failed evaluations at 50 %", override=False,
                        state="applied", error=None, evaluation_id=None)


def test_an_auto_revert_drops_the_weight_line_to_zero() -> None:
    # evaluations at 50 % only: after the revert to 0 % the worker judges ai no more
    points = [point(m, 50) for m in range(0, 60, 5)]
    marks = [decision(-1, "approve", 25, 50), decision(57, "auto-revert", 50, 0)]
    fig = chart_figure(points, marks).to_plotly_json()
    weight = next(t for t in fig["data"] if t["name"] == "weight")
    assert list(weight["y"]) == [50, 0] and weight["line"]["shape"] == "hv"
    assert weight["x"][-1] == T0 + timedelta(minutes=57)
    axis = fig["layout"]["yaxis5"]
    assert list(axis["range"]) == [-5, 105], "0 to 100 %, whatever the range holds"


def test_close_decision_labels_stack_instead_of_overlapping() -> None:
    points = [point(m, 25) for m in range(0, 360, 10)]
    marks = [decision(100, "approve", 10, 25), decision(101, "approve", 25, 50),
             decision(300, "revert", 50, 25)]
    labels = [a for a in chart_figure(points, marks).to_plotly_json()["layout"]["annotations"]
              if "%" in a.get("text", "") and "x" in a and a.get("xref") == "x"]
    shifts = {a["text"]: a["yshift"] for a in labels}
    assert shifts["10→25 %"] != shifts["25→50 %"], shifts
    assert shifts["50→25 %"] == 0


def test_each_step_is_a_band_deeper_with_more_traffic() -> None:
    points = [point(m, 25) for m in range(0, 360, 10)]
    marks = [decision(100, "approve", 10, 25), decision(200, "approve", 25, 50),
             decision(300, "revert", 50, 0)]
    bands = [s for s in chart_figure(points, marks).to_plotly_json()["layout"]["shapes"]
             if s["type"] == "rect"]
    # 10 % from the first point, 25 % from 100 min, 50 % from 200; none at 0 % after 300
    assert [(b["x0"], b["x1"]) for b in bands] == [
        (T0, T0 + timedelta(minutes=100)), (T0 + timedelta(minutes=100),
                                            T0 + timedelta(minutes=200)),
        (T0 + timedelta(minutes=200), T0 + timedelta(minutes=300))]
    opacity = [b["opacity"] for b in bands]
    assert opacity == sorted(opacity) and len(set(opacity)) == 3
    assert all(b["layer"] == "below" for b in bands)


def test_a_checks_values_read_in_the_unit_of_the_figure_it_checks() -> None:
    from dashboard.components import check_value

    assert check_value("error_rate_5m", 0.0026) == "0.26 %"
    assert check_value("latency_p95_ms_2m", 52.98) == "53.0 ms"
    assert check_value("min_soak", 12781.18) == "3h33m1s"   # was 1.278e+04
    assert check_value("min_requests", 5272.0) == "5,272"
    assert check_value("error_budget_burn_1h_5m", 0.0966) == "0.1x"
    assert check_value("data", None) == "\u2014"


def test_the_traffic_split_of_every_service_side_by_side() -> None:
    from types import SimpleNamespace

    from dashboard.components import split_figure

    cards = [SimpleNamespace(service="auth", weight=100, drift=None),
             SimpleNamespace(service="files", weight=25, drift="route says 25 %, router 50 %"),
             SimpleNamespace(service="ai", weight=0, drift=None)]
    fig = split_figure(cards).to_plotly_json()
    monolith, candidate = fig["data"]
    assert list(candidate["y"]) == ["auth", "files (drifted)", "ai"]
    assert list(candidate["x"]) == [100, 25, 0] and list(monolith["x"]) == [0, 75, 100]
    assert fig["layout"]["barmode"] == "stack"


def test_the_panels_share_one_time_axis_with_a_crosshair_across_them() -> None:
    fig = chart_figure([point(m, 25) for m in range(0, 30, 5)],
                       [decision(-1, "approve", 10, 25)]).to_plotly_json()
    layout = fig["layout"]
    axes = [k for k in layout if k.startswith("xaxis")]
    assert axes == ["xaxis"], "one x axis: a zoom in one panel zooms them all"
    assert {t.get("xaxis", "x") for t in fig["data"]} == {"x"}
    assert layout["xaxis"]["showspikes"] is True
    assert layout["xaxis"]["spikemode"] == "across"
    assert layout["hovermode"] == "x unified" and layout["spikedistance"] == -1


def test_a_hovered_value_reads_as_the_one_formatter_prints_it() -> None:
    """Hovering the chart gave "baseline err... : 0.3051085": the hover text now has the
    figure's own decimals and unit, and the whole series name."""
    points = [SeriesPoint(at=T0 + timedelta(minutes=m), weight=25, verdict="pass",
                          baseline={"error_rate": 0.003051085, "rps": 24.31,
                                    "latency_p95_ms": 61.234, "memory_mb": 500.4},
                          candidate={"error_rate": 0.0004, "rps": 8.1}) for m in (0, 5)]
    fig = chart_figure(points, []).to_plotly_json()
    hover = {t["name"]: t["hovertemplate"] for t in fig["data"]}
    name = "%{fullData.name}: "
    assert hover["baseline error rate"] == name + "%{y:,.2f} %<extra></extra>"
    assert hover["baseline request rate"] == name + "%{y:,.1f} req/s<extra></extra>"
    assert hover["candidate p95"] == name + "%{y:,.1f} ms<extra></extra>"
    assert hover["baseline memory"] == name + "%{y:,.0f} MiB<extra></extra>"
    assert hover["weight"] == "weight: %{y} %<extra></extra>"
    assert fig["layout"]["hoverlabel"]["namelength"] == -1

"""The Explore page against Debian's real Prometheus, backfilled over the last hour: the
PromQL behind a figure, its live answer through prometheus-api-client and pandas, the
labels Prometheus sends escaped, and a query Prometheus refuses said plainly."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.conftest import dry_run_plan_text
from tests.dashboard.helpers import assert_clean, page_text, texts
from tests.support.prom import OpenMetrics, PromServer, available, prometheus_with

pytestmark = [pytest.mark.prometheus,
              pytest.mark.skipif(not available(), reason="needs Debian's prometheus")]

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def live_prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    now = int(time.time())
    times = range(now - 3000, now + 1200, 15)   # past "now" too: the last window is full
    om = OpenMetrics()
    for status, rate in (("200", 12.0), ("500", 0.5)):
        om.counter("http_requests", {"job": "python-auth", "status": status, "path": HOSTILE},
                   [(t, rate * (t - times[0])) for t in times])
    with prometheus_with(om, tmp_path_factory.mktemp("explore-prom")) as server:
        yield server


@pytest.fixture
def plan_file(tmp_path: Path, live_prom: PromServer) -> Path:
    p = tmp_path / "plan.yaml"
    p.write_text(dry_run_plan_text().replace("url: http://localhost:9090",
                                             f"url: {live_prom.url}"))
    return p


def test_the_query_behind_a_figure_and_its_live_answer(app, store):
    at = app(page="screens/explore.py",
             query={"service": "auth", "variant": "candidate", "figure": "rps"})
    assert_clean(at)
    [code] = at.code
    assert code.value == 'sum(rate(http_requests_total{job="python-auth"}[10m]))'
    assert at.text_area(key="explore_query:auth:candidate:rps").value == code.value
    [chart] = at.get("plotly_chart")
    [trace] = json.loads(chart.proto.spec)["data"]
    assert trace["mode"] == "lines" and len(trace["x"]) > 100
    text = page_text(at)
    assert "1 series; the latest sample of each" in text
    assert "| 12.5 |" in text     # 12/s of 200 and 0.5/s of 500, as written


def test_error_rate_and_the_baselines_override(app, store):
    at = app(page="screens/explore.py",
             query={"service": "auth", "variant": "baseline", "figure": "error_rate"})
    assert_clean(at)
    # the monolith counts errors by status_code: the plan's override is what is asked
    assert 'status_code=~"5.."' in at.code[0].value
    assert "/ (sum(rate(http_requests_total{job=\"nanopore-monolith\"}" in at.code[0].value
    assert "Prometheus answered no series" in page_text(at)


def test_labels_from_prometheus_are_escaped(app, store):
    at = app(page="screens/explore.py",
             query={"service": "auth", "variant": "candidate", "figure": "rps"})
    box = at.text_area(key="explore_query:auth:candidate:rps")
    box.input('sum by (path, status) (rate(http_requests_total{job="python-auth"}[5m]))').run()
    assert_clean(at)
    assert HOSTILE in page_text(at)                       # a reader sees the characters
    source = "\n".join(texts(at))
    assert HOSTILE not in source and r"\<img" in source   # markdown never gets the tag
    spec = at.get("plotly_chart")[0].proto.spec
    assert HOSTILE not in spec and "&lt;img" in spec       # nor plotly's legend


def test_a_refused_query_is_said_plainly(app, store):
    at = app(page="screens/explore.py",
             query={"service": "auth", "variant": "candidate", "figure": "rps"})
    at.text_area(key="explore_query:auth:candidate:rps").input("sum(<b>x</b>").run()
    assert_clean(at)
    [err] = at.error
    assert "Prometheus did not answer this query" in err.value
    assert "<b>" not in err.value

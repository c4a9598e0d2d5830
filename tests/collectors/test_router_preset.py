"""The ``openshift-router`` preset against Debian's real Prometheus, backfilled with
series shaped as the OpenShift router exports them (``haproxy_server_*`` with
namespace, route, service, pod, server and code labels), and ``plan check --live``
(collectors/coverage.py through prometheus-api-client) against the same server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session

from collectors.coverage import query_coverage
from collectors.prometheus import PrometheusCollector, prometheus_connect
from cutover.cli import main
from slo.plan import Plan
from store.db import make_engine, upgrade
from store.series import prom_figures
from tests.collectors.conftest import plan_for
from tests.support.prom import OpenMetrics, PromServer, available, prometheus_with

pytestmark = [pytest.mark.prometheus,
              pytest.mark.skipif(not available(), reason="needs Debian's prometheus")]

T0 = datetime(2026, 11, 21, tzinfo=UTC)
END = T0 + timedelta(hours=1)
SCRAPE = 15
MIB = 2**20
NS = "nanopore"
#: (route, service, pod, 2xx per second, 5xx per second, average latency ms)
SERVERS = [
    ("nanopore-auth", "python-auth", "python-auth-7d9f-x1", 10.0, 0.1, 25.0),
    ("nanopore-auth", "nanopore-monolith", "nanopore-monolith-5c4-a", 30.0, 0.3, 40.0),
    ("nanopore-files", "nanopore-monolith", "nanopore-monolith-5c4-a", 20.0, 0.0, 40.0),
]


def router_metrics() -> OpenMetrics:
    om = OpenMetrics()
    times = range(int(T0.timestamp()), int(END.timestamp()) + 1, SCRAPE)
    for route, service, pod, ok, bad, _ in SERVERS:
        labels = {"namespace": NS, "route": route, "service": service, "pod": pod,
                  "server": "10.128.0.5:8080"}
        t0 = T0.timestamp()
        for code, rate in (("2xx", ok), ("5xx", bad)):
            if rate:
                om.counter("haproxy_server_http_responses", {**labels, "code": code},
                           [(t, rate * (t - t0)) for t in times])
    for route, service, pod, _, _, ms in SERVERS:
        labels = {"namespace": NS, "route": route, "service": service, "pod": pod,
                  "server": "10.128.0.5:8080"}
        om.gauge("haproxy_server_http_average_response_latency_milliseconds", labels,
                 [(t, ms) for t in times])
    for route, service, pod, *_ in SERVERS:
        om.gauge("haproxy_server_up", {"namespace": NS, "route": route, "service": service,
                                       "pod": pod, "server": "10.128.0.5:8080"},
                 [(t, 1.0) for t in times])
    # the services' own metrics, as a ServiceMonitor labels them
    for service, mib in (("python-auth", 100.0), ("nanopore-monolith", 400.0)):
        om.gauge("process_resident_memory_bytes", {"namespace": NS, "service": service,
                                                   "pod": f"{service}-1"},
                 [(t, mib * MIB) for t in times])
    return om


@pytest.fixture(scope="module")
def router_prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    with prometheus_with(router_metrics(), tmp_path_factory.mktemp("router-prom")) as server:
        yield server


def preset_plan(plan: Plan, url: str) -> Plan:
    """The shipped plan judged from the router's view: the preset, no query written."""
    p = plan_for(plan, url, preset="openshift-router")
    return p.model_copy(update={
        "baseline": p.baseline.model_copy(update={"prometheus": None}),
        "services": [s.model_copy(update={"prometheus": None}) for s in p.services]})


def test_preset_fills_every_variants_queries_from_router_labels(plan: Plan):
    p = preset_plan(plan, "http://127.0.0.1:9")
    by = {vq.variant: vq for vq in p.variant_queries()}
    assert set(by) == {p.baseline.name, *(s.name for s in p.services)}
    auth = by["auth"]
    assert auth.templates["rps"] == ('sum(rate(haproxy_server_http_responses_total{namespace='
                                     '"nanopore",service="python-auth",route="nanopore-auth"}'
                                     '[{window}]))')
    assert 'code="5xx"' in auth.templates["error_rps"]
    assert auth.selector == 'namespace="nanopore",service="python-auth"'
    assert "latency_quantile" not in auth.templates   # the router has no histogram
    assert "route=" not in by[p.baseline.name].templates["rps"]   # the monolith as a whole


def test_an_override_still_wins_over_the_preset(plan: Plan):
    p = plan_for(plan, "http://127.0.0.1:9", preset="openshift-router")
    base = next(vq for vq in p.variant_queries() if vq.service is None)
    assert "status_code" in base.templates["error_rps"]   # the shipped plan's override
    assert "haproxy_server" in base.templates["rps"]


def test_router_figures_from_the_real_prometheus(plan: Plan, router_prom: PromServer,
                                                 tmp_path: Path):
    p = preset_plan(plan, router_prom.url)
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    report = PrometheusCollector(plan=p, engine=engine).collect(
        now=END, start=T0 + timedelta(minutes=1), end=END)
    assert report.items > 0
    start, end = T0 + timedelta(minutes=30), T0 + timedelta(minutes=40)
    with Session(engine) as s:
        cand = prom_figures(session=s, service="auth", variant="candidate", start=start, end=end)
        base = prom_figures(session=s, service="auth", variant="baseline", start=start, end=end)
    assert cand.requests == pytest.approx(10.1 * 600, rel=1e-6)
    assert cand.errors == pytest.approx(0.1 * 600, rel=1e-6)
    assert cand.latency_avg_ms == pytest.approx(25.0)
    assert cand.memory_mb == pytest.approx(100.0)
    # the baseline is the monolith over every route it serves
    assert base.requests == pytest.approx((30.3 + 20.0) * 600, rel=1e-6)
    assert base.latency_avg_ms == pytest.approx(40.0)
    engine.dispose()


def test_coverage_names_what_answers_nothing_and_what_exists(plan: Plan,
                                                             router_prom: PromServer):
    p = preset_plan(plan, router_prom.url)
    cov = query_coverage(prometheus_connect(p.sources.prometheus), p,
                              T0 + timedelta(minutes=30))
    auth = {c.figure: c for c in cov.checks if c.variant == "auth"}
    assert auth["rps"].ok and auth["rps"].series == 1
    assert auth["memory_bytes"].ok
    # no histogram anywhere: the quantile query names itself and what the metric lacks
    assert not auth["latency_quantile"].ok
    assert "http_request_duration_seconds_bucket: no series at all" in auth[
        "latency_quantile"].exists
    files = {c.figure: c for c in cov.checks if c.variant == "files"}
    assert not files["rps"].ok
    assert "route=nanopore-auth, nanopore-files" in files["rps"].exists
    assert "service=nanopore-monolith, python-auth" in files["rps"].exists
    assert not cov.ok and cov.coarse == ()   # 30 s step over a 15 s scrape: fine


def test_coverage_finds_a_step_below_the_scrape_interval(plan: Plan, router_prom: PromServer):
    p = preset_plan(plan, router_prom.url)
    p = p.model_copy(update={"sources": p.sources.model_copy(update={
        "prometheus": p.sources.prometheus.model_copy(update={"step": timedelta(seconds=5)})})})
    cov = query_coverage(prometheus_connect(p.sources.prometheus), p,
                              T0 + timedelta(minutes=30))
    assert ("auth", pytest.approx(15.0, rel=0.1)) in [(v, i) for v, i in cov.coarse]


def test_plan_check_live_exits_1_naming_the_variant_figure_and_query(
        plan_text: str, router_prom: PromServer, tmp_path: Path, capsys):
    doc = yaml.safe_load(plan_text)
    doc["sources"] = {"prometheus": {"url": router_prom.url, "step": "30s",
                                     "preset": "openshift-router"}}
    doc["baseline"].pop("prometheus", None)
    for s in doc["services"]:
        s.pop("prometheus", None)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(doc))
    at = (T0 + timedelta(minutes=30)).isoformat()
    code = main(["plan", "check", "--live", "--at", at, "--plan", str(path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "ok    auth (service) rps: " in out
    assert "FAIL  files (service) rps: no series" in out
    assert "haproxy_server_http_responses_total{namespace=\"nanopore\",service=\"python-files\"" in out
    assert "queries answer" in out

"""Monitoring coverage against Debian's real Prometheus on the backfilled fleet: the
monolith, auth and files have their series; samples, ai, audit and gateway have none,
and each gap names the variant and the figure."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from collectors.coverage import monitoring_coverage
from collectors.probes.base import ProbeContext
from collectors.probes.runner import run_probe
from collectors.prometheus import PromClient
from slo.plan import Plan
from slo.probe_specs import CoverageProbe
from slo.verdict import Verdict
from tests.collectors.conftest import GAP, T0, plan_for
from tests.support.prom import PromServer, available

pytestmark = [pytest.mark.prometheus,
              pytest.mark.skipif(not available(), reason="needs Debian's prometheus")]

AT = T0 + timedelta(minutes=30)
SILENT = ("samples", "ai", "audit", "gateway")


def _client(prometheus: PromServer) -> PromClient:
    return PromClient(httpx.Client(base_url=prometheus.url + "/", timeout=10))


def test_each_variant_without_series_is_named_with_its_figures(
        plan: Plan, prometheus: PromServer) -> None:
    cov = monitoring_coverage(_client(prometheus), plan_for(plan, prometheus.url), AT)
    assert cov.variants == ("auth", "files", "samples", "ai", "audit", "gateway", "monolith")
    missing = {(g.variant, g.figure) for g in cov.gaps}
    assert {v for v, _ in missing} == set(SILENT)
    for name in SILENT:
        assert (name, "up") in missing and (name, "memory_mb") in missing
        assert (name, "latency_p95_ms") in missing
    assert not cov.complete


def test_a_scrape_gap_shows_as_a_gap(plan: Plan, prometheus: PromServer) -> None:
    cov = monitoring_coverage(_client(prometheus), plan_for(plan, prometheus.url),
                              GAP[0] + timedelta(minutes=10))   # past the 5m lookback
    assert ("files", "up") in {(g.variant, g.figure) for g in cov.gaps}


def test_the_probe_fails_with_the_gaps_and_passes_when_only_covered_services_remain(
        plan: Plan, prometheus: PromServer) -> None:
    probed = plan_for(plan, prometheus.url)
    ctx = ProbeContext(plan=probed, now=AT, prom=_client(prometheus))
    result = run_probe((probed.phase("week-1"), None, CoverageProbe(kind="coverage", name="c")),
                       ctx)
    assert result.verdict is Verdict.FAIL
    assert "samples: up has no live series (no target scraped)" in result.reasons
    covered = probed.model_copy(update={
        "services": [s for s in probed.services if s.name in ("auth", "files")],
        "phases": [p.model_copy(update={"services": [s for s in p.services
                                                     if s in ("auth", "files")]})
                   for p in probed.phases]})
    ok = run_probe((covered.phase("week-1"), None, CoverageProbe(kind="coverage", name="c")),
                   ProbeContext(plan=covered, now=AT, prom=_client(prometheus)))
    assert ok.verdict is Verdict.PASS, ok.reasons


def test_prometheus_down_is_inconclusive(plan: Plan) -> None:
    from tests.support.prom import free_port

    dead = PromClient(httpx.Client(base_url=f"http://127.0.0.1:{free_port()}/", timeout=2))
    result = run_probe((plan.phase("week-1"), None, CoverageProbe(kind="coverage", name="c")),
                       ProbeContext(plan=plan, now=AT, prom=dead))
    assert result.verdict is Verdict.INCONCLUSIVE and "Prometheus" in result.reasons[0]

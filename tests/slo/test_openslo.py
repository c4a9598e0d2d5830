"""OpenSLO v1 in and out, on documents written for the tests (tests/slo/openslo/)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cutover.cli import main
from slo.openslo import OpenSLOError, export_documents, import_documents
from slo.plan import Plan

DOCS = Path(__file__).with_name("openslo")


def load(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DOCS / name).read_text()) if d]


def test_ratio_threshold_and_sli_refs_map_to_targets_and_queries(plan: Plan):
    result = import_documents(load("auth.yaml"), plan)
    assert result.unmapped == []
    services = {s["name"]: s for s in result.fragment["services"]}
    auth, files = services["auth"], services["files"]
    assert auth["targets"] == {"error_rate": {"max": pytest.approx(0.005)},
                               "latency_p95_ms": {"max": 250.0}}
    assert auth["prometheus"]["error_rps"] == (
        'sum(rate(http_requests_total{job="python-auth",status=~"5.."}[{window}]))')
    assert auth["prometheus"]["latency_quantile"].startswith("histogram_quantile({quantile},")
    assert "[{window}]" in auth["prometheus"]["latency_quantile"]
    # good/total: errors are total minus good; targetPercent is a percentage
    assert files["targets"]["error_rate"] == {"max": pytest.approx(0.001)}
    assert files["prometheus"]["error_rps"].startswith("(sum(rate(http_requests_total"
                                                       '{job="python-files"}[{window}]))) - (')
    assert files["targets"]["memory_mb"] == {"max": 300.0}
    assert len(result.mapped) == 4


def test_what_cannot_be_mapped_is_said_document_by_document(plan: Plan):
    result = import_documents(load("unmappable.yaml"), plan)
    assert result.fragment == {}
    why = "\n".join(result.unmapped)
    assert "SLO auth-datadog: ratioMetric.total: data source 'Datadog', expected Prometheus" in why
    assert "SLO auth-throughput-floor: objective op 'gt'" in why
    assert "SLO billing-latency: service 'billing' is not in the plan" in why
    assert "SLO auth-p90: quantile 0.9" in why
    assert len(result.unmapped) == 4


@pytest.mark.parametrize(("doc", "says"), [
    ({"apiVersion": "openslo/v2alpha", "kind": "SLO"}, "expected apiVersion openslo/v1"),
    ({"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {}}, "expected metadata.name"),
    ({"apiVersion": "openslo/v1"}, "expected a kind"),
    (["not", "a", "mapping"], "expected a mapping"),
])
def test_invalid_documents_are_refused_naming_the_document(plan: Plan, doc, says):
    with pytest.raises(OpenSLOError, match=says):
        import_documents([doc], plan)


def test_export_then_import_gives_the_absolute_limits_back(plan: Plan):
    queries = {(s.name, f): f"q_{f}{{job=\"{s.backend}\"}}" for s in plan.services
               for f in ("rps", "error_rps", "latency_avg_ms", "latency_p95_ms", "memory_mb",
                         "cpu_cores")}
    queries = {k: (f"histogram_quantile(0.95, {v})" if k[1] == "latency_p95_ms" else
                   f"{v.replace('q_', 'process_resident_memory_bytes_')}" if k[1] == "memory_mb"
                   else f"process_cpu_seconds_total_{v}" if k[1] == "cpu_cores"
                   else f"x_sum{v} / x_count{v}" if k[1] == "latency_avg_ms" else v)
               for k, v in queries.items()}
    exported = export_documents(plan, queries=queries)
    assert exported.documents and all(d["apiVersion"] == "openslo/v1" for d in exported.documents)
    assert any("max_ratio_to_baseline" in s for s in exported.skipped)
    back = import_documents(exported.documents, plan)
    assert back.unmapped == []
    for entry in back.fragment["services"]:
        settings = plan.settings(entry["name"])
        for figure, limit in entry["targets"].items():
            assert limit["max"] == pytest.approx(settings.targets[figure].max), (entry, figure)


def test_cli_import_prints_a_fragment_and_exits_1_on_what_it_could_not_map(capsys):
    assert main(["plan", "import-openslo", str(DOCS / "auth.yaml")]) == 0
    out = capsys.readouterr()
    fragment = yaml.safe_load(out.out)
    assert fragment["services"][0]["name"] == "auth"
    assert "mapped: SLO auth-latency -> auth latency_p95_ms max 250" in out.err
    assert main(["plan", "import-openslo", str(DOCS / "auth.yaml"),
                 str(DOCS / "unmappable.yaml")]) == 1
    assert "not mapped: SLO auth-datadog" in capsys.readouterr().err
    assert main(["plan", "import-openslo", str(DOCS / "invalid.yaml")]) == 2
    err = capsys.readouterr().err
    assert "invalid.yaml" in err and "expected apiVersion openslo/v1" in err


def test_cli_export_writes_slo_documents_of_the_shipped_plan(tmp_path: Path, capsys):
    out = tmp_path / "slos.yaml"
    assert main(["plan", "export-openslo", "-o", str(out)]) == 0
    docs = list(yaml.safe_load_all(out.read_text()))
    names = {d["metadata"]["name"] for d in docs}
    assert "auth-error-rate" in names and "auth-latency-avg-ms" in names
    auth_errors = next(d for d in docs if d["metadata"]["name"] == "auth-error-rate")
    bad = auth_errors["spec"]["indicator"]["spec"]["ratioMetric"]["bad"]
    assert bad["metricSource"]["spec"]["query"] == (
        'sum(rate(http_requests_total{job="python-auth",status=~"5.."}[10m]))')
    assert "skipped: auth latency_p95_ms: max_ratio_to_baseline" in capsys.readouterr().err

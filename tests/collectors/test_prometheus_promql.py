"""PromQL templates: placeholders replaced as plain text, overrides on top of the
defaults, and the parts behind latency figures taken apart."""

from __future__ import annotations

from collectors.promql import (
    DEFAULT_QUERIES,
    Kind,
    bucket_expression,
    render,
    split_ratio,
    step_queries,
)
from slo.plan import Plan


def test_placeholders_are_plain_text_so_promql_braces_stay() -> None:
    out = render('sum(rate(http_requests_total{{selector},status_code=~"5.."}[{window}]))',
                 selector='job="nanopore-monolith"', window="30s")
    assert out == 'sum(rate(http_requests_total{job="nanopore-monolith",status_code=~"5.."}[30s]))'


def test_default_error_query_matches_500_and_5xx() -> None:
    assert 'status=~"5.."' in DEFAULT_QUERIES["error_rps"]


def test_shipped_plan_monolith_counts_errors_by_status_code(plan: Plan) -> None:
    vp = plan.baseline.prometheus
    assert vp is not None
    qs = {q.kind: q.expr for q in step_queries(selector=vp.selector, step="30s",
                                               overrides=vp.overrides())}
    assert qs[Kind.ERRORS] == ('sum(rate(http_requests_total{job="nanopore-monolith",'
                               'status_code=~"5.."}[30s]))')
    assert qs[Kind.BUCKETS] == ('sum by (le) (rate(http_request_duration_seconds_bucket'
                                '{job="nanopore-monolith"}[30s]))')
    assert qs[Kind.LATENCY_SUM].startswith("sum(rate(http_request_duration_seconds_sum{")


def test_bucket_expression_of_histogram_quantile_override() -> None:
    t = ("histogram_quantile({quantile}, sum by (le) (rate("
         "http_server_duration_seconds_bucket{{selector}}[{window}])))")
    assert bucket_expression(t) == ("sum by (le) (rate(http_server_duration_seconds_bucket"
                                    "{{selector}}[{window}]))")
    assert bucket_expression("max(my_p95{{selector}}) * {quantile}") is None


def test_quantile_override_without_buckets_falls_back_to_quantile_series() -> None:
    qs = step_queries(selector='job="x"', step="30s",
                      overrides={"latency_quantile": 'max(summary{{selector},quantile="{quantile}"})'})
    kinds = {q.kind: q.expr for q in qs}
    assert Kind.BUCKETS not in kinds
    assert kinds[Kind.P95] == 'max(summary{job="x",quantile="0.95"})'


def test_ratio_split_at_top_level_only() -> None:
    assert split_ratio("sum(a{x=\"/\"}) / sum(b)") == ('sum(a{x="/"})', "sum(b)")
    assert split_ratio("sum(a / b)") is None
    assert split_ratio("a / b / c") is None
    qs = step_queries(selector='job="x"', step="30s", overrides={"latency_avg": "avg(lat{{selector}})"})
    assert {q.kind for q in qs} >= {Kind.LATENCY_AVG} and Kind.LATENCY_SUM not in {q.kind for q in qs}

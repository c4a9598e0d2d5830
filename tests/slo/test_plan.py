"""The plan model: the shipped plan validates and says what the seed says; broken plans
name the YAML path and line of each problem."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from slo.errors import PlanError
from slo.plan import OVERRIDABLE_KEYS, AutoRevert, Plan, Tolerance
from slo.planfile import parse_plan, plan_schema, plan_warnings
from slo.units import format_duration, parse_duration, parse_time


def test_shipped_plan_encodes_the_seed(plan: Plan) -> None:
    assert plan.baseline.backend == "nanopore-monolith"
    assert [s.name for s in plan.services] == ["auth", "files", "samples", "ai", "audit", "gateway"]
    assert {s.name: s.route for s in plan.services}["auth"] == "nanopore-auth"
    assert all(s.backend == f"python-{s.name}" for s in plan.services)
    assert [p.id for p in plan.phases] == [f"week-{i}" for i in range(1, 7)]
    assert plan.phase("week-5").services == ["ai", "audit"]
    assert plan.defaults.steps == [10, 25, 50, 75, 100]
    success = plan.success_targets()
    assert success["latency_avg_ms"].max == 100
    assert success["error_rate"].max == 0.01
    assert success["memory_mb"].max == 300 and success["memory_mb"].scope == "total"
    assert success["cpu_cores"].max == 0.5
    assert success["rps"].min == 200
    assert any(c.text == "No increase in error rates" for c in plan.phase("week-2").criteria)
    assert plan_warnings(plan) == []


def test_settings_merge_defaults_phase_service(plan_text: str) -> None:
    text = plan_text.replace(
        "  - id: week-3\n    name: File storage service\n",
        "  - id: week-3\n    name: File storage service\n    window: 5m\n"
        "    targets: {latency_p95_ms: {max: 80}, cpu_cores: null}\n",
    ).replace(
        "    logs: {path_prefix: /api/files, upstream: python-files}\n",
        "    logs: {path_prefix: /api/files, upstream: python-files}\n"
        "    min_requests: 50\n    targets: {latency_p95_ms: {max_ratio_to_baseline: null}}\n",
    )
    s = parse_plan(text).settings("files")
    assert s.window == timedelta(minutes=5)          # phase over defaults
    assert s.min_requests == 50                      # service over phase
    assert s.targets["latency_p95_ms"].max == 80     # phase added a field...
    assert s.targets["latency_p95_ms"].max_ratio_to_baseline is None  # ...service removed one
    assert "cpu_cores" not in s.targets              # phase removed the figure
    assert s.targets["error_rate"].max == 0.01       # untouched default
    assert parse_plan(text).settings("auth").window == timedelta(minutes=10)


#: A value other than the default for every key a service may override: a key added to the
#: model without an entry here fails the test below, so nobody forgets to prove it merges.
OVERRIDE_SAMPLES = {
    "steps": [20, 100],
    "window": timedelta(minutes=7),
    "min_soak": timedelta(minutes=3),
    "min_requests": 1234,
    "confidence": 0.9,
    "inference": "fixed",
    "false_fail": 0.05,
    "auto_revert": AutoRevert(after_failures=5, enabled=False),
    "tolerance": Tolerance(error_min_ratio=3.0),
}


def test_every_overridable_key_survives_the_merge(plan: Plan) -> None:
    assert set(OVERRIDABLE_KEYS) == set(OVERRIDE_SAMPLES), "give each new key a sample here"
    service = plan.services[0].name
    for key, value in OVERRIDE_SAMPLES.items():
        assert getattr(plan.settings(service), key) != value, key
        services = [s.model_copy(update={key: value}) if s.name == service else s
                    for s in plan.services]
        changed = plan.model_copy(update={"services": services})
        assert getattr(changed.settings(service), key) == value, key


def test_steps_navigation(plan: Plan) -> None:
    s = plan.settings("auth")
    assert s.next_step(0) == 10 and s.next_step(25) == 50 and s.next_step(100) is None
    assert s.previous_step(50) == 25 and s.previous_step(10) == 0 and s.previous_step(0) == 0


BROKEN = [
    # (what to replace, with what, expected path, expected words)
    ("services: [ai, audit]", "services: [ai2, audit]", "phases[4].services[0]",
     "'ai2' is not a defined service"),
    ("steps: [10, 25, 50, 75, 100]", "steps: [10, 50, 25]", "defaults.steps", "strictly increasing"),
    ("steps: [10, 25, 50, 75, 100]", "steps: [0, 50, 100]", "defaults.steps", "outside 1..100"),
    ("steps: [10, 25, 50, 75, 100]", "steps: [10, 150]", "defaults.steps", "outside 1..100"),
    ("window: 10m", "window: ten minutes", "defaults.window", "expected a duration"),
    ("min_soak: 15m", "min_soak: 15y", "defaults.min_soak", "expected a duration"),
    ("latency_avg_ms: {max: 100}                        #",
     "latency_avgms: {max: 100}   #", "defaults.targets.latency_avgms",
     "unknown figure 'latency_avgms'"),
    ("memory_mb: {max: 300, scope: total}               #",
     "memory_mb: {max: 300, min: 400}   #", "defaults.targets.memory_mb",
     "min 400.0 is above max 300.0"),
    ("router: {kind: openshift-route, namespace: nanopore}", "router: {kind: istio}",
     "router.kind", "expected 'openshift-route'"),
    ("router: {kind: openshift-route, namespace: nanopore}", "router: {kind: gateway-api}",
     "router", "needs a namespace"),
    ("url_env: SLACK_WEBHOOK_URL}", "url: https://hooks.example.invalid/T000/B000}",
     "alerts.channels[0]", "URLs are secrets"),
    ("    route: nanopore-auth\n", "", "services[0].route", "is required"),
    ("name: Nanopore Tracking - Python microservices\n",
     "name: Nanopore Tracking - Python microservices\nbogus_key: 1\n", "bogus_key", "not a known key"),
    ("  - id: week-3\n", "  - id: week-2\n", "phases[2].id", "defined twice"),
    ("services: [files]", "services: [auth]", "phases[2].services[0]", "already in phase 'week-2'"),
    ("logs: {path_prefix: /api/ai, upstream: python-ai}",
     "logs: {path_prefix: api/ai, upstream: python-ai}", "services[3].logs.path_prefix",
     "starts with '/'"),
    ("logs: {path_prefix: /api/ai, upstream: python-ai}",
     "logs: {path_prefix: /api/ai, upstream: nanopore-monolith}", "services[3].logs.upstream",
     "also names the baseline"),
    ("min_requests: 500", "min_requests: -1", "defaults.min_requests", "greater than or equal to 0"),
    # the value's own line, not the line of `targets:` (point at what to fix)
    ("latency_avg_ms: {max: 100}                        #",
     "latency_avg_ms:\n      max: fast\n    #", "defaults.targets.latency_avg_ms.max",
     "valid number"),
    ("latency_avg_ms: {max: 100}                        #",
     "latency_avg_ms: {max: .inf}   #", "defaults.targets.latency_avg_ms.max", "finite"),
    ("latency_avg_ms: {max: 100}                        #",
     "latency_avg_ms: {maximum: 100}   #", "defaults.targets.latency_avg_ms.maximum",
     "not a known key"),
    # success_metrics are checked as the plan is read, as targets are
    ("  rps: {min: 200, scope: total}", "  rps: {min: 200, scope: everything}",
     "success_metrics.rps.scope", "expected 'service' or 'total'"),
    ("  latency_avg_ms: {max: 100}            #", "  latency_avg_ms: {max: \"fast\"}   #",
     "success_metrics.latency_avg_ms.max", "valid number"),
    ("  cpu_cores: {max: 0.5}                 #", "  cpu_cores: {max: 0.5, min: 2}  #",
     "success_metrics.cpu_cores",
     "min 2.0 is above max 0.5"),
    ("  cpu_cores: {max: 0.5}                 #", "  cpu_usage: {max: 0.5}  #",
     "success_metrics.cpu_usage",
     "unknown figure 'cpu_usage'"),
    ("  cpu_cores: {max: 0.5}                 #", "  cpu_cores: 0.5  #", "success_metrics.cpu_cores",
     "valid dictionary"),
]


@pytest.mark.parametrize(("old", "new", "path", "words"), BROKEN,
                         ids=[b[2] + ":" + b[3][:20] for b in BROKEN])
def test_broken_plan_names_path_and_line(plan_text: str, old: str, new: str, path: str,
                                         words: str) -> None:
    assert old in plan_text
    broken = plan_text.replace(old, new, 1)
    with pytest.raises(PlanError) as exc:
        parse_plan(broken, source="broken.yaml")
    problems = exc.value.problems
    match = [p for p in problems if p.path == path and words in p.message]
    assert match, [str(p) for p in problems]
    line = match[0].line
    assert line is not None
    # the named line is where the key (or its nearest parent) is written
    key = path.rsplit(".", 1)[-1].split("[")[0]
    assert key in broken.splitlines()[line - 1] or path.startswith(("alerts", "services[0]"))


def test_not_yaml_and_not_a_mapping() -> None:
    with pytest.raises(PlanError, match="not valid YAML.*line 2"):
        parse_plan("name: x\n  bad: [\n")
    with pytest.raises(PlanError, match="expected a mapping at the top, got an empty file"):
        parse_plan("")
    with pytest.raises(PlanError, match="got list"):
        parse_plan("- a\n- b\n")


SHIPPED_OPERATORS = "operators: [ana@example.org, lee@example.org]\n"
SHIPPED_ROUTER = "router: {kind: openshift-route, namespace: nanopore}"


def test_plan_without_operators_warns_on_the_dry_run_router(plan_text: str) -> None:
    text = plan_text.replace(SHIPPED_OPERATORS, "").replace(SHIPPED_ROUTER,
                                                            "router: {kind: dry-run}")
    p = parse_plan(text)
    assert p.may_operate("anyone")
    assert any("operators" in w for w in plan_warnings(p))


@pytest.mark.parametrize("kind", ["openshift-route", "gateway-api"])
def test_plan_without_operators_is_refused_on_a_cluster_router(plan_text: str,
                                                                kind: str) -> None:
    assert SHIPPED_OPERATORS in plan_text and SHIPPED_ROUTER in plan_text
    text = plan_text.replace(SHIPPED_OPERATORS, "").replace(
        "kind: openshift-route", f"kind: {kind}")
    with pytest.raises(PlanError) as e:
        parse_plan(text)
    (problem,) = e.value.problems
    assert problem.path == "router.kind" and problem.line == text.count(
        "\n", 0, text.index(f"kind: {kind}")) + 1
    assert "needs 'operators: [...]'" in problem.message and "operators: any" in problem.message


def test_operators_any_lets_every_actor_and_says_so(plan_text: str) -> None:
    p = parse_plan(plan_text.replace(SHIPPED_OPERATORS, "operators: any\n"))
    assert p.may_operate("anyone") and p.router.kind == "openshift-route"
    assert "operators: any: every actor may approve and revert" in plan_warnings(p)
    with pytest.raises(PlanError, match="operators"):
        parse_plan(plan_text.replace(SHIPPED_OPERATORS, "operators: everyone\n"))


def test_an_unvalidated_plan_without_operators_still_refuses_on_a_cluster(plan: Plan) -> None:
    """Defence in depth: a copy that skipped validation lets nobody move real traffic."""
    assert not plan.model_copy(update={"operators": None}).may_operate("ana@example.org")


def test_operators_are_enforced_by_the_model(plan: Plan) -> None:
    assert plan.may_operate("ana@example.org")
    assert not plan.may_operate("mallory@example.org")


def test_schema_is_json_schema() -> None:
    schema = plan_schema()
    json.dumps(schema)
    assert schema["title"] == "cutover plan"
    assert {"name", "baseline", "services", "phases"} <= set(schema["required"])


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("10m", 600), ("1h30m", 5400), ("2d", 172800), ("1w", 604800),
    ("250ms", 0.25), (45, 45), ("1.5h", 5400),
])
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "10", "m10", "10 m", "10x", "1h 30m", True])
def test_parse_duration_refuses(text: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)  # type: ignore[arg-type]


def test_format_duration_round_trips() -> None:
    for s in ("30s", "10m", "1h30m", "2d", "1d1h1m1s"):
        assert format_duration(parse_duration(s)) == s


def test_parse_time() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parse_time("-2h", now=now) == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert parse_time("2026-11-26T12:00:00Z", now=now) == now
    assert parse_time("2026-11-26T13:00:00+01:00", now=now) == now
    assert parse_time("2026-11-26T12:00:00", now=now) == now
    assert parse_time("now", now=now) == now
    with pytest.raises(ValueError, match="expected a time"):
        parse_time("yesterday", now=now)


def test_simulated_clock() -> None:
    from datetime import UTC, datetime

    import pytest

    from slo.units import simulated_time

    text = "2026-11-26T14:00:00+00:00@1000.0x60"
    assert simulated_time(text, wall=1010.0) == datetime(2026, 11, 26, 14, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="CUTOVER_CLOCK"):
        simulated_time("2026-11-26T14:00:00@1000x60", wall=0)   # no zone: refused

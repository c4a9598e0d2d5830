"""Deployment and recovery times from the Kubernetes API, through the real ``kubernetes``
client against the tests' API fake (Deployments, ReplicaSets, Pods with real timestamps
and conditions)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from collectors.probes.base import ProbeContext
from collectors.probes.runner import run_probe
from rollout.routers.kube import api_client_for
from slo.plan import Plan, RouterConfig
from slo.probe_results import ProbeResult
from slo.probe_specs import DeployTimeProbe, RecoveryTimeProbe
from slo.verdict import Verdict
from tests.support.k8s_fake import PODS, FakeApiServer, deployment

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer(token="probe-token") as fake:
        for name in ("python-auth", "python-files"):
            fake.put(deployment(name, created=NOW - timedelta(days=9)))
        fake.roll_out("python-auth", started=NOW - timedelta(hours=2),
                      available=NOW - timedelta(hours=2) + timedelta(seconds=95))
        fake.roll_out("python-files", started=NOW - timedelta(hours=1),
                      available=NOW - timedelta(hours=1) + timedelta(minutes=7))
        yield fake


def _run(plan: Plan, api: FakeApiServer, spec: DeployTimeProbe | RecoveryTimeProbe, *,
         service: str | None = None) -> ProbeResult:
    plan = plan.model_copy(update={"router": RouterConfig(kind="openshift-route",
                                                           namespace="nanopore")})
    ctx = ProbeContext(plan=plan, now=NOW, kube=api_client_for(api.url, token="probe-token"))
    svc = plan.service(service) if service else None
    phase = plan.phase_of(service) if service else plan.phase("week-1")
    assert phase is not None
    return run_probe((phase, svc, spec), ctx)


def test_a_quick_rollout_passes_for_the_services_own_deployment(
        plan: Plan, api: FakeApiServer) -> None:
    result = _run(plan, api, DeployTimeProbe(kind="deploy_time", name="d"), service="auth")
    assert result.verdict is Verdict.PASS, result.reasons
    assert result.value == 95 and result.limit == 300
    assert "rollout took 95 s <= 5.0 min" in result.reasons[0]


def test_a_slow_rollout_fails_and_names_the_deployment(plan: Plan, api: FakeApiServer) -> None:
    result = _run(plan, api, DeployTimeProbe(kind="deploy_time", name="d",
                                             deployments=["python-auth", "python-files"]))
    assert result.verdict is Verdict.FAIL
    [reason] = result.reasons
    assert reason.startswith("python-files (python-files-") and "7.0 min > 5.0 min" in reason


def test_a_rollout_still_going_past_the_limit_fails(plan: Plan, api: FakeApiServer) -> None:
    api.roll_out("python-auth", started=NOW - timedelta(minutes=6), available=None)
    result = _run(plan, api, DeployTimeProbe(kind="deploy_time", name="d"), service="auth")
    assert result.verdict is Verdict.FAIL and "(still going)" in result.reasons[0]


def test_a_rollout_still_going_within_the_limit_is_inconclusive(
        plan: Plan, api: FakeApiServer) -> None:
    api.roll_out("python-auth", started=NOW - timedelta(minutes=1), available=None)
    result = _run(plan, api, DeployTimeProbe(kind="deploy_time", name="d"), service="auth")
    assert result.verdict is Verdict.INCONCLUSIVE and "not finished yet" in result.reasons[0]


def _pod(api: FakeApiServer, app: str, i: int = 0) -> str:
    return str(api.items(PODS, selector=f"app={app}")[i]["metadata"]["name"])


def test_recovery_times_from_restarted_pods(plan: Plan, api: FakeApiServer) -> None:
    quick, slow = _pod(api, "python-auth"), _pod(api, "python-files")
    api.restart_pod(quick, died=NOW - timedelta(minutes=30), ready=NOW - timedelta(minutes=29))
    spec = RecoveryTimeProbe(kind="recovery_time", name="r",
                             deployments=["python-auth", "python-files"])
    assert _run(plan, api, spec).verdict is Verdict.PASS
    api.restart_pod(slow, died=NOW - timedelta(minutes=20),
                    ready=NOW - timedelta(minutes=20) + timedelta(seconds=150))
    result = _run(plan, api, spec)
    assert result.verdict is Verdict.FAIL
    assert result.reasons == (f"{slow}/app: ready again after 2.5 min > 2.0 min",)
    assert result.figures["restarts"] == {f"{quick}/app": 60.0, f"{slow}/app": 150.0}


def test_a_pod_not_ready_again_past_the_limit_fails(plan: Plan, api: FakeApiServer) -> None:
    pod = _pod(api, "python-auth", 1)
    api.restart_pod(pod, died=NOW - timedelta(minutes=3), ready=None)
    result = _run(plan, api, RecoveryTimeProbe(kind="recovery_time", name="r"), service="auth")
    assert result.verdict is Verdict.FAIL and "(still going)" in result.reasons[0]


def test_no_restart_to_time_is_inconclusive(plan: Plan, api: FakeApiServer) -> None:
    result = _run(plan, api, RecoveryTimeProbe(kind="recovery_time", name="r"), service="auth")
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "no restart in the last 7 days" in result.reasons[0]


def test_a_forbidden_api_is_inconclusive_and_says_so(plan: Plan, api: FakeApiServer) -> None:
    api.forbidden = True
    result = _run(plan, api, DeployTimeProbe(kind="deploy_time", name="d"), service="auth")
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "Deployment python-auth: the API answered 403" in result.reasons[0]


def test_no_kubernetes_api_is_inconclusive(plan: Plan) -> None:
    ctx = ProbeContext(plan=plan, now=NOW)
    result = run_probe((plan.phase("week-2"), plan.service("auth"),
                        DeployTimeProbe(kind="deploy_time", name="d")), ctx)
    assert result.verdict is Verdict.INCONCLUSIVE and "no Kubernetes API" in result.reasons[0]

"""The routers one by one: OpenShift Route arithmetic, the Gateway API HTTPRoute router,
the dry-run router, and how the kubernetes client is configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client
from sqlalchemy.engine import Engine

from rollout.routers import api_client_for, build_router
from rollout.routers.kube import kube_api_client, kube_errors
from rollout.routers.openshift import candidate_percent, weights_patch
from slo.errors import ConfigError, RouterError
from slo.plan import Plan, RouterConfig
from store.db import session_scope
from store.rollout import set_dry_run_weight
from tests.rollout.conftest import T0, TOKEN
from tests.support.k8s_fake import (
    HTTPROUTES,
    FakeApiServer,
    _validate_route,
    http_route,
    merge_patch,
    route,
)

BASE, CAND = "nanopore-monolith", "python-auth"


def with_router(plan: Plan, **router: Any) -> Plan:
    return plan.model_copy(update={"router": RouterConfig(**router)})


# -- OpenShift Route arithmetic --------------------------------------------------------

@pytest.mark.parametrize(("to_w", "alternates", "pct"), [
    (100, None, 0),                                              # no alternates at all
    (90, [{"name": CAND, "weight": 10}], 10),
    (None, [{"name": CAND, "weight": 0}], 0),                    # spec.to weight defaults to 100
    (1, [{"name": CAND, "weight": 1}], 50),                      # by hand: relative weights
    (60, [{"name": "other", "weight": 200}, {"name": CAND, "weight": 40}], 40),
    (0, [{"name": CAND, "weight": 0}], 0),                       # nothing served at all
    (0, [{"name": CAND, "weight": 256}], 100),
], ids=["no_alternates", "ten", "default_weight", "relative", "others_ignored", "all_zero",
        "all_candidate"])
def test_candidate_percent(to_w: int | None, alternates: Any, pct: int) -> None:
    r = route("nanopore-auth", baseline_weight=to_w, alternates=alternates)
    assert candidate_percent(r, baseline=BASE, candidate=CAND) == pct


def test_spec_to_not_the_baseline_is_an_error() -> None:
    r = route("nanopore-auth", baseline="python-auth")
    with pytest.raises(RouterError, match="expected spec.to to name the baseline"):
        candidate_percent(r, baseline=BASE, candidate=CAND)


def test_patch_sends_the_whole_list_and_the_resource_version() -> None:
    r = route("nanopore-auth", alternates=[{"kind": "Service", "name": "other", "weight": 7,
                                            "extra": "kept"}])
    r["metadata"]["resourceVersion"] = "42"
    body = weights_patch(r, baseline=BASE, candidate=CAND, weight=25)
    assert body == {"metadata": {"resourceVersion": "42"},
                    "spec": {"to": {"kind": "Service", "name": BASE, "weight": 75},
                             "alternateBackends": [
                                 {"kind": "Service", "name": "other", "weight": 7,
                                  "extra": "kept"},
                                 {"kind": "Service", "name": CAND, "weight": 25}]}}


def test_a_fourth_alternate_backend_is_refused_before_sending() -> None:
    r = route("nanopore-auth", alternates=[{"kind": "Service", "name": f"b{i}", "weight": 0}
                                           for i in range(3)])
    r["metadata"]["resourceVersion"] = "1"
    with pytest.raises(RouterError, match="at most 3") as e:
        weights_patch(r, baseline=BASE, candidate=CAND, weight=10)
    assert e.value.status == 422


def test_api_server_422_on_weights_out_of_range(k8s: FakeApiServer, api_client: Any) -> None:
    api = client.CustomObjectsApi(api_client)
    with pytest.raises(RouterError, match="HTTP 422 .*between 0 and 256") as e, \
            kube_errors("nanopore-auth", "patching"):
        api.patch_namespaced_custom_object("route.openshift.io", "v1", "nanopore", "routes",
                                           "nanopore-auth", {"spec": {"to": {"weight": 300}}})
    assert e.value.status == 422


def test_openshift_router_reads_back_and_warns_without_roundrobin(
        plan: Plan, sqlite_engine: Engine, api_client: Any, k8s: FakeApiServer,
        caplog: pytest.LogCaptureFixture) -> None:
    k8s.edit("nanopore-auth", lambda r: r["metadata"].update(annotations={}))
    router = build_router(plan, sqlite_engine, api_client=api_client)
    assert router.set_weight("auth", 50) == 50
    assert router.read_weight("auth") == 50
    assert "not roundrobin" in caplog.text
    assert TOKEN not in caplog.text


def test_missing_token_is_a_401_router_error(plan: Plan, sqlite_engine: Engine,
                                             k8s: FakeApiServer) -> None:
    router = build_router(plan, sqlite_engine, api_client=api_client_for(k8s.url))
    with pytest.raises(RouterError, match="HTTP 401") as e:
        router.read_weight("auth")
    assert e.value.status == 401


# -- Gateway API ------------------------------------------------------------------------

def _ref(name: str, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "port": 8080}
    if weight is not None:
        ref["weight"] = weight
    return ref


@pytest.fixture
def gw(k8s: FakeApiServer) -> FakeApiServer:
    k8s.put(http_route("nanopore-auth", rules=[
        {"matches": [{"path": {"type": "PathPrefix", "value": "/healthz"}}],
         "backendRefs": [_ref(BASE)]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api/auth"}}],
         "backendRefs": [_ref(BASE, 100), _ref(CAND, 0)]},
    ]), kind=HTTPROUTES)
    return k8s


def test_gateway_api_walk_touches_only_the_matching_rule(
        plan: Plan, sqlite_engine: Engine, api_client: Any, gw: FakeApiServer) -> None:
    router = build_router(with_router(plan, kind="gateway-api", namespace="nanopore"),
                          sqlite_engine, api_client=api_client)
    assert router.read_weight("auth") == 0
    for w in (10, 25, 50, 75, 100, 0):
        assert router.set_weight("auth", w, expected=None) == w
        rules = gw.get("nanopore-auth", kind=HTTPROUTES)["spec"]["rules"]
        assert rules[1]["backendRefs"] == [_ref(BASE, 100 - w), _ref(CAND, w)]
        assert rules[0]["backendRefs"] == [_ref(BASE)]
    patches = [r for r in gw.requests if r.method == "PATCH"]
    assert {r.content_type for r in patches} == {"application/json-patch+json"}


def test_gateway_api_409_is_retried(plan: Plan, sqlite_engine: Engine, api_client: Any,
                                    gw: FakeApiServer) -> None:
    once = iter([True])
    gw.before_patch = lambda fake: next(once, False) and fake.edit(
        "nanopore-auth", lambda r: r["metadata"].update(labels={"x": "y"}), kind=HTTPROUTES)
    router = build_router(with_router(plan, kind="gateway-api", namespace="nanopore"),
                          sqlite_engine, api_client=api_client)
    assert router.set_weight("auth", 25, expected=0) == 25
    assert gw.count("PATCH", status=409) == 1


def test_gateway_api_needs_both_backends(plan: Plan, sqlite_engine: Engine, api_client: Any,
                                         gw: FakeApiServer) -> None:
    gw.edit("nanopore-auth", lambda r: r["spec"]["rules"][1]["backendRefs"].pop(),
            kind=HTTPROUTES)
    router = build_router(with_router(plan, kind="gateway-api", namespace="nanopore"),
                          sqlite_engine, api_client=api_client)
    with pytest.raises(RouterError, match="add the candidate"):
        router.read_weight("auth")


def test_gateway_api_absent_weights_count_as_one(plan: Plan, sqlite_engine: Engine,
                                                 api_client: Any, gw: FakeApiServer) -> None:
    def unweighted(r: dict[str, Any]) -> None:
        r["spec"]["rules"][1]["backendRefs"] = [_ref(BASE), _ref(CAND)]

    gw.edit("nanopore-auth", unweighted, kind=HTTPROUTES)
    router = build_router(with_router(plan, kind="gateway-api", namespace="nanopore"),
                          sqlite_engine, api_client=api_client)
    assert router.read_weight("auth") == 50
    assert router.set_weight("auth", 10) == 10


# -- dry-run -----------------------------------------------------------------------------

def test_dry_run_router_keeps_weights_in_the_store(plan: Plan, engine: Engine) -> None:
    router = build_router(with_router(plan, kind="dry-run"), engine)
    assert router.kind == "dry-run" and router.read_weight("auth") == 0
    assert router.set_weight("auth", 25, expected=0) == 25
    assert router.read_weight("auth") == 25 and router.read_weight("files") == 0
    with session_scope(engine) as s:   # "by hand"
        set_dry_run_weight(session=s, service="auth", weight=40, at=T0)
    with pytest.raises(RouterError, match="changed by someone else"):
        router.set_weight("auth", 50, expected=25)
    with pytest.raises(RouterError, match="outside 0..100"):
        router.set_weight("auth", 101)


# -- configuration -------------------------------------------------------------------------

def test_kubeconfig_with_a_bearer_token(plan: Plan, sqlite_engine: Engine, k8s: FakeApiServer,
                                        tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "fake", "cluster": {"server": k8s.url}}],
        "users": [{"name": "cutover", "user": {"token": TOKEN}}],
        "contexts": [{"name": "ops", "context": {"cluster": "fake", "user": "cutover"}},
                     {"name": "other", "context": {"cluster": "fake", "user": "nobody"}}],
    }))
    p = with_router(plan, kind="openshift-route", namespace="nanopore",
                    kubeconfig=str(kubeconfig), context="ops")
    router = build_router(p, sqlite_engine)      # no api_client: built from the kubeconfig
    assert router.read_weight("auth") == 0
    assert k8s.requests[-1].status == 200


def test_in_cluster_service_account(plan: Plan, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.config import incluster_config

    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("sa-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.1.2.3")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    api = kube_api_client(with_router(plan, kind="openshift-route", namespace="nanopore",
                                      in_cluster=True))
    cfg = api.configuration
    assert cfg.host == "https://10.1.2.3:6443" and cfg.ssl_ca_cert == str(ca)
    assert cfg.auth_settings()["BearerToken"]["value"].lower() == "bearer sa-token"


def test_no_configuration_is_a_config_error(plan: Plan, tmp_path: Path) -> None:
    p = with_router(plan, kind="openshift-route", namespace="nanopore",
                    kubeconfig=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="cannot configure the Kubernetes client"):
        kube_api_client(p)


def test_bearer_token_goes_in_the_authorization_header(k8s: FakeApiServer) -> None:
    api = api_client_for(k8s.url, token=TOKEN)
    assert api.configuration.api_key == {"authorization": "Bearer " + TOKEN}


# -- properties -----------------------------------------------------------------------------

_other = st.fixed_dictionaries({"kind": st.just("Service"),
                                "name": st.sampled_from(["maint", "canary", "legacy"]),
                                "weight": st.integers(0, 256)})


@given(weight=st.integers(0, 100), before=st.integers(0, 100),
       others=st.lists(_other, max_size=2, unique_by=lambda b: b["name"]))
def test_patch_then_read_gives_the_weight_and_keeps_the_others(
        weight: int, before: int, others: list[dict[str, Any]]) -> None:
    r = route("nanopore-auth", baseline_weight=100 - before,
              alternates=[*others, {"kind": "Service", "name": CAND, "weight": before}])
    r["metadata"]["resourceVersion"] = "7"
    after = merge_patch(r, weights_patch(r, baseline=BASE, candidate=CAND, weight=weight))
    _validate_route(after)                      # what the API server would accept
    assert candidate_percent(after, baseline=BASE, candidate=CAND) == weight
    assert [b for b in after["spec"]["alternateBackends"] if b["name"] != CAND] == others


def test_public_names_are_pinned() -> None:
    from rollout import gate, routers

    assert set(gate.__all__) >= {"approve", "revert", "revert_all", "auto_revert",
                                 "service_status", "reconcile", "decisions"}
    assert routers.__all__ == ["ROUTERS", "TrafficRouter", "api_client_for", "build_router"]
    assert set(routers.ROUTERS) == {"openshift-route", "gateway-api", "dry-run"}

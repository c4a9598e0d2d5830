"""deploy/: the kustomization renders (``kubectl kustomize``), every manifest matches the
Kubernetes schema the ``kubernetes`` client's models carry (strictly: unknown keys, wrong
types and missing required fields all fail), the OpenShift and Prometheus-operator kinds
match their known structure, the pieces refer to each other correctly, the alert rules
and the Grafana dashboard use metrics the worker exports, and the Containerfile is sane.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import models

from cutover.metrics import METRIC_NAMES
from slo.planfile import parse_plan

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# -- a strict validator over the kubernetes client's models -------------------------

_PRIMITIVES: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "datetime": lambda v: isinstance(v, str),
    "date": lambda v: isinstance(v, str),
    "bytes": lambda v: isinstance(v, str),  # base64 text in YAML
    "object": lambda v: True,  # IntOrString, RawExtension: any JSON value
}


def check_model(value: Any, type_name: str, path: str = "") -> list[str]:
    """Problems of ``value`` as the kubernetes model type ``type_name`` (e.g.
    ``V1Deployment``, ``list[V1Container]``, ``dict(str, str)``); empty when it fits."""
    if value is None:
        return []  # null is "not given"; required fields are checked by deserialize
    # the client spells containers `list[T]`/`dict(str, T)` (up to v35) or
    # `List[T]`/`Dict[str, T]` (v36 on)
    if m := re.fullmatch(r"[Ll]ist\[(.+)\]", type_name):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [p for i, v in enumerate(value) for p in check_model(v, m.group(1),
                                                                     f"{path}[{i}]")]
    if m := re.fullmatch(r"(?:dict\(|Dict\[)str, (.+)[)\]]", type_name):
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping, got {type(value).__name__}"]
        return [p for k, v in value.items() for p in check_model(v, m.group(1), f"{path}.{k}")]
    if type_name in _PRIMITIVES:
        ok = _PRIMITIVES[type_name](value)
        return [] if ok else [f"{path}: expected {type_name}, got {type(value).__name__} "
                              f"{value!r}"]
    cls = getattr(models, type_name)
    if not isinstance(value, dict):
        return [f"{path}: expected a {type_name} mapping, got {type(value).__name__}"]
    by_json = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    problems = []
    for key, v in value.items():
        if key not in by_json:
            problems.append(f"{path}.{key}: unknown field of {type_name}")
            continue
        problems += check_model(v, cls.openapi_types[by_json[key]], f"{path}.{key}")
    return problems


class _FakeResponse:
    def __init__(self, doc: dict[str, Any]):
        self.data = json.dumps(doc)


def deserialize(doc: dict[str, Any], type_name: str) -> Any:
    """The client's own deserializer, as if the API server had answered ``doc``: up to
    v35 it takes a response object, from v36 the response text and its content type."""
    api = client.ApiClient()
    if "content_type" in inspect.signature(api.deserialize).parameters:
        return api.deserialize(json.dumps(doc), type_name, "application/json")
    return api.deserialize(_FakeResponse(doc), type_name)


def model_for(doc: dict[str, Any]) -> str | None:
    """``apps/v1`` + ``Deployment`` -> ``V1Deployment`` when the client has it."""
    version = doc.get("apiVersion", "").rsplit("/", 1)[-1]
    name = version[:1].upper() + version[1:] + doc.get("kind", "")
    return name if hasattr(models, name) else None


def validate_k8s(doc: dict[str, Any]) -> list[str]:
    type_name = model_for(doc)
    assert type_name, f"no kubernetes model for {doc.get('apiVersion')} {doc.get('kind')}"
    where = f"{doc['kind']}/{doc.get('metadata', {}).get('name')}"
    problems = [f"{where}{p}" for p in check_model(doc, type_name)]
    try:  # the models' own checks: required fields and enums
        deserialize(doc, type_name)
    except (ValueError, TypeError) as e:
        problems.append(f"{where}: {e}")
    return problems


# -- hand-written structure for the kinds the client has no model for ----------------

Spec = Any  # a type, a tuple of allowed values, a [spec], a {key: spec}, or a model name


def check_shape(value: Any, spec: Spec, path: str, required: tuple[str, ...] = ()) -> list[str]:
    if isinstance(spec, str):
        return check_model(value, spec, path)
    if isinstance(spec, tuple):
        return [] if value in spec else [f"{path}: expected one of {spec}, got {value!r}"]
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [p for i, v in enumerate(value) for p in check_shape(v, spec[0], f"{path}[{i}]")]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping"]
        problems = [f"{path}.{k}: unknown field" for k in value if k not in spec]
        problems += [f"{path}.{k}: required" for k in spec.get("__required__", ()) if k not in value]
        return problems + [p for k, v in value.items() if k in spec and k != "__required__"
                           for p in check_shape(v, spec[k], f"{path}.{k}")]
    if spec is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif spec is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, spec)
    return [] if ok else [f"{path}: expected {getattr(spec, '__name__', spec)}, got {value!r}"]


_BACKEND = {"__required__": ("kind", "name"), "kind": ("Service",), "name": str, "weight": int}
# route.openshift.io/v1 (https://docs.openshift.com/container-platform/latest/rest_api/network_apis/route-route-openshift-io-v1.html)
ROUTE_SPEC = {
    "__required__": ("to",),
    "host": str, "subdomain": str, "path": str, "to": _BACKEND, "alternateBackends": [_BACKEND],
    "port": {"__required__": ("targetPort",), "targetPort": "object"},
    "tls": {"__required__": ("termination",),
            "termination": ("edge", "passthrough", "reencrypt"),
            "insecureEdgeTerminationPolicy": ("None", "Allow", "Redirect", ""),
            "certificate": str, "key": str, "caCertificate": str,
            "destinationCACertificate": str, "externalCertificate": {"name": str}},
    "wildcardPolicy": ("None", "Subdomain"),
}
# monitoring.coreos.com/v1 (prometheus-operator API reference)
SERVICEMONITOR_SPEC = {
    "__required__": ("selector", "endpoints"),
    "selector": "V1LabelSelector", "jobLabel": str, "namespaceSelector": dict,
    "endpoints": [{"port": str, "targetPort": "object", "path": str, "scheme": ("http", "https"),
                   "interval": str, "scrapeTimeout": str, "honorLabels": bool,
                   "tlsConfig": dict, "bearerTokenFile": str, "relabelings": list,
                   "metricRelabelings": list}],
}
_RULE = {"alert": str, "record": str, "expr": str, "for": str, "keep_firing_for": str,
         "labels": "dict(str, str)", "annotations": "dict(str, str)", "__required__": ("expr",)}
PROMETHEUSRULE_SPEC = {"__required__": ("groups",),
                       "groups": [{"__required__": ("name", "rules"), "name": str,
                                   "interval": str, "rules": [_RULE]}]}
CUSTOM = {("route.openshift.io/v1", "Route"): ROUTE_SPEC,
          ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICEMONITOR_SPEC,
          ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUSRULE_SPEC}


def validate_custom(doc: dict[str, Any]) -> list[str]:
    key = (doc.get("apiVersion"), doc.get("kind"))
    where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    top = {"__required__": ("apiVersion", "kind", "metadata", "spec"), "apiVersion": str,
           "kind": str, "metadata": "V1ObjectMeta", "spec": CUSTOM[key]}  # type: ignore[index]
    problems = check_shape(doc, top, where)
    if not doc.get("metadata", {}).get("name"):
        problems.append(f"{where}: metadata.name is required")
    return problems


def validate(doc: dict[str, Any]) -> list[str]:
    if (doc.get("apiVersion"), doc.get("kind")) in CUSTOM:
        return validate_custom(doc)
    return validate_k8s(doc)


# -- the rendered kustomization ------------------------------------------------------

@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on this machine, and cannot be had here: no Debian "
                    "package has its kustomize; the source files are still validated one by one")
    out = subprocess.run([kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, f"kubectl kustomize deploy/ failed:\n{out.stderr}"
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert docs, "the kustomization rendered nothing"
    return docs


def _one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind
             and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _deployment(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    return _one(docs, "Deployment", f"cutover-{component}")


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["containers"] + pod.get("initContainers", [])
                if c["name"] == name)


def _pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield d["metadata"]["name"], d["spec"]["template"]["spec"]


def test_every_rendered_manifest_matches_its_schema(rendered: list[dict[str, Any]]) -> None:
    problems = [p for d in rendered for p in validate(d)]
    assert not problems, "\n".join(problems)
    kinds = {d["kind"] for d in rendered}
    assert {"Deployment", "Service", "Route", "ConfigMap", "ServiceAccount", "Role",
            "RoleBinding", "ServiceMonitor", "PrometheusRule"} <= kinds


def test_every_source_file_validates_on_its_own() -> None:
    """The files as written, before kustomize touches them (what `oc apply -f` sees)."""
    files = [p for p in DEPLOY.rglob("*.yaml")
             if p.name != "kustomization.yaml" and "patches" not in p.parts
             and p.name != "plan.yaml"]
    assert files
    problems = [f"{f.relative_to(ROOT)}: {p}" for f in files
                for d in yaml.safe_load_all(f.read_text()) if d for p in validate(d)]
    assert not problems, "\n".join(problems)


def test_everything_lands_in_one_namespace_with_the_part_of_label(
        rendered: list[dict[str, Any]]) -> None:
    # cluster-scoped objects (the identity ClusterRole and its binding) have none
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    assert {d["metadata"].get("namespace") for d in rendered
            if d["kind"] not in cluster_scoped} == {"nanopore"}
    assert not any(d["metadata"].get("namespace") for d in rendered
                   if d["kind"] in cluster_scoped)
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "cutover"
               for d in rendered)


# -- the validator itself refuses what the API server would --------------------------

GOOD_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
    "spec": {"selector": {"matchLabels": {"a": "b"}},
             "template": {"metadata": {"labels": {"a": "b"}},
                          "spec": {"containers": [{"name": "c", "image": "i",
                                                   "ports": [{"containerPort": 80}]}]}}},
}


def _mutate(path: list[str | int], value: Any, *, delete: bool = False) -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD_DEPLOYMENT))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


def test_validator_accepts_a_good_deployment() -> None:
    assert validate(GOOD_DEPLOYMENT) == []


@pytest.mark.parametrize("doc, expected", [
    (_mutate(["spec", "replica"], 2), "spec.replica: unknown field of V1DeploymentSpec"),
    (_mutate(["spec", "replicas"], "2"), "spec.replicas: expected int"),
    (_mutate(["spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"], True),
     "containerPort: expected int"),
    (_mutate(["spec", "template", "spec", "containers", 0, "name"], None, delete=True),
     r"`name`, must not be `None`|V1Container\s+name\b"),
    (_mutate(["spec", "selector"], None, delete=True),
     r"`selector`, must not be `None`|V1DeploymentSpec\s+selector\b"),
    (_mutate(["spec", "template", "spec", "containers", 0, "env"], {"A": "b"}),
     "env: expected a list"),
], ids=["unknown-key", "string-for-int", "bool-for-int", "missing-container-name",
        "missing-selector", "mapping-for-list"])
def test_validator_refuses(doc: dict[str, Any], expected: str) -> None:
    # the client's own messages differ by version (plain models up to v35, pydantic after)
    problems = validate(doc)
    assert any(re.search(expected, p) for p in problems), problems


def test_route_validator_refuses_unknown_termination_and_keys() -> None:
    route = {"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "r"},
             "spec": {"to": {"kind": "Service", "name": "s"}, "tls": {"termination": "tls"},
                      "weigth": 3}}
    problems = validate(route)
    assert any("termination: expected one of" in p for p in problems)
    assert any("spec.weigth: unknown field" in p for p in problems)


# -- the worker --------------------------------------------------------------------

def test_worker_runs_two_replicas_after_the_schema_upgrade(rendered: list[dict[str, Any]]) -> None:
    worker = _deployment(rendered, "worker")
    assert worker["spec"]["replicas"] == 2
    pod = worker["spec"]["template"]["spec"]
    init = pod["initContainers"]
    assert [c["args"] for c in init] == [["db", "upgrade"]]
    main = _container(pod, "worker")
    assert main["args"][0] == "worker"
    env = {e["name"]: e for e in main["env"]}
    assert {e["name"]: e for e in init[0]["env"]}["CUTOVER_DB"] == env["CUTOVER_DB"]


def test_worker_probes_healthz_on_the_metrics_port(rendered: list[dict[str, Any]]) -> None:
    pod = _deployment(rendered, "worker")["spec"]["template"]["spec"]
    main = _container(pod, "worker")
    port = {p["name"]: p["containerPort"] for p in main["ports"]}["metrics"]
    assert port == 9108
    assert main["args"][main["args"].index("--metrics-port") + 1] == str(port)
    for probe in ("readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}


# -- the dashboard -----------------------------------------------------------------

def test_dashboard_scales_out_behind_the_oauth_proxy(rendered: list[dict[str, Any]]) -> None:
    dash = _deployment(rendered, "dashboard")
    assert dash["spec"]["replicas"] >= 2
    pod = dash["spec"]["template"]["spec"]
    app, proxy = _container(pod, "dashboard"), _container(pod, "oauth-proxy")
    env = {e["name"]: e.get("value") for e in app["env"]}
    # Streamlit on loopback: the forwarded-user header can only come from the proxy
    assert app["args"][app["args"].index("--address") + 1] == "127.0.0.1"
    assert "STREAMLIT_SERVER_ADDRESS" not in env   # the flag outranks it: one place
    assert env["CUTOVER_TRUST_FORWARDED_USER"] == "1"
    port = app["args"][app["args"].index("--port") + 1]
    args = dict(a.split("=", 1) for a in proxy["args"])
    assert args["--provider"] == "openshift"
    assert args["--upstream"] == f"http://127.0.0.1:{port}"
    assert args["--openshift-service-account"] == pod["serviceAccountName"]
    assert re.fullmatch(args["--skip-auth-regex"], "/_stcore/health")
    assert json.loads(args["--openshift-sar"].replace("$(POD_NAMESPACE)", "ns"))["verb"] == "get"
    mounts = {m["mountPath"] for m in proxy["volumeMounts"]}
    assert str(Path(args["--tls-cert"]).parent) in mounts
    assert str(Path(args["--cookie-secret-file"]).parent) in mounts


def test_dashboard_probes_streamlit_health(rendered: list[dict[str, Any]]) -> None:
    pod = _deployment(rendered, "dashboard")["spec"]["template"]["spec"]
    app = _container(pod, "dashboard")
    for probe in ("readinessProbe", "livenessProbe"):
        assert app[probe]["httpGet"]["path"] == "/_stcore/health"


def test_route_reaches_the_proxy_over_tls(rendered: list[dict[str, Any]]) -> None:
    route = _one(rendered, "Route")
    svc = _one(rendered, "Service", route["spec"]["to"]["name"])
    port = next(p for p in svc["spec"]["ports"] if p["name"] == route["spec"]["port"]["targetPort"])
    pod = _deployment(rendered, "dashboard")["spec"]["template"]["spec"]
    proxy_ports = {p["name"] for p in _container(pod, "oauth-proxy")["ports"]}
    assert port["targetPort"] in proxy_ports
    assert route["spec"]["tls"]["termination"] == "reencrypt"
    tls_secret = svc["metadata"]["annotations"]["service.beta.openshift.io/serving-cert-secret-name"]
    assert tls_secret in {v.get("secret", {}).get("secretName") for v in pod["volumes"]}


def test_oauth_client_may_redirect_to_the_route(rendered: list[dict[str, Any]]) -> None:
    sa = _one(rendered, "ServiceAccount", "cutover")
    ref = json.loads(sa["metadata"]["annotations"][
        "serviceaccounts.openshift.io/oauth-redirectreference.primary"])
    assert ref["reference"] == {"kind": "Route", "name": _one(rendered, "Route")["metadata"]["name"]}


# -- references between the pieces ------------------------------------------------

def test_services_select_pods_and_name_their_ports(rendered: list[dict[str, Any]]) -> None:
    pods = [d["spec"]["template"] for d in rendered if d["kind"] == "Deployment"]
    for svc in (d for d in rendered if d["kind"] == "Service"):
        sel = svc["spec"]["selector"].items()
        matching = [p for p in pods if sel <= p["metadata"]["labels"].items()]
        assert matching, f"Service {svc['metadata']['name']} selects no pods"
        names = {port["name"] for p in matching for c in p["spec"]["containers"]
                 for port in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in names, f"{svc['metadata']['name']}: {port}"


def test_servicemonitor_scrapes_the_worker_service(rendered: list[dict[str, Any]]) -> None:
    sm = _one(rendered, "ServiceMonitor")
    svc = _one(rendered, "Service", "cutover-worker-metrics")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert {e["port"] for e in sm["spec"]["endpoints"]} <= {p["name"] for p in svc["spec"]["ports"]}


def test_config_maps_resolve_and_no_secret_is_shipped(rendered: list[dict[str, Any]]) -> None:
    config_maps = {d["metadata"]["name"] for d in rendered if d["kind"] == "ConfigMap"}
    secrets_used: set[str] = set()
    for name, pod in _pod_specs(rendered):
        for vol in pod.get("volumes", []):
            if "configMap" in vol:
                assert vol["configMap"]["name"] in config_maps, (name, vol)
            if "secret" in vol:
                secrets_used.add(vol["secret"]["secretName"])
        for c in pod["containers"] + pod.get("initContainers", []):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secrets_used.add(ref["name"])
                assert not re.search(r"(?i)token|password|webhook|secret", e["name"]) \
                    or "value" not in e, f"{name}: {e['name']} has a literal value"
    assert not [d for d in rendered if d["kind"] == "Secret"], "secrets are never in git"
    assert secrets_used == {"cutover-db", "cutover-secrets", "cutover-dashboard-proxy",
                            "cutover-dashboard-tls"}


def test_every_pod_uses_the_cutover_service_account(rendered: list[dict[str, Any]]) -> None:
    accounts = {d["metadata"]["name"] for d in rendered if d["kind"] == "ServiceAccount"}
    bound = {s["name"] for d in rendered if d["kind"] == "RoleBinding" for s in d["subjects"]}
    for name, pod in _pod_specs(rendered):
        assert pod["serviceAccountName"] in accounts & bound, name


def test_router_role_allows_get_and_patch_on_routes(rendered: list[dict[str, Any]]) -> None:
    rules = [r for d in rendered if d["kind"] == "Role" for r in d["rules"]]
    routes = [r for r in rules if "routes" in r["resources"]]
    assert routes and {"get", "patch"} <= set(routes[0]["verbs"])


def test_pods_run_as_any_non_root_uid(rendered: list[dict[str, Any]]) -> None:
    for name, pod in _pod_specs(rendered):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, (name, c["name"])
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], (name, c["name"])
            # OpenShift assigns the UID: pinning one breaks the restricted SCC
            assert "runAsUser" not in sc and "runAsUser" not in pod["securityContext"]
            assert c.get("resources", {}).get("requests"), (name, c["name"])


def test_the_plan_in_the_config_map_validates(rendered: list[dict[str, Any]]) -> None:
    cm = next(d for d in rendered if d["kind"] == "ConfigMap"
              and d["metadata"]["name"].startswith("cutover-plan"))
    plan = parse_plan(cm["data"]["plan.yaml"], source="deploy/base/plan.yaml")
    assert plan.router.kind == "openshift-route" and plan.router.in_cluster
    pod = _deployment(rendered, "worker")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in _container(pod, "worker")["env"]}
    mount = next(m for m in _container(pod, "worker")["volumeMounts"] if m["name"] == "plan")
    assert env["CUTOVER_PLAN"] == f"{mount['mountPath']}/plan.yaml"
    secret_envs = {e["name"] for e in _container(pod, "worker")["env"] if "valueFrom" in e}
    assert plan.sources.prometheus and plan.sources.prometheus.bearer_token_env in secret_envs
    assert {c.url_env for c in plan.alerts.channels if c.url_env} <= secret_envs


# -- monitoring: rules and dashboard use what the worker exports ----------------------

_FUNCS = {"sum", "max", "min", "count", "rate", "increase", "delta", "time", "absent", "by",
          "without", "or", "and", "unless", "humanizePercentage", "on", "ignoring"}


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", expr)  # labels, ranges, strings
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if w not in _FUNCS}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "prometheus-rules.yaml").read_text())
    return [r for g in doc["spec"]["groups"] for r in g["rules"]]


def _dashboard_exprs() -> list[str]:
    dash = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_rules_and_dashboard_use_exported_metrics() -> None:
    used = {n for e in [r["expr"] for r in _rules()] + _dashboard_exprs()
            for n in _metric_names(e)}
    assert used, "no metric found"
    assert used <= set(METRIC_NAMES), used - set(METRIC_NAMES)


def test_alerts_cover_stall_failing_alerts_and_lost_leader() -> None:
    names = {r.get("alert") for r in _rules()}
    assert {"CutoverCollectorStalled", "CutoverAlertsFailing", "CutoverLeaderLost"} <= names
    for r in _rules():
        assert r["labels"]["severity"] in ("warning", "critical")
        assert r["annotations"]["summary"]


def test_grafana_dashboard_is_importable() -> None:
    dash = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and dash["uid"] and dash["title"]
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource"}
    for p in dash["panels"]:
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian: prometheus)")
    return path


def test_rules_and_dashboard_queries_parse(promtool: str, tmp_path: Path) -> None:
    doc = yaml.safe_load((DEPLOY / "prometheus-rules.yaml").read_text())
    dash_rules = [{"record": f"cutover:dashboard_query_{i}", "expr": e}
                  for i, e in enumerate(_dashboard_exprs())]
    groups = doc["spec"]["groups"] + [{"name": "dashboard", "rules": dash_rules}]
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    out = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


# promtool's unit tests: each alert fires on the series that should trigger it
ALERT_TESTS = [
    {"interval": "1m",
     "input_series": [
         {"series": 'cutover_leader{pod="w-0"}', "values": "0x20"},
         {"series": 'cutover_leader{pod="w-1"}', "values": "0x20"},
         {"series": 'cutover_alerts_failed{pod="w-0"}', "values": "0 2x20"},
         {"series": 'cutover_alerts_pending{pod="w-0"}', "values": "0x20"},
         {"series": 'cutover_collector_last_success_timestamp_seconds{source="prometheus",pod="w-0"}',
          "values": "0x20"},
         {"series": 'cutover_collector_lag_seconds{source="prometheus",pod="w-0"}',
          "values": "0+60x20"},
         {"series": 'cutover_last_round_timestamp_seconds{pod="w-0"}', "values": "0+60x20"},
         {"series": 'cutover_round_interval_seconds{pod="w-0"}', "values": "30x20"},
     ],
     "alert_rule_test": [
         {"eval_time": "3m", "alertname": "CutoverLeaderLost", "exp_alerts": [
             {"exp_labels": {"severity": "critical"}}]},
         {"eval_time": "1m", "alertname": "CutoverLeaderLost", "exp_alerts": []},
         {"eval_time": "8m", "alertname": "CutoverAlertsFailing", "exp_alerts": [
             {"exp_labels": {"severity": "critical"}}]},
         {"eval_time": "22m", "alertname": "CutoverCollectorStalled", "exp_alerts": [
             {"exp_labels": {"severity": "warning", "source": "prometheus"}}]},
         {"eval_time": "8m", "alertname": "CutoverCollectorStalled", "exp_alerts": []},
         {"eval_time": "18m", "alertname": "CutoverWorkerStuck", "exp_alerts": []},
         {"eval_time": "18m", "alertname": "CutoverAlertsBacklog", "exp_alerts": []},
     ]},
    {"interval": "1m",
     "input_series": [
         {"series": 'cutover_leader{pod="w-0"}', "values": "1x20"},
         {"series": 'cutover_leader{pod="w-1"}', "values": "1x20"},
         {"series": 'cutover_collector_ingested_total{source="gw",pod="w-0"}',
          "values": "0+100x30"},
         {"series": 'cutover_collector_rejected_total{source="gw",pod="w-0"}',
          "values": "0+10x30"},
         {"series": 'cutover_collector_strict_lines_total{source="gw",pod="w-0"}',
          "values": "0+5x70"},
         {"series": 'cutover_last_round_timestamp_seconds{pod="w-0"}', "values": "0x20"},
         {"series": 'cutover_round_interval_seconds{pod="w-0"}', "values": "30x20"},
         {"series": 'cutover_alerts_pending{pod="w-0"}', "values": "3x20"},
         {"series": 'cutover_collector_up{source="prom",pod="w-0"}', "values": "0x20"},
     ],
     "alert_rule_test": [
         {"eval_time": "2m", "alertname": "CutoverTwoLeaders", "exp_alerts": [
             {"exp_labels": {"severity": "critical"}}]},
         {"eval_time": "2m", "alertname": "CutoverLeaderLost", "exp_alerts": []},
         {"eval_time": "25m", "alertname": "CutoverLogLinesRejected", "exp_alerts": [
             {"exp_labels": {"severity": "warning", "source": "gw"}}]},
         {"eval_time": "20m", "alertname": "CutoverLogLinesSlow", "exp_alerts": []},
         {"eval_time": "6m", "alertname": "CutoverWorkerStuck", "exp_alerts": [
             {"exp_labels": {"severity": "warning"}}]},
         {"eval_time": "16m", "alertname": "CutoverAlertsBacklog", "exp_alerts": [
             {"exp_labels": {"severity": "warning"}}]},
         {"eval_time": "12m", "alertname": "CutoverCollectorStalled", "exp_alerts": [
             {"exp_labels": {"severity": "warning", "source": "prom"}}]},
     ]},
    {"interval": "1m",  # a fifth of the lines the slow way for an hour
     "input_series": [
         {"series": 'cutover_collector_ingested_total{source="gw",pod="w-0"}',
          "values": "0+100x90"},
         {"series": 'cutover_collector_strict_lines_total{source="gw",pod="w-0"}',
          "values": "0+20x90"}],
     "alert_rule_test": [
         {"eval_time": "20m", "alertname": "CutoverLogLinesSlow", "exp_alerts": []},
         {"eval_time": "40m", "alertname": "CutoverLogLinesSlow", "exp_alerts": [
             {"exp_labels": {"severity": "warning", "source": "gw"}}]}]},
    {"interval": "1m",  # failures long ago: the alert is over
     "input_series": [{"series": 'cutover_alerts_failed{pod="w-0"}', "values": "0 2x60"},
                      {"series": 'cutover_alerts_failed{pod="w-1"}', "values": "0 2x60"}],
     "alert_rule_test": [
         {"eval_time": "10m", "alertname": "CutoverAlertsFailing", "exp_alerts": [
             {"exp_labels": {"severity": "critical"}}]},
         {"eval_time": "45m", "alertname": "CutoverAlertsFailing", "exp_alerts": []}]},
    {"interval": "1m",
     "input_series": [{"series": 'up{job="other"}', "values": "1x10"}],
     "alert_rule_test": [
         {"eval_time": "6m", "alertname": "CutoverWorkerDown", "exp_alerts": [
             {"exp_labels": {"severity": "critical"}}]}]},
]


def test_alert_rules_fire_when_they_should(promtool: str, tmp_path: Path) -> None:
    doc = yaml.safe_load((DEPLOY / "prometheus-rules.yaml").read_text())
    groups = doc["spec"]["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        # promtool compares annotations exactly; they are templates, checked by
        # test_rules_and_dashboard_queries_parse, so here only firing is tested
        rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": ALERT_TESTS}))
    out = subprocess.run([promtool, "test", "rules", "test.yaml"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


# -- the image ------------------------------------------------------------------------

def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines()
                                             if not line.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip())
            for m in (re.match(r"\s*([A-Za-z]+)\s+(.*)", line) for line in joined.splitlines())
            if m]


def test_containerfile_is_a_non_root_ubi_python_image() -> None:
    steps = _instructions((ROOT / "Containerfile").read_text())
    known = {"FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "LABEL", "USER", "WORKDIR", "EXPOSE",
             "ENTRYPOINT", "CMD", "HEALTHCHECK", "VOLUME", "STOPSIGNAL", "SHELL", "ONBUILD"}
    assert {i for i, _ in steps} <= known
    assert steps[0][0] == "FROM"
    assert steps[0][1].startswith("registry.access.redhat.com/ubi9/python-311")
    users = [a for i, a in steps if i == "USER"]
    assert users and users[-1] not in ("0", "root") and users[-1].split(":")[0].isdigit(), \
        "the last USER must be a numeric non-root UID (OpenShift checks runAsNonRoot by UID)"
    assert any(i == "RUN" and "pip install ." in a for i, a in steps)
    assert ("ENTRYPOINT", '["cutover"]') in steps
    # arbitrary UID: written paths belong to group 0 and are group-writable
    assert any(i == "RUN" and "chgrp -R 0" in a and "g=u" in a for i, a in steps)


def test_containerfile_bakes_in_no_secret() -> None:
    steps = _instructions((ROOT / "Containerfile").read_text())
    for instruction, args in steps:
        if instruction in ("ENV", "ARG"):
            for name in re.findall(r"([A-Z_][A-Z0-9_]*)=", args):
                assert not re.search(r"TOKEN|PASSWORD|SECRET|WEBHOOK|KEY", name), name
        assert not re.search(r"hooks\.slack\.com|webhook\.office\.com|Bearer\s+\S", args)


def test_containerignore_keeps_the_build_context_clean() -> None:
    ignored = {line.strip() for line in (ROOT / ".containerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", "tests", "*.db", "**/__pycache__", ".env"} <= ignored
    assert not ignored & {"README.md", "pyproject.toml", "plans", "store", "cutover"}

"""An HTTP fake of the Kubernetes API server's paths that cutover calls, for the real
``kubernetes`` client (``kubernetes.client.Configuration(host=fake.url)``).

It behaves like the real one where cutover depends on it:

- ``GET`` and ``PATCH`` on ``/apis/route.openshift.io/v1/namespaces/{ns}/routes/{name}``
  and ``/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes/{name}``;
- Deployments and ReplicaSets (``/apis/apps/v1/...``) and Pods (``/api/v1/...``): ``GET``
  of one object or of a list (``?labelSelector=`` with ``=``, ``==``, ``!=``, ``in``,
  ``notin``, ``key`` and ``!key``), ``PATCH`` (strategic merge too, as for built-in kinds:
  lists of named items merged by name), and a Deployment's ``scale`` subresource;
  :meth:`FakeApiServer.roll_out` and :meth:`FakeApiServer.restart_pod` make the objects a
  rollout and a container restart leave behind, with real timestamps and conditions;
- ``application/merge-patch+json`` (RFC 7386: lists replaced whole, null deletes) and
  ``application/json-patch+json`` (RFC 6902, with ``test``); strategic merge is refused
  with 415 as for custom resources;
- ``metadata.resourceVersion`` bumped on every change; a patch that carries another
  resourceVersion answers 409 Conflict;
- 422 Invalid on Route weights outside 0..256 or more than 3 alternateBackends, on
  HTTPRoute weights outside 0..1,000,000, and on a failed ``test`` op;
- 401 without the bearer token (when one is set), 403 when ``forbidden``, 404 for an
  unknown object, any status on demand (:meth:`FakeApiServer.fail_next`);
- answers in the API server's ``Status`` form;
- a PATCH held in flight on demand (:meth:`FakeApiServer.hold_next_patch`), so a test can
  kill the process that sent it while it waits, then let the server apply it (a real
  API server applies a request it has read whole, whether its client is still there).

Each request is recorded (method, path, content type) so tests can check what was
called and how."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

__all__ = ["DEPLOYMENTS", "PODS", "REPLICASETS", "FakeApiServer", "Seen", "deployment",
           "http_route", "json_patch", "match_labels", "merge_patch", "route",
           "strategic_merge_patch", "write_kubeconfig"]

ROUTES = ("route.openshift.io", "v1", "routes")
HTTPROUTES = ("gateway.networking.k8s.io", "v1", "httproutes")
DEPLOYMENTS = ("apps", "v1", "deployments")
REPLICASETS = ("apps", "v1", "replicasets")
PODS = ("", "v1", "pods")
_PATH = re.compile(r"^/(?:apis/(?P<group>[^/]+)|api)/(?P<version>[^/]+)/namespaces/"
                   r"(?P<ns>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$")
KINDS = {ROUTES: "Route", HTTPROUTES: "HTTPRoute", DEPLOYMENTS: "Deployment",
         REPLICASETS: "ReplicaSet", PODS: "Pod"}
#: the authentication reviews (POST only; cluster-scoped)
REVIEWS = {"/apis/authentication.k8s.io/v1/selfsubjectreviews": "SelfSubjectReview",
           "/apis/authentication.k8s.io/v1/tokenreviews": "TokenReview"}
#: built-in kinds: listed, and patched by strategic merge too (custom resources are not)
BUILTIN = (DEPLOYMENTS, REPLICASETS, PODS)


class PatchError(Exception):
    def __init__(self, code: int, reason: str, message: str):
        self.code, self.reason, self.message = code, reason, message
        super().__init__(message)


# -- RFC 7386 and RFC 6902 -----------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge as the API server does it for the fields we serve: maps merge, and
    lists of named items (containers, env, ports) merge by ``name``; other lists are
    replaced whole."""
    if isinstance(patch, list) and isinstance(target, list) and all(
            isinstance(x, dict) and "name" in x for x in patch + target):
        out = [copy.deepcopy(x) for x in target]
        for item in patch:
            i = next((i for i, x in enumerate(out) if x["name"] == item["name"]), None)
            if i is None:
                out.append(copy.deepcopy(item))
            else:
                out[i] = strategic_merge_patch(out[i], item)
        return out
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = strategic_merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(422, "Invalid", f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    node = doc
    for p in parts[:-1]:
        if isinstance(node, list):
            node = node[_index(node, p, allow_end=False)]
        elif isinstance(node, dict) and p in node:
            node = node[p]
        else:
            raise PatchError(422, "Invalid", f"path /{'/'.join(parts)}: {p!r} not found")
    return node, parts[-1]


def _index(node: list[Any], p: str, *, allow_end: bool) -> int:
    if allow_end and p == "-":
        return len(node)
    if not p.isdigit() or int(p) > len(node) - (0 if allow_end else 1):
        raise PatchError(422, "Invalid", f"array index {p!r} out of range")
    return int(p)


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent, key = _parent(doc, parts)
    if isinstance(parent, list):
        return parent[_index(parent, key, allow_end=False)]
    if key not in parent:
        raise PatchError(422, "Invalid", f"path /{'/'.join(parts)} not found")
    return parent[key]


def _remove(doc: Any, parts: list[str]) -> Any:
    parent, key = _parent(doc, parts)
    if isinstance(parent, list):
        return parent.pop(_index(parent, key, allow_end=False))
    if key not in parent:
        raise PatchError(422, "Invalid", f"path /{'/'.join(parts)} not found")
    return parent.pop(key)


def _add(doc: Any, parts: list[str], value: Any, *, replace: bool = False) -> None:
    parent, key = _parent(doc, parts)
    if isinstance(parent, list):
        i = _index(parent, key, allow_end=not replace)
        if replace:
            parent[i] = value
        else:
            parent.insert(i, value)
    else:
        if replace and key not in parent:
            raise PatchError(422, "Invalid", f"replace: path /{'/'.join(parts)} not found")
        parent[key] = value


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError(400, "BadRequest", "a JSON patch is a list of operations")
    out = copy.deepcopy(doc)
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        if kind == "add":
            _add(out, parts, copy.deepcopy(op["value"]))
        elif kind == "replace":
            _add(out, parts, copy.deepcopy(op["value"]), replace=True)
        elif kind == "remove":
            _remove(out, parts)
        elif kind == "test":
            if _get(out, parts) != op.get("value"):
                raise PatchError(422, "Invalid", f"test failed at {op['path']}: expected "
                                 f"{op.get('value')!r}")
        elif kind in ("move", "copy"):
            value = _get(out, _pointer(op["from"]))
            if kind == "move":
                _remove(out, _pointer(op["from"]))
            _add(out, parts, copy.deepcopy(value))
        else:
            raise PatchError(422, "Invalid", f"unknown JSON patch op {kind!r}")
    return out


# -- validation like the API server's -------------------------------------------------

def _validate_route(obj: dict[str, Any]) -> None:
    spec = obj.get("spec") or {}
    to = spec.get("to") or {}
    backends = [("spec.to", to)] + [(f"spec.alternateBackends[{i}]", b) for i, b in
                                     enumerate(spec.get("alternateBackends") or [])]
    if len(backends) - 1 > 3:
        raise PatchError(422, "Invalid", f"Route.route.openshift.io {obj['metadata']['name']!r}"
                         f" is invalid: spec.alternateBackends: Too many: {len(backends) - 1}: "
                         "must have at most 3 items")
    for where, b in backends:
        w = b.get("weight")
        if w is not None and not (isinstance(w, int) and 0 <= w <= 256):
            raise PatchError(422, "Invalid", f"Route.route.openshift.io "
                             f"{obj['metadata']['name']!r} is invalid: {where}.weight: "
                             f"Invalid value: {w}: weight must be an integer between 0 and 256")


def _validate_httproute(obj: dict[str, Any]) -> None:
    for i, rule in enumerate((obj.get("spec") or {}).get("rules") or []):
        for j, ref in enumerate(rule.get("backendRefs") or []):
            w = ref.get("weight")
            if w is not None and not (isinstance(w, int) and 0 <= w <= 1_000_000):
                raise PatchError(422, "Invalid", f"HTTPRoute.gateway.networking.k8s.io "
                                 f"{obj['metadata']['name']!r} is invalid: spec.rules[{i}]."
                                 f"backendRefs[{j}].weight: Invalid value: {w}")


def _validate_deployment(obj: dict[str, Any]) -> None:
    replicas = (obj.get("spec") or {}).get("replicas")
    if replicas is not None and not (isinstance(replicas, int) and replicas >= 0):
        raise PatchError(422, "Invalid", f"Deployment.apps {obj['metadata']['name']!r} is "
                         f"invalid: spec.replicas: Invalid value: {replicas}: must be greater "
                         "than or equal to 0")


VALIDATE: dict[tuple[str, str, str], Callable[[dict[str, Any]], None]] = {
    ROUTES: _validate_route, HTTPROUTES: _validate_httproute,
    DEPLOYMENTS: _validate_deployment, REPLICASETS: lambda obj: None, PODS: lambda obj: None}


# -- objects ------------------------------------------------------------------------

def write_kubeconfig(path: Any, *, server: str, token: str) -> Any:
    """A kubeconfig at ``path`` (a Path) whose one context, ``ops``, reaches ``server``
    with ``token``, as the real client reads one; returns ``path``."""
    import yaml

    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ops",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "cutover", "user": {"token": token}}],
        "contexts": [{"name": "ops", "context": {"cluster": "fake", "user": "cutover"}}]}))
    return path


def route(name: str, *, namespace: str = "nanopore", baseline: str = "nanopore-monolith",
          baseline_weight: int | None = 100,
          alternates: list[dict[str, Any]] | None = None,
          annotations: dict[str, str] | None = None) -> dict[str, Any]:
    to: dict[str, Any] = {"kind": "Service", "name": baseline}
    if baseline_weight is not None:
        to["weight"] = baseline_weight
    spec: dict[str, Any] = {"host": f"{name}.apps.example.org", "to": to,
                            "port": {"targetPort": "http"}}
    if alternates is not None:
        spec["alternateBackends"] = alternates
    return {"apiVersion": "route.openshift.io/v1", "kind": "Route",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": dict(annotations or {
                             "haproxy.router.openshift.io/balance": "roundrobin"})},
            "spec": spec}


def http_route(name: str, *, namespace: str = "nanopore",
               rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"parentRefs": [{"name": "nanopore-gateway"}], "rules": rules}}


def _stamp(t: datetime) -> str:
    """RFC 3339 in UTC with whole seconds, as the API server writes times."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(name: str, namespace: str, *, labels: dict[str, str], created: datetime,
          owner: dict[str, Any] | None = None,
          annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                            "labels": dict(labels), "creationTimestamp": _stamp(created),
                            "generation": 1}
    if annotations:
        meta["annotations"] = dict(annotations)
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "controller": True,
                                    "blockOwnerDeletion": True}]
    return meta


def _template(labels: dict[str, str], image: str) -> dict[str, Any]:
    return {"metadata": {"labels": dict(labels)},
            "spec": {"containers": [{"name": "app", "image": image}]}}


def deployment(name: str, *, created: datetime, namespace: str = "nanopore",
               replicas: int = 2, labels: dict[str, str] | None = None,
               image: str = "registry.example.org/nanopore/app:1") -> dict[str, Any]:
    """A Deployment as created, before any rollout (:meth:`FakeApiServer.roll_out` makes
    its ReplicaSets and Pods and fills its status)."""
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": _meta(name, namespace, labels=labels, created=created),
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": _template(labels, image),
                     "strategy": {"type": "RollingUpdate"}},
            "status": {"observedGeneration": 1, "replicas": 0}}


_REQUIREMENT = re.compile(r"^\s*(?:(?P<not>!)\s*(?P<nkey>[^\s!=,()]+)"
                          r"|(?P<key>[^\s!=,()]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[^\s,()]*)"
                          r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?)\s*$")


def _split_selector(selector: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p for p in parts + [cur] if p.strip()]


def match_labels(selector: str, labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy a label selector in the API's text form; raises
    ``PatchError`` (400) on one the API server would refuse."""
    for req in _split_selector(selector):
        m = _REQUIREMENT.match(req)
        if m is None:
            raise PatchError(400, "BadRequest", f"unable to parse requirement: {req!r}")
        if m["not"]:
            if m["nkey"] in labels:
                return False
        elif m["op"]:
            has = labels.get(m["key"]) == m["value"]
            if has != (m["op"] != "!="):
                return False
        elif m["setop"]:
            values = {v.strip() for v in m["values"].split(",")}
            inside = labels.get(m["key"]) in values
            if inside != (m["setop"] == "in"):
                return False
        elif m["key"] not in labels:
            return False
    return True


class HeldPatch:
    """The next PATCH, held: ``arrived`` is set once the server has read it; it waits
    (at most ``timeout`` seconds) for :meth:`release`, then is applied, or with
    ``apply=False`` dropped with a 503."""

    def __init__(self, timeout: float = 60.0):
        self.arrived = threading.Event()
        self._released = threading.Event()
        self._apply = True
        self.timeout = timeout

    def release(self, *, apply: bool = True) -> None:
        self._apply = apply
        self._released.set()

    def wait(self) -> bool:
        """Called by the server; whether to apply the patch."""
        self.arrived.set()
        self._released.wait(self.timeout)
        return self._apply


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    content_type: str | None
    status: int


class FakeApiServer:
    """Start with ``with FakeApiServer() as api:``; ``api.url`` is the host to use."""

    def __init__(self, *, token: str | None = None):
        self.token = token
        self.objects: dict[tuple[tuple[str, str, str], str, str], dict[str, Any]] = {}
        self.requests: list[Seen] = []
        self.forbidden = False
        self.patch_delay = 0.0
        #: called (with the server) before each PATCH is processed: a concurrent edit
        self.before_patch: Callable[[FakeApiServer], None] | None = None
        self._fail: list[tuple[int, str | None]] = []
        self._fail_message: str | None = None
        self._held: list[HeldPatch] = []
        self._lock = threading.RLock()
        self._rv = 1000
        self._httpd: ThreadingHTTPServer | None = None
        #: bearer token -> user name, for SelfSubjectReview and TokenReview; a caller
        #: without a known token is ``identity``
        self.users: dict[str, str] = {}
        self.identity = "system:serviceaccount:nanopore:cutover"
        self.groups = ["system:authenticated"]

    # -- lifecycle
    def __enter__(self) -> FakeApiServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- what tests do to it
    def put(self, obj: dict[str, Any], *, kind: tuple[str, str, str] | None = None) -> None:
        """Store ``obj`` (its kind from its ``kind`` field when not given)."""
        kind = kind or _kind_of(obj)
        with self._lock:
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self.objects[(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def get(self, name: str, *, namespace: str = "nanopore",
            kind: tuple[str, str, str] = ROUTES) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.objects[(kind, namespace, name)])

    def items(self, kind: tuple[str, str, str], *, namespace: str = "nanopore",
              selector: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(o) for (k, ns, _), o in sorted(self.objects.items())
                    if k == kind and ns == namespace
                    and match_labels(selector, o["metadata"].get("labels") or {})]

    def edit(self, name: str, change: Callable[[dict[str, Any]], None], *,
             namespace: str = "nanopore", kind: tuple[str, str, str] = ROUTES) -> None:
        """Someone else's change (``oc patch`` by hand): applied, resourceVersion bumped."""
        with self._lock:
            obj = self.objects[(kind, namespace, name)]
            change(obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()

    def roll_out(self, name: str, *, started: datetime, available: datetime | None,
                 namespace: str = "nanopore", image: str | None = None) -> str:
        """A rollout of Deployment ``name`` as the controller leaves it: a new ReplicaSet
        (the next revision) created at ``started`` with its Pods, the old ReplicaSets
        scaled to 0 and their Pods gone, and the Deployment's status and conditions.
        ``available``: when every new Pod was Ready (None: the rollout is still going).
        Returns the new ReplicaSet's name."""
        with self._lock:
            dep = self.objects[(DEPLOYMENTS, namespace, name)]
            if image is not None:
                dep["spec"]["template"]["spec"]["containers"][0]["image"] = image
                dep["metadata"]["generation"] += 1
            owned = self._owned(REPLICASETS, namespace, dep)
            revision = 1 + max((int(rs["metadata"]["annotations"]
                                    ["deployment.kubernetes.io/revision"]) for rs in owned),
                               default=0)
            for rs in owned:
                self._retire(namespace, rs)
            rs = self._replica_set(dep, revision, started=started, available=available)
            self._set_status(dep, rs, started=started, available=available)
            return str(rs["metadata"]["name"])

    def restart_pod(self, name: str, *, died: datetime, ready: datetime | None,
                    namespace: str = "nanopore") -> None:
        """Pod ``name``'s container died at ``died`` and was restarted by the kubelet;
        ``ready``: when the Pod was Ready again (None: not yet)."""
        with self._lock:
            pod = self.objects[(PODS, namespace, name)]
            status = pod["status"]["containerStatuses"][0]
            running = (status.get("state") or {}).get("running") or {}
            status["restartCount"] += 1
            status["lastState"] = {"terminated": {
                "exitCode": 137, "reason": "Error",
                "startedAt": running.get("startedAt", pod["metadata"]["creationTimestamp"]),
                "finishedAt": _stamp(died)}}
            status["state"] = {"running": {"startedAt": _stamp(died)}}
            status["ready"] = ready is not None
            for cond in pod["status"]["conditions"]:
                if cond["type"] in ("Ready", "ContainersReady"):
                    cond["status"] = "True" if ready is not None else "False"
                    cond["lastTransitionTime"] = _stamp(ready or died)
            pod["metadata"]["resourceVersion"] = self._next_rv()

    def _owned(self, kind: tuple[str, str, str], namespace: str,
               owner: dict[str, Any]) -> list[dict[str, Any]]:
        uid = owner["metadata"]["uid"]
        return [o for (k, ns, _), o in self.objects.items() if k == kind and ns == namespace
                and any(r["uid"] == uid for r in o["metadata"].get("ownerReferences") or [])]

    def _retire(self, namespace: str, rs: dict[str, Any]) -> None:
        rs["spec"]["replicas"] = 0
        rs["status"] = {"replicas": 0, "observedGeneration": rs["metadata"]["generation"]}
        rs["metadata"]["resourceVersion"] = self._next_rv()
        for pod in self._owned(PODS, namespace, rs):
            del self.objects[(PODS, namespace, pod["metadata"]["name"])]

    def _replica_set(self, dep: dict[str, Any], revision: int, *, started: datetime,
                     available: datetime | None) -> dict[str, Any]:
        meta, replicas = dep["metadata"], dep["spec"]["replicas"]
        digest = hashlib.sha256(f"{meta['uid']}/{revision}".encode()).hexdigest()[:10]
        labels = {**dep["spec"]["selector"]["matchLabels"], "pod-template-hash": digest}
        ready = replicas if available is not None else 0
        template = copy.deepcopy(dep["spec"]["template"])
        template["metadata"]["labels"] = dict(labels)
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": _meta(f"{meta['name']}-{digest}", meta["namespace"], labels=labels,
                                created=started, owner=dep, annotations={
                                    "deployment.kubernetes.io/revision": str(revision),
                                    "deployment.kubernetes.io/desired-replicas":
                                        str(replicas)}),
              "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                       "template": template},
              "status": {"replicas": replicas, "fullyLabeledReplicas": replicas,
                         "readyReplicas": ready, "availableReplicas": ready,
                         "observedGeneration": 1}}
        self.put(rs)
        for i in range(replicas):
            self.put(_pod(rs, f"{rs['metadata']['name']}-{digest[i % 10:][:5]}{i}",
                          started=started, ready=available))
        return rs

    def _set_status(self, dep: dict[str, Any], rs: dict[str, Any], *, started: datetime,
                    available: datetime | None) -> None:
        replicas, rs_name = dep["spec"]["replicas"], rs["metadata"]["name"]
        ready = replicas if available is not None else 0
        done = available is not None
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"], "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
            **({} if done else {"unavailableReplicas": replicas}),
            "conditions": [
                {"type": "Available", "status": "True" if done else "False",
                 "reason": "MinimumReplicasAvailable" if done else "MinimumReplicasUnavailable",
                 "message": "Deployment has minimum availability." if done
                 else "Deployment does not have minimum availability.",
                 "lastUpdateTime": _stamp(available or started),
                 "lastTransitionTime": _stamp(available or started)},
                {"type": "Progressing", "status": "True",
                 "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                 "message": f'ReplicaSet "{rs_name}" has successfully progressed.' if done
                 else f'ReplicaSet "{rs_name}" is progressing.',
                 "lastUpdateTime": _stamp(available or started),
                 "lastTransitionTime": _stamp(started)}]}
        dep["metadata"]["resourceVersion"] = self._next_rv()

    def fail_next(self, status: int, *, method: str | None = None, times: int = 1,
                  message: str | None = None) -> None:
        """The next ``times`` requests (of ``method``) answer ``status``; ``message`` is the
        Status message, where ``{authorization}`` stands for the request's header (an API
        server, or a proxy before it, that quotes what it was sent)."""
        with self._lock:
            self._fail.extend([(status, method)] * times)
            self._fail_message = message

    def hold_next_patch(self, *, timeout: float = 60.0) -> HeldPatch:
        """Hold the next PATCH in flight until the returned handle is released."""
        held = HeldPatch(timeout)
        with self._lock:
            self._held.append(held)
        return held

    def count(self, method: str, *, status: int | None = None) -> int:
        return sum(1 for r in self.requests
                   if r.method == method and (status is None or r.status == status))

    # -- serving
    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        if self.token is not None and headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        if self.forbidden:
            return _status(403, "Forbidden", f"{method.lower()} is forbidden: User "
                           "\"system:serviceaccount:nanopore:cutover\" cannot do it")
        with self._lock:
            for i, (status, only) in enumerate(self._fail):
                if only is None or only == method:
                    del self._fail[i]
                    said = (self._fail_message or f"injected failure {status}").replace(
                        "{authorization}", str(headers.get("Authorization")))
                    return _status(status, "InternalError" if status >= 500 else "Failure",
                                   said)
        bare, _, query = path.partition("?")
        if bare in REVIEWS:
            if method != "POST":
                return _status(405, "MethodNotAllowed", f"{method} not allowed on a review")
            return self._review(REVIEWS[bare], headers, body)
        if method == "POST":
            return _status(405, "MethodNotAllowed", "POST not allowed")
        m = _PATH.match(bare)
        kind = (m["group"] or "", m["version"], m["plural"]) if m else None
        if m is None or kind not in KINDS:
            return _status(404, "NotFound", "the server could not find the requested resource")
        assert kind is not None
        if m["name"] is None:
            if method != "GET" or kind not in BUILTIN:
                return _status(405, "MethodNotAllowed", f"{method} not allowed on a list")
            return self._list(kind, m["ns"], parse_qs(query).get("labelSelector", [""])[0])
        key = (kind, m["ns"], m["name"])
        if m["sub"] is not None:
            if (kind, m["sub"]) != (DEPLOYMENTS, "scale"):
                return _status(404, "NotFound", "the server could not find the requested "
                               "resource")
            return self._scale(method, key, headers.get("Content-Type", ""), body)
        if method == "GET":
            with self._lock:
                if key not in self.objects:
                    return _not_found(kind, m["name"])
                return 200, copy.deepcopy(self.objects[key])
        return self._patch(key, m["name"], headers.get("Content-Type", ""), body)

    def _review(self, kind: str, headers: Any, body: bytes) -> tuple[int, Any]:
        """SelfSubjectReview: who the caller's token is; TokenReview: who spec.token is
        (unknown tokens are not authenticated, as the real API answers)."""
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return _status(400, "BadRequest", "the body is not JSON")
        if doc.get("kind") not in (None, kind):
            return _status(400, "BadRequest", f"expected kind {kind}, got {doc.get('kind')}")
        answer = {"apiVersion": "authentication.k8s.io/v1", "kind": kind,
                  "metadata": {"creationTimestamp": None}}
        if kind == "SelfSubjectReview":
            caller = (headers.get("Authorization") or "").removeprefix("Bearer ").strip()
            name = self.users.get(caller, self.identity)
            answer["status"] = {"userInfo": {"username": name, "groups": self.groups}}
            return 201, answer
        token = (doc.get("spec") or {}).get("token")
        if not token:
            return _status(422, "Invalid", "spec.token: Required value")
        name = self.users.get(token)
        answer["spec"] = {"token": token}
        answer["status"] = ({"authenticated": True, "user": {"username": name,
                                                               "groups": self.groups}}
                            if name else {"authenticated": False,
                                          "error": "token lookup failed"})
        return 201, answer

    def _list(self, kind: tuple[str, str, str], namespace: str,
              selector: str) -> tuple[int, Any]:
        try:
            items = self.items(kind, namespace=namespace, selector=selector)
        except PatchError as e:
            return _status(e.code, e.reason, e.message)
        version = f"{kind[0]}/{kind[1]}" if kind[0] else kind[1]
        return 200, {"kind": f"{KINDS[kind]}List", "apiVersion": version,
                     "metadata": {"resourceVersion": str(self._rv)}, "items": items}

    def _scale(self, method: str, key: Any, ctype: str, body: bytes) -> tuple[int, Any]:
        with self._lock:
            if key not in self.objects:
                return _not_found(key[0], key[2])
            if method == "GET":
                return 200, _scale_of(self.objects[key])
            try:
                new = _apply(_scale_of(self.objects[key]), ctype, body, builtin=True)
                dep = self.objects[key]
                _check_rv(new, dep, key)
                changed = merge_patch(dep, {"spec": {"replicas": new["spec"]["replicas"]}})
                _validate_deployment(changed)
            except PatchError as e:
                return _status(e.code, e.reason, e.message)
            except (ValueError, KeyError, TypeError) as e:
                return _status(400, "BadRequest", f"invalid scale patch: {e}")
            changed["metadata"]["resourceVersion"] = self._next_rv()
            self.objects[key] = changed
            return 200, _scale_of(changed)

    def _patch(self, key: Any, name: str, ctype: str, body: bytes) -> tuple[int, Any]:
        if self.patch_delay:
            time.sleep(self.patch_delay)
        if self.before_patch is not None:
            self.before_patch(self)
        with self._lock:
            held = self._held.pop(0) if self._held else None
        if held is not None and not held.wait():
            return _status(503, "ServiceUnavailable", "the patch was dropped in flight")
        with self._lock:
            if key not in self.objects:
                return _not_found(key[0], name)
            current = self.objects[key]
            try:
                new = _apply(current, ctype, body, builtin=key[0] in BUILTIN)
                _check_rv(new, current, key)
                VALIDATE[key[0]](new)
            except PatchError as e:
                return _status(e.code, e.reason, e.message)
            except ValueError as e:
                return _status(400, "BadRequest", f"invalid JSON: {e}")
            new["metadata"]["resourceVersion"] = self._next_rv()
            self.objects[key] = new
            return 200, copy.deepcopy(new)


def _apply(current: dict[str, Any], ctype: str, body: bytes, *, builtin: bool) -> Any:
    ctype = ctype.split(";", 1)[0].strip()
    doc = json.loads(body or b"null")
    if ctype == "application/merge-patch+json":
        return merge_patch(current, doc)
    if ctype == "application/json-patch+json":
        return json_patch(current, doc)
    if ctype == "application/strategic-merge-patch+json" and builtin:
        return strategic_merge_patch(current, doc)
    accepted = "application/json-patch+json, application/merge-patch+json" + (
        ", application/strategic-merge-patch+json" if builtin else "")
    raise PatchError(415, "UnsupportedMediaType", f"the body of the request was in an unknown "
                     f"format - accepted media types include: {accepted} (got {ctype!r})")


def _check_rv(new: dict[str, Any], current: dict[str, Any], key: Any) -> None:
    sent_rv = (new.get("metadata") or {}).get("resourceVersion")
    if sent_rv is not None and sent_rv != current["metadata"]["resourceVersion"]:
        raise PatchError(409, "Conflict", f"Operation cannot be fulfilled on "
                         f"{KINDS[key[0]].lower()}s {key[2]!r}: the object has been "
                         "modified; please apply your changes to the latest "
                         "version and try again")


def _kind_of(obj: dict[str, Any]) -> tuple[str, str, str]:
    for kind, name in KINDS.items():
        version = f"{kind[0]}/{kind[1]}" if kind[0] else kind[1]
        if obj.get("kind") == name and obj.get("apiVersion") == version:
            return kind
    raise ValueError(f"unknown kind {obj.get('apiVersion')}/{obj.get('kind')}")


def _scale_of(dep: dict[str, Any]) -> dict[str, Any]:
    meta = dep["metadata"]
    labels = dep["spec"]["selector"]["matchLabels"]
    return {"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "uid": meta["uid"], "resourceVersion": meta["resourceVersion"],
                         "creationTimestamp": meta["creationTimestamp"]},
            "spec": {"replicas": dep["spec"]["replicas"]},
            "status": {"replicas": (dep.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))}}


def _pod(rs: dict[str, Any], name: str, *, started: datetime,
         ready: datetime | None) -> dict[str, Any]:
    meta = rs["metadata"]
    up, when = ("True", ready) if ready is not None else ("False", started)
    container = rs["spec"]["template"]["spec"]["containers"][0]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": _meta(name, meta["namespace"], labels=meta["labels"], created=started,
                              owner=rs),
            "spec": copy.deepcopy(rs["spec"]["template"]["spec"]),
            "status": {
                "phase": "Running", "startTime": _stamp(started),
                "conditions": [
                    {"type": "PodScheduled", "status": "True",
                     "lastTransitionTime": _stamp(started)},
                    {"type": "Initialized", "status": "True",
                     "lastTransitionTime": _stamp(started)},
                    {"type": "ContainersReady", "status": up, "lastTransitionTime": _stamp(when)},
                    {"type": "Ready", "status": up, "lastTransitionTime": _stamp(when)}],
                "containerStatuses": [{
                    "name": container["name"], "image": container["image"],
                    "imageID": f"{container['image']}@sha256:{'0' * 64}",
                    "ready": ready is not None, "restartCount": 0, "started": True,
                    "state": {"running": {"startedAt": _stamp(started)}}}]}}


def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": message, "reason": reason, "code": code}


def _not_found(kind: tuple[str, str, str], name: str) -> tuple[int, dict[str, Any]]:
    return _status(404, "NotFound", f"{kind[2]}.{kind[0]} {name!r} not found")


def _handler(server: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True   # headers and body go out as two writes

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.command in ("GET", "PATCH", "POST"):
                code, payload = server.handle(self.command, self.path, self.headers, body)
            else:
                code, payload = _status(405, "MethodNotAllowed", f"{self.command} not allowed")
            server.requests.append(Seen(self.command, self.path,
                                        self.headers.get("Content-Type"), code))
            data = json.dumps(payload).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True   # its client was killed: the change stands

        do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve

    return Handler

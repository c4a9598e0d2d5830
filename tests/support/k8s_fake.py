"""An HTTP fake of the Kubernetes API server's Route and HTTPRoute paths, for the real
``kubernetes`` client (``kubernetes.client.Configuration(host=fake.url)``).

It behaves like the real one where cutover depends on it:

- ``GET`` and ``PATCH`` on ``/apis/route.openshift.io/v1/namespaces/{ns}/routes/{name}``
  and ``/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes/{name}``;
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
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeApiServer", "Seen", "http_route", "json_patch", "merge_patch", "route"]

ROUTES = ("route.openshift.io", "v1", "routes")
HTTPROUTES = ("gateway.networking.k8s.io", "v1", "httproutes")
_PATH = re.compile(r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/"
                   r"(?P<plural>[^/]+)/(?P<name>[^/]+)$")
KINDS = {ROUTES: "Route", HTTPROUTES: "HTTPRoute"}


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


VALIDATE: dict[tuple[str, str, str], Callable[[dict[str, Any]], None]] = {
    ROUTES: _validate_route, HTTPROUTES: _validate_httproute}


# -- objects ------------------------------------------------------------------------

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
        self._held: list[HeldPatch] = []
        self._lock = threading.RLock()
        self._rv = 1000
        self._httpd: ThreadingHTTPServer | None = None

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
    def put(self, obj: dict[str, Any], *, kind: tuple[str, str, str] = ROUTES) -> None:
        with self._lock:
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self.objects[(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def get(self, name: str, *, namespace: str = "nanopore",
            kind: tuple[str, str, str] = ROUTES) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.objects[(kind, namespace, name)])

    def edit(self, name: str, change: Callable[[dict[str, Any]], None], *,
             namespace: str = "nanopore", kind: tuple[str, str, str] = ROUTES) -> None:
        """Someone else's change (``oc patch`` by hand): applied, resourceVersion bumped."""
        with self._lock:
            obj = self.objects[(kind, namespace, name)]
            change(obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()

    def fail_next(self, status: int, *, method: str | None = None, times: int = 1) -> None:
        with self._lock:
            self._fail.extend([(status, method)] * times)

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
                    return _status(status, "InternalError" if status >= 500 else "Failure",
                                   f"injected failure {status}")
        m = _PATH.match(path.split("?", 1)[0])
        kind = (m["group"], m["version"], m["plural"]) if m else None
        if m is None or kind not in KINDS:
            return _status(404, "NotFound", "the server could not find the requested resource")
        assert kind is not None
        key = (kind, m["ns"], m["name"])
        if method == "GET":
            with self._lock:
                if key not in self.objects:
                    return _not_found(kind, m["name"])
                return 200, copy.deepcopy(self.objects[key])
        return self._patch(key, m["name"], headers.get("Content-Type", ""), body)

    def _patch(self, key: Any, name: str, ctype: str, body: bytes) -> tuple[int, Any]:
        if self.patch_delay:
            time.sleep(self.patch_delay)
        if self.before_patch is not None:
            self.before_patch(self)
        with self._lock:
            held = self._held.pop(0) if self._held else None
        if held is not None and not held.wait():
            return _status(503, "ServiceUnavailable", "the patch was dropped in flight")
        ctype = ctype.split(";", 1)[0].strip()
        with self._lock:
            if key not in self.objects:
                return _not_found(key[0], name)
            current = self.objects[key]
            try:
                doc = json.loads(body or b"null")
                if ctype == "application/merge-patch+json":
                    new = merge_patch(current, doc)
                elif ctype == "application/json-patch+json":
                    new = json_patch(current, doc)
                else:
                    return _status(415, "UnsupportedMediaType",
                                   f"the body of the request was in an unknown format - "
                                   f"accepted media types include: application/json-patch+json, "
                                   f"application/merge-patch+json (got {ctype!r})")
                sent_rv = (new.get("metadata") or {}).get("resourceVersion")
                if sent_rv is not None and sent_rv != current["metadata"]["resourceVersion"]:
                    raise PatchError(409, "Conflict", f"Operation cannot be fulfilled on "
                                     f"{KINDS[key[0]].lower()}s {name!r}: the object has been "
                                     "modified; please apply your changes to the latest "
                                     "version and try again")
                VALIDATE[key[0]](new)
            except PatchError as e:
                return _status(e.code, e.reason, e.message)
            except ValueError as e:
                return _status(400, "BadRequest", f"invalid JSON: {e}")
            new["metadata"]["resourceVersion"] = self._next_rv()
            self.objects[key] = new
            return 200, copy.deepcopy(new)


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
            if self.command in ("GET", "PATCH"):
                code, payload = server.handle(self.command, self.path, self.headers, body)
            else:
                code, payload = _status(405, "MethodNotAllowed", f"{self.command} not allowed")
            server.requests.append(Seen(self.command, self.path,
                                        self.headers.get("Content-Type"), code))
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve

    return Handler

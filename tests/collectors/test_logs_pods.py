"""Pod logs through the real kubernetes client, against an HTTP fake of the API server's
pod list and pod log paths (sinceSeconds and timestamps as the kubelet serves them)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client
from sqlalchemy.engine import Engine

from collectors.logs import LogCollector
from collectors.logs.podlogs import kube_time_ns
from slo.plan import LogSource, LogTemplate, Plan, PodLogs
from store.db import session_scope
from store.rollups import rollup_totals
from tests.collectors.test_logs_support import T0, expected, json_line, requests, with_logs
from tests.collectors.test_router_logs import CUSTOM_HOST, custom_host, rfc3164

#: how an IngressController's router pods are labelled
ROUTER_SELECTOR = "ingresscontroller.operator.openshift.io/deployment-ingresscontroller=default"


@dataclass
class FakeCluster:
    now: datetime
    pods: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)
    seen: list[dict[str, list[str]]] = field(default_factory=list)
    forbidden: bool = False
    #: the log container's start and what the container before it wrote (``previous``)
    started: dict[str, datetime] = field(default_factory=dict)
    previous: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)
    container: str | None = None
    selector: str = "app=gateway"

    def restart(self, pod: str, at: datetime) -> None:
        """The pod's log container restarts at ``at``: its log so far becomes the previous one."""
        self.previous[pod] = self.pods[pod]
        self.pods[pod] = []
        self.started[pod] = at


def _stamp(t: datetime, extra_ns: int = 0) -> str:
    # RFC3339Nano as the kubelet writes it: trailing zeros trimmed
    frac = f"{t.microsecond * 1000 + extra_ns:09d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _handler(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlparse(self.path)
            q = parse_qs(url.query)
            parts = url.path.strip("/").split("/")
            if cluster.forbidden:
                status = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                          "reason": "Forbidden", "code": 403, "message": "pods is forbidden"}
                self._send(403, json.dumps(status).encode(), "application/json")
                return
            # /api/v1/namespaces/<ns>/pods[/<name>/log]
            if parts[:3] == ["api", "v1", "namespaces"] and parts[4:] == ["pods"]:
                assert q.get("labelSelector") == [cluster.selector]
                items = [{"metadata": {"name": n, "namespace": parts[3]},
                          "status": {"containerStatuses": [{
                              "name": cluster.container or "gateway", "image": "x", "imageID": "",
                              "ready": True, "restartCount": int(n in cluster.previous),
                              "state": {"running": {"startedAt": cluster.started.get(
                                  n, T0 - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}}}]}}
                         for n in cluster.pods]
                body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
                self._send(200, json.dumps(body).encode(), "application/json")
                return
            if len(parts) == 7 and parts[6] == "log":
                cluster.seen.append(q)
                since = int(q["sinceSeconds"][0]) if "sinceSeconds" in q else None
                assert q.get("container") == ([cluster.container] if cluster.container else None)
                if q.get("previous") == ["true"]:
                    lines = cluster.previous[parts[5]]
                else:
                    lines = cluster.pods[parts[5]]
                if since is not None:
                    # the kubelet starts at a whole second
                    cut = (cluster.now - timedelta(seconds=since)).replace(microsecond=0)
                    lines = [x for x in lines if x[0] >= cut]
                text = "".join(f"{_stamp(t)} {line}\n" for t, line in lines)
                self._send(200, text.encode(), "text/plain")
                return
            self._send(404, b"{}", "application/json")

    return Handler


@pytest.fixture
def cluster() -> Iterator[tuple[FakeCluster, Any]]:
    fake = FakeCluster(now=T0 + timedelta(minutes=20))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{server.server_address[1]}"
    api = client.CoreV1Api(client.ApiClient(cfg))
    yield fake, api
    server.shutdown()
    server.server_close()


def _collector(plan: Plan, engine: Engine, api: Any) -> LogCollector:
    src = LogSource(pods=PodLogs(namespace="nanopore", label_selector="app=gateway"),
                    format="json")
    return LogCollector(plan=with_logs(plan, src), engine=engine, core_api=api)


def test_pod_logs_resume_from_the_kubelet_timestamp(plan: Plan, engine: Engine,
                                                    cluster: tuple[FakeCluster, Any]) -> None:
    fake, api = cluster
    reqs = requests(400, spread_s=300)
    # several lines share one timestamp, across the pass boundary too
    fake.pods["gw-a"] = [(r.at.replace(microsecond=0), json_line(r)) for r in reqs[:200]]
    fake.pods["gw-b"] = [(r.at, json_line(r)) for r in reqs[200:300]]
    collector = _collector(plan, engine, api)
    report = collector.collect(now=fake.now)
    assert report.ok, report.problems
    assert report.items > 0
    assert "sinceSeconds" not in fake.seen[0]          # first pass: everything there is
    fake.pods["gw-b"] += [(r.at, json_line(r)) for r in reqs[300:]]
    fake.now += timedelta(minutes=1)
    report = collector.collect(now=fake.now)
    assert report.ok, report.problems
    assert all("sinceSeconds" in q and q["timestamps"] == ["true"] for q in fake.seen[2:])
    collector.collect(now=fake.now)                     # nothing new: nothing twice
    with session_scope(engine) as s:
        totals = rollup_totals(session=s)
    assert totals == {sv: t["requests"] for sv, t in expected(reqs).items()}


def test_a_forbidden_pod_list_is_a_failed_source_not_a_crash(
        plan: Plan, sqlite_engine: Engine, cluster: tuple[FakeCluster, Any]) -> None:
    fake, api = cluster
    fake.forbidden = True
    report = _collector(plan, sqlite_engine, api).collect(now=fake.now)
    assert not report.ok
    assert "HTTP 403" in report.problems[0]


def test_kubelet_timestamps_compare_as_times_not_text() -> None:
    a = kube_time_ns("2026-11-26T12:00:00.5Z")
    b = kube_time_ns("2026-11-26T12:00:00.123456789Z")
    assert a > b
    assert kube_time_ns("2026-11-26T12:00:00Z") == int(T0.timestamp()) * 10**9


def test_router_sidecars_across_replicas_and_a_restart(plan: Plan, engine: Engine,
                                                       cluster: tuple[FakeCluster, Any]) -> None:
    """The router pods' ``logs`` sidecar (syslog-prefixed HAProxy lines in a custom
    httpLogFormat), three replicas, one whose sidecar restarts between two passes: every
    line counted once, the old container's last lines read from its previous log."""
    fake, api = cluster
    fake.container, fake.selector = "logs", ROUTER_SELECTOR
    reqs = requests(900, spread_s=600)
    pods = ["router-default-7c9f-a", "router-default-7c9f-b", "router-default-7c9f-c"]
    per_pod = {p: [r for i, r in enumerate(reqs) if i % 3 == k] for k, p in enumerate(pods)}

    def lines(rs: list) -> list[tuple[datetime, str]]:  # type: ignore[type-arg]
        return [(r.at, rfc3164(custom_host(r))) for r in rs]

    for p in pods:
        fake.pods[p] = lines(per_pod[p][:100])
    src = LogSource(pods=PodLogs(namespace="openshift-ingress", label_selector=ROUTER_SELECTOR,
                                 container="logs"), format=LogTemplate(haproxy=CUSTOM_HOST))
    collector = LogCollector(plan=with_logs(plan, src), engine=engine, core_api=api)
    assert collector.collect(now=fake.now).ok
    # b's sidecar writes 100 more lines, then restarts and its new container writes the rest
    restarted = pods[1]
    fake.pods[restarted] += lines(per_pod[restarted][100:200])
    fake.restart(restarted, per_pod[restarted][200].at - timedelta(seconds=1))
    fake.pods[restarted] = lines(per_pod[restarted][200:])
    for p in (pods[0], pods[2]):
        fake.pods[p] += lines(per_pod[p][100:])
    fake.now += timedelta(minutes=1)
    report = collector.collect(now=fake.now)
    assert report.ok, report.problems
    assert any(q.get("previous") == ["true"] for q in fake.seen)
    collector.collect(now=fake.now)                      # nothing new: nothing twice
    with session_scope(engine) as s:
        assert rollup_totals(session=s) == {sv: t["requests"] for sv, t in expected(reqs).items()}

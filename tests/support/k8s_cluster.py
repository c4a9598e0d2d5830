"""A cluster's controllers, as far as the baseline's capacity needs them, over the API
fake: a Deployment scaled up gets its new replicas ready one at a time, ``step``
seconds apart (the ReplicaSet controller creating Pods, the kubelet starting them, the
readiness probe passing), as ``status.readyReplicas`` says on the real one.

    with FakeApiServer() as api, FakeCluster(api, step=0.1) as cluster:
        cluster.monolith(ready=1, replicas=1)

``cluster.stuck = True`` stands for Pods that never come ready (no node has room, an
image that does not pull): the replicas stay as they are."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from tests.support.k8s_fake import DEPLOYMENTS, FakeApiServer, deployment

__all__ = ["FakeCluster"]


class FakeCluster:
    def __init__(self, api: FakeApiServer, *, step: float = 0.1, namespace: str = "nanopore"):
        self.api = api
        self.step = step
        self.namespace = namespace
        self.stuck = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: dict[str, float] = {}

    def __enter__(self) -> FakeCluster:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def monolith(self, *, ready: int, replicas: int | None = None,
                 name: str = "nanopore-monolith") -> None:
        """The baseline's Deployment with ``replicas`` wanted, ``ready`` of them ready."""
        replicas = ready if replicas is None else replicas
        dep = deployment(name, created=datetime(2026, 10, 1, tzinfo=UTC),
                         namespace=self.namespace, replicas=replicas)
        dep["status"] = _status(replicas=replicas, ready=ready)
        self.api.put(dep)

    def ready(self, name: str = "nanopore-monolith") -> int:
        return int(self.api.get(name, namespace=self.namespace, kind=DEPLOYMENTS)
                   ["status"].get("readyReplicas") or 0)

    def _run(self) -> None:
        while not self._stop.wait(min(self.step, 0.02) or 0.02):
            if not self.stuck:
                self._tick()

    def _tick(self) -> None:
        for dep in self.api.items(DEPLOYMENTS, namespace=self.namespace):
            name = dep["metadata"]["name"]
            want = int(dep["spec"].get("replicas") or 0)
            ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
            if ready == want:
                self._last.pop(name, None)
                continue
            now = time.monotonic()
            if now - self._last.setdefault(name, now) < self.step:
                continue
            self._last[name] = now
            ready = ready + 1 if ready < want else want   # scaled down: gone at once
            self.api.edit(name, lambda d, r=ready, w=want: d.update(
                status=_status(replicas=w, ready=r)), namespace=self.namespace,
                kind=DEPLOYMENTS)


def _status(*, replicas: int, ready: int) -> dict[str, Any]:
    out: dict[str, Any] = {"observedGeneration": 1, "replicas": replicas,
                           "updatedReplicas": replicas, "readyReplicas": ready,
                           "availableReplicas": ready}
    if ready < replicas:
        out["unavailableReplicas"] = replicas - ready
    return out

"""Gateway logs read from the pods' stdout through the Kubernetes API.

For gateways that log to stdout (as containers should), the lines come from
``read_namespaced_pod_log`` with ``timestamps=true``: the kubelet prefixes each line with
its RFC 3339 time (nanoseconds), which is the checkpoint.  The API takes a time to start
from only in whole seconds (``sinceSeconds`` in this client), so a pass asks from a little
before the checkpoint and drops what it already has: lines older than the checkpoint's
time, and at that very time the number of lines already counted (``offset``).  The
checkpoint is committed with the rollups, as for files."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

from collectors.logs.ingest import Ingestor
from collectors.logs.tail import Commit, TailStats
from slo.errors import SourceError
from slo.plan import PodLogs
from store.rollups import Checkpoint

__all__ = ["PodTail", "kube_time_ns", "load_core_api"]

log = logging.getLogger(__name__)


def kube_time_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time as the kubelet writes it
    (RFC3339Nano trims trailing zeros, so these strings do not sort as text)."""
    text = text.strip()
    frac = 0
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits):]
        frac = int((digits + "000000000")[:9])
        text = head + zone
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + frac


def load_core_api(*, kubeconfig: str | None, context: str | None, in_cluster: bool) -> Any:
    """A CoreV1Api from the kubeconfig (or the pod's service account)."""
    from kubernetes import client, config

    try:
        if in_cluster:
            config.load_incluster_config()
        else:
            config.load_kube_config(config_file=kubeconfig, context=context)
    except Exception as e:  # the kubernetes loader raises plain exceptions
        raise SourceError("kubernetes", f"could not load the cluster credentials: {e}") from e
    return client.CoreV1Api()


class PodTail:
    """One pass over the pods of one pod-log source."""

    def __init__(self, *, source: str, pods: PodLogs, api: Any, ingestor: Ingestor,
                 commit: Commit, checkpoints: dict[str, Checkpoint], now: datetime):
        self.source = source
        self.pods = pods
        self.api = api
        self.ingestor = ingestor
        self.commit = commit
        self.checkpoints = checkpoints
        self.now = now
        self.stats = TailStats()

    def run(self, *, start_minute: int | None, end_minute: int | None) -> TailStats:
        try:
            listed = self.api.list_namespaced_pod(self.pods.namespace,
                                                  label_selector=self.pods.label_selector)
        except Exception as e:  # ApiException, urllib3 errors: the source did not answer
            raise SourceError(self.source, f"could not list pods: {_why(e)}") from e
        pods = sorted(listed.items, key=lambda p: p.metadata.name)
        if not pods:
            self.stats.problems.append(
                f"{self.source}: no pod matches {self.pods.label_selector!r} "
                f"in {self.pods.namespace}")
        for pod in pods:
            name = pod.metadata.name
            if self._restarted_since_checkpoint(pod):
                # the container restarted since the last pass: what the old one wrote
                # after the checkpoint is in its previous log, read first
                self._pod(name, start_minute=start_minute, end_minute=end_minute, previous=True)
            self._pod(name, start_minute=start_minute, end_minute=end_minute)
        return self.stats

    def _restarted_since_checkpoint(self, pod: Any) -> bool:
        cp = self.checkpoints.get(pod.metadata.name)
        if cp is None or not cp.pod_time:
            return False
        started = _container_started(pod, self.pods.container)
        return started is not None and started.timestamp() * 1e9 > kube_time_ns(cp.pod_time)

    def _since_seconds(self, cp: Checkpoint | None, start_minute: int | None) -> int | None:
        now_s = self.now.timestamp()
        if cp is not None and cp.pod_time:
            return max(1, math.ceil(now_s - kube_time_ns(cp.pod_time) / 1e9) + 2)
        if start_minute is not None:
            return max(1, math.ceil(now_s - start_minute * 60) + 1)
        return None

    def _pod(self, name: str, *, start_minute: int | None, end_minute: int | None,
             previous: bool = False) -> None:
        cp = self.checkpoints.get(name)
        kwargs: dict[str, Any] = {"timestamps": True, "_preload_content": False}
        if previous:
            kwargs["previous"] = True
        if self.pods.container:
            kwargs["container"] = self.pods.container
        since = self._since_seconds(cp, start_minute)
        if since is not None:
            kwargs["since_seconds"] = since
        try:
            resp = self.api.read_namespaced_pod_log(name, self.pods.namespace, **kwargs)
            data: bytes = resp.data
            resp.release_conn()
        except Exception as e:  # ApiException, urllib3 errors
            which = "previous container's log" if previous else "log"
            self.stats.problems.append(f"{self.source}: pod {name}: {which}: {_why(e)}")
            return
        stamps, lines = _new_lines(data, cp)
        if not lines:
            return
        res = self.ingestor.feed(b"\n".join(lines), file=f"pod/{name}", lines=len(lines),
                                 start_minute=start_minute, end_minute=end_minute)
        self.stats.lines += res.lines
        self.stats.used += res.used
        self.stats.skipped += res.skipped
        if res.lines == 0:
            self.stats.stopped = True
            return
        checkpoint = _checkpoint(self.source, name, cp, stamps[:res.lines])
        self.checkpoints[name] = checkpoint
        self.commit([checkpoint])
        self.stats.stopped |= res.stopped


def _container_started(pod: Any, container: str | None) -> datetime | None:
    """When the pod's log container (the named one, else the first) last started."""
    statuses = (pod.status.container_statuses or []) if pod.status is not None else []
    for st in statuses:
        if container is None or st.name == container:
            running = st.state.running if st.state is not None else None
            return running.started_at if running is not None else None
    return None


def _new_lines(data: bytes, cp: Checkpoint | None) -> tuple[list[str], list[bytes]]:
    """The (timestamp, line) pairs after the checkpoint; a last line without its
    newline is left for the next pass."""
    raw = data.split(b"\n")
    raw.pop()   # after the last newline: empty, or a line still being written
    after_ns = kube_time_ns(cp.pod_time) if cp is not None and cp.pod_time else None
    seen_at_same = cp.offset if cp is not None else 0
    stamps: list[str] = []
    lines: list[bytes] = []
    for line in raw:
        stamp, _, rest = line.partition(b" ")
        text = stamp.decode("ascii", "replace")
        if after_ns is not None:
            try:
                ns = kube_time_ns(text)
            except ValueError:
                ns = after_ns + 1
            if ns < after_ns:
                continue
            if ns == after_ns and seen_at_same > 0:
                seen_at_same -= 1
                continue
        stamps.append(text)
        lines.append(rest.rstrip(b"\r"))
    return stamps, lines


def _checkpoint(source: str, pod: str, cp: Checkpoint | None, stamps: list[str]) -> Checkpoint:
    last = stamps[-1]
    same = sum(1 for s in stamps if s == last)
    if cp is not None and cp.pod_time == last:
        same += cp.offset
    return Checkpoint(source, pod, offset=same, pod_time=last)


def _why(e: Exception) -> str:
    status = getattr(e, "status", None)
    reason = getattr(e, "reason", None)
    if status is not None:
        return f"HTTP {status} {reason or ''}".strip()
    return f"{e.__class__.__name__}: {e}"


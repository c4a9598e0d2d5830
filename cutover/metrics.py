"""The worker's own metrics: what Prometheus scrapes to watch cutover itself.

The worker calls :meth:`WorkerMetrics.observe_round` once per round, leader or standby
(a standby passes empty lists and ``leader=False``), and serves ``/metrics`` and
``/healthz`` on its metrics port.  ``/healthz`` turns 503 when no round has been
observed for three intervals: the loop is stuck, and Kubernetes should restart it.

Names follow https://prometheus.io/docs/practices/naming/: base units (seconds),
``_total`` for counters, ``_timestamp_seconds`` for Unix times.  deploy/grafana-dashboard.json
and deploy/prometheus-rules.yaml use these names; a test keeps them in step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from collectors.base import CollectReport
from slo.verdict import Evaluation

__all__ = ["METRIC_NAMES", "WorkerMetrics"]

log = logging.getLogger(__name__)

#: every family the worker exports (as exposed, counters with ``_total``)
METRIC_NAMES = (
    "cutover_collector_lag_seconds",
    "cutover_collector_last_success_timestamp_seconds",
    "cutover_collector_up",
    "cutover_collector_ingested_total",
    "cutover_collector_rejected_total",
    "cutover_collector_strict_lines_total",
    "cutover_collector_failures_total",
    "cutover_evaluations_total",
    "cutover_service_weight_percent",
    "cutover_alerts_pending",
    "cutover_alerts_failed",
    "cutover_alerts_sent_total",
    "cutover_leader",
    "cutover_last_round_timestamp_seconds",
    "cutover_round_interval_seconds",
)

#: the classic text format every Prometheus reads (newer clients default to 1.0.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: /healthz fails when the last round is older than this many intervals
STALE_INTERVALS = 3


class WorkerMetrics:
    """The worker's metric families on one registry, and the HTTP endpoint serving them."""

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 clock: Callable[[], float] = time.monotonic):
        # a registry of its own by default: two workers in one test process never clash
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self._started = clock()
        self._last_round: float | None = None
        self._interval = 30.0
        self._build(self.registry)

    def _build(self, r: CollectorRegistry) -> None:
        src = ["source"]
        self.lag = Gauge("cutover_collector_lag_seconds",
                         "Age of the newest data a source has in the store", src, registry=r)
        self.last_success = Gauge("cutover_collector_last_success_timestamp_seconds",
                                  "Unix time of the source's last successful pull", src,
                                  registry=r)
        self.up = Gauge("cutover_collector_up", "1 when the source's last pull succeeded", src,
                        registry=r)
        self.ingested = Counter("cutover_collector_ingested",
                                "Points or log lines ingested", src, registry=r)
        self.rejected = Counter("cutover_collector_rejected",
                                "Log lines rejected (did not parse)", src, registry=r)
        self.strict = Counter("cutover_collector_strict_lines",
                              "Log lines read by the strict Python parser, not the compiled "
                              "scanner (slower; a share that grows means the format drifted)",
                              src, registry=r)
        self.failures = Counter("cutover_collector_failures", "Pulls that failed", src,
                                registry=r)
        self.evaluations = Counter("cutover_evaluations", "Evaluations by verdict",
                                   ["service", "verdict"], registry=r)
        self.weight = Gauge("cutover_service_weight_percent",
                            "Traffic weight of the candidate, 0..100", ["service"], registry=r)
        self.alerts_pending = Gauge("cutover_alerts_pending",
                                    "Alert deliveries waiting to be sent", registry=r)
        self.alerts_failed = Gauge("cutover_alerts_failed",
                                   "Alert deliveries that gave up", registry=r)
        self.alerts_sent = Counter("cutover_alerts_sent", "Alert deliveries sent", registry=r)
        self.leader = Gauge("cutover_leader", "1 when this worker holds the lease",
                            registry=r)
        self.last_round = Gauge("cutover_last_round_timestamp_seconds",
                                "Unix time of the last round this worker finished",
                                registry=r)
        self.interval = Gauge("cutover_round_interval_seconds",
                              "The worker's round interval", registry=r)
        self.interval.set(self._interval)

    def set_interval(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"expected a positive interval in seconds, got {seconds}")
        self._interval = float(seconds)
        self.interval.set(seconds)

    def observe_round(self, *, collect_reports: Sequence[CollectReport],
                      evaluations: Sequence[Evaluation], weights: Mapping[str, int],
                      alerts: Mapping[str, int], leader: bool, now: datetime) -> None:
        """Record one round.  ``alerts``: ``pending`` and ``failed`` are the outbox's
        current counts (failed deliveries stay in the outbox until pruned, so alert on
        the gauge's growth), ``sent`` the deliveries sent in this round; missing keys
        are 0.

        A standby's round clears the per-source and per-service gauges: they describe the
        leader's work, and a former leader must not keep reporting a lag that only grows
        (the alert rules take the max over all workers)."""
        if not leader:
            for gauge in (self.lag, self.last_success, self.up, self.weight):
                gauge.clear()
        for report in collect_reports:
            self._observe_report(report, now=now)
        for ev in evaluations:
            self.evaluations.labels(service=ev.service, verdict=ev.verdict.value).inc()
        for service, weight in weights.items():
            self.weight.labels(service=service).set(weight)
        self.alerts_pending.set(alerts.get("pending", 0))
        self.alerts_failed.set(alerts.get("failed", 0))
        self.alerts_sent.inc(max(0, alerts.get("sent", 0)))
        self.leader.set(1 if leader else 0)
        self.last_round.set(now.timestamp())
        self._last_round = self._clock()

    def _observe_report(self, report: CollectReport, *, now: datetime) -> None:
        source = report.source
        self.ingested.labels(source=source).inc(max(0, report.items))
        self.rejected.labels(source=source).inc(max(0, report.rejected))
        self.strict.labels(source=source).inc(max(0, report.strict))
        self.up.labels(source=source).set(1 if report.ok else 0)
        if report.ok:
            self.last_success.labels(source=source).set(now.timestamp())
        else:
            self.failures.labels(source=source).inc()
        if report.newest is not None:
            self.lag.labels(source=source).set(max(0.0, (now - report.newest).total_seconds()))

    def healthy(self) -> bool:
        """False when no round finished for :data:`STALE_INTERVALS` intervals (counting
        from start-up before the first round, so a slow first round is not a failure)."""
        since = self._last_round if self._last_round is not None else self._started
        return self._clock() - since <= STALE_INTERVALS * self._interval

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, port: int, *, host: str = "0.0.0.0",  # noqa: S104
              posts: Mapping[str, PostHandler] | None = None) -> ThreadingHTTPServer:
        """Serve ``/metrics`` and ``/healthz`` (and ``posts``: path -> handler, such as
        the Alertmanager inbox) on a daemon thread; port 0 picks a free one
        (``server.server_address[1]``).  Stop with ``server.shutdown()``."""
        server = ThreadingHTTPServer((host, port), _handler_for(self, dict(posts or {})))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="cutover-metrics",
                                  daemon=True)
        thread.start()
        log.info("metrics on http://%s:%d/metrics", host, server.server_address[1])
        return server


#: a POST handler: (body, Authorization header) -> (HTTP status, plain-text answer)
PostHandler = Callable[[bytes, str | None], tuple[int, str]]
MAX_POST = 8 * 1024 * 1024


def _handler_for(metrics: WorkerMetrics,
                 posts: dict[str, PostHandler]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            handler = posts.get(self.path.split("?", 1)[0])
            if handler is None:
                self._answer(404, b"not found\n", "text/plain; charset=utf-8")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_POST:
                self._answer(413 if length > MAX_POST else 411, b"expected a Content-Length "
                             b"of at most 8 MiB\n", "text/plain; charset=utf-8")
                return
            status, text = handler(self.rfile.read(length), self.headers.get("Authorization"))
            self._answer(status, (text + "\n").encode(), "text/plain; charset=utf-8")

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, metrics.exposition(), CONTENT_TYPE)
            elif path == "/healthz":
                ok = metrics.healthy()
                self._answer(200 if ok else 503, b"ok\n" if ok else b"stale: no round for "
                             b"three intervals\n", "text/plain; charset=utf-8")
            else:
                self._answer(404, b"not found: try /metrics or /healthz\n",
                             "text/plain; charset=utf-8")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("metrics: " + format, *args)

    return Handler

"""The Nanopore application's traffic, simulated for the demo.

What the seed (``migration-strategy.md``) says the system does, made into a model:
about 283 req/s across the services at the daily peak, a monolith near 500 MB resident,
the six Python services near 229 MB in total, responses mostly under 50 ms.  The model
adds a daily rhythm (peak 14:00 UTC, trough at 30 % of it), slow noise per minute, and a
story: the AI processing service's candidate saturates when it takes half of the AI
traffic or more, and its latency triples.

The simulator writes what a real system would leave behind: a gateway access log in
JSON lines (one line per request, no sampling, so the collector's counts are the
model's rates) that the real log collector tails, and memory and CPU gauges per variant
in the store.  The share of each service's requests that goes to the candidate is the
weight the dry-run router holds in the store, read again at every tick: an approve in
the dashboard changes what the collector sees a moment later.

Time is a :class:`SimClock`: simulated time runs ``speed`` times faster than the wall.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from slo.plan import Plan
from slo.units import parse_clock

__all__ = [
    "CLOCK_ENV",
    "NANOPORE",
    "SimClock",
    "Simulator",
    "TrafficModel",
    "VariantProfile",
    "format_lines",
    "gauges",
    "generate_requests",
    "latency_profile",
    "service_rps",
    "total_rps",
]

log = logging.getLogger(__name__)

#: env var that hands the demo's clock to the processes it starts (the dashboard)
CLOCK_ENV = "CUTOVER_CLOCK"


# -- time ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SimClock:
    """Simulated time: ``anchor_sim + speed * (wall - anchor_wall)``.

    Speed 1 with the anchors equal is the wall clock.  The text form
    (``2026-11-26T14:00:00+00:00@1795701600.0x60``) is what ``CUTOVER_CLOCK`` carries."""

    anchor_sim: datetime
    anchor_wall: float
    speed: float = 1.0

    @classmethod
    def starting(cls, at: datetime, *, speed: float = 1.0,
                 wall: Callable[[], float] = time.time) -> SimClock:
        if not 0 < speed <= 1000:
            raise ValueError(f"expected a speed in (0, 1000], got {speed}")
        return cls(anchor_sim=at.astimezone(UTC), anchor_wall=wall(), speed=speed)

    def now(self, wall: float | None = None) -> datetime:
        w = time.time() if wall is None else wall
        return self.anchor_sim + timedelta(seconds=self.speed * (w - self.anchor_wall))

    def wall_seconds(self, simulated: timedelta) -> float:
        """How long, on the wall, ``simulated`` time takes."""
        return simulated.total_seconds() / self.speed

    def to_text(self) -> str:
        return f"{self.anchor_sim.isoformat()}@{self.anchor_wall!r}x{self.speed!r}"

    @classmethod
    def from_text(cls, text: str) -> SimClock:
        anchor, wall, speed = parse_clock(text)
        return cls(anchor_sim=anchor, anchor_wall=wall, speed=speed)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SimClock | None:
        text = (os.environ if env is None else env).get(CLOCK_ENV)
        return cls.from_text(text) if text else None


# -- the model -----------------------------------------------------------------------

@dataclass(frozen=True)
class VariantProfile:
    """One variant of one service: latency as a log-normal, errors, resources."""

    median_ms: float
    sigma: float
    error_share: float
    memory_mb: float          # resident, at rest
    memory_mb_per_rps: float
    cpu_idle: float           # cores
    cpu_per_rps: float


@dataclass(frozen=True)
class ServiceTraffic:
    share: float              # of the total request rate
    paths: tuple[str, ...]    # what its requests look like
    monolith_median_ms: float
    python_median_ms: float
    python_memory_mb: float


#: The seed's figures, split over the plan's services (shares sum to 1; the Python
#: services' memory sums to the seed's 229 MB).
NANOPORE: dict[str, ServiceTraffic] = {
    "auth": ServiceTraffic(0.12, ("/api/auth/session", "/api/auth/login", "/api/auth/logout"),
                           22.0, 17.0, 32.0),
    "files": ServiceTraffic(0.15, ("/api/files/{id}", "/api/files/upload", "/api/files"),
                            30.0, 24.0, 41.0),
    "samples": ServiceTraffic(0.25, ("/api/samples", "/api/samples/{id}",
                                     "/api/samples/search"), 25.0, 20.0, 44.0),
    "ai": ServiceTraffic(0.08, ("/api/ai/process", "/api/ai/analysis/{id}"), 35.0, 29.0, 58.0),
    "audit": ServiceTraffic(0.10, ("/api/audit/events", "/api/audit/events/{id}"),
                            15.0, 12.0, 22.0),
    "gateway": ServiceTraffic(0.30, ("/", "/dashboard", "/api/trpc/sample.list",
                                     "/api/health"), 18.0, 15.0, 32.0),
}
_DEFAULT_TRAFFIC = ServiceTraffic(0.1, ("/",), 25.0, 20.0, 38.0)


@dataclass(frozen=True)
class TrafficModel:
    """The whole application's traffic: rates, rhythm, latency and the regression."""

    peak_rps: float = 283.0
    peak_hour_utc: float = 14.0
    trough_ratio: float = 0.30
    minute_noise: float = 0.06
    sigma: float = 0.45               # log-normal spread: p95 ~ 2.1 x the median
    monolith_memory_mb: float = 498.0
    monolith_cpu_idle: float = 0.12
    cpu_per_rps: float = 0.0011
    # the seed: "Error Rate: <1 % (Target: 0 % achieved)" for the Python services; the
    # monolith's share is an assumption (the seed gives none), low but not nil
    baseline_error_share: float = 0.003
    candidate_error_share: float = 0.0005
    services: Mapping[str, ServiceTraffic] = field(default_factory=lambda: dict(NANOPORE))
    #: the story: this service's candidate saturates at ``regression_from`` % and above
    regressed_service: str | None = "ai"
    regression_from: int = 50
    regression_factor: float = 3.0
    seed: int = 20261126

    def traffic(self, service: str) -> ServiceTraffic:
        return self.services.get(service, _DEFAULT_TRAFFIC)


def total_rps(model: TrafficModel, at: datetime) -> float:
    """The application's request rate at ``at``: daily rhythm times per-minute noise."""
    hours = at.hour + at.minute / 60 + at.second / 3600
    phase = 2 * math.pi * (hours - model.peak_hour_utc) / 24
    rhythm = model.trough_ratio + (1 - model.trough_ratio) * (1 + math.cos(phase)) / 2
    return model.peak_rps * rhythm * _minute_noise(model, at)


def _minute_noise(model: TrafficModel, at: datetime) -> float:
    # reproducible: the same minute gets the same noise in the history and live
    minute = int(at.timestamp() // 60)
    z = np.random.default_rng((model.seed, minute)).standard_normal()
    return float(math.exp(model.minute_noise * z - model.minute_noise**2 / 2))


def service_rps(model: TrafficModel, service: str, at: datetime) -> float:
    shares = sum(model.traffic(s).share for s in model.services) or 1.0
    return total_rps(model, at) * model.traffic(service).share / shares


def latency_profile(model: TrafficModel, *, service: str, variant: str, weight: int,
                    rps: float = 0.0) -> VariantProfile:
    """The variant's behaviour when the candidate takes ``weight`` % of the service."""
    t = model.traffic(service)
    if variant == "baseline":
        # one monolith (three pods) behind every route: its memory is the seed's 500 MB
        return VariantProfile(t.monolith_median_ms, model.sigma, model.baseline_error_share,
                              model.monolith_memory_mb, 0.02, model.monolith_cpu_idle,
                              model.cpu_per_rps)
    median = t.python_median_ms * _regression(model, service, weight)
    return VariantProfile(median, model.sigma, model.candidate_error_share,
                          t.python_memory_mb, 0.05, 0.01, model.cpu_per_rps * 0.6)


def _regression(model: TrafficModel, service: str, weight: int) -> float:
    if service != model.regressed_service:
        return 1.0
    # a worker pool that saturates: a steep but smooth ramp centred just below the
    # threshold, so 25 % is clean and 50 % is three times slower
    x = (weight - (model.regression_from - 5)) / 2.0
    return 1.0 + (model.regression_factor - 1.0) / (1.0 + math.exp(-x))


def gauges(model: TrafficModel, *, plan: Plan, weights: Mapping[str, int],
           at: datetime) -> dict[tuple[str, str], tuple[float, float]]:
    """(service, variant) -> (resident MiB, CPU cores) at ``at``.

    The monolith is one process set behind every route: each service's baseline reports
    the monolith's whole memory and CPU (as a dashboard of the monolith would)."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    rng = np.random.default_rng((model.seed, int(at.timestamp() // 30), 7))
    mono_rps = sum(service_rps(model, s.name, at) * (100 - weights.get(s.name, 0)) / 100
                   for s in plan.services)
    mono = latency_profile(model, service="", variant="baseline", weight=0)
    mono_mem = mono.memory_mb + mono.memory_mb_per_rps * mono_rps + rng.normal(0, 3)
    mono_cpu = mono.cpu_idle + mono.cpu_per_rps * mono_rps * (1 + rng.normal(0, 0.05))
    for s in plan.services:
        w = weights.get(s.name, 0)
        cand_rps = service_rps(model, s.name, at) * w / 100
        p = latency_profile(model, service=s.name, variant="candidate", weight=w)
        mem = p.memory_mb + p.memory_mb_per_rps * cand_rps + rng.normal(0, 0.5)
        cpu = p.cpu_idle + p.cpu_per_rps * cand_rps * (1 + rng.normal(0, 0.05))
        out[(s.name, "baseline")] = (max(mono_mem, 1.0), max(mono_cpu, 0.0))
        out[(s.name, "candidate")] = (max(mem, 1.0), max(cpu, 0.0))
    return out


# -- requests and log lines ----------------------------------------------------------

@dataclass(frozen=True)
class Requests:
    """A batch of simulated requests, as columns."""

    ts: np.ndarray          # float seconds since the epoch (request end)
    path: list[str]
    upstream: list[str]
    status: np.ndarray
    duration_ms: np.ndarray
    size: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)


def generate_requests(model: TrafficModel, *, plan: Plan, weights: Mapping[str, int],
                      start: datetime, end: datetime, rng: np.random.Generator) -> Requests:
    """Every request the application answers in [start, end), in time order."""
    span = (end - start).total_seconds()
    parts: list[tuple[np.ndarray, list[str], list[str], np.ndarray, np.ndarray]] = []
    if span <= 0:
        return _empty()
    mid = start + (end - start) / 2
    for s in plan.services:
        n = int(rng.poisson(service_rps(model, s.name, mid) * span))
        if n == 0:
            continue
        w = weights.get(s.name, 0)
        on_candidate = rng.random(n) < w / 100
        for variant, mask in (("baseline", ~on_candidate), ("candidate", on_candidate)):
            k = int(mask.sum())
            if k:
                parts.append(_batch(model, plan=plan, service=s.name, variant=variant,
                                    weight=w, k=k, start=start, span=span, rng=rng))
    if not parts:
        return _empty()
    ts = np.concatenate([p[0] for p in parts])
    order = np.argsort(ts, kind="stable")
    paths = [x for p in parts for x in p[1]]
    ups = [x for p in parts for x in p[2]]
    return Requests(ts=ts[order], path=[paths[i] for i in order],
                    upstream=[ups[i] for i in order],
                    status=np.concatenate([p[3] for p in parts])[order],
                    duration_ms=np.concatenate([p[4] for p in parts])[order],
                    size=rng.integers(200, 40_000, size=len(ts)))


def _empty() -> Requests:
    return Requests(np.zeros(0), [], [], np.zeros(0, dtype=int), np.zeros(0), np.zeros(0, dtype=int))


def _batch(model: TrafficModel, *, plan: Plan, service: str, variant: str, weight: int, k: int,
           start: datetime, span: float, rng: np.random.Generator
           ) -> tuple[np.ndarray, list[str], list[str], np.ndarray, np.ndarray]:
    p = latency_profile(model, service=service, variant=variant, weight=weight)
    ts = start.timestamp() + rng.random(k) * span
    dur = rng.lognormal(math.log(p.median_ms), p.sigma, size=k)
    status = np.where(rng.random(k) < p.error_share, 503,
                      np.where(rng.random(k) < 0.01, 404, 200))
    templates = model.traffic(service).paths
    picks = rng.integers(0, len(templates), size=k)
    ids = rng.integers(1000, 99999, size=k)
    paths = [templates[i].replace("{id}", str(n)) for i, n in zip(picks.tolist(), ids.tolist(), strict=True)]
    upstream = _upstream(plan, service, variant)
    return ts, paths, [upstream] * k, status, dur


def _upstream(plan: Plan, service: str, variant: str) -> str:
    if variant == "baseline":
        names = plan.baseline.logs.upstream if plan.baseline.logs else []
        return names[0] if names else plan.baseline.backend
    s = plan.service(service)
    return s.logs.upstream[0] if s.logs and s.logs.upstream else s.backend


def format_lines(reqs: Requests, *, fields: Mapping[str, str]) -> bytes:
    """The batch as JSON lines, one request each, with the given field names.

    ``fields`` maps what the line says (the log collector's keys: time, path, status,
    latency_ms, upstream, bytes) to the key the gateway writes it under."""
    if not len(reqs):
        return b""
    stamps = np.datetime_as_string((reqs.ts * 1000).astype("datetime64[ms]"), unit="ms")
    f = {k: fields.get(k, k) for k in ("time", "method", "path", "status", "latency_ms",
                                       "upstream", "bytes")}
    head = f'{{"{f["time"]}":"'
    rest = (f'","{f["method"]}":"GET","{f["path"]}":"', f'","{f["status"]}":',
            f',"{f["latency_ms"]}":', f',"{f["upstream"]}":"', f'","{f["bytes"]}":')
    lines = [
        f"{head}{t}Z{rest[0]}{p}{rest[1]}{s}{rest[2]}{d:.3f}{rest[3]}{u}{rest[4]}{b}}}\n"
        for t, p, s, d, u, b in zip(stamps.tolist(), reqs.path, reqs.status.tolist(),
                                    reqs.duration_ms.tolist(), reqs.upstream,
                                    reqs.size.tolist(), strict=True)
    ]
    return "".join(lines).encode()


# -- the running simulator -------------------------------------------------------------

#: rotate the access log past this size (rename to ``.1``, as logrotate does), so a long
#: sped-up demo keeps at most about twice this on disk
ROTATE_BYTES = 64 * 2**20
#: gauges are sampled at this simulated period, as a Prometheus scrape would
GAUGE_PERIOD = timedelta(seconds=30)

WeightReader = Callable[[str], int]
GaugeWriter = Callable[[datetime, Mapping[tuple[str, str], tuple[float, float]]], None]


@dataclass
class Simulator:
    """Writes the application's traffic up to the clock's now, tick after tick.

    ``read_weight`` is the router's (the dry-run router reads the store); ``write_gauges``
    stores memory and CPU points.  :meth:`advance` does one tick and is what tests call;
    :meth:`run` ticks until ``stop`` is set."""

    plan: Plan
    model: TrafficModel
    clock: SimClock
    log_path: Path
    read_weight: WeightReader
    write_gauges: GaugeWriter | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    written_until: datetime | None = None
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng())
    lines_written: int = 0
    _next_gauge: datetime | None = field(default=None, init=False, repr=False)

    def weights(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.plan.services:
            try:
                out[s.name] = int(self.read_weight(s.name))
            except Exception as e:  # a router that cannot answer: keep the traffic going
                log.warning("simulator: cannot read the weight of %s (%s); using 0",
                            s.name, e)
                out[s.name] = 0
        return out

    def advance(self, until: datetime | None = None) -> int:
        """Write every request from where the log ends up to ``until`` (default: now)."""
        end = until or self.clock.now()
        start = self.written_until or end
        if end <= start:
            self.written_until = start
            return 0
        weights = self.weights()
        written = 0
        # at most a simulated minute per batch: keeps memory flat after a pause
        t = start
        while t < end:
            nxt = min(end, t + timedelta(minutes=1))
            reqs = generate_requests(self.model, plan=self.plan, weights=weights,
                                     start=t, end=nxt, rng=self.rng)
            self._append(format_lines(reqs, fields=self.fields))
            written += len(reqs)
            t = nxt
        self.written_until = end
        self.lines_written += written
        self._gauges(start, end, weights)
        return written

    def _append(self, data: bytes) -> None:
        if not data:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.log_path.stat().st_size > ROTATE_BYTES:
                os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
        except FileNotFoundError:
            pass
        with open(self.log_path, "ab") as f:
            f.write(data)

    def _gauges(self, start: datetime, end: datetime, weights: Mapping[str, int]) -> None:
        if self.write_gauges is None:
            return
        t = self._next_gauge or _ceil_to(start, GAUGE_PERIOD)
        # one scrape ahead: a round at ``end`` must find the step that covers it, or the
        # store calls the gauges stale
        while t <= end + GAUGE_PERIOD:
            try:
                self.write_gauges(t, gauges(self.model, plan=self.plan, weights=weights, at=t))
            except Exception:
                log.exception("simulator: could not store the gauges at %s", t.isoformat())
            t += GAUGE_PERIOD
        self._next_gauge = t

    def run(self, stop: threading.Event, *, tick: float = 0.25) -> None:
        """Tick every ``tick`` wall seconds until ``stop`` is set."""
        log.info("simulator: writing %s at %.0fx", self.log_path, self.clock.speed)
        while not stop.is_set():
            try:
                self.advance()
            except Exception:
                log.exception("simulator: a tick failed; trying again")
            stop.wait(tick)


def _ceil_to(t: datetime, period: timedelta) -> datetime:
    secs = period.total_seconds()
    ts = math.ceil(t.timestamp() / secs) * secs
    return datetime.fromtimestamp(ts, UTC)

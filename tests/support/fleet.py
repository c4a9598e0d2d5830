"""A fleet of variants as Prometheus would have scraped them, written as OpenMetrics.

Each variant is a ``job`` with pods; each pod exposes ``http_requests_total`` (with a
``status`` label grouped as FastAPI does, ``"2xx"``/``"5xx"``, or the monolith's
``status_code`` of ``"200"``/``"500"``), the ``http_request_duration_seconds`` histogram,
``process_resident_memory_bytes``, ``process_cpu_seconds_total`` and ``up``.  A pod may
restart (its counters start again from zero) and a variant may have a scrape gap (no
samples at all in a stretch).  Everything is seeded: the same spec writes the same file.

Timestamps are whole seconds (promtool reads millisecond numbers as seconds), each
series is written in time order (promtool drops out-of-order samples silently), each
family's series together, and the file ends with ``# EOF``."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from math import erf, log, sqrt
from pathlib import Path
from typing import TextIO

import numpy as np

BOUNDS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Pod:
    instance: str
    rps: float
    error_share: float
    memory_mb: float
    cpu_cores: float
    restart_at: float | None = None   # unix seconds: counters start again from zero


@dataclass(frozen=True)
class FleetVariant:
    job: str
    pods: tuple[Pod, ...]
    status_label: str = "status"           # "status" ("2xx"/"5xx") or "status_code"
    latency_median_s: float = 0.03
    gap: tuple[float, float] | None = None  # no samples in [from, to)

    @property
    def codes(self) -> tuple[str, str]:
        return ("200", "500") if self.status_label == "status_code" else ("2xx", "5xx")


@dataclass
class PodData:
    ts: np.ndarray
    ok: np.ndarray
    err: np.ndarray
    buckets: np.ndarray   # cumulative per bound, +Inf last: shape (len(BOUNDS)+1, n)
    dsum: np.ndarray
    memory: np.ndarray
    cpu: np.ndarray


def _counter(increments: np.ndarray, ts: np.ndarray, restart_at: float | None) -> np.ndarray:
    """Cumulative counter of ``increments``, starting again from zero after a restart."""
    out = np.cumsum(increments, axis=-1)
    if restart_at is not None:
        r = int(np.searchsorted(ts, restart_at))
        if 0 < r < ts.size:
            out[..., r:] = np.cumsum(increments[..., r:], axis=-1)
    return out


def _bucket_probs(median_s: float, sigma: float = 0.6) -> np.ndarray:
    cdf = [0.5 * (1 + erf((log(b) - log(median_s)) / (sigma * sqrt(2)))) for b in BOUNDS]
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def pod_data(v: FleetVariant, pod: Pod, ts: np.ndarray, scrape: float) -> PodData:
    rng = np.random.default_rng(zlib.crc32(f"{v.job}/{pod.instance}".encode()))
    n = rng.poisson(pod.rps * scrape, ts.size)
    n[0] = 0
    err = rng.binomial(n, pod.error_share)
    per = rng.multinomial(n, _bucket_probs(v.latency_median_s)).T   # (buckets+1, n)
    edges = np.array(BOUNDS)
    mids = np.concatenate([[edges[0] / 2], (edges[:-1] + edges[1:]) / 2, [edges[-1] * 1.5]])
    dsum = (per * mids[:, None]).sum(axis=0)
    cpu = np.abs(pod.cpu_cores * scrape * (1 + 0.1 * rng.standard_normal(ts.size)))
    cpu[0] = 0
    memory = np.round(pod.memory_mb * 2**20 * (1 + 0.05 * np.sin(ts / 600.0)))
    return PodData(
        ts=ts, ok=_counter(n - err, ts, pod.restart_at), err=_counter(err, ts, pod.restart_at),
        buckets=_counter(np.cumsum(per, axis=0), ts, pod.restart_at),
        dsum=_counter(dsum, ts, pod.restart_at), memory=memory,
        cpu=_counter(cpu, ts, pod.restart_at))


def _lines(name: str, labels: dict[str, str], ts: np.ndarray, values: np.ndarray,
           fmt: str) -> Iterator[str]:
    lab = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    prefix = f"{name}{lab} "
    line = prefix + fmt + " %d\n"
    yield "".join(line % (v, t) for t, v in zip(ts.tolist(), values.tolist(), strict=True))


def write_fleet(path: Path, variants: Sequence[FleetVariant], *, start: float, end: float,
                scrape: float = 15.0) -> Path:
    """OpenMetrics for ``variants`` scraped every ``scrape`` seconds in [start, end]."""
    ts_all = np.arange(start, end + 1e-9, scrape)
    data: list[tuple[FleetVariant, Pod, PodData, np.ndarray]] = []
    for v in variants:
        keep = np.ones(ts_all.size, dtype=bool)
        if v.gap is not None:
            keep &= ~((ts_all >= v.gap[0]) & (ts_all < v.gap[1]))
        for pod in v.pods:
            data.append((v, pod, pod_data(v, pod, ts_all, scrape), keep))
    with path.open("w") as f:
        _write_families(f, data)
        f.write("# EOF\n")
    return path


def _write_families(f: TextIO, data: list[tuple[FleetVariant, Pod, PodData, np.ndarray]]
                    ) -> None:
    f.write("# TYPE http_requests counter\n")
    for v, pod, d, keep in data:
        base = {"job": v.job, "instance": pod.instance}
        for code, arr in zip(v.codes, (d.ok, d.err), strict=True):
            f.writelines(_lines("http_requests_total", {**base, v.status_label: code},
                                d.ts[keep], arr[keep], "%d"))
    f.write("# TYPE http_request_duration_seconds histogram\n")
    for v, pod, d, keep in data:
        base = {"job": v.job, "instance": pod.instance}
        for i, le in enumerate([*(f"{b:g}" for b in BOUNDS), "+Inf"]):
            f.writelines(_lines("http_request_duration_seconds_bucket", {**base, "le": le},
                                d.ts[keep], d.buckets[i][keep], "%d"))
        f.writelines(_lines("http_request_duration_seconds_sum", base, d.ts[keep],
                            d.dsum[keep], "%.6f"))
        f.writelines(_lines("http_request_duration_seconds_count", base, d.ts[keep],
                            d.buckets[-1][keep], "%d"))
    f.write("# TYPE process_resident_memory_bytes gauge\n")
    for v, pod, d, keep in data:
        f.writelines(_lines("process_resident_memory_bytes",
                            {"job": v.job, "instance": pod.instance}, d.ts[keep],
                            d.memory[keep], "%d"))
    f.write("# TYPE process_cpu_seconds counter\n")
    for v, pod, d, keep in data:
        f.writelines(_lines("process_cpu_seconds_total", {"job": v.job, "instance": pod.instance},
                            d.ts[keep], d.cpu[keep], "%.4f"))
    f.write("# TYPE up gauge\n")
    for v, pod, d, keep in data:
        f.writelines(_lines("up", {"job": v.job, "instance": pod.instance}, d.ts[keep],
                            np.ones(int(keep.sum())), "%d"))

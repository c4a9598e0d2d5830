"""A real Prometheus for tests: backfill OpenMetrics with promtool, then serve it.

Debian's ``prometheus`` runs on 127.0.0.1 with a free port, a config of its own (no
scrape jobs: never Debian's default one) and its own storage directory.  Data is written
at fixed timestamps with :class:`OpenMetrics`, which keeps promtool's traps away: it
writes seconds (promtool reads millisecond numbers as seconds), keeps each series' samples
in time order (promtool drops out-of-order ones silently) and ends with ``# EOF``.

    om = OpenMetrics()
    om.counter("http_requests", {"job": "x", "status": "2xx"}, [(t0, 0), (t0 + 15, 30)])
    with prometheus_with(om, tmp_path) as prom:
        httpx.get(prom.url + "/api/v1/query", params={"query": "up"})
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

Samples = Iterable[tuple[float, float]]


def available() -> bool:
    return Path(PROMETHEUS).exists() and Path(PROMTOOL).exists()


def _labels(labels: Mapping[str, str]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class OpenMetrics:
    """Metric families in the order first written, each family's lines together."""

    families: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    def _family(self, name: str, kind: str) -> list[str]:
        if name not in self.families:
            self.families[name] = (kind, [])
        have, lines = self.families[name]
        if have != kind:
            raise ValueError(f"{name} is a {have}, not a {kind}")
        return lines

    def _series(self, lines: list[str], sample: str, labels: Mapping[str, str],
                samples: Samples) -> None:
        last = None
        lab = _labels(labels)
        for ts, v in samples:
            if last is not None and ts <= last:
                raise ValueError(f"{sample}{lab}: timestamps must increase ({ts} after {last})")
            last = ts
            lines.append(f"{sample}{lab} {v!r} {ts:.3f}")

    def counter(self, name: str, labels: Mapping[str, str], samples: Samples) -> None:
        """``name`` without ``_total`` (OpenMetrics names the family without it)."""
        self._series(self._family(name, "counter"), f"{name}_total", labels, samples)

    def gauge(self, name: str, labels: Mapping[str, str], samples: Samples) -> None:
        self._series(self._family(name, "gauge"), name, labels, samples)

    def histogram(self, name: str, labels: Mapping[str, str], bounds: Sequence[float],
                  samples: Iterable[tuple[float, Sequence[float], float]]) -> None:
        """``samples``: (ts, cumulative count per bound and +Inf last, sum)."""
        lines = self._family(name, "histogram")
        rows = list(samples)
        les = [*(f"{b:g}" for b in bounds), "+Inf"]
        for i, le in enumerate(les):
            self._series(lines, f"{name}_bucket", {**labels, "le": le},
                         ((ts, counts[i]) for ts, counts, _ in rows))
        self._series(lines, f"{name}_sum", labels, ((ts, s) for ts, _, s in rows))
        self._series(lines, f"{name}_count", labels, ((ts, counts[-1]) for ts, counts, _ in rows))

    def text(self) -> str:
        out = []
        for name, (kind, lines) in self.families.items():
            out.append(f"# TYPE {name} {kind}")
            out.extend(lines)
        out.append("# EOF")
        return "\n".join(out) + "\n"

    def write(self, path: Path) -> Path:
        with path.open("w") as f:
            for name, (kind, lines) in self.families.items():
                f.write(f"# TYPE {name} {kind}\n")
                f.writelines(line + "\n" for line in lines)
            f.write("# EOF\n")
        return path


def backfill(openmetrics_file: Path, data_dir: Path, *,
             max_block_duration: str = "24h") -> None:
    """TSDB blocks from an OpenMetrics file into ``data_dir`` (a Prometheus storage dir)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
         f"--max-block-duration={max_block_duration}", str(openmetrics_file), str(data_dir)],
        capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"promtool failed ({proc.returncode}): {proc.stderr[-2000:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PromServer:
    """One Prometheus process on ``data_dir``; stop and start again on the same port."""

    data_dir: Path
    workdir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 60.0) -> PromServer:
        if self.proc is not None:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        # its own config, no scrape jobs: it serves the backfilled blocks and nothing else
        config.write_text("global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\n")
        self.port = self.port or free_port()
        log = (self.workdir / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.data_dir}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             # backfilled history at fixed dates must outlive the default 15 days
             "--storage.tsdb.retention.time=100y", "--log.level=warn"],
            stdout=log, stderr=log, cwd=self.workdir)
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                tail = (self.workdir / "prometheus.log").read_text()[-2000:]
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}: {tail}")
            try:
                if httpx.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus on port {self.port} not ready in {timeout} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@contextmanager
def prometheus_with(om: OpenMetrics, workdir: Path) -> Iterator[PromServer]:
    """Backfill ``om`` into a fresh storage dir under ``workdir`` and serve it."""
    data = workdir / "data"
    backfill(om.write(workdir / "input.om"), data)
    server = PromServer(data_dir=data, workdir=workdir).start()
    try:
        yield server
    finally:
        server.stop()


def instant(url: str, query: str, at: float) -> list[dict[str, object]]:
    """An instant query's result vector (for checking figures against direct PromQL)."""
    r = httpx.post(url + "/api/v1/query", data={"query": query, "time": f"{at:.3f}"},
                   timeout=30)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", (query, body)
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def instant_value(url: str, query: str, at: float) -> float | None:
    res = instant(url, query, at)
    if not res:
        return None
    value = res[0]["value"]
    assert isinstance(value, list)
    return float(value[1])

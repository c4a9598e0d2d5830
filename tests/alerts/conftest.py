"""A real chat receiver on loopback, and helpers to build channels and record events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from slo.plan import AlertChannel, Alerts, Plan
from store.db import session_scope
from store.events import record_event

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxSECRETtoken42"


@dataclass
class Arrival:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang: float = 0.0     # seconds to sit on the request before answering


class FakeClock:
    """A monotonic clock that moves only when slept on: the outbox's pacing and time
    budget, tested without waiting real seconds (``deliver(clock=c, sleep=c.sleep)``)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class Receiver:
    """Records every request; answers from a script (then ``default``).  ``clock``: what
    stamps an arrival (a FakeClock for pacing tests; the real monotonic clock else)."""

    def __init__(self) -> None:
        self.clock: Any = time.monotonic
        self.arrivals: list[Arrival] = []
        self.script: list[Answer] = []
        self.default = Answer()
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.arrivals.append(Arrival(self.path, dict(self.headers), body,
                                                     receiver.clock()))
                    answer = receiver.script.pop(0) if receiver.script else receiver.default
                if answer.hang:
                    receiver.release.wait(answer.hang)
                try:
                    self.send_response(answer.status)
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    pass  # the client gave up (timeout or killed): nothing to answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str) -> str:
        return f"{self.base}{SECRET_PATH}/{name}"

    def to(self, name: str) -> list[Arrival]:
        return [a for a in self.arrivals if a.path.endswith(f"/{name}")]

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.arrivals) >= n, f"expected {n} requests, got {len(self.arrivals)}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def channel(name: str, kind: str, **kw: Any) -> AlertChannel:
    if kind != "log" and "url_file" not in kw:
        kw.setdefault("url_env", f"HOOK_{name.upper().replace('-', '_')}")
    return AlertChannel(name=name, kind=kind, **kw)  # type: ignore[arg-type]


def env_for(receiver: Receiver, *channels: AlertChannel, **extra: str) -> dict[str, str]:
    return {c.url_env: receiver.url(c.name) for c in channels if c.url_env} | extra


def with_channels(plan: Plan, *channels: AlertChannel, **alerts: Any) -> Plan:
    return plan.model_copy(update={"alerts": Alerts(channels=list(channels), **alerts)})


def record(engine: Engine, kind: str, *, service: str | None = "auth", at: datetime = NOW,
           summary: str = "", dedup_key: str = "", severity: str = "warning",
           data: dict[str, Any] | None = None) -> int:
    with session_scope(engine) as s:
        return record_event(session=s, at=at, kind=kind, service=service, severity=severity,
                            summary=summary or f"{kind} on {service}", dedup_key=dedup_key,
                            data=data)


FAILED_DATA = {
    "phase": "week-2", "weight": 25, "verdict": "fail",
    "reasons": ["p95 latency 61.0 ms > 1.10 x baseline 39.8 ms"],
    "checks": [
        {"name": "latency_p95_ms", "verdict": "fail", "baseline": 39.8, "candidate": 61.0,
         "limit": 43.78},
        {"name": "error_rate", "verdict": "pass", "baseline": 0.0021, "candidate": 0.0019,
         "limit": 0.01},
    ],
}

"""The attacks on cutover, run for real: ``cutover`` processes started as an operator
would start them (``python -m cutover``), killed with SIGKILL or run side by side, against
the Kubernetes API fake through the real ``kubernetes`` client (a kubeconfig) and a real
store (SQLite or PostgreSQL).  Used by the attack tests and ``benchmarks/attack.py``.

Each function is one attack and returns what it saw, so a test asserts on it and the
benchmark prints it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.k8s_fake import FakeApiServer, route, write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
PLAN_TEXT = (ROOT / "plans" / "nanopore.yaml").read_text()
SHIPPED_ROUTER = "router: {kind: openshift-route, namespace: nanopore}"
SHIPPED_PROMETHEUS = "url: http://localhost:9090"
TOKEN = "attack-token"
ANA, LEE = "ana@example.org", "lee@example.org"


@dataclass(frozen=True)
class Cluster:
    """A fake API server holding the shipped plan's Routes, and a plan that reaches it
    (its alert channels, with ``hooks``, the hooks' two webhook channels)."""

    api: FakeApiServer
    plan: Path
    db: str
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cutover", *args, "--plan", str(self.plan),
                "--db", self.db]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, cwd=ROOT,
                              env=_env() | self.env, timeout=timeout, check=False)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                env=_env() | self.env)

    def candidate(self, name: str = "nanopore-auth", backend: str = "python-auth") -> int:
        """The candidate's weight on the Route (of 100: the fake keeps 0..100 routes)."""
        spec = self.api.get(name)["spec"]
        return int(next(b["weight"] for b in spec["alternateBackends"]
                        if b["name"] == backend))


class Hooks:
    """Two webhook channels on one loopback server: every POST recorded by channel with
    its ``Idempotency-Key`` (one key per alert and channel), answered 200."""

    CHANNELS = ("hook-a", "hook-b")

    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []     # (channel, Idempotency-Key)
        self.lock = threading.Lock()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hooks.lock:
                    hooks.keys.append((self.path.rsplit("/", 1)[-1],
                                       self.headers.get("Idempotency-Key", "")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def env(self) -> dict[str, str]:
        port = self.server.server_address[1]
        return {_hook_env(name): f"http://127.0.0.1:{port}/hooks/{name}"
                for name in self.CHANNELS}

    def alerts_block(self) -> str:
        lines = [f"    - {{name: {name}, kind: generic, url_env: {_hook_env(name)}}}"
                 for name in self.CHANNELS]
        return "alerts:\n  channels:\n" + "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _hook_env(channel: str) -> str:
    return "ATTACK_" + channel.upper().replace("-", "_") + "_URL"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@contextmanager
def cluster(tmp: Path, db: str, *, sources: str | None = None,
            hooks: Hooks | None = None) -> Iterator[Cluster]:
    """The fake API server with every Route at 0 %, a kubeconfig, and the shipped plan
    pointed at them (its Prometheus at a port nothing listens on, unless ``sources``
    replaces the plan's sources block; its alerts to ``hooks`` when given)."""
    with FakeApiServer(token=TOKEN) as api:
        for name, backend in (("nanopore-auth", "python-auth"),
                              ("nanopore-files", "python-files"),
                              ("nanopore-samples", "python-samples"),
                              ("nanopore-ai", "python-ai"), ("nanopore-audit", "python-audit"),
                              ("nanopore-app", "python-gateway")):
            api.put(route(name, alternates=[{"kind": "Service", "name": backend,
                                             "weight": 0}]))
        kubeconfig = tmp / "kubeconfig"
        write_kubeconfig(kubeconfig, server=api.url, token=TOKEN)
        assert SHIPPED_ROUTER in PLAN_TEXT and SHIPPED_PROMETHEUS in PLAN_TEXT
        # the attacks race several people over one kubeconfig: they name themselves with
        # --actor, which a cluster router takes only with allow_actor (who the cluster
        # says someone is: tests/rollout/test_identity.py)
        text = PLAN_TEXT.replace(SHIPPED_ROUTER, "router: {kind: openshift-route, "
                                 f"namespace: nanopore, kubeconfig: {kubeconfig}, "
                                 "allow_actor: true}")
        text = text.replace(SHIPPED_PROMETHEUS, f"url: http://127.0.0.1:{_closed_port()}")
        if sources is not None:
            start = text.index("sources:")
            end = text.index("\nrouter:")
            text = text[:start] + sources.rstrip() + "\n" + text[end:]
        if hooks is not None:
            start = text.index("\nalerts:") + 1
            end = text.index("\n# user names as the cluster gives them")
            text = text[:start] + hooks.alerts_block() + text[end:]
        plan = tmp / "plan.yaml"
        plan.write_text(text)
        # the store is migrated already
        yield Cluster(api=api, plan=plan, db=db, env=hooks.env() if hooks else {})


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Any, *, what: str, timeout: float = 30.0) -> None:
    """Poll ``check()`` until true; a clear failure naming ``what`` if it never is."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.02)


@dataclass(frozen=True)
class KilledApprove:
    """An ``approve`` killed with SIGKILL while its PATCH was in flight."""

    route_after: int          # the candidate's weight on the route once the server applied it
    pending: int              # decisions left pending in the store


def kill_approve_mid_patch(c: Cluster, *, apply: bool = True) -> KilledApprove:
    """Start ``approve auth``, kill -9 it while the API server holds its PATCH, then let
    the server apply the patch (``apply``) or drop it."""
    held = c.api.hold_next_patch()
    proc = c.start("approve", "auth", "--reason", "week 2", "--actor", ANA)
    try:
        if not held.arrived.wait(60):
            out, err = proc.communicate(timeout=5)
            raise AssertionError(f"the approve never sent its patch: {err}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        held.release(apply=apply)
    want = 10 if apply else 0
    wait_for(lambda: c.candidate() == want and c.api.count("PATCH") >= 1,
             what=f"the held patch to settle at {want} %")
    return KilledApprove(route_after=c.candidate(), pending=len(decisions(c, "pending")))


def decisions(c: Cluster, state: str | None = None) -> list[dict[str, Any]]:
    """The audit trail as ``decisions --json`` gives it, newest first (read in this
    process: the store is what the attacked processes left)."""
    from rollout import gate
    from store.db import make_engine

    engine = make_engine(c.db)
    try:
        rows = [d.contract() for d in gate.decisions(engine=engine)]
    finally:
        engine.dispose()
    return [d for d in rows if state is None or d["state"] == state]


def status(c: Cluster, service: str = "auth") -> dict[str, Any]:
    """``status --json``'s row for ``service``, read in this process."""
    from rollout import gate
    from rollout.routers import api_client_for, build_router
    from slo.planfile import parse_plan
    from store.db import make_engine

    engine = make_engine(c.db)
    try:
        plan = parse_plan(c.plan.read_text(), source=str(c.plan))
        router = build_router(plan, engine, api_client=api_client_for(c.api.url, token=TOKEN))
        rows = gate.service_status(engine=engine, plan=plan, router=router,
                                   now=datetime.now(UTC))
    finally:
        engine.dispose()
    return next(r.contract() for r in rows if r.service == service)


def concurrent(c: Cluster, argvs: Sequence[Sequence[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Start every command at once; their results in order."""
    procs = [c.start(*argv) for argv in argvs]
    results = []
    for p, argv in zip(procs, argvs, strict=True):
        out, err = p.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(list(argv), p.returncode, out, err))
    return results


#: the plan's sources for the log attacks: one JSON access log, no Prometheus
def log_sources(path: Path) -> str:
    return f"sources:\n  logs:\n    - {{path: {path}, format: json}}\n"


def write_lines(path: Path, n: int, *, at: datetime | None = None) -> None:
    """``n`` JSON access-log lines of auth's two variants, stamped within the last minute
    (the collector refuses times far from its clock), appended."""
    import orjson

    t = (at or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    with path.open("ab") as f:
        for i in range(n):
            upstream = "python-auth" if i % 10 == 0 else "nanopore-monolith"
            f.write(orjson.dumps({"time": t, "path": "/api/auth/login", "status": 200,
                                  "bytes": 512, "latency_ms": 30 + i % 7,
                                  "upstream": upstream}) + b"\n")


def stored_requests(c: Cluster) -> int:
    """Requests the store counted from the logs, all services and variants."""
    from store.db import make_engine, session_scope
    from store.rollups import rollup_totals

    engine = make_engine(c.db)
    try:
        with session_scope(engine) as s:
            return sum(rollup_totals(session=s).values())
    finally:
        engine.dispose()


@dataclass(frozen=True)
class CollectBeside:
    """``cutover collect --once`` run while a worker runs on the same store."""

    written: int
    stored: int
    collect_code: int
    collect_err: str


def collect_beside_worker(c: Cluster, log: Path, *, lines: int, tries: int = 1) -> CollectBeside:
    """A worker collects ``log`` every second; ``collect --once`` is run beside it
    ``tries`` times, with more lines written before each.  Then the worker is stopped
    and the stored count compared with the lines written."""
    write_lines(log, lines)
    written = lines
    worker = c.start("worker", "--interval", "1s", "--metrics-port", "0")
    code, err = 0, ""
    try:
        wait_for(lambda: stored_requests(c) == written, what="the worker to collect",
                 timeout=120)
        for _ in range(tries):
            write_lines(log, lines)
            written += lines
            done = c.run("collect", "--once")
            code, err = done.returncode, done.stderr
            wait_for(lambda: stored_requests(c) >= written, what="the worker to go on",
                     timeout=120)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
    return CollectBeside(written=written, stored=stored_requests(c), collect_code=code,
                         collect_err=err)


@dataclass(frozen=True)
class Delivered:
    """What reached the hooks against what the outbox holds for them."""

    alerts: int       # deliveries the outbox made for the hooks (one per alert and channel)
    sent: int         # of those, marked sent
    arrivals: int     # POSTs the hooks received
    repeated: int     # (channel, Idempotency-Key) pairs received more than once

    @property
    def per_alert(self) -> float:
        return self.arrivals / self.alerts if self.alerts else 0.0


def deliver_beside(c: Cluster, hooks: Hooks, *, workers: int = 2,
                   rounds: int = 4) -> Delivered:
    """``workers`` ``worker --once`` at once (one holds the lease, the others are
    refused), then single rounds until the outbox has nothing left to send for the hooks
    (one message a second per channel may take more than a round)."""
    concurrent(c, [["worker", "--once", "--metrics-port", "0"]] * workers)
    for _ in range(rounds):
        if _hook_deliveries(c)[0] == _hook_deliveries(c)[1]:
            break
        c.run("worker", "--once", "--metrics-port", "0")
    alerts, sent = _hook_deliveries(c)
    with hooks.lock:
        seen = Counter(hooks.keys)
    return Delivered(alerts=alerts, sent=sent, arrivals=sum(seen.values()),
                     repeated=sum(1 for n in seen.values() if n > 1))


def _hook_deliveries(c: Cluster) -> tuple[int, int]:
    from sqlmodel import col, select

    from store.alerts import AlertDelivery
    from store.db import make_engine, session_scope

    engine = make_engine(c.db)
    try:
        with session_scope(engine) as s:
            rows = s.exec(select(AlertDelivery.state)
                          .where(col(AlertDelivery.channel).in_(Hooks.CHANNELS))).all()
    finally:
        engine.dispose()
    return len(rows), sum(1 for state in rows if state == "sent")

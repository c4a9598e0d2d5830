"""``cutover worker``, ``cutover dashboard`` and ``cutover up``: the processes."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slo.errors import ConfigError
from slo.units import parse_duration

__all__ = ["Dashboard", "WorkerSetup", "dashboard", "up", "worker"]

log = logging.getLogger(__name__)


@dataclass
class WorkerSetup:
    """Everything a worker round needs, built once from a plan and a store."""

    plan: Any
    plan_hash: str
    engine: Any
    router: Any
    collectors: list[Any]
    interval: timedelta
    probes: Any = None

    @classmethod
    def build(cls, *, plan: Any, plan_hash: str, engine: Any,
              interval: timedelta | None = None) -> WorkerSetup:
        from collectors.registry import build_collectors
        from cutover.probing import ProbeRunner
        from rollout.routers import build_router

        return cls(plan=plan, plan_hash=plan_hash, engine=engine,
                   router=build_router(plan, engine),
                   collectors=build_collectors(plan, engine),
                   interval=interval or plan.interval,
                   probes=ProbeRunner(plan=plan, engine=engine))


def _interval(text: str | None) -> timedelta | None:
    if text is None:
        return None
    try:
        value = parse_duration(text)
    except ValueError as e:
        raise ConfigError(f"--interval: {e}") from None
    if value.total_seconds() < 1:
        raise ConfigError(f"--interval: expected at least 1s, got {text!r}")
    return value


def _setup(args: argparse.Namespace) -> WorkerSetup:
    from cutover.context import Context

    ctx = Context.from_args(args)
    return WorkerSetup.build(plan=ctx.plan, plan_hash=ctx.plan_hash,
                             engine=ctx.ready_engine(),
                             interval=_interval(getattr(args, "interval", None)))


def _metrics(setup: WorkerSetup, port: int | None) -> Any:
    from cutover.metrics import WorkerMetrics

    metrics = WorkerMetrics()
    metrics.set_interval(setup.interval.total_seconds())
    if port:
        posts = {"/alertmanager": _inbox(setup)} if setup.plan.alerts.inbox else {}
        metrics.serve(port, posts=posts)
        log.info("worker: /metrics and /healthz%s on port %d",
                 ", /alertmanager" if posts else "", port)
    return metrics


def _inbox(setup: WorkerSetup) -> Any:
    """Alertmanager's webhooks, recorded by every replica (the store is shared)."""
    from datetime import UTC, datetime

    from alerts.inbox import receive

    def post(body: bytes, authorization: str | None) -> tuple[int, str]:
        answer = receive(engine=setup.engine, plan=setup.plan, body=body,
                         authorization=authorization, now=datetime.now(UTC))
        return answer.status, answer.text
    return post


def worker(args: argparse.Namespace) -> int:
    setup = _setup(args)
    if args.once:
        return _once(setup)
    metrics = _metrics(setup, args.metrics_port)
    stop = threading.Event()
    from cutover.worker import handle_signals

    print(f"cutover worker: every {setup.interval.total_seconds():g}s on "
          f"{len(setup.plan.services)} services; /metrics on port {args.metrics_port}; "
          "Ctrl-C stops", file=sys.stderr)
    with handle_signals(stop):
        _loop(setup, stop=stop, metrics=metrics)
    return 0


def _once(setup: WorkerSetup) -> int:
    from datetime import UTC, datetime

    from cutover.worker import run_round
    from store.lease import Lease

    with Lease(setup.engine, name="worker") as lease:
        if not lease.acquire():
            print("cutover: another worker holds the lease on this store; not running a "
                  "round", file=sys.stderr)
            return 1
        report = run_round(plan=setup.plan, plan_hash=setup.plan_hash, engine=setup.engine,
                           router=setup.router, collectors=setup.collectors,
                           now=datetime.now(UTC), probes=setup.probes,
                           holder=lease.holder, interval=setup.interval)
    for r in report.collect_reports:
        print(r.line())
    for s in report.steps:
        print(f"{s.step}: {'ok' if s.ok else 'FAILED'} ({s.seconds:.2f}s)"
              + (f": {s.error}" if s.error else ""))
    for e, _ in report.evaluations:
        print(f"{e.service}: {e.verdict} at {e.weight} %")
    return 0 if report.ok else 1


def _loop(setup: WorkerSetup, *, stop: threading.Event, metrics: Any,
          clock: Any = None) -> int:
    from cutover.worker import run_forever

    return run_forever(plan=setup.plan, plan_hash=setup.plan_hash, engine=setup.engine,
                       router=setup.router, collectors=setup.collectors,
                       interval=setup.interval, stop=stop, metrics=metrics,
                       probes=setup.probes,
                       clock=clock.now if clock is not None else None,
                       wall_seconds=clock.wall_seconds if clock is not None else None)


# -- the dashboard process -------------------------------------------------------------

@dataclass
class Dashboard:
    """The Streamlit dashboard as a child process, stopped with its parent."""

    port: int
    plan_path: str
    db_url: str
    extra_env: Mapping[str, str] | None = None
    address: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        from dashboard.launch import url

        return url(self.address, self.port)

    def env(self) -> dict[str, str]:
        from dashboard.launch import environment

        env = environment(self.plan_path, self.db_url)
        env.update(self.extra_env or {})
        return env

    def check(self) -> str:
        """Refuse a configuration that would trust a header anyone can send (ConfigError,
        exit 2), before anything listens; else the line that says how it listens."""
        from dashboard.launch import ENV_TRUST_FORWARDED, check_address, trusts_forwarded_user

        env = self.env()
        try:
            check_address(self.address, env)
        except ValueError as e:
            raise ConfigError(f"dashboard: {e}") from None
        if trusts_forwarded_user(env):
            return (f"trusting the forwarded user header ({ENV_TRUST_FORWARDED}=1): "
                    f"listening on {self.address} only, for the proxy in front")
        return f"listening on {self.address}"

    def start(self) -> Dashboard:
        from dashboard.launch import command

        self.check()
        env = self.env()
        try:
            argv = command(self.port, self.plan_path, self.db_url, self.address)
        except ValueError as e:
            raise ConfigError(f"dashboard: {e}") from None
        # its own process group: a Ctrl-C in the terminal reaches us, and we stop it
        self.process = subprocess.Popen(argv, env=env, start_new_session=True)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        p, self.process = self.process, None
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("dashboard: did not stop in %.0fs; killing it", timeout)
            p.kill()
            p.wait()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def dashboard(args: argparse.Namespace) -> int:
    from cutover.context import load_plan

    load_plan(args.plan)  # a broken plan is a clear error here, not a broken page
    from cutover.worker import handle_signals

    dash = Dashboard(port=args.port, plan_path=args.plan, db_url=args.db,
                     address=args.address)
    listening = dash.check()
    dash.start()
    print(f"cutover dashboard: {dash.url}, {listening}  (Ctrl-C stops)", file=sys.stderr)
    stop = threading.Event()
    # SIGTERM as well as Ctrl-C (what a pod's stop or systemd sends): the child runs in a
    # session of its own, so nothing else would stop it, and it would keep the port
    try:
        with handle_signals(stop):
            while not stop.wait(0.5):
                assert dash.process is not None
                if (code := dash.process.poll()) is not None:
                    return code
        return 0
    finally:
        dash.stop()


def up(args: argparse.Namespace) -> int:
    dash = Dashboard(port=args.port, plan_path=args.plan, db_url=args.db,
                     address=args.address)
    listening = dash.check()   # refused before the worker starts, not after
    setup = _setup(args)
    metrics = _metrics(setup, args.metrics_port)
    dash.start()
    print(f"cutover up: dashboard at {dash.url} ({listening}), worker every "
          f"{setup.interval.total_seconds():g}s, /metrics on port {args.metrics_port}; "
          "Ctrl-C stops both", file=sys.stderr)
    stop = threading.Event()
    from cutover.worker import handle_signals

    died = threading.Event()
    watcher = threading.Thread(target=_stop_when_gone, args=(dash, stop, died), daemon=True)
    watcher.start()
    try:
        with handle_signals(stop):
            _loop(setup, stop=stop, metrics=metrics)
    finally:
        dash.stop()
    if died.is_set():
        print("cutover: the dashboard exited (is the port free?); the worker stopped too",
              file=sys.stderr)
        return 1
    return 0


def _stop_when_gone(dash: Dashboard, stop: threading.Event, died: threading.Event) -> None:
    """If the dashboard dies, stop the worker too: `up` is both or neither."""
    while not stop.wait(1.0):
        if not dash.running():
            log.error("dashboard exited; stopping the worker")
            died.set()
            stop.set()

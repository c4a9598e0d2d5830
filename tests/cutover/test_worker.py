"""The worker: isolated steps, one leader per store, metrics, the commands."""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from alerts.outbox import RetryPolicy
from collectors.base import CollectReport
from collectors.registry import build_collectors
from cutover.cli import main
from cutover.context import load_plan
from cutover.demo import DemoPaths, demo_plan_text
from cutover.metrics import WorkerMetrics
from cutover.worker import StepName, run_forever, run_round
from rollout.gate import approve
from rollout.routers import build_router
from slo.errors import SourceError
from store.db import make_engine, session_scope
from store.heartbeat import last_round
from store.lease import Lease

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
NO_PACING = RetryPolicy(min_interval=0.0)


class ExplodingSource:
    """A source whose far side is broken in the worst way: collect() raises."""

    name = "exploding"

    records_source_events = False

    def collect(self, *, now: datetime, start: datetime | None = None,
                end: datetime | None = None) -> CollectReport:
        raise SourceError("exploding", "connection reset by peer")


class RefusingSource:
    """A source that answers, but says its pull failed (as Prometheus down does)."""

    name = "refusing"

    records_source_events = False

    def collect(self, *, now: datetime, start: datetime | None = None,
                end: datetime | None = None) -> CollectReport:
        return CollectReport(source=self.name, ok=False, problems=["HTTP 503 from upstream"])


@pytest.fixture
def demo_plan(tmp_path: Path):
    """The shipped plan on the dry-run router, its log and alerts under tmp_path."""
    paths = DemoPaths(tmp_path)
    paths.plan.write_text(demo_plan_text((ROOT / "plans" / "nanopore.yaml").read_text(),
                                         paths=paths))
    plan, plan_hash = load_plan(paths.plan)
    return plan, plan_hash, paths


def test_a_failing_collector_does_not_stop_the_other_steps(engine: Engine, demo_plan) -> None:
    plan, plan_hash, paths = demo_plan
    router = build_router(plan, engine)
    # an approve leaves an event behind: the alerts step must still deliver it
    approve(engine=engine, plan=plan, router=router, service="auth", actor="ana@example.org",
            reason="first step", now=NOW - timedelta(minutes=1))
    collectors = [ExplodingSource(), RefusingSource(), *build_collectors(plan, engine)]
    report = run_round(plan=plan, plan_hash=plan_hash, engine=engine, router=router,
                       collectors=collectors, now=NOW, alert_policy=NO_PACING)

    collect = report.step(StepName.COLLECT)
    assert not collect.ok and not report.ok
    assert "connection reset by peer" in (collect.error or "")
    assert "HTTP 503" in (collect.error or "")
    # every collector ran and is reported, the real one after the broken ones
    assert [r.source for r in report.collect_reports] == ["exploding", "refusing", "logs"]
    for later in (StepName.EVALUATE, StepName.POLICY, StepName.ROUTES, StepName.ALERTS):
        assert report.step(later).ok, report.line()
    assert {e.service for e, _ in report.evaluations} == {"auth"}
    # the approval, and one source-down for each broken collector
    assert report.alerts_queued == 3
    told = paths.alerts_log.read_text()
    assert "approved auth 0 % -> 10 %" in told
    assert "connection reset by peer" in told and "HTTP 503 from upstream" in told
    assert report.weights["auth"] == 10
    # the heartbeat says when the round was, who did it, and that it had failures
    with session_scope(engine) as s:
        beat = last_round(session=s)
    assert beat is not None and (beat.at, beat.ok, beat.interval) == (NOW, False, plan.interval)
    assert "collect: " in beat.failed and "connection reset by peer" in beat.failed


def test_drift_found_in_a_round_is_told_in_that_round(sqlite_engine: Engine, demo_plan) -> None:
    """Someone moves a route by hand: the round reads it back, records the drift, and the
    alert goes out in the same round; the stored weight is left as it was (never undone)."""
    plan, plan_hash, paths = demo_plan
    router = build_router(plan, sqlite_engine)
    approve(engine=sqlite_engine, plan=plan, router=router, service="auth",
            actor="ana@example.org", reason="first step", now=NOW - timedelta(minutes=5))
    router.set_weight("auth", 40)          # the hand patch, behind the gate's back
    report = run_round(plan=plan, plan_hash=plan_hash, engine=sqlite_engine, router=router,
                       collectors=[], now=NOW, alert_policy=NO_PACING)
    assert report.step(StepName.ROUTES).ok, report.line()
    assert report.weights["auth"] == 40
    log_text = paths.alerts_log.read_text()
    assert "drift" in log_text and "auth" in log_text
    from rollout.gate import service_status

    row = next(r for r in service_status(engine=sqlite_engine, plan=plan, router=router, now=NOW)
               if r.service == "auth")
    assert (row.weight, row.router_weight, row.drift) == (10, 40, True)


def test_a_failing_source_is_told_once_and_its_recovery_too(sqlite_engine: Engine,
                                                           demo_plan) -> None:
    plan, plan_hash, paths = demo_plan
    router = build_router(plan, sqlite_engine)

    class Flaky:
        name = "flaky"
        records_source_events = False
        ok = False

        def collect(self, *, now: datetime, start: datetime | None = None,
                    end: datetime | None = None) -> CollectReport:
            return CollectReport(source=self.name, ok=self.ok,
                                 problems=[] if self.ok else ["disk unreadable"])

    flaky = Flaky()
    for minute in range(3):   # down for three rounds: one source-down
        run_round(plan=plan, plan_hash=plan_hash, engine=sqlite_engine, router=router,
                  collectors=[flaky], now=NOW + timedelta(minutes=minute), alert_policy=NO_PACING)
    flaky.ok = True
    for minute in range(3, 5):  # back: one source-recovered
        run_round(plan=plan, plan_hash=plan_hash, engine=sqlite_engine, router=router,
                  collectors=[flaky], now=NOW + timedelta(minutes=minute), alert_policy=NO_PACING)
    from sqlmodel import Session, select

    from store.events import EventRow

    with Session(sqlite_engine) as s:
        kinds = [e.kind for e in s.exec(select(EventRow).order_by(EventRow.id)).all()
                 if e.kind.startswith("source")]
    assert kinds == ["source-down", "source-recovered"]
    assert "disk unreadable" in paths.alerts_log.read_text()


def test_a_step_that_raises_is_reported_and_the_next_ones_run(sqlite_engine: Engine,
                                                              demo_plan) -> None:
    """The judge's step breaks (its store is gone under it); policy and alerts go on."""
    plan, plan_hash, paths = demo_plan
    router = build_router(plan, sqlite_engine)
    approve(engine=sqlite_engine, plan=plan, router=router, service="auth",
            actor="ana@example.org", reason="first step", now=NOW - timedelta(minutes=1))
    with sqlite_engine.begin() as conn:   # a table the judge reads, dropped by "someone"
        conn.exec_driver_sql("DROP TABLE log_rollup")
    report = run_round(plan=plan, plan_hash=plan_hash, engine=sqlite_engine, router=router,
                       collectors=[], now=NOW, alert_policy=NO_PACING)
    evaluate = report.step(StepName.EVALUATE)
    assert not evaluate.ok and "log_rollup" in (evaluate.error or "")
    assert report.step(StepName.POLICY).ok and report.step(StepName.ALERTS).ok
    assert report.evaluations == ()
    assert "approved auth" in paths.alerts_log.read_text()


def test_one_leader_per_store_and_a_clean_stop(sqlite_engine: Engine, demo_plan) -> None:
    plan, plan_hash, _ = demo_plan
    router = build_router(plan, sqlite_engine)
    stop = threading.Event()
    done: dict[str, list] = {"a": [], "b": []}
    metrics = {"a": WorkerMetrics(), "b": WorkerMetrics()}
    servers = {k: m.serve(0, host="127.0.0.1") for k, m in metrics.items()}

    def worker(key: str, start_after: float) -> None:
        time.sleep(start_after)
        run_forever(plan=plan, plan_hash=plan_hash, engine=sqlite_engine, router=router,
                    collectors=[], interval=timedelta(seconds=30), stop=stop,
                    wall_seconds=lambda d: d.total_seconds() / 300,  # a round every 0.1 s
                    clock=lambda: NOW, metrics=metrics[key],
                    lease=Lease(sqlite_engine, name="worker", holder=key),
                    on_round=done[key].append)

    threads = [threading.Thread(target=worker, args=("a", 0.0)),
               threading.Thread(target=worker, args=("b", 0.3))]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 20
        while len(done["a"]) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # b has tried at least once by now
        scraped = {k: _get(f"http://127.0.0.1:{s.server_address[1]}/metrics")
                   for k, s in servers.items()}
    finally:
        stop.set()
        for t in threads:
            t.join(20)
        for s in servers.values():
            s.shutdown()
    assert not any(t.is_alive() for t in threads)
    assert len(done["a"]) >= 3 and done["b"] == []
    assert "cutover_leader 1.0" in scraped["a"] and "cutover_leader 0.0" in scraped["b"]
    # only the leader beats, named by its lease, at its interval
    with session_scope(sqlite_engine) as s:
        beat = last_round(session=s)
    assert beat is not None and (beat.holder, beat.ok, beat.interval) == \
        ("a", True, timedelta(seconds=30))
    # the leader let go on stop: a third worker leads at once
    with Lease(sqlite_engine, name="worker", holder="c") as lease:
        assert lease.acquire()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (loopback)
        return r.read().decode()


def test_worker_once_runs_a_round_and_says_what_it_did(tmp_path: Path, demo_plan, capsys
                                                       ) -> None:
    _, _, paths = demo_plan
    db = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["db", "upgrade", "--db", db]) == 0
    code = main(["worker", "--once", "--plan", str(paths.plan), "--db", db])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "collect: ok" in out and "evaluate: ok" in out and "alerts: ok" in out
    assert "auth: inconclusive at 0 %" in out
    with session_scope(make_engine(db)) as s:
        beat = last_round(session=s)
    assert beat is not None and beat.ok and beat.holder.endswith(f":{os.getpid()}")


def test_worker_refuses_a_bad_interval(demo_plan, tmp_path: Path, capsys) -> None:
    _, _, paths = demo_plan
    db = f"sqlite:///{tmp_path / 'w.db'}"
    main(["db", "upgrade", "--db", db])
    code = main(["worker", "--interval", "soon", "--plan", str(paths.plan), "--db", db])
    assert code == 2
    assert "--interval" in capsys.readouterr().err


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            _get(url)
            return True
        except OSError:
            time.sleep(0.2)
    return False


@pytest.mark.slow
def test_up_runs_worker_and_dashboard_and_ctrl_c_stops_both(tmp_path: Path, demo_plan
                                                           ) -> None:
    import os
    import signal
    import subprocess
    import sys

    _, _, paths = demo_plan
    db = f"sqlite:///{tmp_path / 'up.db'}"
    assert main(["db", "upgrade", "--db", db]) == 0
    port, metrics_port = _free_port(), _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUTOVER_PLAN": str(paths.plan),
           "CUTOVER_DB": db}
    proc = subprocess.Popen([sys.executable, "-m", "cutover", "up", "--port", str(port),
                             "--metrics-port", str(metrics_port)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert _wait(f"http://127.0.0.1:{metrics_port}/healthz", 60), "no worker"
        assert _wait(f"http://127.0.0.1:{port}/_stcore/health", 90), "no dashboard"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0   # the round in progress finishes first
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert f"dashboard at http://localhost:{port}" in err
    # both are gone: nothing answers on either port any more
    assert not _wait(f"http://127.0.0.1:{port}/_stcore/health", 1)
    assert not _wait(f"http://127.0.0.1:{metrics_port}/healthz", 1)

"""What the worker and the commands tell about a source that answers badly: a
Retry-After counted from the answer, a Prometheus that answers empty for everything
told as a source down, and ``evaluate`` naming the source that does not answer.

Real parts: a Prometheus API on loopback (an HTTP server that answers every query with
a success and no series, as a Prometheus whose selectors match nothing does), a closed
port for a Prometheus that is down, the real webhook receiver of the alert tests."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from collectors.base import CollectReport
from cutover.cli import main
from cutover.context import load_plan
from cutover.worker import run_round
from rollout.routers import build_router
from store.alerts import AlertDelivery
from store.db import make_engine
from store.events import EventRow
from store.series import SOURCE, PromOutage
from tests.alerts.conftest import Answer, Receiver
from tests.conftest import PLAN_PATH

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class EmptyPrometheus:
    """``/api/v1/query_range`` answering success with no series, for every query."""

    def __init__(self) -> None:
        outer = self
        self.queries = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.queries += 1
                body = json.dumps({"status": "success",
                                   "data": {"resultType": "matrix", "result": []}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def empty_prometheus() -> Iterator[EmptyPrometheus]:
    p = EmptyPrometheus()
    yield p
    p.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _plan_file(tmp_path: Path, prom_url: str, *, hook_env: str | None = None) -> Path:
    data = yaml.safe_load(PLAN_PATH.read_text())
    data["sources"] = {"prometheus": {"url": prom_url, "step": "30s",
                                      "timeout": "2s"}}
    data["router"] = {"kind": "dry-run"}
    data["alerts"] = {"channels": [{"name": "team", "kind": "generic", "url_env": hook_env}]
                      if hook_env else []}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["--db", url, "--plan", str(PLAN_PATH), "db", "upgrade"]) == 0
    return url


# -- a Prometheus that answers empty for everything ------------------------------------

def test_all_empty_answers_are_a_source_down_and_collect_is_not_ok(
        empty_prometheus: EmptyPrometheus, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    plan, db = _plan_file(tmp_path, empty_prometheus.url), _db(tmp_path)
    capsys.readouterr()
    args = ["--plan", str(plan), "--db", db, "collect", "--once", "--from", "-30m"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert empty_prometheus.queries > 0
    assert "prometheus: FAILED" in out and "no series" in out and ": ok" not in out
    assert main(args) == 1           # still empty: told once, not every pass
    engine = make_engine(db)
    try:
        with Session(engine) as s:
            downs = s.exec(select(EventRow).where(EventRow.kind == "source-down")).all()
            outage = s.exec(select(PromOutage).where(PromOutage.target == SOURCE,
                                                     PromOutage.kind == "no-data")).one()
        assert len(downs) == 1 and "no series" in downs[0].summary
        assert downs[0].dedup_key == "source-down:prometheus:no-data"
        assert (outage.outcome, outage.attempts, outage.until) == ("empty", 2, None)
    finally:
        engine.dispose()


# -- evaluate names the source that does not answer ------------------------------------

def test_evaluate_with_prometheus_down_names_it(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan_file(tmp_path, f"http://127.0.0.1:{_closed_port()}")
    db = _db(tmp_path)
    assert main(["--plan", str(plan), "--db", db, "collect", "--once"]) == 1
    capsys.readouterr()
    assert main(["--plan", str(plan), "--db", db, "evaluate", "--service", "auth",
                 "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)["results"]
    assert result["verdict"] == "inconclusive"
    told = [r for r in result["reasons"] if "Prometheus down since" in r]
    assert told and "cannot connect" in told[0], result["reasons"]
    assert any(r.startswith("candidate data:") for r in told)


# -- Retry-After from the answer, not from the start of the round -----------------------

def test_retry_after_is_counted_from_the_answer(tmp_path: Path, receiver: Receiver,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_TEAM", receiver.url("team"))
    plan, plan_hash = load_plan(_plan_file(tmp_path, f"http://127.0.0.1:{_closed_port()}",
                                           hook_env="HOOK_TEAM"))
    engine: Engine = make_engine(_db(tmp_path))

    class SlowAndDown:
        """A collector that takes its time and fails: its source-down is sent this round."""

        name = "slow"

        records_source_events = False

        def collect(self, *, now: datetime, start: datetime | None = None,
                    end: datetime | None = None) -> CollectReport:
            time.sleep(0.5)
            return CollectReport(source=self.name, ok=False, problems=["disk unreadable"])

    receiver.default = Answer(429, {"Retry-After": "2"}, b"slow down")
    from alerts.outbox import RetryPolicy

    try:
        started = time.monotonic()
        run_round(plan=plan, plan_hash=plan_hash, engine=engine,
                  router=build_router(plan, engine), collectors=[SlowAndDown()], now=NOW,
                  alert_policy=RetryPolicy(min_interval=0))
        [arrival] = receiver.arrivals
        with Session(engine) as s:
            row = s.exec(select(AlertDelivery).order_by(col(AlertDelivery.id))).one()
        # on the round's clock, the answer came (arrival - started) after NOW; the
        # channel may be tried again 2 s after that, not 2 s after the round began
        answered = NOW + timedelta(seconds=arrival.at - started)
        assert row.last_status == 429
        assert row.next_attempt_at >= answered + timedelta(seconds=2) - timedelta(seconds=0.05)
    finally:
        engine.dispose()

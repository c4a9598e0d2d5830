"""What the outbox costs per alert: dispatch + deliver of N events to a loopback
receiver, against a baseline of the same N payloads POSTed straight with httpx in the
same run.  Run by hand: ``python benchmarks/alerts_bench.py [N]``."""

from __future__ import annotations

import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from alerts.messages import render
from alerts.notifiers import slack
from alerts.outbox import RetryPolicy, deliver, dispatch
from slo.plan import AlertChannel, Alerts
from slo.planfile import parse_plan
from store.db import make_engine, session_scope, upgrade
from store.events import record_event

ROOT = Path(__file__).resolve().parents[1]
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _pg_url() -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with create_engine(PG, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    return PG.rsplit("/", 1)[0] + f"/{name}", name


def _run(url: str, plan, hook: str, n: int) -> tuple[float, float]:
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as s:
        for i in range(n):
            record_event(session=s, at=NOW, kind="approved", service="auth",
                         summary=f"step {i}", data={"from_weight": 10, "to_weight": 25})
    t0 = time.perf_counter()
    dispatch(engine=engine, plan=plan, now=NOW)
    t1 = time.perf_counter()
    report = deliver(engine=engine, plan=plan, now=NOW, env={"HOOK": hook}, limit=n,
                     policy=RetryPolicy(min_interval=0, budget=3600))
    t2 = time.perf_counter()
    assert report.sent == n, report
    engine.dispose()
    return t1 - t0, t2 - t1


def main(n: int = 500) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
    plan = parse_plan((ROOT / "plans" / "nanopore.yaml").read_text())
    plan = plan.model_copy(update={"alerts": Alerts(channels=[
        AlertChannel(name="bench", kind="slack", url_env="HOOK")])})
    from store.alerts import AlertEvent
    body = slack.payload(render(AlertEvent(id=1, at=NOW, kind="approved", service="auth",
                                           severity="info", dedup_key="k", summary="step",
                                           data={}), plan))
    t0 = time.perf_counter()
    with httpx.Client() as client:
        for _ in range(n):
            client.post(hook, json=body).raise_for_status()
    baseline = time.perf_counter() - t0

    rows = [("baseline: httpx POST only", 0.0, baseline)]
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("outbox on SQLite", *_run(f"sqlite:///{tmp}/b.db", plan, hook, n)))
    url, name = _pg_url()
    try:
        rows.append(("outbox on PostgreSQL", *_run(url, plan, hook, n)))
    finally:
        with create_engine(PG, isolation_level="AUTOCOMMIT").connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.shutdown()
    print(f"{n} alerts, one channel, pacing off")
    print(f"{'run':<28} {'dispatch s':>10} {'deliver s':>10} {'ms/alert':>9} {'x baseline':>10}")
    for label, d, s in rows:
        print(f"{label:<28} {d:>10.2f} {s:>10.2f} {1000 * (d + s) / n:>9.2f} "
              f"{(d + s) / baseline:>10.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)

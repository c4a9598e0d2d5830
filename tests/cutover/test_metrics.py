"""The worker's metrics: what a round records, and the real HTTP endpoint serving it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from collectors.base import CollectReport
from cutover.metrics import METRIC_NAMES, WorkerMetrics
from slo.figures import Figures
from slo.verdict import Evaluation, Verdict

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _evaluation(service: str, verdict: Verdict) -> Evaluation:
    figs = Figures(start=NOW - timedelta(minutes=10), end=NOW)
    return Evaluation(service=service, phase="week-2", weight=25, at=NOW, verdict=verdict,
                      reasons=(), baseline=figs, candidate=figs)


def _samples(m: WorkerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = m.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _round(m: WorkerMetrics, **over: object) -> None:
    args: dict[str, object] = dict(
        collect_reports=[
            CollectReport(source="prometheus", items=120, newest=NOW - timedelta(seconds=45)),
            CollectReport(source="/var/log/gateway/access.log", items=900, rejected=3,
                          strict=7, newest=NOW - timedelta(seconds=5)),
        ],
        evaluations=[_evaluation("auth", Verdict.PASS), _evaluation("files", Verdict.FAIL)],
        weights={"auth": 25, "files": 0}, alerts={"pending": 2, "failed": 1, "sent": 4},
        leader=True, now=NOW)
    args.update(over)
    m.observe_round(**args)  # type: ignore[arg-type]


def test_a_round_sets_every_family() -> None:
    m = WorkerMetrics()
    _round(m)
    s = _samples(m)
    assert s[("cutover_collector_lag_seconds", (("source", "prometheus"),))] == 45
    log = (("source", "/var/log/gateway/access.log"),)
    assert s[("cutover_collector_lag_seconds", log)] == 5
    assert s[("cutover_collector_ingested_total", log)] == 900
    assert s[("cutover_collector_rejected_total", log)] == 3
    assert s[("cutover_collector_strict_lines_total", log)] == 7
    assert s[("cutover_collector_up", log)] == 1
    assert s[("cutover_collector_last_success_timestamp_seconds", log)] == NOW.timestamp()
    assert s[("cutover_evaluations_total", (("service", "auth"), ("verdict", "pass")))] == 1
    assert s[("cutover_evaluations_total", (("service", "files"), ("verdict", "fail")))] == 1
    assert s[("cutover_service_weight_percent", (("service", "auth"),))] == 25
    assert s[("cutover_alerts_pending", ())] == 2
    assert s[("cutover_alerts_failed", ())] == 1
    assert s[("cutover_alerts_sent_total", ())] == 4
    assert s[("cutover_leader", ())] == 1
    assert s[("cutover_last_round_timestamp_seconds", ())] == NOW.timestamp()


def test_every_declared_family_is_exposed() -> None:
    m = WorkerMetrics()
    _round(m, collect_reports=[CollectReport(source="p", newest=NOW),
                               CollectReport(source="q", ok=False)])
    exposed = {s[0] for s in _samples(m)}
    assert set(METRIC_NAMES) <= exposed


def test_counters_add_up_over_rounds() -> None:
    m = WorkerMetrics()
    _round(m)
    _round(m, now=NOW + timedelta(seconds=30))
    s = _samples(m)
    assert s[("cutover_collector_ingested_total", (("source", "prometheus"),))] == 240
    assert s[("cutover_evaluations_total", (("service", "auth"), ("verdict", "pass")))] == 2
    assert s[("cutover_alerts_sent_total", ())] == 8


def test_failed_pull_keeps_the_last_success_time() -> None:
    m = WorkerMetrics()
    _round(m)
    later = NOW + timedelta(minutes=5)
    _round(m, now=later, collect_reports=[
        CollectReport(source="prometheus", ok=False, problems=["connection refused"],
                      newest=NOW - timedelta(seconds=45))])
    s = _samples(m)
    prom = (("source", "prometheus"),)
    assert s[("cutover_collector_last_success_timestamp_seconds", prom)] == NOW.timestamp()
    assert s[("cutover_collector_up", prom)] == 0
    assert s[("cutover_collector_failures_total", prom)] == 1
    assert s[("cutover_collector_lag_seconds", prom)] == 345, "lag grows while stalled"


def test_standby_round_reports_not_leader() -> None:
    m = WorkerMetrics()
    _round(m, collect_reports=[], evaluations=[], weights={}, alerts={}, leader=False)
    s = _samples(m)
    assert s[("cutover_leader", ())] == 0
    assert s[("cutover_alerts_pending", ())] == 0


def test_a_former_leader_drops_the_leaders_gauges() -> None:
    m = WorkerMetrics()
    _round(m)
    _round(m, collect_reports=[], evaluations=[], weights={}, alerts={}, leader=False)
    names = {name for name, _ in _samples(m)}
    assert "cutover_collector_lag_seconds" not in names
    assert "cutover_service_weight_percent" not in names
    assert "cutover_collector_ingested_total" in names, "counters keep their history"


def test_source_with_no_data_yet_has_no_lag_sample() -> None:
    m = WorkerMetrics()
    _round(m, collect_reports=[CollectReport(source="empty", newest=None)])
    assert ("cutover_collector_lag_seconds", (("source", "empty"),)) not in _samples(m)


def test_registry_is_passed_in() -> None:
    reg = CollectorRegistry()
    WorkerMetrics(reg)
    assert reg.get_sample_value("cutover_leader") == 0
    WorkerMetrics()  # a second set on its own registry does not clash


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive interval"):
        WorkerMetrics().set_interval(0)


# -- health ---------------------------------------------------------------------------

def test_health_turns_stale_after_three_intervals() -> None:
    clock = FakeClock()
    m = WorkerMetrics(clock=clock)
    m.set_interval(10)
    clock.t += 29
    assert m.healthy(), "before the first round, start-up counts as the last round"
    clock.t += 2
    assert not m.healthy()
    _round(m)
    assert m.healthy()
    clock.t += 30
    assert m.healthy()
    clock.t += 0.5
    assert not m.healthy()


# -- the HTTP endpoint ----------------------------------------------------------------

@pytest.fixture
def served() -> Iterator[tuple[WorkerMetrics, FakeClock, str]]:
    clock = FakeClock()
    m = WorkerMetrics(clock=clock)
    server = m.serve(0, host="127.0.0.1")
    try:
        yield m, clock, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def test_metrics_endpoint_serves_prometheus_text(served) -> None:  # type: ignore[no-untyped-def]
    m, _, base = served
    _round(m)
    status, ctype, body = _get(base + "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    families = {f.name for f in text_string_to_metric_families(body)}
    assert {"cutover_leader", "cutover_collector_lag_seconds"} <= families
    assert "cutover_leader 1.0" in body


def test_healthz_ok_then_503_when_stale(served) -> None:  # type: ignore[no-untyped-def]
    m, clock, base = served
    m.set_interval(5)
    assert _get(base + "/healthz")[::2] == (200, "ok\n")
    clock.t += 16
    status, _, body = _get(base + "/healthz")
    assert status == 503 and "stale" in body
    _round(m)
    assert _get(base + "/healthz")[0] == 200


def test_unknown_path_is_404(served) -> None:  # type: ignore[no-untyped-def]
    _, _, base = served
    assert _get(base + "/nope")[0] == 404


# -- two real `cutover worker` processes on one store, the leader killed ---------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _leader_gauge(port: int) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            body = r.read().decode()
    except OSError:
        return None
    m = re.search(r"^cutover_leader (\S+)$", body, re.M)
    return float(m.group(1)) if m else None


def _wait_for(cond, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


@pytest.fixture
def dry_run_plan(tmp_path: Path) -> Path:
    """The shipped plan on a 1 s interval, with no sources, chat or cluster to reach."""
    text = (Path(__file__).resolve().parents[2] / "plans" / "nanopore.yaml").read_text()
    text = text[text.index("name: "):]
    text = text[:text.index("sources:")] + "router: {kind: dry-run}\n\n" + text[text.index("baseline:"):]
    text = text[:text.index("alerts:")] + text[text.index("operators:"):]
    path = tmp_path / "plan.yaml"
    path.write_text(text.replace("interval: 30s", "interval: 1s"))
    return path


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # the cluster's store
def test_standby_worker_leads_after_the_leader_is_killed(engine, dry_run_plan: Path,  # type: ignore[no-untyped-def]
                                                         tmp_path: Path) -> None:
    from sqlmodel import Session, func, select

    from store.evaluations import EvaluationRow

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "CUTOVER_PLAN": str(dry_run_plan),
           "CUTOVER_DB": engine.url.render_as_string(hide_password=False)}
    ports = [_free_port(), _free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "cutover", "worker", "--metrics-port",
                               str(p)], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for p in ports]

    def evaluations() -> int:
        with Session(engine) as s:
            return int(s.exec(select(func.count()).select_from(EvaluationRow)).one())

    try:
        def one_leads() -> bool:
            gauges = [_leader_gauge(p) for p in ports]
            return sorted(gauges, key=str) == [0.0, 1.0]

        # generous waits: a first round imports and judges everything, slow on a busy box
        assert _wait_for(one_leads, 90), [_leader_gauge(p) for p in ports]
        # one leader at a time: a service's evaluations come one round apart, never
        # two workers' rounds interleaved (each round starts at least an interval after
        # the one before it)
        assert _wait_for(lambda: evaluations() >= 3, 60)
        with Session(engine) as s:
            rows = s.exec(select(EvaluationRow).order_by(EvaluationRow.service,
                                                         EvaluationRow.at)).all()
        gaps = [(b.at - a.at).total_seconds() for a, b in zip(rows, rows[1:], strict=False)
                if a.service == b.service]
        assert gaps and min(gaps) >= 0.9, f"rounds closer than one interval: {gaps}"
        leader = [_leader_gauge(p) for p in ports].index(1.0)
        standby_port = ports[1 - leader]
        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait(timeout=10)
        before = evaluations()
        # the standby takes the lease at its next round, then reports it after that round
        assert _wait_for(lambda: _leader_gauge(standby_port) == 1.0, 60), "no takeover"
        assert _wait_for(lambda: evaluations() > before, 60), "the standby does no rounds"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)

"""The demo: its traffic model, its history, and its story run for a while.

The story runs in-process on the demo's own clock, stepped by hand (the simulator writes
the log up to T, then the worker does a round at T), so it is exact and fast: no
browser, no sleeping.  The real log collector, judge, gate, dry-run router and outbox
do the work."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from sqlmodel import select

from alerts.outbox import RetryPolicy
from collectors.logs.formats import JsonFormat
from cutover.cmd_worker import WorkerSetup
from cutover.demo import (
    DEMO_OPERATOR,
    Demo,
    DemoPaths,
    HistoryStep,
    demo_plan_text,
    gauge_writer,
    prepare,
)
from cutover.simulator import (
    SimClock,
    Simulator,
    TrafficModel,
    format_lines,
    generate_requests,
    latency_profile,
    total_rps,
)
from cutover.worker import run_round
from reports import build_report
from rollout.gate import approve
from slo.planfile import parse_plan
from store.db import session_scope
from store.evaluations import EvaluationRow
from store.rollout import Decision
from store.rollups import log_figures
from tests.conftest import plan_text_without_probes

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "plans" / "nanopore.yaml"
#: the afternoon peak, so the judge has traffic enough at 10 %
NOON = datetime(2026, 11, 26, 14, 0, 7, tzinfo=UTC)

#: the least history there is: one decision half an hour ago
TINY = (HistoryStep(timedelta(minutes=30), "auth", 10, "lee@example.org", "first step"),)
#: a local log channel needs no pacing to one message a second
NO_PACING = RetryPolicy(min_interval=0.0)
#: the shipped history squeezed into five hours (same gate, same judge): auth's 10 % holds
#: 90 minutes, what the anytime judge needs at its 1 req/s in the morning (about 5,000 of
#: the step's own requests); the later steps carry more traffic and pass sooner
SHORT = (
    HistoryStep(timedelta(hours=5), "auth", 10, "lee@example.org", "week 2"),
    HistoryStep(timedelta(hours=3, minutes=30), "auth", 25, "lee@example.org", "clean"),
    HistoryStep(timedelta(hours=3), "auth", 50, "ana@example.org", "clean"),
    HistoryStep(timedelta(hours=2, minutes=30), "auth", 75, "ana@example.org", "clean"),
    HistoryStep(timedelta(hours=2), "auth", 100, "ana@example.org", "week 2 done"),
    HistoryStep(timedelta(hours=1, minutes=30), "files", 10, "lee@example.org", "week 3 starts"),
    HistoryStep(timedelta(minutes=30), "files", 25, "ana@example.org", "clean at 10 %"),
)


# -- the model -------------------------------------------------------------------------

def test_peak_traffic_is_the_seeds_283_rps_and_the_night_is_quieter() -> None:
    model = TrafficModel(minute_noise=0.0)
    assert total_rps(model, NOON.replace(minute=0, second=0)) == pytest.approx(283, rel=1e-6)
    assert total_rps(model, NOON.replace(hour=2)) < 0.35 * 283


def test_ai_regression_shows_at_50_percent_and_not_at_25() -> None:
    model = TrafficModel()
    base = latency_profile(model, service="ai", variant="baseline", weight=0).median_ms
    at25 = latency_profile(model, service="ai", variant="candidate", weight=25).median_ms
    at50 = latency_profile(model, service="ai", variant="candidate", weight=50).median_ms
    assert at25 < base < 1.5 * base < at50
    files50 = latency_profile(model, service="files", variant="candidate", weight=50)
    assert files50.median_ms < base


def test_a_minute_of_requests_matches_the_rate_and_the_router_weight(plan) -> None:
    model = TrafficModel(minute_noise=0.0)
    start = NOON.replace(minute=0, second=0) - timedelta(seconds=30)
    reqs = generate_requests(model, plan=plan, weights={"files": 25}, start=start,
                             end=start + timedelta(minutes=1), rng=np.random.default_rng(2))
    assert len(reqs) == pytest.approx(283 * 60, rel=0.02)   # Poisson: sd 0.5 %
    files = [u for p, u in zip(reqs.path, reqs.upstream, strict=True)
             if p.startswith("/api/files")]
    share = files.count("python-files") / len(files)
    assert share == pytest.approx(0.25, abs=0.03)
    assert np.all(np.diff(reqs.ts) >= 0)   # a log is written in time order


def test_history_minutes_hold_what_the_live_log_would(plan) -> None:
    from cutover.demo import minute_rollups

    model = TrafficModel(minute_noise=0.0)
    deltas = minute_rollups(model, plan=plan, weights={"files": 25},
                            minute=NOON.replace(minute=0, second=0),
                            rng=np.random.default_rng(3))
    assert sum(d.requests for d in deltas) == pytest.approx(283 * 60, rel=0.02)
    cand = next(d for d in deltas if (d.service, d.variant) == ("files", "candidate"))
    p = latency_profile(model, service="files", variant="candidate", weight=25)
    assert cand.sketch.count == cand.requests
    assert cand.sketch.quantile(0.5) == pytest.approx(p.median_ms, rel=0.05)


def test_lines_parse_with_the_real_json_format(plan) -> None:
    reqs = generate_requests(TrafficModel(), plan=plan, weights={"auth": 100, "files": 25},
                             start=NOON, end=NOON + timedelta(seconds=10),
                             rng=np.random.default_rng(1))
    block = format_lines(reqs, fields={}).rstrip(b"\n")
    cols = JsonFormat().parse(block)
    assert len(reqs) > 1000 and not cols.bad
    docs = [orjson.loads(line) for line in block.split(b"\n")[:200]]
    assert {d["upstream"] for d in docs} >= {"nanopore-monolith", "python-auth"}
    assert all(d["time"].endswith("Z") for d in docs)


def test_clock_runs_at_its_speed_and_travels_as_text() -> None:
    clock = SimClock(anchor_sim=NOON, anchor_wall=1000.0, speed=60)
    assert clock.now(1001.0) == NOON + timedelta(minutes=1)
    assert clock.wall_seconds(timedelta(seconds=30)) == 0.5
    assert SimClock.from_text(clock.to_text()) == clock
    with pytest.raises(ValueError, match="CUTOVER_CLOCK"):
        SimClock.from_text("yesterday")


def test_demo_plan_is_the_shipped_one_on_the_dry_run_router(tmp_path: Path) -> None:
    paths = DemoPaths(tmp_path)
    plan = parse_plan(demo_plan_text(PLAN.read_text(), paths=paths), source="demo")
    # the shipped probes need the cluster's databases, file stores and API: not the demo's
    shipped = parse_plan(plan_text_without_probes(PLAN.read_text()), source="shipped")
    assert plan.router.kind == "dry-run" and plan.sources.prometheus is None
    assert [s.name for s in plan.services] == [s.name for s in shipped.services]
    assert plan.defaults == shipped.defaults and plan.phases == shipped.phases
    assert plan.probes() == []
    assert plan.sources.logs[0].path == str(paths.access_log)
    assert [(c.kind, c.path) for c in plan.alerts.channels] == [("log", str(paths.alerts_log))]


def test_the_demo_probes_run_for_real_against_its_stand_ins(tmp_path: Path) -> None:
    """Stand-ins on loopback for the monolith and the Python services, two file trees and
    three SQLite databases: the probes they can answer keep the shipped plan's checks, the
    rest go."""
    from collectors.probes.base import ProbeContext
    from collectors.probes.runner import run_due
    from cutover.standins import StandIns
    from store.db import make_engine, upgrade

    standins = StandIns.start(tmp_path / "stand-ins")
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        text = demo_plan_text(PLAN.read_text(), paths=DemoPaths(tmp_path), standins=standins)
        plan = parse_plan(text, source="demo")
        assert {p.kind for _, _, p in plan.probes()} == {"http", "compare", "files", "session",
                                                         "consistency"}
        assert "svc" not in text and "SESSION_PROBE_LOGIN" not in text
        assert plan.success_probes()["uptime"][1] == ["healthy"]
        upgrade(engine)
        results = {r.probe: r for r in run_due(ProbeContext(plan=plan, now=NOON, engine=engine))}
        # week 3's upload that reached the new store with one byte changed: the files probe
        # names it at its next run, and holds the step (the shipped plan's on_fail: hold)
        assert standins.corrupt_upload() and not standins.corrupt_upload()
        later = NOON + timedelta(minutes=15)
        [corrupted] = [r for r in run_due(ProbeContext(plan=plan, now=later, engine=engine))
                       if r.probe == "files-intact"]
    finally:
        standins.close()
        engine.dispose()
    assert corrupted.verdict.value == "fail"
    assert corrupted.reasons[0] == ("runs/fc-8/sample-03.pod5: same size, different SHA-256 "
                                    "(corrupted)"), corrupted.reasons
    files_probe = next(p for _, _, p in plan.probes() if p.name == "files-intact")
    assert files_probe.on_fail == "hold"
    verdicts = {name: r.verdict.value for name, r in results.items()}
    assert verdicts == {"healthy": "pass", "sessions-held": "pass", "files-intact": "pass",
                        "samples-answers": "pass", "samples-search": "fail",
                        "samples-consistent": "fail", "audit-consistent": "pass",
                        "ai-answers": "pass"}, {n: r.reasons for n, r in results.items()}
    # the one drifted row is named, by its key
    assert any("4" in why and "samples" in why for why in results["samples-consistent"].reasons), (
        results["samples-consistent"].reasons)
    assert results["samples-search"].reasons[0] == (
        "GET /api/samples?search=ecoli: items: 3 items from the monolith, 2 from the service")
    week3 = next(p for p in plan.phases if p.id == "week-3")
    assert [c.probes for c in week3.criteria if c.probes] == [["files-intact"], ["files-intact"]]


# -- the history and the story -----------------------------------------------------------

def evaluations(engine, service: str) -> list[EvaluationRow]:
    with session_scope(engine) as s:
        return list(s.exec(select(EvaluationRow).where(EvaluationRow.service == service)
                           .order_by(EvaluationRow.at)).all())


def _stepped_simulator(setup, router, start: datetime) -> Simulator:
    model = TrafficModel()
    return Simulator(plan=setup.plan, model=model, clock=SimClock(start, 0.0, 1.0),
                     log_path=setup.paths.access_log, read_weight=router.read_weight,
                     write_gauges=gauge_writer(setup.engine, plan=setup.plan, model=model),
                     written_until=start, rng=np.random.default_rng(5))


#: one step long before the dense part of the history: judged every SPARSE_STEP
OLD_STEP = (HistoryStep(timedelta(hours=20), "auth", 10, "lee@example.org", "week 2"),)


def test_the_older_history_stores_every_minute_of_a_step(tmp_path: Path) -> None:
    """The anytime judge reads a step whole from its start, and the dashboard charts
    those figures: an evaluation far back in the history reads the step's traffic at its
    rate, not the share of it that the windows before the evaluations held."""
    from cutover.simulator import service_rps
    from store.rollups import LogRollup

    paths = DemoPaths(tmp_path / "demo")
    setup = prepare(source_plan=PLAN, paths=paths, db_url=paths.db_url, now=NOON,
                    steps=OLD_STEP, corrupted_upload=None)
    try:
        with session_scope(setup.engine) as s:
            minutes = set(s.exec(select(LogRollup.minute).where(
                LogRollup.service == "gateway", LogRollup.variant == "baseline")).all())
        start = setup.history.start.replace(second=0, microsecond=0)
        every = int((NOON - start).total_seconds() // 60)
        assert len(minutes) >= every - 1, (len(minutes), every)
        old = [e for e in evaluations(setup.engine, "auth")
               if e.weight == 10 and e.at <= NOON - timedelta(hours=7)]
        assert len(old) >= 2, [e.at for e in evaluations(setup.engine, "auth")]
        model = TrafficModel()
        for e in old:
            assert e.step_since is not None
            span = int((e.at - e.step_since).total_seconds() // 60)
            rates = [service_rps(model, "auth", e.step_since + timedelta(minutes=m))
                     for m in range(span)]
            expected = sum(rates) / len(rates)
            measured = e.figures["baseline"]["rps"] + e.figures["candidate"]["rps"]
            assert measured == pytest.approx(expected, rel=0.2), (e.at, measured, expected)
    finally:
        setup.close()


def test_history_then_the_ai_story_end_to_end(tmp_path: Path, db_url: str) -> None:
    # every minute of the history: the anytime judge reads each step whole
    setup = prepare(source_plan=PLAN, paths=DemoPaths(tmp_path / "demo"), db_url=db_url,
                    now=NOON, steps=SHORT, detail=timedelta(hours=5, minutes=30),
                    corrupted_upload=timedelta(seconds=1))   # after the history's last look
    try:
        h = setup.history
        assert h.decisions == len(SHORT), h.refused
        # the probes ran at the history's times, and the gate weighed them: auth's and
        # files' passes carry the stand-ins' checks
        report = build_report(engine=setup.engine, plan=setup.plan, phase_id="week-3", at=NOON)
        uptime = next(m for m in report.success if m.figure == "uptime")
        assert uptime.met is True and uptime.value == 1.0, uptime.basis
        files = next(e for e in reversed(evaluations(setup.engine, "files"))
                     if e.verdict == "pass")
        assert "probe:files-intact" in {c["name"] for c in files.checks}

        with session_scope(setup.engine) as s:
            applied = s.exec(select(Decision).where(Decision.state == "applied")).all()
            assert {(d.service, d.to_weight) for d in applied} >= {("auth", 100), ("files", 25)}
            assert s.exec(select(EvaluationRow).where(EvaluationRow.service == "auth",
                                                      EvaluationRow.verdict == "pass")).first()
        worker = WorkerSetup.build(plan=setup.plan, plan_hash=setup.plan_hash,
                                   engine=setup.engine)
        assert worker.router.read_weight("files") == 25

        # an operator pushes ai to 50 % past the gate
        t = NOON
        for _ in range(3):
            approve(engine=setup.engine, plan=setup.plan, router=worker.router, service="ai",
                    actor=DEMO_OPERATOR, reason="demo: push ai", override=True, now=t)
            t += timedelta(seconds=1)
        assert worker.router.read_weight("ai") == 50

        sim = _stepped_simulator(setup, worker.router, NOON)
        reports = []
        for _ in range(8):
            t += timedelta(seconds=30)
            sim.advance(until=t)
            reports.append(run_round(plan=setup.plan, plan_hash=setup.plan_hash,
                                     engine=setup.engine, router=worker.router,
                                     collectors=worker.collectors, now=t,
                                     alert_policy=NO_PACING))
            if reports[-1].reverted:
                break
        assert all(r.ok for r in reports), [r.line() for r in reports]
        ai = [e for r in reports for e, _ in r.evaluations if e.service == "ai"]
        assert ai and ai[-1].verdict.value == "fail" and ai[-1].weight == 50
        assert any("p95" in reason for reason in ai[-1].reasons)
        assert reports[-1].reverted, "the worker did not auto-revert"
        assert worker.router.read_weight("ai") == 0

        with session_scope(setup.engine) as s:
            auto = s.exec(select(Decision).where(Decision.action == "auto-revert")).one()
            assert (auto.service, auto.from_weight, auto.to_weight, auto.state) == \
                ("ai", 50, 0, "applied")
            # what the collector saw: ai's candidate took traffic while at 50 %
            seen = log_figures(session=s, service="ai", variant="candidate",
                               start=NOON, end=t)
            assert seen.requests and seen.requests > 100

        # after the revert the simulator sends ai nothing more: the collector sees it
        revert_at = t
        for _ in range(3):
            t += timedelta(seconds=30)
            sim.advance(until=t)
            run_round(plan=setup.plan, plan_hash=setup.plan_hash, engine=setup.engine,
                      router=worker.router, collectors=worker.collectors, now=t,
                      alert_policy=NO_PACING)
        with session_scope(setup.engine) as s:
            after = log_figures(session=s, service="ai", variant="candidate",
                                start=revert_at + timedelta(minutes=1), end=t)
            assert not after.requests

        # the corrupted upload, after the history's last look: the files probe's next run
        # (every 15 minutes) names it, and holds files at 25 % (inconclusive, not a fail:
        # nothing auto-reverts it)
        from cutover.probing import ProbeRunner

        t = NOON + timedelta(minutes=16)
        sim.advance(until=t)
        run_round(plan=setup.plan, plan_hash=setup.plan_hash, engine=setup.engine,
                  router=worker.router, collectors=worker.collectors, now=t,
                  alert_policy=NO_PACING, probes=ProbeRunner(plan=setup.plan,
                                                             engine=setup.engine))
        held = evaluations(setup.engine, "files")[-1]
        assert (held.at, held.weight, held.verdict) == (t, 25, "inconclusive"), held.reasons
        assert held.reasons[0] == ("probe files-intact fail (holds the step): "
                                   "runs/fc-8/sample-03.pod5: same size, different SHA-256 "
                                   "(corrupted)"), held.reasons
        assert worker.router.read_weight("files") == 25

        alerts = setup.paths.alerts_log.read_text()
        assert "auto-reverted ai 50 % -> 0 %" in alerts
        assert "probe-failed" in alerts and "files-intact" in alerts, alerts[-2000:]
        assert "verdict-failed ai" in alerts
        assert "approved files 10 % -> 25 %" in alerts   # the history's alerts too
    finally:
        setup.close()


def test_a_second_demo_on_a_used_store_is_refused(tmp_path: Path, sqlite_engine) -> None:
    from slo.errors import ConfigError

    url = str(sqlite_engine.url)
    first = prepare(source_plan=PLAN, paths=DemoPaths(tmp_path / "a"), db_url=url, now=NOON,
                    steps=TINY)
    first.close()
    with pytest.raises(ConfigError, match="empty store"):
        prepare(source_plan=PLAN, paths=DemoPaths(tmp_path / "b"), db_url=url, now=NOON,
                steps=TINY)


def test_running_demo_makes_rounds_and_stops_cleanly(tmp_path: Path) -> None:
    """Threads on a sped-up clock (no dashboard): rounds happen, close() ends them."""
    paths = DemoPaths(tmp_path / "demo")
    setup = prepare(source_plan=PLAN, paths=paths, db_url=paths.db_url, now=NOON,
                    steps=TINY)
    demo = Demo(plan=setup.plan, plan_hash=setup.plan_hash, engine=setup.engine,
                paths=paths, clock=SimClock.starting(NOON, speed=30)).start(tick=0.1)
    def collected() -> int:
        return sum(r.items for rnd in list(demo.rounds) for r in rnd.collect_reports)

    def probed() -> set[str]:
        return {r.probe for rnd in list(demo.rounds) for r in rnd.probe_results}

    try:
        deadline = time.monotonic() + 60   # generous: a busy machine runs rounds slowly
        while ((len(demo.rounds) < 2 or not collected() or "healthy" not in probed())
               and time.monotonic() < deadline):
            time.sleep(0.2)
    finally:
        demo.close()
        setup.close()
    lines = demo.simulator.lines_written if demo.simulator else 0
    state = f"{len(demo.rounds)} rounds, {collected()} lines collected of {lines} written"
    assert len(demo.rounds) >= 2 and collected() > 0, state
    assert not any(t.is_alive() for t in demo.threads), state
    assert all(r.ok for r in demo.rounds), [r.line() for r in demo.rounds if not r.ok]
    # the live worker runs the probes too, each on its interval (healthy: every minute)
    assert "healthy" in probed(), state
    # stopped means stopped: the log no longer grows
    size = paths.access_log.stat().st_size
    time.sleep(0.5)
    assert paths.access_log.stat().st_size == size


def test_a_demo_already_running_in_the_dir_is_not_wiped(tmp_path: Path) -> None:
    from slo.errors import ConfigError
    from store.lease import Lease

    paths = DemoPaths(tmp_path / "demo")
    setup = prepare(source_plan=PLAN, paths=paths, db_url=paths.db_url, now=NOON, steps=TINY)
    try:
        with Lease(setup.engine, name="worker", holder="running demo") as lease:
            assert lease.acquire()
            with pytest.raises(ConfigError, match="already running"):
                prepare(source_plan=PLAN, paths=paths, db_url=paths.db_url, now=NOON,
                        steps=TINY)
            assert (paths.root / "cutover.db").exists()
    finally:
        setup.close()


@pytest.mark.parametrize("speed", ["0", "-5", "10000"])
def test_demo_refuses_a_speed_it_cannot_keep(speed: str, tmp_path: Path, capsys) -> None:
    from cutover.cli import main

    assert main(["demo", "--speed", speed, "--dir", str(tmp_path)]) == 2
    assert "--speed" in capsys.readouterr().err
    assert not (tmp_path / "cutover.db").exists()

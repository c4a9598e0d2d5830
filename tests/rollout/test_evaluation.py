"""Evaluations over the store: which services, which step, stored once, events on turns.

Figures come through the ``figures_fn`` seam (the store's own ``variant_figures`` by
default, exercised on an empty store below); rollout state, evaluations and events are
the real tables on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from rollout.evaluation import evaluate, services_to_evaluate
from slo.errors import ConfigError
from slo.figures import Figures
from slo.plan import Plan
from slo.verdict import Evaluation, Verdict
from store.db import session_scope
from store.evaluations import EvaluationRow
from store.events import EventRow
from store.rollout import Decision, ServiceState
from tests.slo.judgekit import AT, figures

HEALTHY_RATE, BAD_RATE = 0.003, 0.05


@dataclass
class FakeStore:
    """Figures per service as a function of the window: steady traffic at a given rate
    (requests per second) and error share; ``calls`` records what was asked."""

    candidate_rps: float = 28.3
    baseline_rps: float = 254.7
    error_share: dict[str, float] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    calls: list[tuple[str, str, timedelta]] = field(default_factory=list)
    #: at most this many latencies in a sketch (for speed)
    latency_cap: int = 200_000

    def __call__(self, *, session: Session, service: str, variant: str, start: datetime,
                 end: datetime) -> Figures:
        assert isinstance(session, Session)
        span = end - start
        self.calls.append((service, variant, span))
        rps = self.candidate_rps if variant == "candidate" else self.baseline_rps
        n = rps * span.total_seconds()
        share = self.error_share.get(service, HEALTHY_RATE) if variant == "candidate" \
            else HEALTHY_RATE
        return figures(round(n), round(n * share), window=span, at=end,
                       memory_mb=self.memory.get(service, 120.0),
                       latency_samples=min(round(n), self.latency_cap))


def set_state(engine: Engine, service: str, weight: int, since: datetime | None) -> None:
    with session_scope(engine) as s:
        row = s.get(ServiceState, service) or ServiceState(service=service)
        row.weight, row.step_since = weight, since
        s.add(row)


# -- which services ---------------------------------------------------------------

def test_services_to_evaluate_starts_with_the_first_unfinished_phase(plan: Plan) -> None:
    assert services_to_evaluate(plan, {}) == ["auth"]          # week-1 moves nothing
    assert services_to_evaluate(plan, {"auth": 50}) == ["auth"]
    assert services_to_evaluate(plan, {"auth": 100}) == ["files"]


def test_services_to_evaluate_adds_services_in_flight(plan: Plan) -> None:
    weights = {"auth": 100, "files": 25, "samples": 10, "gateway": 100}
    assert services_to_evaluate(plan, weights) == ["files", "samples"]
    weights = {"auth": 100, "files": 100, "samples": 100, "ai": 100, "audit": 50}
    assert services_to_evaluate(plan, weights) == ["ai", "audit"]
    done = {s.name: 100 for s in plan.services}
    assert services_to_evaluate(plan, done) == []


# -- evaluate ----------------------------------------------------------------------

def with_inference(plan: Plan, inference: str) -> Plan:
    return plan.model_copy(update={"defaults": plan.defaults.model_copy(
        update={"inference": inference})})


def logs_only(plan: Plan) -> Plan:
    """The plan without its memory and CPU targets, which need Prometheus."""
    targets = {k: v for k, v in (plan.defaults.targets or {}).items()
               if k not in ("memory_mb", "cpu_cores")}
    return plan.model_copy(update={"defaults": plan.defaults.model_copy(
        update={"targets": targets})})


#: the windows one look reads, 20 minutes into a step whose evidence began 19 minutes ago
SPANS = {
    # the plan's 10m window and the 2m and 5m recent windows; the burn windows (30m, 1h,
    # 6h) reach past the step: each is cut where the step's own evidence begins, its first
    # whole minute plus the plan's 1m rate window (19m ago)
    "fixed": {timedelta(minutes=m) for m in (10, 2, 5, 19)},
    # the whole step (19m) for the main checks; the detectors' starts 10m, 5m and 2m back;
    # the 10m window for the sources' problems; the burn rules' short sequences restarted
    # at their blocks (the 2m block began 3m ago, the 5m one 9m ago, the 30m and 1h ones
    # with the step's evidence)
    "anytime": {timedelta(minutes=m) for m in (10, 2, 5, 19, 9, 3)},
}


@pytest.mark.parametrize("inference", ["fixed", "anytime"])
def test_evaluate_stores_a_pass_with_the_step_read_from_the_store(engine: Engine, plan: Plan,
                                                                  inference: str) -> None:
    set_state(engine, "auth", 10, AT - timedelta(minutes=20))
    fake = FakeStore()
    [(ev, row_id)] = evaluate(engine=engine, plan=with_inference(plan, inference),
                              plan_hash="abc", at=AT, figures_fn=fake)
    assert (ev.service, ev.phase, ev.weight, ev.verdict) == ("auth", "week-2", 10, Verdict.PASS)
    assert {span for _, _, span in fake.calls} == SPANS[inference]
    with session_scope(engine) as s:
        row = s.get(EvaluationRow, row_id)
        assert row is not None and row.verdict == "pass" and row.plan_hash == "abc"
        # 28.3 req/s over the plan's 10m window (fixed) or the step's 19m (anytime)
        minutes = {"fixed": 10, "anytime": 19}[inference]
        assert row.figures["candidate"]["requests"] == round(28.3 * 60 * minutes)
        assert any(c["name"] == "error_budget_burn_1h_5m" for c in row.checks)


def test_no_row_means_weight_zero_and_no_soak(engine: Engine, plan: Plan) -> None:
    [(ev, _)] = evaluate(engine=engine, plan=plan, plan_hash="", at=AT, figures_fn=FakeStore())
    assert ev.weight == 0 and ev.verdict is Verdict.INCONCLUSIVE
    assert "no step has started: nothing soaks at weight 0 %" in ev.reasons


def test_the_same_time_twice_is_one_row(engine: Engine, plan: Plan) -> None:
    set_state(engine, "auth", 10, AT - timedelta(minutes=20))
    first = evaluate(engine=engine, plan=plan, plan_hash="", at=AT, figures_fn=FakeStore())
    again = evaluate(engine=engine, plan=plan, plan_hash="", at=AT, figures_fn=FakeStore())
    assert first[0][1] == again[0][1]
    with session_scope(engine) as s:
        assert len(s.exec(select(EvaluationRow)).all()) == 1


def test_events_on_turning_fail_and_back(engine: Engine, plan: Plan) -> None:
    set_state(engine, "auth", 25, AT - timedelta(hours=1))
    fake = FakeStore()

    def at(minutes: int, share: float) -> Verdict:
        fake.error_share["auth"] = share
        [(ev, _)] = evaluate(engine=engine, plan=plan, plan_hash="", figures_fn=fake,
                             at=AT + timedelta(minutes=minutes))
        return ev.verdict

    assert at(0, HEALTHY_RATE) is Verdict.PASS
    assert at(1, BAD_RATE) is Verdict.FAIL
    assert at(1, BAD_RATE) is Verdict.FAIL       # the same time again: no second event
    assert at(2, BAD_RATE) is Verdict.FAIL       # still failing: no new event
    assert at(3, HEALTHY_RATE) is Verdict.PASS
    with session_scope(engine) as s:
        events = s.exec(select(EventRow).order_by(EventRow.id)).all()  # type: ignore[arg-type]
        assert [(e.kind, e.severity, e.at) for e in events] == [
            ("verdict-failed", "critical", AT + timedelta(minutes=1)),
            ("verdict-recovered", "info", AT + timedelta(minutes=3))]
        failed = events[0]
        assert failed.service == "auth" and failed.summary.startswith("auth fails at 25 %: ")
        names = {c["name"] for c in failed.data["checks"]}
        assert "error_rate" in names and all(c["verdict"] == "fail"
                                             for c in failed.data["checks"])
        row = s.get(EvaluationRow, failed.data["evaluation_id"])
        assert row is not None and row.at == AT + timedelta(minutes=1)


def test_phase_total_memory(engine: Engine, plan: Plan) -> None:
    for name in ("auth", "files", "samples"):
        set_state(engine, name, 100, AT - timedelta(days=1))
    set_state(engine, "ai", 50, AT - timedelta(hours=1))
    set_state(engine, "audit", 10, AT - timedelta(hours=1))
    fake = FakeStore(memory={"ai": 180.0, "audit": 140.0})
    results = evaluate(engine=engine, plan=plan, plan_hash="", at=AT, figures_fn=fake)
    assert [e.service for e, _ in results] == ["ai", "audit"]
    for ev, _ in results:
        assert ev.verdict is Verdict.FAIL
        assert "memory in total over the phase 320 MiB > max 300 MiB" in ev.reasons


def test_one_service_and_unknown_service(engine: Engine, plan: Plan) -> None:
    [(ev, _)] = evaluate(engine=engine, plan=plan, plan_hash="", at=AT, service="gateway",
                         figures_fn=FakeStore())
    assert ev.service == "gateway" and ev.phase == "week-6"
    with pytest.raises(ConfigError, match="unknown service 'nope'; expected one of auth, "):
        evaluate(engine=engine, plan=plan, plan_hash="", at=AT, service="nope",
                 figures_fn=FakeStore())


def test_replay_reads_the_step_from_decisions(engine: Engine, plan: Plan) -> None:
    set_state(engine, "auth", 25, AT)                     # 25 % since AT
    with session_scope(engine) as s:
        s.add(Decision(at=AT - timedelta(hours=2), service="auth", action="approve",
                       from_weight=0, to_weight=10, actor="ana", state="applied",
                       applied_at=AT - timedelta(hours=2)))
        s.add(Decision(at=AT, service="auth", action="approve", from_weight=10, to_weight=25,
                       actor="ana", state="applied", applied_at=AT))
    [(ev, _)] = evaluate(engine=engine, plan=plan, plan_hash="", figures_fn=FakeStore(),
                         at=AT - timedelta(minutes=30))
    assert ev.weight == 10 and ev.verdict is Verdict.PASS
    [(ev, _)] = evaluate(engine=engine, plan=plan, plan_hash="", figures_fn=FakeStore(),
                         at=AT - timedelta(hours=3))
    assert ev.weight == 0


def test_real_store_without_data_is_inconclusive(engine: Engine, plan: Plan) -> None:
    """The store's own figures (no collector has run): never a pass, and it says why."""
    set_state(engine, "auth", 10, AT - timedelta(minutes=20))
    [(ev, row_id)] = evaluate(engine=engine, plan=plan, plan_hash="", at=AT)
    assert ev.verdict is Verdict.INCONCLUSIVE and row_id > 0
    assert any("no figures for the candidate" in r or "no request count" in r
               for r in ev.reasons), ev.reasons


# -- end to end over the log rollups ----------------------------------------------

def _write_minutes(engine: Engine, *, service: str, start: datetime, minutes: int,
                   candidate_errors: float) -> None:
    from store.rollups import RollupDelta, upsert_rollups
    from tests.slo.judgekit import sketch

    deltas = []
    for i in range(minutes):
        minute = start + timedelta(minutes=i)
        for variant, n, share in (("baseline", 15_000, HEALTHY_RATE),
                                  ("candidate", 1_700, candidate_errors)):
            deltas.append(RollupDelta(service=service, variant=variant, minute=minute,
                                      requests=n, errors=round(n * share), bytes_sent=0,
                                      sketch=sketch(n, median_ms=30.0)))
    with session_scope(engine) as s:
        upsert_rollups(session=s, deltas=deltas)


@pytest.mark.parametrize("inference", ["fixed", "anytime"])
def test_evaluate_over_real_log_rollups(engine: Engine, plan: Plan, inference: str) -> None:
    """The store's own figures from per-minute log rollups: a pass, then a regression
    that fails within two minutes and records its event.  (The plan's memory and CPU
    targets are dropped here: they need Prometheus, which this test does not run.)"""
    judged = with_inference(logs_only(plan), inference)
    set_state(engine, "auth", 10, AT - timedelta(minutes=60))
    _write_minutes(engine, service="auth", start=AT - timedelta(minutes=70), minutes=70,
                   candidate_errors=HEALTHY_RATE)
    [(ev, _)] = evaluate(engine=engine, plan=judged, plan_hash="h", at=AT)
    assert ev.verdict is Verdict.PASS, ev.reasons
    # fixed: the plan's 10m window; anytime: the step's own 59 whole minutes (the minute
    # the step began in holds the previous weight's requests too)
    minutes = {"fixed": 10, "anytime": 59}[inference]
    assert ev.candidate.requests == 1_700 * minutes and ev.candidate.sources == ("logs",)
    assert any(r.startswith("p95 latency ") for r in ev.reasons)

    _write_minutes(engine, service="auth", start=AT, minutes=2, candidate_errors=5 * HEALTHY_RATE)
    [(ev, _)] = evaluate(engine=engine, plan=judged, plan_hash="h",
                         at=AT + timedelta(minutes=2))
    assert ev.verdict is Verdict.FAIL, ev.reasons
    # fixed: the 2m recent window; anytime: the regression detector over the minutes
    # since the regression began
    short = {"fixed": "error_rate_2m", "anytime": "error_rate_recent"}[inference]
    assert any(c.name == short and c.verdict is Verdict.FAIL for c in ev.checks), ev.checks
    with session_scope(engine) as s:
        [event] = s.exec(select(EventRow)).all()
        assert (event.kind, event.service) == ("verdict-failed", "auth")


# -- evidence belongs to its step ---------------------------------------------------

@dataclass
class StartsStore(FakeStore):
    """FakeStore that also records where each window starts."""

    starts: list[datetime] = field(default_factory=list)

    def __call__(self, *, session: Session, service: str, variant: str, start: datetime,
                 end: datetime) -> Figures:
        self.starts.append(start)
        if start >= end:  # as the store answers an empty window
            return Figures(start=start, end=end, problems=("no data in an empty window",))
        return super().__call__(session=session, service=service, variant=variant,
                                start=start, end=end)


def test_no_window_reaches_into_the_previous_step(engine: Engine, plan: Plan) -> None:
    """Re-approved to 10 % at 11:50:20 after a revert from 50 %: every window (the plan's,
    the short ones, the burn ones) starts at the step's own evidence, 11:52 (its first
    whole minute, 11:51, plus the plan's 1m rate window), and the evaluation names the
    step it was made for."""
    since = AT - timedelta(minutes=9, seconds=40)
    set_state(engine, "auth", 10, since)
    fake = StartsStore()
    [(ev, row_id)] = evaluate(engine=engine, plan=plan, plan_hash="", at=AT, figures_fn=fake)
    evidence = AT - timedelta(minutes=8)
    assert min(fake.starts) == evidence
    assert set(fake.starts) == {evidence, AT - timedelta(minutes=5), AT - timedelta(minutes=2)}
    assert ev.step_since == since and ev.contract()["step_since"] == "2026-11-26T11:50:20Z"
    with session_scope(engine) as s:
        row = s.get(EvaluationRow, row_id)
        assert row is not None and row.step_since == since and row.weight == 10


def test_a_step_younger_than_its_first_minute_is_inconclusive_and_says_how_long(
        engine: Engine, plan: Plan) -> None:
    set_state(engine, "auth", 10, AT - timedelta(seconds=30))
    fake = StartsStore(error_share={"auth": BAD_RATE})     # the 50 % step's bad minute
    [(ev, _)] = evaluate(engine=engine, plan=plan, plan_hash="", at=AT, figures_fn=fake)
    assert ev.verdict is Verdict.INCONCLUSIVE
    step = next(c for c in ev.checks if c.name == "step")
    assert step.verdict is Verdict.INCONCLUSIVE
    assert "count from 12:01 UTC" in step.detail and "less than a minute more" in step.detail
    assert ev.wait_seconds is not None and ev.wait_seconds >= 60   # soak waits longer
    assert all(s == AT for s in fake.starts)               # nothing read from before


def test_too_few_requests_of_its_own_says_since_when(engine: Engine, plan: Plan) -> None:
    set_state(engine, "auth", 10, AT - timedelta(minutes=3))
    fake = FakeStore(candidate_rps=3.0)
    [(ev, _)] = evaluate(engine=engine, plan=plan, plan_hash="", at=AT, figures_fn=fake)
    assert ev.verdict is Verdict.INCONCLUSIVE
    gate = next(c for c in ev.checks if c.name == "min_requests")
    assert gate.detail.startswith("360 of 500 candidate requests since 11:58 UTC (this "
                                  "step's own): less than a minute more at the current 3.0 req/s"), gate.detail


def test_anytime_reads_the_whole_step_and_restarted_short_windows(engine: Engine,
                                                                 plan: Plan) -> None:
    """Anytime inference: the main figures cover the step's own requests from its
    evidence start (not the plan's 10m), the short windows their restarted blocks."""
    anytime = with_inference(plan, "anytime")
    since = AT - timedelta(hours=2)
    set_state(engine, "auth", 10, since)
    fake = StartsStore()
    [(ev, _)] = evaluate(engine=engine, plan=anytime, plan_hash="", at=AT, figures_fn=fake)
    evidence = since + timedelta(minutes=1)                   # whole minute + 1m rate window
    assert min(fake.starts) == evidence
    assert ev.candidate.requests == round(28.3 * 119 * 60)     # the step's, not 10 minutes'
    # 2m blocks: 119 minutes in, block 58 began 116 minutes after the evidence
    assert evidence + timedelta(minutes=116) in fake.starts
    assert evidence + timedelta(minutes=110) in fake.starts   # 5m blocks: block 21
    assert ev.reasons[-1].startswith("anytime-valid")
    # the regression detectors: windows from minutes on the grid, 2 .. 80 minutes back
    assert {AT - timedelta(minutes=m) for m in (2, 5, 10, 20, 40, 80)} <= set(fake.starts)


def test_anytime_keeps_a_stored_pass_of_the_same_step(engine: Engine, plan: Plan) -> None:
    """A pass stored for the step stands at a later look whose error check cannot tell;
    a pass stored for another step (another weight) does not."""
    anytime = with_inference(plan, "anytime")
    since = AT - timedelta(hours=2)
    fake = FakeStore(candidate_rps=3.0, baseline_rps=27.0, error_share={"auth": 0.0048})

    def judged(weight: int, *, stored: int | None = None) -> Verdict:
        with session_scope(engine) as s:
            for row in s.exec(select(EvaluationRow)).all():
                s.delete(row)
        set_state(engine, "auth", weight, since)
        if stored is not None:
            with session_scope(engine) as s:
                s.add(EvaluationRow(service="auth", at=AT - timedelta(minutes=1), weight=stored,
                                    verdict="pass", step_since=since))
        [(ev, _)] = evaluate(engine=engine, plan=anytime, plan_hash="", at=AT, figures_fn=fake)
        return ev.verdict

    assert judged(10) is Verdict.INCONCLUSIVE
    assert judged(10, stored=10) is Verdict.PASS
    assert judged(10, stored=25) is Verdict.INCONCLUSIVE


@dataclass
class GapStore(FakeStore):
    """FakeStore whose baseline series has a gap at ``gap``: every window over it says so."""

    gap: datetime = AT

    def __call__(self, *, session: Session, service: str, variant: str, start: datetime,
                 end: datetime) -> Figures:
        f = super().__call__(session=session, service=service, variant=variant, start=start,
                             end=end)
        if variant == "baseline" and start <= self.gap < end:
            return replace(f, problems=(f"Prometheus data has a gap at {self.gap:%H:%M}",))
        return f


def test_anytime_a_gap_holds_the_verdict_while_it_is_in_the_plans_window(
        engine: Engine, plan: Plan) -> None:
    """The main checks read the whole step; a gap an hour ago leaves some requests
    uncounted and no longer holds the verdict, a gap in the last 10 minutes still does."""
    anytime = with_inference(plan, "anytime")
    set_state(engine, "auth", 10, AT - timedelta(hours=2))

    def judged(ago: timedelta) -> Evaluation:
        [(ev, _)] = evaluate(engine=engine, plan=anytime, plan_hash="", at=AT,
                             figures_fn=GapStore(gap=AT - ago, latency_cap=20_000))
        return ev

    old = judged(timedelta(hours=1))
    assert old.verdict is Verdict.PASS, old.reasons
    recent = judged(timedelta(minutes=5))
    assert recent.verdict is Verdict.INCONCLUSIVE
    assert any("gap at 11:55" in r for r in recent.reasons), recent.reasons

"""Probes in the store and at the gate, on SQLite and PostgreSQL: due runs, history and
events, the traffic split from the log rollups, alert response from the outbox, and
evaluate weighing the probes' results beside the judge's checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from collectors.probes.base import ProbeContext
from collectors.probes.runner import run_due, run_probe
from collectors.probes.split import measured_split
from rollout.evaluation import evaluate
from slo.plan import Plan
from slo.probe_results import ProbeResult
from slo.probe_specs import AlertResponseProbe, SplitProbe
from slo.sketch import LogSketch
from slo.verdict import Verdict
from store.alerts import AlertDelivery
from store.db import session_scope
from store.events import EventRow
from store.probes import latest_probe_results, probe_history, save_probe_result
from store.rollout import ServiceState
from store.rollups import RollupDelta, upsert_rollups

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _weight(engine: Engine, service: str, weight: int, since: datetime) -> None:
    with session_scope(engine) as s:
        s.add(ServiceState(service=service, weight=weight, step_since=since, status="waiting"))


def _traffic(engine: Engine, service: str, *, minutes: int, candidate: int, baseline: int) -> None:
    deltas = [RollupDelta(service, variant, NOW - timedelta(minutes=m), n, 0, 0, LogSketch())
              for m in range(1, minutes + 1)
              for variant, n in (("candidate", candidate), ("baseline", baseline))]
    with session_scope(engine) as s:
        upsert_rollups(session=s, deltas=deltas)


def _store(engine: Engine, result: ProbeResult) -> None:
    with session_scope(engine) as s:
        save_probe_result(session=s, result=result)


def _result(probe: str, verdict: Verdict, *, at: datetime = NOW, service: str | None = "auth",
            reasons: tuple[str, ...] = ("measured",)) -> ProbeResult:
    return ProbeResult(probe=probe, kind="split", at=at, verdict=verdict, reasons=reasons,
                       phase="week-2", service=service)


# -- the split from the logs ---------------------------------------------------------------

def test_the_measured_split_counts_whole_minutes_of_the_step(engine: Engine,
                                                             shipped_plan: Plan) -> None:
    _weight(engine, "auth", 25, NOW - timedelta(minutes=30))
    _traffic(engine, "auth", minutes=20, candidate=31, baseline=69)
    with session_scope(engine) as s:
        split = measured_split(session=s, service="auth", start=NOW - timedelta(minutes=20),
                               end=NOW)
    assert (split.candidate, split.total, split.share) == (620, 2000, 0.31)
    ctx = ProbeContext(plan=shipped_plan, now=NOW, engine=engine)
    result = run_probe((shipped_plan.phase("week-2"), shipped_plan.service("auth"),
                        SplitProbe(kind="split", name="auth-split")), ctx)
    assert result.verdict is Verdict.FAIL
    assert result.reasons[0].startswith("auth: route says 25 %, the gateway sent 31.0 % of "
                                        "2000 requests")
    assert result.figures["auth"]["weight"] == 25


def test_the_split_leaves_out_minutes_before_the_step(engine: Engine, shipped_plan: Plan) -> None:
    _weight(engine, "auth", 25, NOW - timedelta(minutes=10, seconds=30))
    _traffic(engine, "auth", minutes=20, candidate=25, baseline=75)
    ctx = ProbeContext(plan=shipped_plan, now=NOW, engine=engine)
    result = run_probe((shipped_plan.phase("week-2"), shipped_plan.service("auth"),
                        SplitProbe(kind="split", name="auth-split")), ctx)
    assert result.verdict is Verdict.PASS, result.reasons
    # 11:50 .. 11:59: the minute the step began in (11:49) mixes both weights, left out
    assert result.figures["auth"]["total"] == 1000


def test_week_one_zero_percent_to_python(engine: Engine, shipped_plan: Plan) -> None:
    _traffic(engine, "files", minutes=20, candidate=1, baseline=200)
    ctx = ProbeContext(plan=shipped_plan, now=NOW, engine=engine)
    result = run_probe((shipped_plan.phase("week-1"), None, SplitProbe(
        kind="split", name="routing-split", services=["auth", "files"])), ctx)
    assert result.verdict is Verdict.FAIL
    assert any(r.startswith("files: route says 0 %, the gateway sent 0.5 %") for r in
               result.reasons)
    assert any(r.startswith("auth: 0 requests") for r in result.reasons)


# -- alert response from the outbox ----------------------------------------------------------

def _alert(engine: Engine, *, at: datetime, sent_after: float | None, state: str = "sent",
           dispatched: bool = True) -> None:
    with session_scope(engine) as s:
        event = EventRow(at=at, kind="verdict-failed", service="auth", severity="critical",
                         summary="auth fails", dispatched=dispatched)
        s.add(event)
        s.flush()
        if dispatched:
            s.add(AlertDelivery(
                event_id=event.id, channel="team-slack", channel_kind="slack", state=state,
                created_at=at, next_attempt_at=at, idempotency_key=f"k{event.id}",
                done=state != "pending",
                sent_at=at + timedelta(seconds=sent_after) if sent_after is not None else None))


def test_alert_response_within_a_minute_passes_and_slower_fails(engine: Engine,
                                                                plan: Plan) -> None:
    spec = AlertResponseProbe(kind="alert_response", name="a")
    ctx = ProbeContext(plan=plan, now=NOW, engine=engine)
    _alert(engine, at=NOW - timedelta(hours=2), sent_after=12)
    ok = run_probe((plan.phase("week-1"), None, spec), ctx)
    assert ok.verdict is Verdict.PASS and ok.value == 12, ok.reasons
    _alert(engine, at=NOW - timedelta(hours=1), sent_after=95)
    slow = run_probe((plan.phase("week-1"), None, spec), ctx)
    assert slow.verdict is Verdict.FAIL
    assert "verdict-failed at 2026-11-26 11:00:00 to team-slack: delivered after 95 s" \
        in slow.reasons[0]


def test_alert_still_waiting_or_given_up_fails(engine: Engine, plan: Plan) -> None:
    spec = AlertResponseProbe(kind="alert_response", name="a")
    ctx = ProbeContext(plan=plan, now=NOW, engine=engine)
    _alert(engine, at=NOW - timedelta(minutes=3), sent_after=None, dispatched=False)
    waiting = run_probe((plan.phase("week-1"), None, spec), ctx)
    assert waiting.verdict is Verdict.FAIL and "(not dispatched)" in waiting.reasons[0]
    _alert(engine, at=NOW - timedelta(minutes=5), sent_after=None, state="failed")
    failed = run_probe((plan.phase("week-1"), None, spec), ctx)
    assert any("never delivered" in r for r in failed.reasons)


def test_no_critical_alert_is_nothing_to_time(engine: Engine, plan: Plan) -> None:
    ctx = ProbeContext(plan=plan, now=NOW, engine=engine)
    result = run_probe((plan.phase("week-1"), None,
                        AlertResponseProbe(kind="alert_response", name="a")), ctx)
    assert result.verdict is Verdict.INCONCLUSIVE


# -- running due probes, with history and events ----------------------------------------------

def test_due_probes_run_on_their_interval_and_keep_their_history(engine: Engine,
                                                                 shipped_plan: Plan) -> None:
    _weight(engine, "auth", 25, NOW - timedelta(hours=1))
    _traffic(engine, "auth", minutes=30, candidate=25, baseline=75)
    ctx = ProbeContext(plan=shipped_plan, now=NOW, engine=engine, env={})
    first = {r.probe for r in run_due(ctx)}
    assert first == {p.name for _, _, p in shipped_plan.probes()}
    ctx.now = NOW + timedelta(minutes=2)
    again = {r.probe for r in run_due(ctx)}
    assert again == {"healthy"}                       # the only one on a 1m interval
    ctx.now = NOW + timedelta(minutes=3)
    assert [r.probe for r in run_due(ctx, only=["auth-split"])] == ["auth-split"]
    with session_scope(engine) as s:
        history = probe_history(session=s, probe="auth-split")
        latest = latest_probe_results(session=s)
    assert [r.at for r in history] == [NOW + timedelta(minutes=3), NOW]
    assert latest["auth-split"].verdict is Verdict.PASS
    # no database, file store or cluster here: never a pass, and the reason says why
    assert latest["samples-consistent"].verdict is Verdict.INCONCLUSIVE
    assert "MONOLITH_DATABASE_URL is not set" in latest["samples-consistent"].reasons[0]


def test_a_probe_turning_fail_records_one_event_and_its_recovery(engine: Engine,
                                                                 shipped_plan: Plan) -> None:
    _weight(engine, "auth", 25, NOW - timedelta(hours=1))
    _traffic(engine, "auth", minutes=30, candidate=40, baseline=60)
    ctx = ProbeContext(plan=shipped_plan, now=NOW, engine=engine)
    run_due(ctx, only=["auth-split"])
    ctx.now = NOW + timedelta(minutes=1)
    run_due(ctx, only=["auth-split"])
    _traffic(engine, "auth", minutes=30, candidate=-15, baseline=15)   # back to 25 %
    ctx.now = NOW + timedelta(minutes=1, seconds=30)
    run_due(ctx, only=["auth-split"])
    with session_scope(engine) as s:
        kinds = [(e.kind, e.severity) for e in s.exec(select(EventRow).order_by(EventRow.id))]
    assert kinds == [("probe-failed", "critical"), ("probe-recovered", "info")]


# -- at the gate --------------------------------------------------------------------------------

def _evaluate(engine: Engine, plan: Plan) -> tuple[Verdict, tuple[str, ...], list[str]]:
    [(e, _)] = evaluate(engine=engine, plan=plan, plan_hash="x", at=NOW, service="auth")
    return e.verdict, e.reasons, [c.name for c in e.checks if c.name.startswith("probe:")]


def test_evaluate_weighs_every_probe_of_the_service_and_its_phase(engine: Engine,
                                                                 shipped_plan: Plan) -> None:
    _weight(engine, "auth", 25, NOW - timedelta(hours=1))
    verdict, reasons, probes = _evaluate(engine, shipped_plan)
    assert probes == ["probe:sessions-held", "probe:auth-deploy-time", "probe:auth-split"]
    assert verdict is Verdict.INCONCLUSIVE
    assert "probe sessions-held has not run yet" in reasons


def test_a_failed_probe_fails_the_step_with_its_reason_first(engine: Engine,
                                                            shipped_plan: Plan) -> None:
    _weight(engine, "auth", 25, NOW - timedelta(hours=1))
    _store(engine, _result("sessions-held", Verdict.FAIL, service=None,
                           reasons=("a session made at the monolith was not honoured",)))
    verdict, reasons, _ = _evaluate(engine, shipped_plan)
    assert verdict is Verdict.FAIL
    assert reasons[0] == ("probe sessions-held fail: a session made at the monolith was not "
                          "honoured")


def test_a_drifting_split_holds_the_step_and_never_fails_it(engine: Engine,
                                                            shipped_plan: Plan) -> None:
    _weight(engine, "auth", 25, NOW - timedelta(hours=1))
    _store(engine, _result("auth-split", Verdict.FAIL, reasons=("route says 25 %, sent 31 %",)))
    verdict, reasons, _ = _evaluate(engine, shipped_plan)
    assert verdict is Verdict.INCONCLUSIVE
    assert "probe auth-split fail (holds the step): route says 25 %, sent 31 %" in reasons


def test_a_result_from_after_the_evaluation_time_is_not_used(engine: Engine,
                                                             shipped_plan: Plan) -> None:
    _weight(engine, "auth", 25, NOW - timedelta(hours=1))
    _store(engine, _result("sessions-held", Verdict.FAIL, at=NOW + timedelta(minutes=1),
                           service=None))
    verdict, reasons, _ = _evaluate(engine, shipped_plan)
    assert verdict is Verdict.INCONCLUSIVE and "probe sessions-held has not run yet" in reasons


def test_a_plan_without_probes_is_judged_as_before(engine: Engine, plan: Plan) -> None:
    _weight(engine, "auth", 25, NOW - timedelta(hours=1))
    assert _evaluate(engine, plan)[2] == []


# -- a first step, before any verdict ------------------------------------------------------

def test_a_failing_probe_holds_a_first_step_no_verdict_has_judged(
        engine: Engine, shipped_plan: Plan, api_client: object) -> None:
    """Probes need no traffic: a service at 0 % whose phase is not judged yet is held by
    what its probes found; override goes past it, and says so on the decision."""
    import pytest

    from rollout import gate
    from rollout.routers import build_router
    from slo.errors import GateError

    router = build_router(shipped_plan, engine, api_client=api_client)
    _store(engine, _result("sessions-held", Verdict.FAIL, service=None,
                           reasons=("a session made at the monolith was not honoured",)))
    with pytest.raises(GateError, match="held: probe sessions-held fail: a session made at "
                       "the monolith was not honoured"):
        gate.approve(engine=engine, plan=shipped_plan, router=router, service="auth",
                     actor="ana@example.org", reason="week 2", now=NOW)
    assert router.read_weight("auth") == 0
    out = gate.approve(engine=engine, plan=shipped_plan, router=router, service="auth",
                       actor="ana@example.org", reason="week 2, session fix deployed",
                       override=True, now=NOW)
    assert (out.to_weight, out.override) == (10, True)
    # a passing probe holds nothing: the next service's first step goes as before
    _store(engine, _result("files-intact", Verdict.PASS, service=None))
    assert gate.approve(engine=engine, plan=shipped_plan, router=router, service="files",
                        actor="ana@example.org", reason="week 3", now=NOW).to_weight == 10

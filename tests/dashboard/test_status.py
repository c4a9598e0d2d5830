"""The shaping behind the pages: phases, cards, success metrics (pure functions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dashboard import status
from dashboard.actions import ActionKind, propose
from rollout.state import RolloutStatus
from slo.figures import Figures
from slo.verdict import Check, Evaluation, Verdict
from store.views import StateView

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def state(service: str, weight: int, *, since: timedelta = timedelta(hours=1),
          router: int | None = None, status_: str = "ready") -> StateView:
    return StateView(service=service, phase=None, weight=weight, status=status_,
                     step_since=NOW - since, consecutive_failures=0,
                     router_weight=weight if router is None else router,
                     router_checked_at=NOW, version=1, updated_at=NOW)


def evaluation(service: str, weight: int, verdict: Verdict, *, age: timedelta = timedelta(0),
               wait: float | None = None, **candidate: float) -> tuple[int, Evaluation]:
    checks = (Check(name="error_rate", verdict=Verdict.FAIL, detail="3 % > 1 %"),) \
        if verdict is Verdict.FAIL else ()
    return 1, Evaluation(service=service, phase=None, weight=weight, at=NOW - age,
                         verdict=verdict, reasons=(f"{verdict.value} because",),
                         baseline=Figures(start=NOW, end=NOW),
                         candidate=Figures(start=NOW, end=NOW, **candidate), checks=checks,
                         wait_seconds=wait)


def test_phases_done_current_upcoming(plan):
    states = {"auth": state("auth", 100), "files": state("files", 50)}
    got = {p.id: p.state for p in status.phases(plan, states)}
    assert got == {"week-1": "done", "week-2": "done", "week-3": "current",
                   "week-4": "upcoming", "week-5": "upcoming", "week-6": "upcoming"}


def test_every_phase_done_when_everything_is_at_100(plan):
    states = {s.name: state(s.name, 100) for s in plan.services}
    assert status.current_phase(plan, states) is None
    assert {p.state for p in status.phases(plan, states)} == {status.PhaseState.DONE}


def test_a_ready_card(plan):
    c = status.card(plan, "auth", state("auth", 25), evaluation("auth", 25, Verdict.PASS), NOW)
    assert (c.weight, c.next_weight, c.previous_weight, c.status) == \
        (25, 50, 10, RolloutStatus.READY)
    assert c.blockers == () and c.drift is None and c.stale is None


def test_a_failing_card_says_which_check(plan):
    c = status.card(plan, "auth", state("auth", 25), evaluation("auth", 25, Verdict.FAIL), NOW)
    assert c.status is RolloutStatus.BLOCKED
    assert any("fails error_rate: 3 % > 1 %" in b for b in c.blockers)


def test_inconclusive_says_how_long_until_enough_data(plan):
    c = status.card(plan, "auth", state("auth", 25),
                    evaluation("auth", 25, Verdict.INCONCLUSIVE, wait=720), NOW)
    assert c.wait == "12m"
    assert "about 12m until enough data at the current traffic" in c.blockers


def test_soaking_blocks_until_min_soak(plan):
    c = status.card(plan, "auth", state("auth", 25, since=timedelta(minutes=5)),
                    evaluation("auth", 25, Verdict.PASS), NOW)
    assert c.status is RolloutStatus.WAITING and "soaking" in " ".join(c.blockers)


def test_drift_and_stale_are_named(plan):
    c = status.card(plan, "auth", state("auth", 25, router=75),
                    evaluation("auth", 25, Verdict.PASS, age=timedelta(minutes=30)), NOW)
    assert c.drift and "75 %" in c.drift and "25 %" in c.drift
    assert c.stale and "30m old" in c.stale
    assert c.blockers[0].startswith("drift:") and c.blockers[1].startswith("stale data:")


def test_success_metrics_sum_totals_and_take_the_worst_service(plan):
    latest = {"auth": evaluation("auth", 100, Verdict.PASS, rps=150.0, memory_mb=120.0,
                                 latency_avg_ms=40.0, error_rate=0.002, cpu_cores=0.2),
              "files": evaluation("files", 50, Verdict.PASS, rps=70.0, memory_mb=200.0,
                                  latency_avg_ms=120.0, error_rate=0.001)}
    rows = {r.figure: r for r in status.success_rows(plan, latest)}
    assert (rows["rps"].value, rows["rps"].met) == (220.0, True)
    assert (rows["memory_mb"].value, rows["memory_mb"].met) == (320.0, False)
    assert (rows["latency_avg_ms"].value, rows["latency_avg_ms"].met) == (120.0, False)
    assert rows["latency_avg_ms"].basis == "worst service: files"
    assert rows["cpu_cores"].met is True
    assert status.success_rows(plan, {})[0].met is None, "no data is never met"


def test_proposals_state_exactly_what_changes(plan):
    p = propose(plan, "auth", state("auth", 25), ActionKind.APPROVE)
    assert p is not None and p.sentence == "auth: 25 % → 50 % on route nanopore-auth"
    assert propose(plan, "auth", state("auth", 100), ActionKind.APPROVE) is None
    assert propose(plan, "auth", None, ActionKind.REVERT) is None
    assert propose(plan, "auth", state("auth", 10), ActionKind.REVERT).to_weight == 0
    assert propose(plan, "auth", state("auth", 75), ActionKind.REVERT_ALL).to_weight == 0
    assert propose(plan, "auth", state("auth", 0), ActionKind.REVERT_ALL) is None
    drifted = propose(plan, "auth", state("auth", 0, router=25), ActionKind.REVERT_ALL)
    assert drifted is not None and drifted.to_weight == 0, "a route moved by hand goes back"


def test_a_verdict_is_captioned_with_its_own_weight_and_step(plan):
    since = NOW - timedelta(hours=1)
    _, ev = evaluation("ai", 10, Verdict.PASS)
    c = status.card(plan, "ai", state("ai", 10), (1, replace(ev, step_since=since)), NOW)
    assert status.verdict_caption(c) == "judged at 10 %, step since 2026-11-26 11:00 UTC, at 12:00 UTC"
    # the auto-revert's fail was made at 50 %: the card at 0 % says it is not its own
    _, ev = evaluation("ai", 50, Verdict.FAIL)
    c = status.card(plan, "ai", state("ai", 0), (1, replace(ev, step_since=since)), NOW)
    words = status.verdict_caption(c)
    assert words is not None and words.startswith("judged at 50 %")
    assert words.endswith("an earlier step's verdict, not one of the current 0 %")
    assert status.verdict_caption(status.card(plan, "ai", state("ai", 0), None, NOW)) is None

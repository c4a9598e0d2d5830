"""The shaping behind the pages: phases, cards, success metrics (pure functions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dashboard import components, status
from dashboard.actions import ActionKind, propose
from rollout.state import RolloutStatus
from slo.figures import Figures
from slo.verdict import Check, Evaluation, Verdict
from store.heartbeat import WorkerRound
from store.views import DecisionView, StateView

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


def test_a_service_not_judged_is_never_stale(plan):
    """At 100 % (done) or back at 0 % outside the current phase the worker does not judge
    a service, so its newest evaluation grows old while all is well."""
    states = {"auth": state("auth", 100), "files": state("files", 25),
              "ai": state("ai", 0, status_="reverted")}
    old = timedelta(days=3)
    latest = {"auth": evaluation("auth", 100, Verdict.PASS, age=old),
              "files": evaluation("files", 25, Verdict.PASS, age=old),
              "ai": evaluation("ai", 50, Verdict.FAIL, age=old)}
    cards = {c.service: c for c in status.cards(plan, states, latest, NOW)}
    assert cards["auth"].stale is None and cards["ai"].stale is None
    assert cards["files"].stale and "3d" in cards["files"].stale, "files is judged"
    # a stopped worker is said once for the page, not once per service
    quiet = status.cards(plan, states, latest, NOW, worker_runs=False)
    assert all(c.stale is None for c in quiet)


def beat(age: timedelta, *, ok: bool = True) -> WorkerRound:
    return WorkerRound(holder="pod-7:1", at=NOW - age, seconds=1.2,
                       interval=timedelta(seconds=30), ok=ok, failed="" if ok else
                       "collect: prometheus: HTTP 503")


def test_the_worker_is_stale_after_three_missed_rounds():
    assert status.worker_alarm(beat(timedelta(seconds=40)), NOW) is None
    assert status.worker_alarm(beat(timedelta(seconds=119)), NOW) is None, "two minutes at least"
    alarm = status.worker_alarm(beat(timedelta(minutes=7)), NOW)
    assert alarm and "7m ago" in alarm and "pod-7:1" in alarm and "every 30s" in alarm
    assert "no round" in (status.worker_alarm(None, NOW) or "")
    assert status.worker_line(beat(timedelta(seconds=12)), NOW) == \
        "worker pod-7:1: last round 12s ago, every 30s"
    assert "collect: prometheus: HTTP 503" in status.worker_line(
        beat(timedelta(seconds=12), ok=False), NOW)


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
    # said as a last verdict (the badge says none at 0 %, as `cutover status` does)
    assert words is not None and words.startswith("last verdict FAIL, judged at 50 %")
    assert status.verdict_is_earlier(c)
    assert words.endswith("an earlier step's verdict, not one of the current 0 %")
    assert status.verdict_caption(status.card(plan, "ai", state("ai", 0), None, NOW)) is None


def test_display_states_for_people(plan):
    def shown(**kw) -> status.DisplayState:
        return status.card(plan, kw.pop("service", "files"), kw.pop("st"), kw.pop("ev", None),
                           NOW, **kw).display

    assert shown(st=state("auth", 100), service="auth") is status.DisplayState.DONE
    assert shown(st=state("files", 25), ev=evaluation("files", 25, Verdict.PASS)) is \
        status.DisplayState.READY
    assert shown(st=state("files", 25), ev=evaluation("files", 25, Verdict.FAIL)) is \
        status.DisplayState.FAILED
    assert shown(st=state("files", 25, since=timedelta(minutes=5)),
                 ev=evaluation("files", 25, Verdict.PASS)) is status.DisplayState.PROGRESSING
    assert shown(st=state("files", 25, router=50),
                 ev=evaluation("files", 25, Verdict.PASS)) is status.DisplayState.DRIFTED
    assert shown(st=state("ai", 0), service="ai", judged=False) is status.DisplayState.WAITING
    # soaked, held by what no request count ends (a probe): waiting, with no countdown
    held = status.card(plan, "files", state("files", 25),
                       evaluation("files", 25, Verdict.INCONCLUSIVE), NOW)
    assert held.display is status.DisplayState.WAITING and held.ready_in is None
    assert "the gate can decide" not in components.step_clock(held)
    assert shown(st=state("files", 0), judged=True) is status.DisplayState.READY


def test_an_auto_revert_is_said_by_whom_when_and_from_where(plan):
    revert = DecisionView(id=9, at=NOW - timedelta(minutes=4), service="ai",
                          action="auto-revert", from_weight=50, to_weight=0, actor="cutover",
                          reason="3 failed evaluations at 50 %", override=False,
                          state="applied", error=None, evaluation_id=41)
    c = status.card(plan, "ai", state("ai", 0, status_="reverted"),
                    evaluation("ai", 50, Verdict.FAIL, age=timedelta(minutes=5)), NOW,
                    last_decision=revert)
    assert c.display is status.DisplayState.AUTO_REVERTED
    assert c.auto_reverted == ("auto-reverted by cutover at 2026-11-26 11:56 UTC from 50 % "
                               "to 0 %: 3 failed evaluations at 50 %")
    later = status.card(plan, "ai", state("ai", 10), None, NOW, last_decision=revert)
    assert later.auto_reverted is None, "approved again since: no banner"


def test_what_approve_waits_for(plan):
    soaking = status.card(plan, "files", state("files", 25, since=timedelta(minutes=5)),
                          evaluation("files", 25, Verdict.PASS), NOW)
    assert not soaking.may_approve
    assert soaking.needs == ("soak: 10m more of 15m at 25 %",)
    assert soaking.ready_in == timedelta(minutes=10) and soaking.soaked == timedelta(minutes=5)
    starved = status.card(plan, "files", state("files", 25),
                          evaluation("files", 25, Verdict.INCONCLUSIVE, wait=1200,
                                     age=timedelta(minutes=5)), NOW)
    assert starved.ready_in == timedelta(minutes=15), "the judge's wait, from its verdict"
    failing = status.card(plan, "files", state("files", 25), evaluation("files", 25, Verdict.FAIL),
                          NOW)
    assert failing.needs[0] == "error_rate passing: 3 % > 1 %"
    assert status.card(plan, "files", state("files", 25), evaluation("files", 25, Verdict.PASS),
                       NOW, worker_runs=False).needs[0].startswith("the worker running again")
    ready = status.card(plan, "files", state("files", 25), evaluation("files", 25, Verdict.PASS),
                        NOW)
    assert ready.may_approve and ready.needs == () and ready.ready_in is None


def test_the_overview_puts_what_needs_the_lead_first(plan):
    states = {"auth": state("auth", 100), "files": state("files", 25),
              "samples": state("samples", 25)}
    latest = {"files": evaluation("files", 25, Verdict.PASS),
              "samples": evaluation("samples", 25, Verdict.FAIL)}
    order = [c.service for c in status.by_urgency(status.cards(plan, states, latest, NOW))]
    assert order[:2] == ["samples", "files"] and order[-1] == "auth"

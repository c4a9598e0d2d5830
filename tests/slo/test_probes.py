"""Probes, the pure part: the plan's ``probes:``, the split's binomial judgement, and how
results become checks the gate weighs (never run or stale: inconclusive, never pass)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from slo.errors import PlanError
from slo.figures import Figures
from slo.plan import Plan
from slo.planfile import parse_plan, plan_schema, without_probes
from slo.probe_results import ProbeResult
from slo.probe_specs import PROBE_KINDS, HttpProbe, SplitProbe
from slo.probes import judge_durations, judge_split, probe_checks, weigh
from slo.verdict import Check, Evaluation, Verdict

AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _result(verdict: Verdict, *, age: timedelta = timedelta(0), probe: str = "p",
            reasons: tuple[str, ...] = ("measured",)) -> ProbeResult:
    return ProbeResult(probe=probe, kind="http", at=AT - age, verdict=verdict, reasons=reasons)


def _evaluation(verdict: Verdict, reasons: tuple[str, ...] = ("judge says so",)) -> Evaluation:
    empty = Figures(start=AT - timedelta(minutes=10), end=AT)
    return Evaluation(service="auth", phase="week-2", weight=25, at=AT, verdict=verdict,
                      reasons=reasons, baseline=empty, candidate=empty)


HTTP = HttpProbe(kind="http", name="p", url="http://127.0.0.1:1/health")


# -- the split ------------------------------------------------------------------------

def test_split_within_noise_passes() -> None:
    verdict, why = judge_split(candidate=510, total=2000, weight=25, confidence=0.999,
                               min_difference=0.02, min_requests=200)
    assert verdict is Verdict.PASS, why
    assert "route says 25 %" in why and "25.5 %" in why


def test_split_the_gateway_sent_31_percent_is_drift() -> None:
    verdict, why = judge_split(candidate=620, total=2000, weight=25, confidence=0.999,
                               min_difference=0.02, min_requests=200)
    assert verdict is Verdict.FAIL
    assert "the gateway sent 31.0 % of 2000 requests" in why


def test_split_at_weight_zero_any_request_to_the_service_is_drift() -> None:
    verdict, why = judge_split(candidate=1, total=5000, weight=0, confidence=0.999,
                               min_difference=0.02, min_requests=200)
    assert verdict is Verdict.FAIL, why
    assert judge_split(candidate=0, total=5000, weight=0, confidence=0.999,
                       min_difference=0.02, min_requests=200)[0] is Verdict.PASS


def test_split_not_enough_requests_is_inconclusive() -> None:
    verdict, why = judge_split(candidate=90, total=100, weight=25, confidence=0.999,
                               min_difference=0.02, min_requests=200)
    assert verdict is Verdict.INCONCLUSIVE and "200 needed" in why


def test_small_drift_with_huge_traffic_is_held_to_min_difference() -> None:
    # 25.8 % of a million is outside binomial noise, but within the plan's 2 points
    assert judge_split(candidate=258_000, total=1_000_000, weight=25, confidence=0.999,
                       min_difference=0.02, min_requests=200)[0] is Verdict.PASS


# -- durations --------------------------------------------------------------------------

def test_durations_over_the_limit_fail_and_name_what() -> None:
    verdict, reasons, worst = judge_durations(
        what="rollout took", durations=[("python-auth", 95.0), ("python-files", 410.0)],
        limit=timedelta(minutes=5))
    assert verdict is Verdict.FAIL and worst == 410.0
    assert reasons == ["python-files: rollout took 6.8 min > 5.0 min"]


def test_an_unfinished_rollout_past_the_limit_fails_before_it_ends() -> None:
    verdict, reasons, _ = judge_durations(what="rollout took", durations=[],
                                          limit=timedelta(minutes=5),
                                          unfinished=[("python-auth", 400.0)])
    assert verdict is Verdict.FAIL and "still going" in reasons[0]


def test_nothing_to_time_is_inconclusive() -> None:
    verdict, _, worst = judge_durations(what="rollout took", durations=[],
                                        limit=timedelta(minutes=5))
    assert verdict is Verdict.INCONCLUSIVE and worst is None


# -- at the gate --------------------------------------------------------------------------

def test_never_run_is_inconclusive_never_pass() -> None:
    [check] = probe_checks([HTTP], {}, at=AT)
    assert check.verdict is Verdict.INCONCLUSIVE and "has not run yet" in check.detail


def test_a_stale_result_is_inconclusive() -> None:
    [check] = probe_checks([HTTP], {"p": _result(Verdict.PASS, age=timedelta(minutes=16))},
                           at=AT)
    assert check.verdict is Verdict.INCONCLUSIVE
    assert "16m old (stale after 15m)" in check.detail


def test_a_fresh_pass_passes_and_a_fail_fails() -> None:
    assert probe_checks([HTTP], {"p": _result(Verdict.PASS)}, at=AT)[0].verdict is Verdict.PASS
    [failed] = probe_checks([HTTP], {"p": _result(Verdict.FAIL, reasons=("status 500",))}, at=AT)
    assert failed.verdict is Verdict.FAIL and "status 500" in failed.detail


def test_hold_turns_a_failure_into_a_held_step() -> None:
    split = SplitProbe(kind="split", name="p")
    [check] = probe_checks([split], {"p": _result(Verdict.FAIL)}, at=AT)
    assert check.verdict is Verdict.INCONCLUSIVE and "holds the step" in check.detail


def test_a_failed_probe_fails_a_passing_evaluation_and_comes_first() -> None:
    checks = [Check("probe:p", Verdict.FAIL, detail="probe p fail: 3 files differ")]
    weighed = weigh(_evaluation(Verdict.PASS, ("p95 fine",)), checks)
    assert weighed.verdict is Verdict.FAIL
    assert weighed.reasons[0] == "probe p fail: 3 files differ"
    assert weighed.checks[-1].name == "probe:p"


def test_an_inconclusive_probe_keeps_a_pass_from_standing() -> None:
    checks = [Check("probe:p", Verdict.INCONCLUSIVE, detail="probe p has not run yet")]
    assert weigh(_evaluation(Verdict.PASS), checks).verdict is Verdict.INCONCLUSIVE


def test_probes_never_turn_a_fail_into_anything_else() -> None:
    checks = [Check("probe:p", Verdict.PASS, detail="fine")]
    weighed = weigh(_evaluation(Verdict.FAIL, ("errors up",)), checks)
    assert weighed.verdict is Verdict.FAIL and weighed.reasons[0] == "errors up"


def test_no_probes_leave_the_evaluation_as_it_is() -> None:
    e = _evaluation(Verdict.PASS)
    assert weigh(e, []) is e


# -- the plan ----------------------------------------------------------------------------

def _with(plan_text: str, change: str) -> str:
    data = yaml.safe_load(plan_text)
    exec(change, {"data": data})  # noqa: S102 - test-local edits of plan data
    return yaml.safe_dump(data, sort_keys=False)


def test_every_kind_is_in_the_schema() -> None:
    schema = yaml.safe_dump(plan_schema())
    for kind in PROBE_KINDS:
        assert kind in schema


def test_a_database_url_in_the_plan_is_refused_with_path_and_line(plan_text: str) -> None:
    text = _with(plan_text, "data['phases'][3]['probes'][0]['baseline_db'] = "
                            "'postgresql://app:hunter2@db/monolith'")
    with pytest.raises(PlanError) as e:
        parse_plan(text)
    problem = next(p for p in e.value.problems if "baseline_db" in p.path)
    assert problem.path == "phases[3].probes[0].baseline_db"
    assert problem.message == "is not a known key" and problem.line is not None


def test_an_unknown_probe_kind_is_named(plan_text: str) -> None:
    text = _with(plan_text, "data['phases'][0]['probes'].append({'name': 'x', 'kind': 'ping'})")
    with pytest.raises(PlanError) as e:
        parse_plan(text)
    assert any("ping" in p.message or "kind" in p.message for p in e.value.problems)


def test_a_probe_defined_twice_is_refused(plan_text: str) -> None:
    text = _with(plan_text, "data['services'][1]['probes'][0]['name'] = 'auth-split'")
    with pytest.raises(PlanError, match="probe 'auth-split' is defined twice"):
        parse_plan(text)


def test_a_criterion_naming_a_probe_of_another_phase_is_refused(plan_text: str) -> None:
    text = _with(plan_text, "data['phases'][1]['criteria'][3]['probes'] = ['files-intact']")
    with pytest.raises(PlanError) as e:
        parse_plan(text)
    assert "'files-intact' is not a probe of phase 'week-2'" in str(e.value)


def test_http_needs_one_url(plan_text: str) -> None:
    text = _with(plan_text, "data['phases'][0]['probes'][0]['url_env'] = 'HEALTH_URL'")
    with pytest.raises(PlanError, match="exactly one of url, url_env"):
        parse_plan(text)


def test_the_shipped_plan_gives_evidence_for_the_guides_measurable_criteria(
        shipped_plan: Plan) -> None:
    people = {"Database schemas created and populated", "Old infrastructure decommissioned",
              "Documentation updated", "Team trained on new architecture"}
    for phase in shipped_plan.phases:
        for c in phase.criteria:
            assert bool(c.figures or c.probes) != (c.text in people), (phase.id, c.text)
    kinds = {p.kind for _, _, p in shipped_plan.probes()}
    assert kinds == set(PROBE_KINDS)


def test_without_probes_is_the_same_migration(shipped_plan: Plan, plan: Plan) -> None:
    assert plan.probes() == []
    assert [p.id for p in plan.phases] == [p.id for p in shipped_plan.phases]
    assert [c.text for p in plan.phases for c in p.criteria] == \
        [c.text for p in shipped_plan.phases for c in p.criteria]
    assert without_probes({"services": [], "phases": []}) == {"services": [], "phases": []}



# -- uptime, a success metric measured by availability probes ---------------------------

def test_uptime_is_the_share_of_health_runs_that_found_it_up(shipped_plan: Plan) -> None:
    from slo.probe_results import ProbeRuns
    from slo.success import uptime

    spec, probes = shipped_plan.success_probes()["uptime"]
    assert probes == ["healthy"] and spec.min == 0.999
    assert "uptime" not in shipped_plan.success_targets()
    ok = uptime("uptime", spec, [ProbeRuns("healthy", passed=9990, failed=4, unanswered=1,
                                           unknown=40, first=AT - timedelta(days=7), last=AT)])
    assert ok.met is True and ok.value == pytest.approx(9990 / 9995)
    assert ok.basis == ("9,990 of 9,995 runs of healthy found it up (4 answered wrongly, "
                        "1 got no answer), 2026-11-19 12:00 UTC to 2026-11-26 12:00 UTC; "
                        "40 could not look (not counted)")
    assert uptime("uptime", spec, [ProbeRuns("healthy", passed=99, failed=1)]).met is False


def test_uptime_counts_a_target_that_never_answers_as_down(shipped_plan: Plan) -> None:
    """The service gone for good: every run unanswered is 0 % uptime, never "no data"."""
    from slo.probe_results import ProbeRuns
    from slo.success import uptime

    spec, _ = shipped_plan.success_probes()["uptime"]
    down = uptime("uptime", spec, [ProbeRuns("healthy", unanswered=30)])
    assert (down.value, down.met) == (0.0, False)
    assert "30 got no answer" in down.basis


def test_uptime_with_no_run_that_could_look_is_no_data_never_met(shipped_plan: Plan) -> None:
    from slo.probe_results import ProbeRuns
    from slo.success import uptime

    spec, _ = shipped_plan.success_probes()["uptime"]
    for runs in ([ProbeRuns("healthy", unknown=3)], [ProbeRuns("healthy")]):
        none = uptime("uptime", spec, runs)
        assert none.met is None and none.value is None and none.status == "no data"
    assert uptime("uptime", spec, [ProbeRuns("healthy", unknown=3)]).basis == \
        "no run of healthy could look yet (3 could not look)"


@pytest.mark.parametrize(("change", "path", "words"), [
    ("data['success_metrics']['uptime']['probes'] = ['pinger']",
     "success_metrics.uptime.probes[0]", "'pinger' is not a probe of the plan"),
    ("data['success_metrics']['uptime']['probes'] = ['samples-consistent']",
     "success_metrics.uptime.probes[0]",
     "'samples-consistent' is a consistency probe; uptime is measured by http probes"),
    ("data['success_metrics']['uptime'] = {'min': 0.999}",
     "success_metrics.uptime", "uptime needs 'probes: [...]'"),
    ("data['success_metrics']['uptime']['min'] = 99.9",
     "success_metrics.uptime.min", "a share between 0 and 1 (0.999 for 99.9 %), got 99.9"),
    ("data['success_metrics']['uptime']['scope'] = 'total'",
     "success_metrics.uptime.scope", "cannot be summed"),
    ("data['success_metrics']['error_rate']['probes'] = ['healthy']",
     "success_metrics.error_rate.probes", "error_rate comes from the evaluations"),
    ("data['success_metrics']['availability'] = {'min': 0.9}",
     "success_metrics.availability", "unknown figure 'availability'"),
])
def test_a_bad_uptime_metric_is_refused_with_path_and_line(plan_text: str, change: str,
                                                           path: str, words: str) -> None:
    with pytest.raises(PlanError) as e:
        parse_plan(_with(plan_text, change))
    [problem] = [p for p in e.value.problems if p.path == path]
    assert words in problem.message and problem.line is not None


def test_the_uptime_target_in_the_shipped_plan_sits_on_its_own_line(plan_text: str) -> None:
    broken = plan_text.replace("uptime: {min: 0.999,", "uptime: {min: 99.9,", 1)
    with pytest.raises(PlanError) as e:
        parse_plan(broken)
    [problem] = e.value.problems
    line = next(i for i, t in enumerate(broken.splitlines(), 1) if t.startswith("  uptime:"))
    assert (problem.path, problem.line) == ("success_metrics.uptime.min", line)

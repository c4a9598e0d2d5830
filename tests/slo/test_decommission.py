"""May the baseline be decommissioned: every service at its last step and passing for
the soak, with no rollback in it (slo.decommission, pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slo.decommission import Standing, decommission

AT = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)
SOAK = timedelta(days=3)


def _at_100(service: str, *, days: float, last_fail: datetime | None = None,
            latest: str = "pass") -> Standing:
    return Standing(service=service, weight=100, last_step=100,
                    since=AT - timedelta(days=days), last_fail=last_fail, latest=latest)


def test_every_service_past_the_soak_with_no_rollback_is_safe() -> None:
    flag = decommission([_at_100("auth", days=10), _at_100("files", days=3)], [],
                        soak=SOAK, at=AT)
    assert flag.safe and flag.status == "safe" and flag.earliest is None
    assert flag.reasons == ("every service has been at its last step and passing for at "
                            "least 3d, with no rollback",)


def test_still_soaking_says_how_long_and_when() -> None:
    flag = decommission([_at_100("auth", days=10), _at_100("gateway", days=1)], [],
                        soak=SOAK, at=AT)
    assert not flag.safe and flag.earliest == AT + timedelta(days=2)
    assert flag.reasons == ("gateway has been at 100 % for 1d of 3d, until "
                            "2026-12-22 12:00 UTC",)


def test_a_service_below_its_last_step_is_not_foreseeable() -> None:
    below = Standing(service="ai", weight=50, last_step=100, since=None, last_fail=None,
                     latest="pass")
    flag = decommission([_at_100("auth", days=10), below], [], soak=SOAK, at=AT)
    assert not flag.safe and flag.earliest is None
    assert flag.reasons == ("ai is at 50 %, not at its last step 100 %",)


def test_a_fail_at_the_last_step_restarts_the_soak() -> None:
    fail = AT - timedelta(days=1)
    flag = decommission([_at_100("auth", days=10, last_fail=fail)], [], soak=SOAK, at=AT)
    assert not flag.safe and flag.earliest == fail + SOAK
    assert "auth failed at 100 % at 2026-12-19 12:00 UTC" in flag.reasons[0]
    old = decommission([_at_100("auth", days=10, last_fail=AT - timedelta(days=4))], [],
                       soak=SOAK, at=AT)
    assert old.safe


def test_a_latest_verdict_other_than_pass_is_not_safe() -> None:
    for latest in ("inconclusive", "fail"):
        flag = decommission([_at_100("auth", days=10, latest=latest)], [], soak=SOAK, at=AT)
        assert not flag.safe and flag.earliest is None
        assert flag.reasons == (f"auth's latest verdict is {latest}, not pass",)


def test_a_rollback_within_the_soak_holds_it_until_the_soak_has_passed_since() -> None:
    rolled = AT - timedelta(days=2)
    flag = decommission([_at_100("auth", days=10)], [(rolled, "rollback #4 by lee")],
                        soak=SOAK, at=AT)
    assert not flag.safe and flag.earliest == rolled + SOAK
    assert flag.reasons == ("rollback #4 by lee: 3d without a rollback are needed, until "
                            "2026-12-21 12:00 UTC",)
    older = decommission([_at_100("auth", days=10)], [(AT - timedelta(days=5), "#1")],
                         soak=SOAK, at=AT)
    assert older.safe
    later = decommission([_at_100("auth", days=10)], [(AT + timedelta(hours=1), "#9")],
                         soak=SOAK, at=AT)
    assert later.safe   # what happens after the report's moment is not in it


def test_no_services_is_never_safe() -> None:
    flag = decommission([], [], soak=SOAK, at=AT)
    assert not flag.safe and flag.reasons == ("the plan has no services",)


def test_the_shipped_week_6_decommissions_after_3_days(shipped_plan) -> None:
    assert [(p.id, p.decommission_after) for p in shipped_plan.phases
            if p.decommission_after] == [("week-6", timedelta(days=3))]


def test_a_soak_that_is_not_positive_is_refused_with_path_and_line(plan_text: str) -> None:
    import pytest

    from slo.errors import PlanError
    from slo.planfile import parse_plan

    broken = plan_text.replace("decommission_after: 3d", "decommission_after: 0s", 1)
    with pytest.raises(PlanError) as e:
        parse_plan(broken)
    [problem] = e.value.problems
    line = next(i for i, t in enumerate(broken.splitlines(), 1) if "decommission_after" in t)
    assert (problem.path, problem.line) == ("phases[5].decommission_after", line)
    assert "expected a positive duration, got 0s" in problem.message

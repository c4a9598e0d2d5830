"""The gate against the fake API server through the real kubernetes client, on SQLite
and PostgreSQL: walks, refusals, override, reverts, concurrency, failures, crashes."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from rollout import gate
from rollout.routers.base import TrafficRouter
from rollout.state import Action, DecisionState, RolloutStatus
from slo.errors import ConfigError, ConflictError, GateError, RouterError, StaleError
from slo.plan import Plan
from slo.verdict import Verdict
from store.db import session_scope
from store.events import EventRow
from store.rollout import ServiceState
from tests.rollout.conftest import ANA, T0, candidate_weights, judged
from tests.support.k8s_fake import FakeApiServer

LEE = "lee@example.org"
SOAK = timedelta(minutes=16)   # the plan's min_soak is 15m
#: for tests about the router or the rules, not the database: SQLite is enough
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def events(engine: Engine, kind: str | None = None) -> list[EventRow]:
    with session_scope(engine) as s:
        q = select(EventRow).order_by(EventRow.id)  # type: ignore[arg-type]
        rows = list(s.exec(q).all())
    return [e for e in rows if kind is None or e.kind == kind]


def state(engine: Engine, service: str) -> ServiceState:
    with session_scope(engine) as s:
        row = s.get(ServiceState, service)
        assert row is not None
        return row


def walk_to(engine: Engine, plan: Plan, router: TrafficRouter, service: str, target: int,
            *, start: Any = T0) -> Any:
    """Approve ``service`` step by step up to ``target`` on passing verdicts; the time
    of the last step."""
    now = start
    gate.approve(engine=engine, plan=plan, router=router, service=service, actor=ANA,
                 reason="start", now=now)
    while state(engine, service).weight < target:
        weight = state(engine, service).weight
        now = now + SOAK
        judged(engine, service, weight=weight, at=now - timedelta(minutes=1))
        gate.approve(engine=engine, plan=plan, router=router, service=service, actor=ANA,
                     reason=f"pass at {weight} %", now=now)
    return now


def test_full_walk_10_to_100(engine: Engine, plan: Plan, router: TrafficRouter,
                             k8s: FakeApiServer) -> None:
    now = T0
    seen = []
    out = gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                       reason="week 2 starts", now=now)
    seen.append(out.to_weight)
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (90, 10)
    for weight in (10, 25, 50, 75):
        now += SOAK
        eid = judged(engine, "auth", weight=weight, at=now - timedelta(minutes=1))
        out = gate.approve(engine=engine, plan=plan, router=router, service="auth",
                           actor=ANA, reason=f"p95 flat at {weight} %", now=now)
        assert out.ok and out.read_back == out.to_weight and not out.override
        seen.append(out.to_weight)
        assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (100 - out.to_weight,
                                                                           out.to_weight)
        assert gate.decisions(engine=engine, limit=1)[0].evaluation_id == eid
    assert seen == [10, 25, 50, 75, 100]
    rows = gate.decisions(engine=engine, service="auth")
    assert [d.to_weight for d in rows] == [100, 75, 50, 25, 10]            # newest first
    assert all(d.state is DecisionState.APPLIED and d.actor == ANA for d in rows)
    assert len(events(engine, "approved")) == 5
    complete = events(engine, "phase-complete")
    assert len(complete) == 1 and complete[0].data["phase"] == "week-2"
    auth = next(r for r in gate.service_status(engine=engine, plan=plan, router=router, now=now)
                if r.service == "auth")
    assert auth.state is RolloutStatus.PROMOTED and auth.next_weight is None
    assert auth.router_weight == 100 and not auth.drift
    with pytest.raises(GateError, match="last step"):
        gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                     reason="more", now=now + SOAK)
    # the route kept its balance annotation and nothing but GET and PATCH was sent
    assert {r.method for r in k8s.requests} == {"GET", "PATCH"}
    assert {r.content_type for r in k8s.requests if r.method == "PATCH"} == {
        "application/merge-patch+json"}


@SQLITE_ONLY
def test_unmanaged_alternate_backend_is_kept(engine: Engine, plan: Plan,
                                             router: TrafficRouter, k8s: FakeApiServer) -> None:
    gate.approve(engine=engine, plan=plan, router=router, service="files", actor=ANA,
                 reason="go", now=T0)
    alts = k8s.get("nanopore-files")["spec"]["alternateBackends"]
    assert alts == [{"kind": "Service", "name": "maintenance-page", "weight": 0},
                    {"kind": "Service", "name": "python-files", "weight": 10}]


@pytest.mark.parametrize(("verdict", "soaked", "words"), [
    (None, True, "no verdict yet at 10 %"),
    (Verdict.INCONCLUSIVE, True, "is inconclusive"),
    (Verdict.FAIL, True, "is fail"),
    (Verdict.PASS, False, "soaking: 10m more of 15m"),
], ids=["no_verdict", "inconclusive", "fail", "not_soaked"])
def test_refused_approve(sqlite_engine: Engine, plan: Plan, api_client: Any,
                         k8s: FakeApiServer, verdict: Verdict | None, soaked: bool,
                         words: str) -> None:
    from rollout.routers import build_router

    engine = sqlite_engine
    router = build_router(plan, engine, api_client=api_client)
    gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                 reason="start", now=T0)
    now = T0 + (SOAK if soaked else timedelta(minutes=5))
    if verdict is not None:
        judged(engine, "auth", weight=10, at=now - timedelta(seconds=30), verdict=verdict)
    with pytest.raises(GateError, match=words) as e:
        gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                     reason="next", now=now)
    assert e.value.service == "auth"
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (90, 10)
    refused, applied = gate.decisions(engine=engine)       # the refusal is on record
    assert applied.state is DecisionState.APPLIED
    assert (refused.state, refused.from_weight, refused.to_weight, refused.actor,
            refused.reason) == (DecisionState.REFUSED, 10, 25, ANA, "next")
    assert words in (refused.error or "")
    assert state(engine, "auth").weight == 10


@SQLITE_ONLY
def test_verdict_from_before_the_step_does_not_count(engine: Engine, plan: Plan,
                                                     router: TrafficRouter) -> None:
    judged(engine, "auth", weight=10, at=T0 - timedelta(minutes=1))   # before the step
    gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                 reason="start", now=T0)
    with pytest.raises(GateError, match="no verdict yet"):
        gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                     reason="next", now=T0 + SOAK)


@SQLITE_ONLY
def test_not_an_operator(engine: Engine, plan: Plan, router: TrafficRouter,
                         k8s: FakeApiServer) -> None:
    for call in (gate.approve, gate.revert):
        with pytest.raises(GateError, match="'mallory' is not among the plan's operators"):
            call(engine=engine, plan=plan, router=router, service="auth", actor="mallory",
                 reason="let me", now=T0)
    with pytest.raises(GateError, match="mallory"):
        gate.revert_all(engine=engine, plan=plan, router=router, actor="mallory",
                        reason="all", now=T0)
    # the two refused attempts are on record, who and why; nothing else was written
    rows = gate.decisions(engine=engine)
    assert [(d.action.value, d.actor, d.state) for d in rows] == [
        ("revert", "mallory", DecisionState.REFUSED), ("approve", "mallory", DecisionState.REFUSED)]
    assert all("not among the plan's operators" in (d.error or "") for d in rows)
    assert k8s.count("PATCH") == 0


@SQLITE_ONLY
def test_override_past_a_fail(engine: Engine, plan: Plan, router: TrafficRouter,
                              k8s: FakeApiServer) -> None:
    gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                 reason="start", now=T0)
    now = T0 + timedelta(minutes=3)
    eid = judged(engine, "auth", weight=10, at=now, verdict=Verdict.FAIL,
                 reason="p95 latency 60 ms > 1.10 x baseline 40 ms")
    with pytest.raises(ConfigError, match="an override needs a reason"):
        gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                     reason="  ", override=True, now=now)
    out = gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=LEE,
                       reason="cold cache; CAB agreed", override=True, now=now)
    assert out.ok and out.override and out.to_weight == 25
    last = gate.decisions(engine=engine, limit=1)[0]
    assert last.override and last.evaluation_id == eid and last.contract()["override"] is True
    (ev,) = events(engine, "override")
    assert ev.severity == "warning" and "cold cache" in ev.summary and ev.data["override"]
    assert "[OVERRIDE]" in events(engine, "approved")[-1].summary
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (75, 25)
    (row,) = [r for r in gate.service_status(engine=engine, plan=plan, router=router, now=now)
              if r.service == "auth"]
    assert row.override and row.contract()["override"] is True


@SQLITE_ONLY
def test_override_not_needed_is_not_marked(engine: Engine, plan: Plan,
                                           router: TrafficRouter) -> None:
    out = gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                       reason="start", override=True, now=T0)
    assert out.ok and not out.override
    assert events(engine, "override") == []


def test_revert_previous_then_to_zero(engine: Engine, plan: Plan, router: TrafficRouter,
                                      k8s: FakeApiServer) -> None:
    now = walk_to(engine, plan, router, "auth", 50)
    out = gate.revert(engine=engine, plan=plan, router=router, service="auth", actor=LEE,
                      reason="error budget burning", now=now + timedelta(minutes=1))
    assert (out.from_weight, out.to_weight, out.action) == (50, 25, Action.REVERT)
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (75, 25)
    # back at 25 %, the step needs its pass and soak again (the old pass is from before)
    with pytest.raises(GateError, match="no verdict yet at 25 %"):
        gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                     reason="again", now=now + timedelta(minutes=1, seconds=30))
    out = gate.revert(engine=engine, plan=plan, router=router, service="auth", actor=LEE,
                      reason="back to the monolith", to="0", now=now + timedelta(minutes=2))
    assert (out.from_weight, out.to_weight) == (25, 0)
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (100, 0)
    (row,) = [r for r in gate.service_status(engine=engine, plan=plan, router=router,
                                             now=now + timedelta(minutes=3))
              if r.service == "auth"]
    assert row.state is RolloutStatus.REVERTED and row.weight == 0 and row.next_weight == 10
    assert [e.severity for e in events(engine, "reverted")] == ["warning", "warning"]
    with pytest.raises(GateError, match="nothing to revert"):
        gate.revert(engine=engine, plan=plan, router=router, service="auth", actor=LEE,
                    reason="again", to="0", now=now + timedelta(minutes=4))
    # reverted is not the end: approve starts again at the first step
    again = gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                         reason="fixed", now=now + timedelta(minutes=5))
    assert again.to_weight == 10


def test_revert_all(engine: Engine, plan: Plan, router: TrafficRouter,
                    k8s: FakeApiServer) -> None:
    walk_to(engine, plan, router, "auth", 25)
    gate.approve(engine=engine, plan=plan, router=router, service="files", actor=ANA,
                 reason="start", now=T0)
    outcomes = gate.revert_all(engine=engine, plan=plan, router=router, actor=LEE,
                               reason="incident 42", now=T0 + timedelta(hours=1))
    assert {(o.service, o.from_weight, o.to_weight, o.state) for o in outcomes} == {
        ("auth", 25, 0, DecisionState.APPLIED), ("files", 10, 0, DecisionState.APPLIED)}
    for svc in plan.services:
        assert candidate_weights(k8s, svc.route, svc.backend) == (100, 0)
    # a second emergency finds nothing to do
    assert gate.revert_all(engine=engine, plan=plan, router=router, actor=LEE,
                           reason="again", now=T0 + timedelta(hours=2)) == []


@SQLITE_ONLY
def test_revert_all_goes_on_past_a_failing_route(engine: Engine, plan: Plan,
                                                 router: TrafficRouter,
                                                 k8s: FakeApiServer) -> None:
    gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                 reason="start", now=T0)
    gate.approve(engine=engine, plan=plan, router=router, service="files", actor=ANA,
                 reason="start", now=T0)
    k8s.fail_next(500, method="PATCH")   # the first route patched (auth) fails
    outcomes = gate.revert_all(engine=engine, plan=plan, router=router, actor=LEE,
                               reason="incident", now=T0 + timedelta(minutes=5))
    by = {o.service: o for o in outcomes}
    assert by["auth"].state is DecisionState.FAILED and "500" in by["auth"].message
    assert by["files"].state is DecisionState.APPLIED


@pytest.mark.parametrize("pinned", [True, False], ids=["expected_version", "fresh_read"])
def test_two_concurrent_approvals_make_one_step(engine: Engine, plan: Plan,
                                                router: TrafficRouter, k8s: FakeApiServer,
                                                pinned: bool) -> None:
    gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                 reason="start", now=T0)
    now = T0 + SOAK
    judged(engine, "auth", weight=10, at=now - timedelta(minutes=1))
    version = state(engine, "auth").version
    k8s.patch_delay = 0.3        # both are in flight at once
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def act(actor: str) -> None:
        barrier.wait()
        try:
            results[actor] = gate.approve(
                engine=engine, plan=plan, router=router, service="auth", actor=actor,
                reason="both saw pass", now=now, expected_version=version if pinned else None)
        except (ConflictError, GateError) as e:
            results[actor] = e

    threads = [threading.Thread(target=act, args=(a,)) for a in (ANA, LEE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    oks = [r for r in results.values() if not isinstance(r, Exception)]
    errors = [r for r in results.values() if isinstance(r, Exception)]
    assert len(oks) == 1 and len(errors) == 1, results
    assert oks[0].to_weight == 25
    if pinned:
        assert "changed under you" in str(errors[0])
    else:   # either it lost the race, or it came second and the new step had not soaked
        assert "changed under you" in str(errors[0]) or "soaking" in str(errors[0])
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (75, 25)
    applied = [d for d in gate.decisions(engine=engine) if d.state is DecisionState.APPLIED]
    assert [d.to_weight for d in applied] == [25, 10]
    assert all(d.state is not DecisionState.PENDING for d in gate.decisions(engine=engine))


@pytest.mark.parametrize("kind", ["override", "revert_previous"])
def test_concurrent_decisions_on_one_step_make_one_move(engine: Engine, plan: Plan,
                                                         router: TrafficRouter,
                                                         k8s: FakeApiServer,
                                                         kind: str) -> None:
    """Four operators act at once on the 25 % step they all saw: one moves it, the
    others are refused, told what moved it, and their attempts are on record."""
    now = walk_to(engine, plan, router, "auth", 25)
    k8s.patch_delay = 0.2
    barrier = threading.Barrier(4)
    results: list[Any] = []

    def act(i: int) -> None:
        barrier.wait()
        try:
            if kind == "override":
                results.append(gate.approve(
                    engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                    reason=f"override {i}", override=True, now=now, from_weight=25))
            else:
                results.append(gate.revert(
                    engine=engine, plan=plan, router=router, service="auth", actor=LEE,
                    reason=f"revert {i}", now=now, from_weight=25))
        except GateError as e:
            results.append(e)

    threads = [threading.Thread(target=act, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    moved_to = 50 if kind == "override" else 10
    oks = [r for r in results if not isinstance(r, Exception)]
    stale = [r for r in results if isinstance(r, StaleError)]
    assert len(oks) == 1 and len(stale) == 3, results
    assert oks[0].to_weight == moved_to
    assert all((e.seen, e.current) == (25, moved_to) for e in stale)
    assert all(f"#{oks[0].decision_id}" in e.reason and "you looked at 25 %" in e.reason
               for e in stale)
    assert candidate_weights(k8s, "nanopore-auth", "python-auth")[1] == moved_to
    states = [d.state for d in gate.decisions(engine=engine, limit=4)]
    assert sorted(states) == [DecisionState.APPLIED] + [DecisionState.REFUSED] * 3


@SQLITE_ONLY
def test_a_revert_to_zero_is_never_stale(engine: Engine, plan: Plan, router: TrafficRouter,
                                         k8s: FakeApiServer) -> None:
    now = walk_to(engine, plan, router, "auth", 25)
    out = gate.revert(engine=engine, plan=plan, router=router, service="auth", actor=LEE,
                      reason="incident", to="0", now=now, from_weight=10, expected_version=0)
    assert out.ok and (out.from_weight, out.to_weight) == (25, 0)


@SQLITE_ONLY
def test_stale_expected_version_is_refused(engine: Engine, plan: Plan,
                                           router: TrafficRouter) -> None:
    with pytest.raises(ConflictError, match="changed under you"):
        gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                     reason="start", now=T0, expected_version=7)


@SQLITE_ONLY
def test_409_is_reread_and_retried(engine: Engine, plan: Plan, router: TrafficRouter,
                                   k8s: FakeApiServer) -> None:
    bumps = iter([True])

    def someone_labels_the_route(fake: FakeApiServer) -> None:
        if next(bumps, False):
            fake.edit("nanopore-auth", lambda r: r["metadata"].setdefault(
                "labels", {}).update({"team": "platform"}))

    k8s.before_patch = someone_labels_the_route
    out = gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                       reason="start", now=T0)
    assert out.ok
    assert k8s.count("PATCH", status=409) == 1 and k8s.count("PATCH", status=200) == 1
    r = k8s.get("nanopore-auth")
    assert r["metadata"]["labels"] == {"team": "platform"}       # their change survives
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (90, 10)


@SQLITE_ONLY
def test_409_with_weights_moved_is_not_overwritten(engine: Engine, plan: Plan,
                                                   router: TrafficRouter,
                                                   k8s: FakeApiServer) -> None:
    bumps = iter([True])

    def someone_moves_weights(fake: FakeApiServer) -> None:
        if next(bumps, False):
            fake.edit("nanopore-auth", lambda r: r["spec"]["alternateBackends"][0].update(
                weight=40) or r["spec"]["to"].update(weight=60))

    k8s.before_patch = someone_moves_weights
    with pytest.raises(RouterError, match="changed by someone else") as e:
        gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                     reason="start", now=T0)
    assert e.value.status == 409
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (60, 40)
    (d,) = gate.decisions(engine=engine)
    assert d.state is DecisionState.FAILED and d.read_back == 40 and "someone else" in d.error
    assert state(engine, "auth").weight == 0


@SQLITE_ONLY
def test_409_forever_gives_up_after_five_tries(engine: Engine, plan: Plan,
                                               router: TrafficRouter,
                                               k8s: FakeApiServer) -> None:
    k8s.before_patch = lambda fake: fake.edit("nanopore-auth", lambda r: None)
    with pytest.raises(RouterError, match="after 5 tries"):
        gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                     reason="start", now=T0)
    assert k8s.count("PATCH", status=409) == 5
    assert gate.decisions(engine=engine)[0].state is DecisionState.FAILED


def test_500_mid_step_fails_the_decision_and_keeps_the_state(
        engine: Engine, plan: Plan, router: TrafficRouter, k8s: FakeApiServer) -> None:
    now = walk_to(engine, plan, router, "auth", 25)
    before = state(engine, "auth")
    now += SOAK
    judged(engine, "auth", weight=25, at=now - timedelta(minutes=1))
    k8s.fail_next(500, method="PATCH")
    with pytest.raises(RouterError, match="HTTP 500") as e:
        gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                     reason="next", now=now)
    assert e.value.status == 500
    after = state(engine, "auth")
    assert (after.weight, after.step_since, after.status) == (
        before.weight, before.step_since, before.status)
    d = gate.decisions(engine=engine, limit=1)[0]
    assert (d.state, d.from_weight, d.to_weight, d.read_back) == (DecisionState.FAILED, 25,
                                                                  50, 25)
    assert "HTTP 500" in (d.error or "")
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (75, 25)
    # the gate still stands: the same approval goes through once the API server answers
    out = gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                       reason="next", now=now + timedelta(seconds=10))
    assert out.ok and out.to_weight == 50


@SQLITE_ONLY
def test_403_and_404_are_router_errors_and_nothing_is_recorded(
        engine: Engine, plan: Plan, router: TrafficRouter, k8s: FakeApiServer) -> None:
    k8s.forbidden = True
    with pytest.raises(RouterError, match="HTTP 403") as e:
        gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                     reason="start", now=T0)
    assert e.value.status == 403
    rows = gate.service_status(engine=engine, plan=plan, router=router, now=T0)
    assert all(r.router_weight is None and "403" in (r.router_error or "") and not r.drift
               for r in rows)
    k8s.forbidden = False
    del k8s.objects[next(k for k in k8s.objects if k[2] == "nanopore-auth")]
    with pytest.raises(RouterError, match="HTTP 404") as e:
        gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                     reason="start", now=T0)
    assert e.value.status == 404
    assert gate.decisions(engine=engine) == []


class Crash(BaseException):
    """The process dying: nothing below the gate catches it."""


class CrashingRouter:
    """Dies before or after telling the real router."""

    def __init__(self, inner: TrafficRouter, *, after: bool):
        self.kind, self._inner, self._after = inner.kind, inner, after

    def read_weight(self, service: str) -> int:
        return self._inner.read_weight(service)

    def set_weight(self, service: str, weight: int, *, expected: int | None = None) -> int:
        if self._after:
            self._inner.set_weight(service, weight, expected=expected)
        raise Crash


@pytest.mark.parametrize("after", [False, True], ids=["before_patch", "after_patch"])
def test_crash_between_decision_and_patch_is_reconciled(
        engine: Engine, plan: Plan, router: TrafficRouter, k8s: FakeApiServer,
        after: bool) -> None:
    with pytest.raises(Crash):
        gate.approve(engine=engine, plan=plan, router=CrashingRouter(router, after=after),
                     service="auth", actor=ANA, reason="start", now=T0)
    (d,) = gate.decisions(engine=engine)
    assert d.state is DecisionState.PENDING
    (row,) = [r for r in gate.service_status(engine=engine, plan=plan, router=router,
                                             now=T0) if r.service == "auth"]
    assert row.pending_decision == d.id and not row.drift
    # its process is gone (its move lease with it): settled at once, no timeout waited
    outcomes = gate.reconcile(engine=engine, plan=plan, router=router,
                              now=T0 + timedelta(seconds=1))
    (d,) = gate.decisions(engine=engine)
    if after:
        assert [o.state for o in outcomes] == [DecisionState.APPLIED]
        assert d.state is DecisionState.APPLIED and state(engine, "auth").weight == 10
        assert len(events(engine, "approved")) == 1
    else:
        assert [o.state for o in outcomes] == [DecisionState.FAILED]
        assert d.state is DecisionState.FAILED and "not applied" in (d.error or "")
        assert state(engine, "auth").weight == 0 and events(engine, "approved") == []
    assert candidate_weights(k8s, "nanopore-auth", "python-auth")[1] == (10 if after else 0)


@pytest.mark.parametrize("to", ["0", "previous", "all"])
def test_a_revert_settles_a_crashed_decision_first_and_goes_ahead(
        engine: Engine, plan: Plan, router: TrafficRouter, k8s: FakeApiServer,
        to: str) -> None:
    """The emergency rollback right after an approve died mid-patch (the route took it):
    never refused for the pending decision, which is settled from the read-back."""
    with pytest.raises(Crash):
        gate.approve(engine=engine, plan=plan, router=CrashingRouter(router, after=True),
                     service="auth", actor=ANA, reason="start", now=T0)
    now = T0 + timedelta(seconds=2)
    if to == "all":
        (out,) = gate.revert_all(engine=engine, plan=plan, router=router, actor=LEE,
                                 reason="incident", now=now)
    else:
        out = gate.revert(engine=engine, plan=plan, router=router, service="auth",
                          actor=LEE, reason="incident", to=to, now=now)
    assert out.ok and (out.from_weight, out.to_weight) == (10, 0)
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (100, 0)
    revert, approve = gate.decisions(engine=engine)
    assert (approve.state, approve.read_back) == (DecisionState.APPLIED, 10)
    assert revert.state is DecisionState.APPLIED and revert.actor == LEE
    assert state(engine, "auth").weight == 0


@SQLITE_ONLY
def test_a_revert_goes_ahead_over_a_decision_it_cannot_settle(
        engine: Engine, plan: Plan, router: TrafficRouter, k8s: FakeApiServer) -> None:
    """The route cannot be read when the rollback starts: the pending decision stays
    pending through the settling, the rollback goes ahead and supersedes it."""
    with pytest.raises(Crash):
        gate.approve(engine=engine, plan=plan, router=CrashingRouter(router, after=True),
                     service="auth", actor=ANA, reason="start", now=T0)
    k8s.fail_next(503, method="GET")       # the settling's read-back
    out = gate.revert(engine=engine, plan=plan, router=router, service="auth", actor=LEE,
                      reason="incident", to="0", now=T0 + timedelta(seconds=2))
    assert out.ok and out.to_weight == 0
    revert, approve = gate.decisions(engine=engine)
    assert approve.state is DecisionState.FAILED and "superseded by revert" in approve.error
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (100, 0)


@SQLITE_ONLY
def test_a_live_decision_is_waited_for_not_settled(engine: Engine, plan: Plan,
                                                    router: TrafficRouter,
                                                    k8s: FakeApiServer) -> None:
    """While a decision's process holds the move lease, reconcile leaves it alone and a
    revert waits for it, then steps back from where it landed."""
    held = k8s.hold_next_patch()
    approving = threading.Thread(target=lambda: gate.approve(
        engine=engine, plan=plan, router=router, service="auth", actor=ANA, reason="start",
        now=T0))
    approving.start()
    assert held.arrived.wait(10)
    assert gate.reconcile(engine=engine, plan=plan, router=router, now=T0) == []
    (d,) = gate.decisions(engine=engine)
    assert d.state is DecisionState.PENDING
    reverted: list[Any] = []
    reverting = threading.Thread(target=lambda: reverted.append(gate.revert(
        engine=engine, plan=plan, router=router, service="auth", actor=LEE,
        reason="incident", to="0", now=T0 + timedelta(seconds=1))))
    reverting.start()
    reverting.join(0.5)
    assert reverting.is_alive(), "the revert waits for the move lease"
    held.release()
    approving.join(10)
    reverting.join(10)
    (out,) = reverted
    assert out.ok and (out.from_weight, out.to_weight) == (10, 0)
    assert [x.state for x in gate.decisions(engine=engine)] == [DecisionState.APPLIED] * 2


def test_drift_is_shown_recorded_once_and_never_undone(engine: Engine, plan: Plan,
                                                       router: TrafficRouter,
                                                       k8s: FakeApiServer) -> None:
    now = walk_to(engine, plan, router, "auth", 25)

    def by_hand(r: dict[str, Any]) -> None:   # oc set route-backends ... =60 ... =40
        r["spec"]["to"]["weight"] = 60
        r["spec"]["alternateBackends"][0]["weight"] = 40

    k8s.edit("nanopore-auth", by_hand)
    for minute in (1, 2):
        rows = gate.service_status(engine=engine, plan=plan, router=router,
                                   now=now + timedelta(minutes=minute))
        auth = next(r for r in rows if r.service == "auth")
        assert (auth.weight, auth.router_weight, auth.drift) == (25, 40, True)
        assert "changed by hand" in auth.why
        assert auth.contract()["drift"] is True
    (ev,) = events(engine, "drift")
    assert ev.data == {"route": "nanopore-auth", "stored": 25, "router": 40}
    now += SOAK
    judged(engine, "auth", weight=25, at=now - timedelta(minutes=1))
    with pytest.raises(GateError, match="shows 40 % but the store says 25 %"):
        gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                     reason="next", now=now)
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (60, 40)  # untouched
    # an operator's explicit revert puts it back, and the drift ends
    out = gate.revert(engine=engine, plan=plan, router=router, service="auth", actor=LEE,
                      reason="undo the hand edit", now=now + timedelta(minutes=1))
    assert out.to_weight == 10
    rows = gate.service_status(engine=engine, plan=plan, router=router,
                               now=now + timedelta(minutes=2))
    assert not next(r for r in rows if r.service == "auth").drift
    assert len(events(engine, "drift")) == 1
    assert state(engine, "auth").drift_since is None


@SQLITE_ONLY
def test_override_steps_from_the_stored_weight_despite_drift(
        engine: Engine, plan: Plan, router: TrafficRouter, k8s: FakeApiServer) -> None:
    gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                 reason="start", now=T0)
    k8s.edit("nanopore-auth", lambda r: r["spec"]["alternateBackends"][0].update(weight=12)
             or r["spec"]["to"].update(weight=88))
    out = gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                       reason="hand edit was a test", override=True, now=T0 + SOAK)
    assert out.ok and out.override and out.to_weight == 25


def test_auto_revert_after_consecutive_failures(engine: Engine, plan: Plan,
                                                router: TrafficRouter,
                                                k8s: FakeApiServer) -> None:
    now = walk_to(engine, plan, router, "auth", 25)
    for minute, verdict in ((1, Verdict.FAIL), (2, Verdict.PASS), (3, Verdict.FAIL),
                            (4, Verdict.FAIL)):
        judged(engine, "auth", weight=25, at=now + timedelta(minutes=minute), verdict=verdict)
    assert gate.auto_revert(engine=engine, plan=plan, router=router,
                            now=now + timedelta(minutes=5)) == []      # only 2 in a row
    judged(engine, "auth", weight=25, at=now + timedelta(minutes=5), verdict=Verdict.FAIL,
           reason="error rate 4.1 % > 1 %")
    (out,) = gate.auto_revert(engine=engine, plan=plan, router=router,
                              now=now + timedelta(minutes=6))
    assert (out.action, out.actor, out.from_weight, out.to_weight, out.state) == (
        Action.AUTO_REVERT, "cutover", 25, 0, DecisionState.APPLIED)
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (100, 0)
    d = gate.decisions(engine=engine, limit=1)[0]
    assert "3 consecutive fail verdicts" in d.reason and "error rate 4.1 %" in d.reason
    (ev,) = events(engine, "auto-reverted")
    assert ev.severity == "critical"
    # the failures were at the old step: nothing more to do
    assert gate.auto_revert(engine=engine, plan=plan, router=router,
                            now=now + timedelta(minutes=7)) == []


@SQLITE_ONLY
def test_status_rows_follow_the_contract(engine: Engine, plan: Plan, router: TrafficRouter) -> None:
    gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                 reason="start", now=T0)
    judged(engine, "auth", weight=10, at=T0 + timedelta(minutes=5))
    rows = gate.service_status(engine=engine, plan=plan, router=router,
                               now=T0 + timedelta(minutes=6))
    assert [r.service for r in rows] == [s.name for s in plan.services]
    c = rows[0].contract()
    assert {"service", "phase", "weight", "router_weight", "drift", "next_weight", "state",
            "verdict", "evaluated_at"} <= set(c)
    assert (c["service"], c["phase"], c["weight"], c["router_weight"], c["next_weight"],
            c["state"], c["verdict"], c["evaluated_at"]) == (
        "auth", "week-2", 10, 10, 25, "waiting", "pass", "2026-11-26T12:05:00Z")
    assert "soaking" in c["why"]
    files = rows[1].contract()
    assert (files["weight"], files["state"], files["verdict"]) == (0, "ready", None)
    d = gate.decisions(engine=engine)[0].contract()
    assert set(d) >= {"id", "at", "service", "action", "from_weight", "to_weight", "actor",
                      "reason", "override", "state", "evaluation_id"}
    assert (d["at"], d["action"], d["state"]) == ("2026-11-26T12:00:00Z", "approve", "applied")


@SQLITE_ONLY
def test_unknown_service_is_bad_input(engine: Engine, plan: Plan, router: TrafficRouter) -> None:
    with pytest.raises(ConfigError, match="unknown service 'billing'"):
        gate.approve(engine=engine, plan=plan, router=router, service="billing", actor=ANA,
                     reason="x", now=T0)


def test_auto_revert_counts_fails_of_this_step_only(engine: Engine, plan: Plan,
                                                    router: TrafficRouter) -> None:
    """Two fails at 25 %, a revert to 10 % and a re-approval to 25 %: one more fail at the
    new 25 % step is one in a row, not three (the earlier fails were another step's)."""
    now = walk_to(engine, plan, router, "auth", 25)
    first_step = state(engine, "auth").step_since
    for minute in (1, 2):
        judged(engine, "auth", weight=25, at=now + timedelta(minutes=minute),
               verdict=Verdict.FAIL, step_since=first_step)
    gate.revert(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                reason="look closer", now=now + timedelta(minutes=3))
    judged(engine, "auth", weight=10, at=now + timedelta(minutes=3, seconds=30))
    gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                 reason="fixed", override=True, now=now + timedelta(minutes=4))
    second_step = state(engine, "auth").step_since
    # a late row for the old step, stored after the re-approval, names its own step
    judged(engine, "auth", weight=25, at=now + timedelta(minutes=4), verdict=Verdict.FAIL,
           step_since=first_step)
    judged(engine, "auth", weight=25, at=now + timedelta(minutes=5), verdict=Verdict.FAIL,
           step_since=second_step)
    assert gate.auto_revert(engine=engine, plan=plan, router=router,
                            now=now + timedelta(minutes=6)) == []
    assert state(engine, "auth").consecutive_failures == 1


def test_status_names_the_weight_and_step_of_its_verdict(engine: Engine, plan: Plan,
                                                         router: TrafficRouter) -> None:
    gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                 reason="start", now=T0)
    since = state(engine, "auth").step_since
    judged(engine, "auth", weight=10, at=T0 + timedelta(minutes=5), step_since=since)
    [row, *_] = gate.service_status(engine=engine, plan=plan, router=router,
                                    now=T0 + timedelta(minutes=6))
    c = row.contract()
    assert (c["verdict"], c["evaluated_weight"], c["evaluated_step_since"]) == (
        "pass", 10, "2026-11-26T12:00:00Z")
    # a verdict stored for another step (same weight) is not this step's
    judged(engine, "auth", weight=10, at=T0 + timedelta(minutes=7),
           step_since=T0 - timedelta(hours=1), verdict=Verdict.FAIL)
    [row, *_] = gate.service_status(engine=engine, plan=plan, router=router,
                                    now=T0 + timedelta(minutes=8))
    assert (row.verdict, row.evaluated_weight, row.state) == (None, None, RolloutStatus.WAITING)

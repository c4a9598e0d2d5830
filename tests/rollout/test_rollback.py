"""The emergency rollback against the fake API server through the real kubernetes
client, on SQLite and PostgreSQL: every route at once, one group, one alert; a failing
route, pending decisions and a killed earlier rollback never stop it."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from rollout import gate, rollback
from rollout.rollback import GroupOutcome, Result
from rollout.routers.base import TrafficRouter
from slo.errors import ConfigError, GateError
from slo.plan import Plan
from store.db import session_scope
from store.events import EventRow
from store.groups import DecisionGroup, get_group, list_groups, open_group
from store.rollout import Decision, ServiceState, add_decision
from tests.rollout.conftest import ANA, T0, candidate_weights
from tests.support.k8s_fake import FakeApiServer

LEE = "lee@example.org"
#: the weights the six services are at when the incident starts (files stays at 0)
AT = {"auth": 25, "files": 0, "samples": 50, "ai": 10, "audit": 75, "gateway": 10}
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def set_weights(engine: Engine, plan: Plan, router: TrafficRouter,
                weights: dict[str, int]) -> None:
    for name, target in weights.items():
        while (w := _weight(engine, name)) < target:
            gate.approve(engine=engine, plan=plan, router=router, service=name, actor=ANA,
                         reason="setup", override=w > 0, now=T0)


def _weight(engine: Engine, service: str) -> int:
    with session_scope(engine) as s:
        row = s.get(ServiceState, service)
        return row.weight if row else 0


def rows(engine: Engine, table: Any) -> list[Any]:
    with session_scope(engine) as s:
        return list(s.exec(select(table).order_by(table.id)).all())


def test_every_route_at_once_one_group_one_alert(engine: Engine, plan: Plan,
                                                 router: TrafficRouter,
                                                 k8s: FakeApiServer) -> None:
    set_weights(engine, plan, router, AT)
    moving = [n for n, w in AT.items() if w]
    # every patch waits at a barrier until all of them have arrived: a rollback that
    # patched one route after another would break it (and fail those patches)
    barrier = threading.Barrier(len(moving), timeout=20)
    k8s.before_patch = lambda _api: barrier.wait()
    before = len(rows(engine, EventRow))

    done = rollback.roll_back(engine=engine, plan=plan, router=router, actor=LEE,
                              reason="incident 42", now=T0 + timedelta(hours=1))

    assert done.outcome is GroupOutcome.APPLIED and not barrier.broken
    assert [(r.service, r.from_weight, r.result) for r in done.results] == [
        (n, w, Result.APPLIED if w else Result.ALREADY) for n, w in AT.items()]
    for svc in plan.services:
        assert candidate_weights(k8s, svc.route, svc.backend) == (100, 0)
        assert _weight(engine, svc.name) == 0
    members = [d for d in rows(engine, Decision) if d.group_id == done.group_id]
    assert sorted(d.service for d in members) == sorted(moving)
    assert all(d.state == "applied" and d.to_weight == 0 for d in members)
    (group,) = rows(engine, DecisionGroup)
    assert (group.outcome, group.actor, group.reason, group.services) == (
        "applied", LEE, "incident 42", list(AT))
    assert group.seconds == done.seconds and group.finished_at is not None
    # one alert: the members' events are kept for the record but not sent on their own
    new = rows(engine, EventRow)[before:]
    assert sorted(e.kind for e in new) == ["reverted"] * len(moving) + ["rolled-back"]
    assert all(e.dispatched for e in new if e.kind == "reverted")
    (alert,) = [e for e in new if e.kind == "rolled-back"]
    assert not alert.dispatched and alert.severity == "critical"
    assert alert.data["group_id"] == done.group_id and alert.data["services"] == moving
    assert "applied" in alert.summary and LEE in alert.summary


@SQLITE_ONLY
def test_a_route_answering_500_does_not_stop_the_others(engine: Engine, plan: Plan,
                                                        router: TrafficRouter,
                                                        k8s: FakeApiServer) -> None:
    set_weights(engine, plan, router, AT)
    k8s.fail_next(500, method="PATCH")   # whichever route's patch arrives first
    done = rollback.roll_back(engine=engine, plan=plan, router=router, actor=LEE,
                              reason="incident", now=T0 + timedelta(hours=1))
    failed = [r for r in done.results if r.result is Result.FAILED]
    assert done.outcome is GroupOutcome.PARTIAL and len(failed) == 1
    (bad,) = failed
    assert "HTTP 500" in bad.message and bad.decision_id is not None
    svc = plan.service(bad.service)
    # the failed one keeps its weight on the route and on the store: nothing half-done
    assert candidate_weights(k8s, svc.route, svc.backend) == (100 - AT[bad.service],
                                                              AT[bad.service])
    assert _weight(engine, bad.service) == AT[bad.service]
    for r in done.results:
        if r is not bad:
            assert r.ok and _weight(engine, r.service) == 0
    (alert,) = [e for e in rows(engine, EventRow) if e.kind == "rolled-back"]
    assert "partial" in alert.summary and alert.data["reasons"][0].startswith(bad.service)
    # the next rollback finishes the job
    again = rollback.roll_back(engine=engine, plan=plan, router=router, actor=LEE,
                               reason="incident, again", now=T0 + timedelta(hours=2))
    assert again.outcome is GroupOutcome.APPLIED
    assert [r.service for r in again.results if r.result is Result.APPLIED] == [bad.service]


def test_pending_decisions_are_settled_from_the_route_not_refused(
        engine: Engine, plan: Plan, router: TrafficRouter, k8s: FakeApiServer) -> None:
    set_weights(engine, plan, router, {"auth": 10, "samples": 10})
    now = T0 + timedelta(minutes=5)
    # two approves caught mid-flight a second ago (a crash, or a live process): auth's
    # patch reached the route, samples' did not
    with session_scope(engine) as s:
        for name in ("auth", "samples"):
            add_decision(session=s, at=now - timedelta(seconds=1), service=name,
                         action="approve", from_weight=10, to_weight=25, actor=ANA,
                         reason="in flight")
    k8s.edit("nanopore-auth", lambda r: r["spec"]["alternateBackends"][0].update(weight=25)
             or r["spec"]["to"].update(weight=75))
    done = rollback.roll_back(engine=engine, plan=plan, router=router, actor=LEE,
                              reason="incident", now=now)
    assert done.outcome is GroupOutcome.APPLIED
    by = {r.service: r for r in done.results}
    assert (by["auth"].from_weight, by["auth"].result) == (25, Result.APPLIED)
    assert (by["samples"].from_weight, by["samples"].result) == (10, Result.APPLIED)
    settled = {d.service: d.state for d in rows(engine, Decision) if d.reason == "in flight"}
    assert settled == {"auth": "applied", "samples": "failed"}
    assert not [d for d in rows(engine, Decision) if d.state == "pending"]


@SQLITE_ONLY
def test_unreadable_route_with_a_pending_decision_is_gone_past(
        engine: Engine, plan: Plan, router: TrafficRouter, k8s: FakeApiServer) -> None:
    set_weights(engine, plan, router, {"auth": 10})
    with session_scope(engine) as s:
        add_decision(session=s, at=T0, service="auth", action="approve", from_weight=10,
                     to_weight=25, actor=ANA, reason="in flight")
    # auth's route cannot be read by the settling and the rollback's first read
    k8s.fail_next(503, method="GET", times=2)
    done = rollback.roll_back(engine=engine, plan=plan, router=router, actor=LEE,
                              reason="incident", now=T0 + timedelta(seconds=5))
    assert done.outcome is GroupOutcome.APPLIED
    (old,) = [d for d in rows(engine, Decision) if d.reason == "in flight"]
    # settled from a later read if one answers, else gone past; either way not pending
    assert old.state == "failed" and (f"superseded by rollback #{done.group_id}" in old.error
                                      or "not applied" in old.error)
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (100, 0)


@SQLITE_ONLY
@pytest.mark.parametrize(("actor", "reason", "error"), [
    ("mallory", "incident", GateError), (LEE, "  ", ConfigError)],
    ids=["not_an_operator", "blank_reason"])
def test_refused_before_anything(engine: Engine, plan: Plan, router: TrafficRouter,
                                 k8s: FakeApiServer, actor: str, reason: str,
                                 error: type[Exception]) -> None:
    set_weights(engine, plan, router, {"auth": 10})
    with pytest.raises(error):
        rollback.roll_back(engine=engine, plan=plan, router=router, actor=actor,
                           reason=reason, now=T0 + timedelta(minutes=1))
    assert rows(engine, DecisionGroup) == [] and _weight(engine, "auth") == 10
    assert k8s.count("PATCH") == 1   # the setup's approve only


@SQLITE_ONLY
def test_nothing_to_roll_back(engine: Engine, plan: Plan, router: TrafficRouter,
                              k8s: FakeApiServer) -> None:
    done = rollback.roll_back(engine=engine, plan=plan, router=router, actor=LEE,
                              reason="drill", now=T0)
    assert done.outcome is GroupOutcome.NOTHING and done.ok
    assert {r.result for r in done.results} == {Result.ALREADY}
    assert k8s.count("PATCH") == 0
    (alert,) = [e for e in rows(engine, EventRow) if e.kind == "rolled-back"]
    assert alert.severity == "warning" and alert.data["services"] == []


@SQLITE_ONLY
def test_a_killed_rollback_is_finished_and_closed_as_interrupted(
        engine: Engine, plan: Plan, router: TrafficRouter, k8s: FakeApiServer) -> None:
    set_weights(engine, plan, router, {"auth": 10, "files": 10})
    # what a rollback killed mid-way leaves: its group open, auth's decision pending
    # with the patch through, files not reached
    with session_scope(engine) as s:
        killed = open_group(session=s, at=T0, actor=ANA, reason="first try",
                            services=[svc.name for svc in plan.services])
        assert killed.id is not None
        add_decision(session=s, at=T0, service="auth", action="revert", from_weight=10,
                     to_weight=0, actor=ANA, reason="first try", group_id=killed.id)
    k8s.edit("nanopore-auth", lambda r: r["spec"]["alternateBackends"][0].update(weight=0)
             or r["spec"]["to"].update(weight=100))
    done = rollback.roll_back(engine=engine, plan=plan, router=router, actor=LEE,
                              reason="second try", now=T0 + timedelta(seconds=30))
    assert done.outcome is GroupOutcome.APPLIED and done.closed_interrupted == (killed.id,)
    by = {r.service: r.result for r in done.results}
    assert by["auth"] is Result.ALREADY and by["files"] is Result.APPLIED
    with session_scope(engine) as s:
        first = get_group(session=s, group_id=killed.id)
        assert first is not None and first.outcome == "interrupted"
        assert [g.id for g in list_groups(session=s)] == [done.group_id, killed.id]
    (member,) = [d for d in rows(engine, Decision) if d.group_id == killed.id]
    assert member.state == "applied"
    alerts = [e for e in rows(engine, EventRow) if e.kind == "rolled-back"]
    assert [e.data["group_id"] for e in alerts] == [killed.id, done.group_id]
    assert "interrupted" in alerts[0].summary


@SQLITE_ONLY
def test_preview_names_what_will_move(engine: Engine, plan: Plan, router: TrafficRouter,
                                      k8s: FakeApiServer) -> None:
    set_weights(engine, plan, router, {"auth": 25, "ai": 10})
    with session_scope(engine) as s:
        pending = add_decision(session=s, at=T0, service="ai", action="approve",
                               from_weight=10, to_weight=25, actor=ANA, reason="x")
    k8s.fail_next(500, method="GET")     # the first route read (auth's) fails
    p = rollback.preview(plan, engine=engine, router=router)
    by = {r.service: r for r in p.rows}
    assert [r.service for r in p.rows] == [svc.name for svc in plan.services]
    assert (by["auth"].weight, by["auth"].router_weight) == (25, None)
    assert "HTTP 500" in (by["auth"].router_error or "")
    assert (by["ai"].weight, by["ai"].router_weight, by["ai"].pending_decision) == (
        10, 10, pending.id)
    assert [r.service for r in p.moving] == ["auth", "ai"]
    assert k8s.count("PATCH") == 3       # the setup's: a preview changes nothing

"""The baseline's capacity through the real kubernetes client, against the API fake with
a controller that brings scaled-up replicas ready one at a time: read, scale up, wait,
the rollback that never waits on it for good, and the gate's hold."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from rollout import baseline, gate, rollback
from rollout.rollback import GroupOutcome, Result
from rollout.routers.base import TrafficRouter
from slo.errors import GateError
from slo.plan import Plan
from store.db import session_scope
from store.events import EventRow
from store.groups import DecisionGroup
from tests.rollout.conftest import ANA, T0, candidate_weights
from tests.support.k8s_cluster import FakeCluster
from tests.support.k8s_fake import DEPLOYMENTS, FakeApiServer

LEE = "lee@example.org"
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def cluster(k8s: FakeApiServer) -> Iterator[FakeCluster]:
    with FakeCluster(k8s, step=0.05) as c:
        yield c


def kinds(engine: Engine) -> list[str]:
    with session_scope(engine) as s:
        return [e.kind for e in s.exec(select(EventRow).order_by(EventRow.id)).all()]  # type: ignore[arg-type]


def the_group(engine: Engine) -> DecisionGroup:
    with session_scope(engine) as s:
        (g,) = s.exec(select(DecisionGroup)).all()
        return g


def start_auth(engine: Engine, plan: Plan, router: TrafficRouter) -> None:
    gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                 reason="start", now=T0)


@SQLITE_ONLY
def test_capacity_read_missing_and_forbidden(plan: Plan, router: TrafficRouter,
                                             k8s: FakeApiServer, cluster: FakeCluster) -> None:
    reader = baseline.reader_for(plan, router)
    assert reader is not None
    gone = reader.read()
    assert (gone.exists, gone.known, gone.enough, gone.down) == (False, True, False, True)
    assert "does not exist" in gone.words
    cluster.monolith(ready=2, replicas=3)
    cap = reader.read()
    assert (cap.deployment, cap.desired, cap.ready, cap.min_replicas) == (
        "nanopore-monolith", 3, 2, 3)
    assert not cap.enough and not cap.down and "2 of 3 replicas ready" in cap.words
    k8s.fail_next(403, method="GET")
    denied = reader.read()
    assert not denied.known and not denied.down and denied.status == 403
    assert "HTTP 403" in (denied.error or "")


def test_scale_up_wait_then_roll_back(engine: Engine, plan: Plan, router: TrafficRouter,
                                      k8s: FakeApiServer, cluster: FakeCluster) -> None:
    cluster.monolith(ready=1)     # the week-6 monolith, scaled down to one replica
    start_auth(engine, plan, router)
    said: list[str] = []
    done = rollback.emergency(engine=engine, plan=plan, router=router, actor=LEE,
                              reason="incident", now=T0 + timedelta(minutes=5),
                              scale_baseline=True, wait_timeout=timedelta(seconds=30),
                              say=said.append)
    assert done.outcome is GroupOutcome.APPLIED
    assert k8s.get("nanopore-monolith", kind=DEPLOYMENTS)["spec"]["replicas"] == 3
    assert cluster.ready() == 3
    # the traffic moved once the replicas were ready: the record says so
    prepared = the_group(engine).baseline
    assert prepared["before"]["ready"] == 1 and prepared["scaled"] == {
        "from": 1, "to": 3, "error": None}
    assert prepared["after"]["ready"] == 3 and prepared["after"]["enough"] is True
    assert said[0].startswith("warning: Deployment nanopore-monolith: 1 of 1 replicas ready")
    assert "scaled nanopore-monolith from 1 to 3 replicas" in said
    assert said[-1] == "  3 of 3 ready"
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (100, 0)


@SQLITE_ONLY
def test_scale_forbidden_still_rolls_back(engine: Engine, plan: Plan, router: TrafficRouter,
                                          k8s: FakeApiServer, cluster: FakeCluster) -> None:
    cluster.monolith(ready=1)
    start_auth(engine, plan, router)
    k8s.fail_next(403, method="PATCH")   # the first PATCH is the scale's
    said: list[str] = []
    done = rollback.emergency(engine=engine, plan=plan, router=router, actor=LEE,
                              reason="incident", now=T0 + timedelta(minutes=5),
                              scale_baseline=True, say=said.append)
    assert done.outcome is GroupOutcome.APPLIED
    assert [r.result for r in done.results if r.service == "auth"] == [Result.APPLIED]
    assert any(line.startswith("the scale step was not allowed (HTTP 403") for line in said)
    assert the_group(engine).baseline["scaled"]["error"] == (
        "scaling the baseline to 3 replicas: HTTP 403 injected failure 403")
    assert k8s.get("nanopore-monolith", kind=DEPLOYMENTS)["spec"]["replicas"] == 1


@SQLITE_ONLY
@pytest.mark.parametrize("wait", [True, False], ids=["stuck_until_timeout", "no_wait"])
def test_replicas_that_do_not_come_never_hold_the_rollback(
        engine: Engine, plan: Plan, router: TrafficRouter, k8s: FakeApiServer,
        cluster: FakeCluster, wait: bool) -> None:
    cluster.monolith(ready=0, replicas=0)
    cluster.stuck = True                 # no node has room for them
    start_auth(engine, plan, router)
    said: list[str] = []
    done = rollback.emergency(engine=engine, plan=plan, router=router, actor=LEE,
                              reason="incident", now=T0 + timedelta(minutes=5),
                              scale_baseline=True, wait=wait,
                              wait_timeout=timedelta(seconds=0.3), say=said.append)
    assert done.outcome is GroupOutcome.APPLIED
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (100, 0)
    prepared = the_group(engine).baseline
    if wait:
        assert prepared["after"]["ready"] == 0 and prepared["waited_seconds"] >= 0.3
        assert "moving the traffic anyway" in said[-1]
    else:
        assert "after" not in prepared and "(--no-wait)" in said[-1]


@SQLITE_ONLY
def test_enough_replicas_nothing_said_nothing_scaled(
        engine: Engine, plan: Plan, router: TrafficRouter, k8s: FakeApiServer,
        cluster: FakeCluster) -> None:
    cluster.monolith(ready=3)
    start_auth(engine, plan, router)
    said: list[str] = []
    rollback.emergency(engine=engine, plan=plan, router=router, actor=LEE, reason="drill",
                       now=T0 + timedelta(minutes=5), scale_baseline=True, say=said.append)
    assert said == [] and the_group(engine).baseline == {"before": {
        "deployment": "nanopore-monolith", "min_replicas": 3, "exists": True, "desired": 3,
        "ready": 3, "enough": True, "error": None}}


@SQLITE_ONLY
def test_a_non_operator_scales_nothing(engine: Engine, plan: Plan, router: TrafficRouter,
                                       k8s: FakeApiServer, cluster: FakeCluster) -> None:
    cluster.monolith(ready=1)
    with pytest.raises(GateError):
        rollback.emergency(engine=engine, plan=plan, router=router, actor="mallory",
                           reason="x", now=T0, scale_baseline=True)
    assert k8s.count("PATCH") == 0


def test_no_ready_baseline_holds_every_approve(engine: Engine, plan: Plan,
                                               router: TrafficRouter, k8s: FakeApiServer,
                                               cluster: FakeCluster) -> None:
    cluster.monolith(ready=0, replicas=0)
    start_auth(engine, plan, router)
    cap = baseline.observe(engine=engine, plan=plan, router=router, now=T0)
    assert cap is not None and cap.down
    assert kinds(engine)[-1] == "baseline-down"
    with pytest.raises(GateError, match="held: the baseline has no ready replica"):
        gate.approve(engine=engine, plan=plan, router=router, service="files", actor=ANA,
                     reason="next", now=T0 + timedelta(minutes=1))
    out = gate.approve(engine=engine, plan=plan, router=router, service="files", actor=ANA,
                       reason="CAB knows", override=True, now=T0 + timedelta(minutes=1))
    assert out.ok and out.override
    # a revert is never held
    assert gate.revert(engine=engine, plan=plan, router=router, service="files", actor=ANA,
                       reason="back", to="0", now=T0 + timedelta(minutes=2)).ok
    cluster.monolith(ready=3)
    baseline.observe(engine=engine, plan=plan, router=router, now=T0 + timedelta(minutes=3))
    assert kinds(engine)[-1] == "baseline-recovered"
    assert gate.approve(engine=engine, plan=plan, router=router, service="files", actor=ANA,
                        reason="next", now=T0 + timedelta(minutes=4)).ok
    # recovered stays recovered: nothing more is recorded while it holds
    n = len(kinds(engine))
    baseline.observe(engine=engine, plan=plan, router=router, now=T0 + timedelta(minutes=5))
    assert len(kinds(engine)) == n


@SQLITE_ONLY
def test_unreadable_or_decommissioned_after_full_is_no_alarm(
        engine: Engine, plan: Plan, router: TrafficRouter, k8s: FakeApiServer,
        cluster: FakeCluster) -> None:
    k8s.fail_next(403, method="GET")
    cap = baseline.observe(engine=engine, plan=plan, router=router, now=T0)
    assert cap is not None and not cap.known and kinds(engine) == []
    # every service at 100 %: the guide's week-6 decommissioning is no outage
    for svc in plan.services:
        while (w := router.read_weight(svc.name)) < 100:
            gate.approve(engine=engine, plan=plan, router=router, service=svc.name,
                         actor=ANA, reason="setup", override=w > 0, now=T0)
    cap = baseline.observe(engine=engine, plan=plan, router=router, now=T0)
    assert cap is not None and not cap.exists
    assert "baseline-down" not in kinds(engine)

"""Alertmanager's alerts as holds: a firing critical alert on a service holds its next
approve with the alert's name as the reason (``--override`` goes past it, marked); an
alert the plan reverts on sends the service back to 0 % in the worker's policy round;
a revert is never held."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from rollout import gate
from rollout.routers.base import TrafficRouter
from rollout.state import Action, DecisionState
from slo.errors import GateError
from slo.plan import Alerts, Inbox, Plan
from store.db import session_scope
from store.inbox import InboxAlert, save_alerts
from tests.rollout.conftest import ANA, T0, candidate_weights, judged

SOAK = timedelta(minutes=20)


@pytest.fixture
def held_plan(plan: Plan) -> Plan:
    return plan.model_copy(update={"alerts": Alerts(inbox=Inbox(
        token_env="INBOX_TOKEN", revert_on=["AuthDown"]))})


def firing(engine: Engine, name: str, *, service: str = "auth", severity: str = "critical",
           status: str = "firing", fp: str | None = None) -> None:
    alert = InboxAlert(fingerprint=fp or name, alertname=name, service=service, status=status,
                       severity=severity, starts_at=T0, ends_at=None, received_at=T0,
                       labels={"alertname": name, "service": service}, annotations={})
    with session_scope(engine) as s:
        save_alerts(session=s, alerts=[alert])


def _at_ten(engine: Engine, plan: Plan, router: TrafficRouter):
    gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                 reason="week 2 starts", now=T0)
    now = T0 + SOAK
    judged(engine, "auth", weight=10, at=now - timedelta(minutes=1))
    return now


def test_a_firing_critical_alert_holds_the_next_approve(engine, held_plan, router, k8s):
    now = _at_ten(engine, held_plan, router)
    firing(engine, "AuthErrorsHigh")
    with pytest.raises(GateError, match=r"held: Alertmanager alert AuthErrorsHigh \(critical\) "
                                        r"firing on auth"):
        gate.approve(engine=engine, plan=held_plan, router=router, service="auth", actor=ANA,
                     reason="pass at 10 %", now=now)
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (90, 10)
    out = gate.approve(engine=engine, plan=held_plan, router=router, service="auth",
                       actor=ANA, reason="known noisy alert; CAB agreed", override=True, now=now)
    assert out.ok and out.override and out.to_weight == 25


def test_a_resolved_or_warning_alert_or_another_service_does_not_hold(engine, held_plan,
                                                                      router):
    now = _at_ten(engine, held_plan, router)
    firing(engine, "Slow", severity="warning")
    firing(engine, "FilesBroken", service="files")
    firing(engine, "WasBad", fp="w")
    firing(engine, "WasBad", fp="w", status="resolved")
    out = gate.approve(engine=engine, plan=held_plan, router=router, service="auth",
                       actor=ANA, reason="pass at 10 %", now=now)
    assert out.ok and not out.override and out.to_weight == 25


def test_an_alert_the_plan_reverts_on_reverts_and_a_revert_is_never_held(engine, held_plan,
                                                                         router, k8s):
    now = _at_ten(engine, held_plan, router)
    firing(engine, "AuthErrorsHigh")
    firing(engine, "AuthDown", severity="warning")
    [out] = gate.auto_revert(engine=engine, plan=held_plan, router=router, now=now)
    assert out.ok and out.action is Action.AUTO_REVERT and out.to_weight == 0
    assert candidate_weights(k8s, "nanopore-auth", "python-auth") == (100, 0)
    last = gate.decisions(engine=engine, limit=1)[0]
    assert last.state is DecisionState.APPLIED and last.actor == gate.AUTO_ACTOR
    assert "AuthDown" in last.reason and "revert_on" in last.reason
    assert gate.auto_revert(engine=engine, plan=held_plan, router=router, now=now) == []
    # held services can always go back
    gate.approve(engine=engine, plan=held_plan, router=router, service="files", actor=ANA,
                 reason="week 3", now=now)
    firing(engine, "FilesBroken", service="files")
    out = gate.revert(engine=engine, plan=held_plan, router=router, service="files",
                      actor=ANA, reason="alert firing", now=now)
    assert out.ok and out.to_weight == 0


def test_without_an_inbox_nothing_holds(engine, plan, router):
    now = _at_ten(engine, plan, router)
    firing(engine, "AuthErrorsHigh")
    assert gate.approve(engine=engine, plan=plan, router=router, service="auth", actor=ANA,
                        reason="pass", now=now).ok



"""The alertmanager channel against Debian's real Alertmanager on loopback: a condition
fires and resolves (the same labels both ways), an act fires and ends by itself, a
condition still firing is said again each round, and nothing is dropped while
Alertmanager is down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from alerts.messages import render
from alerts.notifiers import build_notifier
from alerts.notifiers.alertmanager import ACT_TTL, alert, labels
from alerts.outbox import RetryPolicy, deliver, dispatch
from slo.errors import NotifyError
from store.alerts import AlertDelivery, AlertEvent, DeliveryState
from store.db import session_scope
from tests.alerts.conftest import FAILED_DATA, Answer, Receiver, channel, record, with_channels
from tests.support import alertmanager as am_support
from tests.support.prom import free_port

pytestmark = pytest.mark.skipif(not am_support.available(),
                                reason="prometheus-alertmanager is not installed")

FAST = RetryPolicy(min_interval=0.0, timeout=5.0)


def _am_channel(**kw):
    return channel("cluster-am", "alertmanager", **kw)


def _env(url: str, **extra: str) -> dict[str, str]:
    return {"HOOK_CLUSTER_AM": url, **extra}


def _rows(engine) -> list[AlertDelivery]:
    with session_scope(engine) as s:
        return list(s.exec(select(AlertDelivery).order_by(AlertDelivery.id)).all())


def _hooks(receiver: Receiver, status: str) -> list[dict]:
    return [a.json for a in receiver.arrivals if a.json.get("status") == status]


def _named(alerts: list[dict], name: str) -> list[dict]:
    return [a for a in alerts if a["labels"].get("alertname") == name]


def test_condition_fires_and_its_recovery_resolves_it(engine, plan, receiver, tmp_path):
    with am_support.alertmanager_with(tmp_path, webhook=receiver.base + "/hook") as am:
        p = with_channels(plan, _am_channel(labels={"namespace": "nanopore"}))
        now = datetime.now(UTC)
        record(engine, "verdict-failed", at=now, severity="critical", data=FAILED_DATA)
        assert dispatch(engine=engine, plan=p, now=now) == 1
        report = deliver(engine=engine, plan=p, now=now, env=_env(am.url), policy=FAST)
        assert report.sent == 1, report
        firing = _named(am.wait_for(lambda a: _named(a, "CutoverVerdictFailed")),
                        "CutoverVerdictFailed")
        assert len(firing) == 1
        assert firing[0]["labels"] == {
            "alertname": "CutoverVerdictFailed", "severity": "critical", "service": "auth",
            "phase": "week-2", "condition": "verdict-failed:auth", "namespace": "nanopore"}
        assert firing[0]["status"]["state"] == "active"
        assert "p95 latency 61.0 ms" in firing[0]["annotations"]["description"]
        receiver.wait_for(1)
        assert _hooks(receiver, "firing")[0]["alerts"][0]["labels"]["service"] == "auth"

        later = datetime.now(UTC)
        record(engine, "verdict-recovered", at=later, severity="info")
        assert dispatch(engine=engine, plan=p, now=later) == 1
        assert deliver(engine=engine, plan=p, now=later, env=_env(am.url), policy=FAST).sent == 1
        receiver.wait_for(2)
        resolved = _hooks(receiver, "resolved")
        assert resolved, [a.json for a in receiver.arrivals]
        assert resolved[0]["alerts"][0]["labels"] == firing[0]["labels"]
        assert not [a for a in am.alerts(active="true")
                    if a["labels"]["alertname"] == "CutoverVerdictFailed"
                    and a["status"]["state"] == "active"]


def test_an_act_fires_and_ends_by_itself(engine, plan, receiver, tmp_path):
    with am_support.alertmanager_with(tmp_path, webhook=receiver.base + "/hook") as am:
        p = with_channels(plan, _am_channel())
        now = datetime.now(UTC)
        event_id = record(engine, "approved", at=now, severity="info",
                          data={"from_weight": 25, "to_weight": 50, "actor": "ana"})
        dispatch(engine=engine, plan=p, now=now)
        assert deliver(engine=engine, plan=p, now=now, env=_env(am.url), policy=FAST).sent == 1
        found = _named(am.wait_for(lambda a: _named(a, "CutoverApproved")), "CutoverApproved")
        assert found[0]["labels"]["event"] == str(event_id)
        assert found[0]["labels"]["severity"] == "info"
        ends = datetime.fromisoformat(found[0]["endsAt"].replace("Z", "+00:00"))
        assert now + ACT_TTL - timedelta(seconds=5) <= ends <= datetime.now(UTC) + ACT_TTL


def test_a_condition_still_firing_is_said_again_with_a_later_end(engine, plan, receiver,
                                                                 tmp_path):
    with am_support.alertmanager_with(tmp_path, webhook=receiver.base + "/hook") as am:
        p = with_channels(plan, _am_channel(resolve_timeout="15m"))
        now = datetime.now(UTC)
        record(engine, "drift", at=now, severity="warning", data={"stored": 25, "router": 50})
        dispatch(engine=engine, plan=p, now=now)
        deliver(engine=engine, plan=p, now=now, env=_env(am.url), policy=FAST)
        first = _named(am.wait_for(lambda a: _named(a, "CutoverDrift")), "CutoverDrift")[0]
        report = deliver(engine=engine, plan=p, now=datetime.now(UTC), env=_env(am.url),
                         policy=FAST)
        assert (report.sent, report.refreshed) == (0, 1)
        again = _named(am.wait_for(lambda a: _named(a, "CutoverDrift")[0]["endsAt"]
                                   != first["endsAt"]), "CutoverDrift")
        assert len(again) == 1 and again[0]["endsAt"] > first["endsAt"]
        assert again[0]["startsAt"] == first["startsAt"]


def test_nothing_is_dropped_while_alertmanager_is_down(engine, plan, receiver, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    p = with_channels(plan, _am_channel())
    now = datetime.now(UTC)
    record(engine, "source-down", at=now, service=None, dedup_key="source-down:prometheus",
           data={"source": "prometheus", "error": "connection refused"})
    dispatch(engine=engine, plan=p, now=now)
    at = now
    for _ in range(FAST.max_attempts + 3):   # past the attempts any chat channel gets
        report = deliver(engine=engine, plan=p, now=at, env=_env(url), policy=FAST)
        assert report.sent == 0 and report.failed == 0
        # the retry is due backoff_max after the run's clock (``at`` plus the real
        # seconds the attempt took): a minute more makes it due on a loaded machine too
        at += FAST.backoff_max + timedelta(minutes=1)
    [row] = _rows(engine)
    assert row.state == DeliveryState.PENDING.value
    assert row.attempts == FAST.max_attempts + 3
    assert "could not send" in (row.last_error or "")

    with am_support.alertmanager_with(tmp_path, webhook=receiver.base + "/hook", port=port) as am:
        assert deliver(engine=engine, plan=p, now=at, env=_env(url), policy=FAST).sent == 1
        found = _named(am.wait_for(lambda a: _named(a, "CutoverSourceDown")),
                       "CutoverSourceDown")
        assert found[0]["labels"]["condition"] == "source-down:prometheus"
        assert "service" not in found[0]["labels"]


def test_a_channel_filtered_to_a_condition_still_gets_its_end(engine, plan):
    p = with_channels(plan, _am_channel(events=["verdict-failed"]),
                      channel("chat", "slack", events=["verdict-failed"]))
    now = datetime.now(UTC)
    record(engine, "verdict-failed", at=now)
    record(engine, "verdict-recovered", at=now)
    assert dispatch(engine=engine, plan=p, now=now) == 3
    assert [(r.event_id, r.channel) for r in _rows(engine)] == [
        (1, "cluster-am"), (1, "chat"), (2, "cluster-am")]


def test_bearer_token_is_sent_and_never_shown(engine, plan, receiver):
    p = with_channels(plan, _am_channel(token_env="AM_TOKEN"))
    now = datetime.now(UTC)
    record(engine, "approved", at=now)
    dispatch(engine=engine, plan=p, now=now)
    receiver.default = Answer(status=500, body=b"token sha256~SECRETTOKEN rejected")
    env = _env(receiver.url("am"), AM_TOKEN="sha256~SECRETTOKEN")
    report = deliver(engine=engine, plan=p, now=now, env=env, policy=FAST)
    assert receiver.arrivals[0].headers["Authorization"] == "Bearer sha256~SECRETTOKEN"
    assert receiver.arrivals[0].path.endswith("/api/v2/alerts")
    assert report.retrying == 1
    [row] = _rows(engine)
    assert "SECRETTOKEN" not in (row.last_error or "") and "HTTP 500" in (row.last_error or "")


def test_missing_token_names_the_variable(plan):
    with pytest.raises(NotifyError, match="AM_TOKEN .bearer token. is not set"):
        build_notifier(_am_channel(token_env="AM_TOKEN"), {"HOOK_CLUSTER_AM": "http://x"})


def test_firing_and_resolved_messages_carry_the_same_labels(plan):
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    fail = AlertEvent(id=3, at=now, kind="verdict-failed", service="auth", severity="critical",
                      dedup_key="verdict-failed:auth", summary="fails", data={})
    # whatever severity the recovery was recorded with, the label is the condition's
    back = AlertEvent(id=9, at=now, kind="verdict-recovered", service="auth", severity="info",
                      dedup_key="verdict-recovered:auth", summary="passes", data={})
    assert labels(render(fail, plan)) == labels(render(back, plan))
    resolved = alert(render(back, plan), now=now + timedelta(hours=1),
                     resolve_timeout=timedelta(minutes=15))
    assert resolved["endsAt"] == resolved["startsAt"]


def test_text_from_logs_goes_as_plain_text(plan):
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    event = AlertEvent(id=3, at=now, kind="drift", service="auth", severity="warning",
                       dedup_key="drift:auth", summary='<script>x</script> {{ template "x" }}',
                       data={})
    body = alert(render(event, plan), now=now, resolve_timeout=timedelta(minutes=15))
    assert body["annotations"]["description"].startswith("auth: route drift\n<script>")

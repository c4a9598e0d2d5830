"""Alertmanager's webhook, in: the real Alertmanager posts to the worker's
``/alertmanager``, the alerts land in the inbox against the services they name; the
token, the payload and the store's failures are answered as Alertmanager's retries need."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from alerts.inbox import receive
from cutover.metrics import WorkerMetrics
from rollout.holds import holds, revert_holds
from slo.plan import Alerts, Inbox, Plan
from store.db import make_engine, session_scope
from store.inbox import InboxAlert, firing_alerts, recent_alerts, save_alerts
from tests.support import alertmanager as am_support

TOKEN = "inbox-token-0123456789abcdef"
ENV = {"INBOX_TOKEN": TOKEN}
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def with_inbox(plan: Plan, **kw: Any) -> Plan:
    return plan.model_copy(update={"alerts": Alerts(inbox=Inbox(token_env="INBOX_TOKEN", **kw))})


class Server:
    def __init__(self, engine, plan: Plan):
        def post(body: bytes, authorization: str | None) -> tuple[int, str]:
            a = receive(engine=engine, plan=plan, body=body, authorization=authorization,
                        now=datetime.now(UTC), env=ENV)
            return a.status, a.text
        self.http = WorkerMetrics().serve(0, host="127.0.0.1", posts={"/alertmanager": post})
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/alertmanager"

    def post(self, body: Any, token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(self.url, content=content, headers=headers, timeout=5)


@pytest.fixture
def inbox_plan(plan: Plan) -> Plan:
    return with_inbox(plan, revert_on=["AuthDown"])


@pytest.fixture
def server(engine, inbox_plan) -> Iterator[Server]:
    s = Server(engine, inbox_plan)
    yield s
    s.http.shutdown()
    s.http.server_close()


def webhook(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {"version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": status,
            "receiver": "cutover", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://am", "alerts": list(alerts)}


def one(name: str = "AuthErrorsHigh", *, status: str = "firing", fp: str = "a1b2",
        starts: datetime = NOW, **labels: str) -> dict[str, Any]:
    return {"status": status, "labels": {"alertname": name, **labels},
            "annotations": {"summary": "<b>5xx</b> above 5 %"},
            "startsAt": starts.isoformat(),
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else (NOW + timedelta(minutes=5)).isoformat(),
            "generatorURL": "http://prom/graph", "fingerprint": fp}


def _firing(engine, service: str | None = None) -> list[InboxAlert]:
    with session_scope(engine) as s:
        return firing_alerts(session=s, service=service)


@pytest.mark.skipif(not am_support.available(), reason="prometheus-alertmanager is not installed")
def test_real_alertmanager_firing_then_resolved_reaches_the_inbox(engine, inbox_plan, server,
                                                                   tmp_path):
    with am_support.alertmanager_with(tmp_path, webhook=server.url, token=TOKEN) as am:
        now = datetime.now(UTC)
        alert = {"labels": {"alertname": "AuthErrorsHigh", "service": "python-auth",
                            "severity": "critical", "namespace": "nanopore"},
                 "annotations": {"summary": "5xx above 5 %"}, "startsAt": now.isoformat()}
        am.post([alert])
        found = _wait(lambda: _firing(engine, "auth"))
        assert [(a.alertname, a.severity, a.service) for a in found] == [
            ("AuthErrorsHigh", "critical", "auth")]
        assert found[0].labels["namespace"] == "nanopore"
        with session_scope(engine) as s:
            [hold] = holds(session=s, plan=inbox_plan, service="auth")
        assert "AuthErrorsHigh (critical) firing on auth" in hold.reason

        am.post([alert | {"endsAt": datetime.now(UTC).isoformat()}])
        _wait(lambda: not _firing(engine, "auth"))
        with session_scope(engine) as s:
            [row] = recent_alerts(session=s)
            assert row.status == "resolved" and row.ends_at is not None
            assert holds(session=s, plan=inbox_plan, service="auth") == []


def _wait(predicate: Any, timeout: float = 15.0) -> Any:
    import time
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got or time.monotonic() > deadline:
            assert got, "the inbox never saw it"
            return got
        time.sleep(0.1)


def test_wrong_or_missing_token_is_refused_and_nothing_recorded(engine, server):
    assert server.post(webhook(one(service="auth")), token="guess").status_code == 401
    assert server.post(webhook(one(service="auth")), token=None).status_code == 401
    assert _firing(engine) == []


def test_no_token_configured_refuses_every_webhook(engine, inbox_plan):
    a = receive(engine=engine, plan=inbox_plan, body=b"{}", authorization="Bearer ",
                now=NOW, env={})
    assert a.status == 503 and "token not configured" in a.text


@pytest.mark.parametrize(("body", "says"), [
    (b"not json", "unreadable JSON"),
    ({"version": "3", "status": "firing", "alerts": []}, "version"),
    (webhook({"status": "firing", "labels": {"alertname": "X"}, "fingerprint": "f"}),
     "alerts.0.startsAt"),
    (webhook(one() | {"labels": {"service": "auth"}}), "expected an alertname label"),
    (webhook(one() | {"status": "pending"}), "alerts.0.status"),
])
def test_bad_payloads_are_refused_with_what_is_wrong(engine, server, body, says):
    r = server.post(body)
    assert r.status_code == 400 and says in r.text, r.text
    assert _firing(engine) == []


def test_a_store_that_cannot_take_them_answers_503_so_alertmanager_retries(tmp_path,
                                                                          inbox_plan):
    bare = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")   # no tables
    a = receive(engine=bare, plan=inbox_plan, body=json.dumps(webhook(one())).encode(),
                authorization=f"Bearer {TOKEN}", now=NOW, env=ENV)
    assert a.status == 503
    bare.dispose()


def test_alerts_map_to_services_by_name_backend_or_route(engine, server):
    r = server.post(webhook(one("A", fp="1", service="auth"), one("B", fp="2", job="python-auth"),
                            one("C", fp="3", route="nanopore-files"),
                            one("D", fp="4", service="unrelated")))
    assert r.status_code == 200, r.text
    got = {a.alertname: a.service for a in _firing(engine)}
    assert got == {"A": "auth", "B": "auth", "C": "files", "D": None}


def test_an_older_report_never_undoes_a_newer_one(engine):
    fire = InboxAlert(fingerprint="f", alertname="A", service="auth", status="firing",
                      severity="critical", starts_at=NOW, ends_at=None, received_at=NOW,
                      labels={"alertname": "A"}, annotations={})
    done = InboxAlert(**{**fire.__dict__, "status": "resolved", "ends_at": NOW})
    with session_scope(engine) as s:
        save_alerts(session=s, alerts=[fire])
        save_alerts(session=s, alerts=[done])
        assert save_alerts(session=s, alerts=[fire]) == 0   # an HA peer's late copy
    assert _firing(engine) == []
    later = InboxAlert(**{**fire.__dict__, "starts_at": NOW + timedelta(hours=1)})
    with session_scope(engine) as s:
        save_alerts(session=s, alerts=[later])               # it fires again: that counts
    assert [a.starts_at for a in _firing(engine)] == [NOW + timedelta(hours=1)]


def test_only_held_severities_hold_and_revert_on_names_revert(engine, inbox_plan, server):
    server.post(webhook(one("Slow", fp="1", service="auth", severity="warning"),
                        one("AuthDown", fp="2", service="auth", severity="warning"),
                        one("Broken", fp="3", service="files", severity="critical")))
    with session_scope(engine) as s:
        assert [h.alertname for h in holds(session=s, plan=inbox_plan, service="auth")] == [
            "AuthDown"]
        assert [h.alertname for h in holds(session=s, plan=inbox_plan, service="files")] == [
            "Broken"]
        reverting = revert_holds(session=s, plan=inbox_plan)
    assert {k: v.alertname for k, v in reverting.items()} == {"auth": "AuthDown"}

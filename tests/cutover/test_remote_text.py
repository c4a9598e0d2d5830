"""Text from remote answers is scrubbed where it enters, before it is stored, printed or
sent: the attack was a Prometheus (a proxy in front of it) whose 500 body echoed the
request's ``Authorization`` header; the token then showed in ``collect``'s output, the
outage row, the source-down event and the chat message.  Here a real HTTP server on
loopback echoes what it was sent, a real webhook receiver takes the alert, and the
Kubernetes API fake answers with the token in its Status message."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from alerts.outbox import RetryPolicy, deliver, dispatch
from cutover.cli import main
from slo.errors import RouterError
from store.alerts import AlertDelivery
from store.db import make_engine
from store.events import EventRow
from store.series import PromOutage
from tests.alerts.conftest import NOW, SECRET_PATH, Answer, Receiver
from tests.conftest import PLAN_PATH

TOKEN = "pr0m-Token-4711-abcdef"
HOOK = "HOOK_TEAM"


class Echo:
    """Answers every request with ``status`` and a body quoting its Authorization header,
    as a misbehaving proxy does: JSON (Prometheus' error shape) or plain text."""

    def __init__(self, status: int = 500, *, as_json: bool = True) -> None:
        echo = self
        self.status, self.as_json, self.seen = status, as_json, 0

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                echo.seen += 1
                said = (f"upstream rejected request with {self.headers.get('Authorization')}"
                        f" from http://admin:{TOKEN}@prom.internal:9090{self.path}")
                body = (json.dumps({"status": "error", "errorType": "internal", "error": said})
                        if echo.as_json else said).encode()
                self.send_response(echo.status)
                self.send_header("Content-Type",
                                 "application/json" if echo.as_json else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    e = Echo()
    yield e
    e.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _plan(tmp_path: Path, prom_url: str) -> Path:
    data = yaml.safe_load(PLAN_PATH.read_text())
    data["sources"] = {"prometheus": {"url": prom_url, "step": "30s",
                                      "bearer_token_env": "PROMETHEUS_TOKEN"}}
    data["router"] = {"kind": "dry-run"}
    data["alerts"] = {"channels": [{"name": "team", "kind": "generic", "url_env": HOOK}]}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _clean(text: str, *, where: str) -> None:
    assert TOKEN not in text, f"the token leaked into {where}: {text[:600]}"
    assert "SECRET" not in text, f"the webhook path leaked into {where}: {text[:600]}"


@pytest.mark.parametrize("as_json", [True, False], ids=["json-body", "text-body"])
def test_an_echoed_token_reaches_no_output_no_row_no_event_and_no_chat(
        as_json: bool, echo: Echo, receiver: Receiver, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    echo.as_json = as_json
    monkeypatch.setenv("PROMETHEUS_TOKEN", TOKEN)
    monkeypatch.setenv(HOOK, receiver.url("team"))
    plan, db = _plan(tmp_path, echo.url), f"sqlite:///{tmp_path / 's.db'}"
    assert main(["--plan", str(plan), "--db", db, "db", "upgrade"]) == 0
    capsys.readouterr()

    assert main(["--plan", str(plan), "--db", db, "-v", "collect", "--once"]) == 1
    out = capsys.readouterr()
    assert echo.seen >= 1
    _clean(out.out + out.err, where="collect's output")
    assert "HTTP 500" in out.out + out.err

    engine = make_engine(db)
    try:
        with Session(engine) as s:
            outages = s.exec(select(PromOutage)).all()
            events = s.exec(select(EventRow).where(EventRow.kind == "source-down")).all()
        assert outages and events
        for row in outages:
            _clean(row.message, where="the outage row")
        for ev in events:
            _clean(ev.summary + json.dumps(ev.data or {}), where="the source-down event")
        if as_json:   # the answer's own words are kept, the credential masked
            assert "Bearer ***" in events[0].summary and "admin:***@" in events[0].summary

        from cutover.context import load_plan

        parsed, _ = load_plan(str(plan))
        assert dispatch(engine=engine, plan=parsed, now=NOW) >= 1
        # the chat answers 500 quoting the URL it was called on and the token it was sent
        receiver.default = Answer(500, body=f"bad hook {receiver.url('team')} Bearer {TOKEN}"
                                  .encode())
        deliver(engine=engine, plan=parsed, now=NOW, policy=RetryPolicy(min_interval=0))
        receiver.wait_for(1)
        for arrival in receiver.arrivals:
            _clean(arrival.body.decode(), where="the chat message")
        with Session(engine) as s:
            errors = [d.last_error or "" for d in s.exec(select(AlertDelivery)).all()]
        assert any("HTTP 500" in e for e in errors), errors
        for e in errors:
            _clean(e, where="the delivery's stored error")
    finally:
        engine.dispose()


def test_a_kubernetes_status_that_quotes_the_token_is_scrubbed() -> None:
    from rollout.routers.kube import api_client_for, get_object
    from tests.support.k8s_fake import ROUTES, FakeApiServer, route

    with FakeApiServer(token=TOKEN) as api:
        api.put(route("nanopore-auth"))
        api.fail_next(500, message="etcd said no to {authorization}")
        client = api_client_for(api.url, token=TOKEN)
        from kubernetes import client as k8s

        custom = k8s.CustomObjectsApi(client)
        with pytest.raises(RouterError) as caught:
            get_object(custom, kind=ROUTES, namespace="nanopore", name="nanopore-auth",
                       what="Route")
    text = str(caught.value)
    assert "HTTP 500" in text and "etcd said no to ***" in text
    assert TOKEN not in text and SECRET_PATH not in text

"""No webhook URL path and no signing secret in any log line, stored error, overview or
command output, whatever the far side answers."""

from __future__ import annotations

import argparse
import logging
import socket

import yaml
from sqlmodel import select

from alerts import channels_overview
from alerts.outbox import RetryPolicy, deliver, dispatch, send_test
from alerts.redact import mask_url, scrub
from cutover import cmd_alerts
from store.alerts import AlertDelivery
from store.db import session_scope
from tests.alerts.conftest import (
    NOW,
    SECRET_PATH,
    Answer,
    channel,
    env_for,
    record,
    with_channels,
)
from tests.conftest import PLAN_PATH

HMAC_SECRET = "hmac-Sup3rSecretValue"
SECRETS = ("T0SECRET", "B0SECRET", "xoxSECRETtoken42", HMAC_SECRET)


def _assert_clean(text: str) -> None:
    for s in SECRETS:
        assert s not in text, f"secret {s!r} leaked in: {text[:500]}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_secret_in_logs_or_stored_errors(engine, plan, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    # a command run earlier in this process (main() sets httpx to WARNING) must not hide
    # httpx's request lines, which are what this test reads
    caplog.set_level(logging.DEBUG, logger="httpx")
    ok, echo, hang, limited = (channel("ok", "slack"), channel("echo", "teams"),
                               channel("hang", "discord"), channel("limited", "mattermost"))
    signed = channel("signed", "generic", secret_env="SIGNING_SECRET")
    refused = channel("refused", "google-chat")
    p = with_channels(plan, ok, echo, hang, limited, signed, refused)
    env = env_for(receiver, ok, echo, hang, limited, signed, SIGNING_SECRET=HMAC_SECRET)
    env[refused.url_env] = f"http://127.0.0.1:{_closed_port()}{SECRET_PATH}/refused"
    record(engine, "verdict-failed", severity="critical")
    dispatch(engine=engine, plan=p, now=NOW)

    def answer_for(path: str) -> Answer:
        if path.endswith("/echo"):   # a server that echoes the URL it was called on
            return Answer(500, body=f"no route for POST {receiver.base}{path}".encode())
        if path.endswith("/hang"):
            return Answer(200, hang=3)
        if path.endswith("/limited"):
            return Answer(429, {"Retry-After": "60"}, f"slow down {path}".encode())
        if path.endswith("/signed"):
            return Answer(400, body=f"bad signature {HMAC_SECRET}".encode())
        return Answer(200)

    paths = ["/ok", "/echo", "/hang", "/limited", "/signed"]
    # the receiver answers in arrival order; deliveries go in channel order (one each)
    receiver.script = [answer_for(SECRET_PATH + x) for x in paths]
    report = deliver(engine=engine, plan=p, now=NOW, env=env,
                     policy=RetryPolicy(min_interval=0, timeout=0.5))
    assert report.sent == 1 and report.retrying + report.failed + report.deferred == 5
    with session_scope(engine) as s:
        errors = [r.last_error or "" for r in s.exec(select(AlertDelivery)).all()]
    assert sum(bool(e) for e in errors) == 5
    for e in errors:
        _assert_clean(e)
    _assert_clean(caplog.text)
    _assert_clean(" ".join(report.errors))
    assert "http://127.0.0.1" in caplog.text          # the host is still there to debug with
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)   # httpx's own line


def test_channels_overview_masks_targets(plan, receiver):
    ok, missing = channel("ok", "slack"), channel("missing", "teams")
    signed = channel("signed", "generic", secret_env="SIGNING_SECRET")
    p = with_channels(plan, ok, missing, signed, channel("journal", "log"))
    info = {i.name: i for i in channels_overview(p, env_for(receiver, ok, signed))}
    assert info["ok"].configured and info["ok"].target == f"{receiver.base}/***"
    assert not info["missing"].configured and "HOOK_MISSING is not set" in info["missing"].problem
    assert not info["signed"].configured and "SIGNING_SECRET" in info["signed"].problem
    assert info["journal"].configured
    _assert_clean(repr(info))


def test_url_file_is_read_and_masked(plan, receiver, tmp_path):
    f = tmp_path / "hook-url"
    f.write_text(receiver.url("filed") + "\n")
    p = with_channels(plan, channel("filed", "slack", url_file=str(f)))
    [result] = send_test(plan=p, now=NOW, env={})
    assert result.ok and result.target == f"{receiver.base}/***"
    assert receiver.to("filed")[0].json["blocks"][0]["text"]["text"] == "cutover test message"


def test_scrub_masks_paths_and_named_secrets():
    assert mask_url("https://hooks.slack.com/services/T/B/X") == "https://hooks.slack.com/***"
    assert scrub("POST https://discord.com/api/webhooks/1/abc failed", ()) == \
        "POST https://discord.com/*** failed"
    assert scrub(f"sig {HMAC_SECRET}", (HMAC_SECRET,)) == "sig ***"


def test_alerts_test_command_prints_one_line_per_channel(plan, receiver, tmp_path, capsys,
                                                          monkeypatch):
    data = yaml.safe_load(PLAN_PATH.read_text())
    data["alerts"] = {"channels": [
        {"name": "team-slack", "kind": "slack", "url_env": "T_SLACK"},
        {"name": "cab", "kind": "teams", "url_env": "T_TEAMS"},
        {"name": "journal", "kind": "log", "path": str(tmp_path / "a.log")}]}
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("T_SLACK", receiver.url("team-slack"))
    monkeypatch.setenv("T_TEAMS", receiver.url("cab"))
    receiver.script = [Answer(200), Answer(500, body=b"flow failed")]
    args = argparse.Namespace(plan=str(plan_file), db=f"sqlite:///{tmp_path / 'c.db'}")
    assert cmd_alerts.test(args) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3
    assert out[0].startswith("ok   team-slack") and f"{receiver.base}/***" in out[0]
    assert out[1].startswith("FAIL cab") and "HTTP 500: flow failed" in out[1]
    assert out[2].startswith("ok   journal") and "written" in out[2]
    _assert_clean("\n".join(out))
    receiver.default = Answer(202)
    assert cmd_alerts.test(args) == 0

"""What arrives at each platform's webhook, checked against that platform's documented
format, through the real outbox and a real loopback receiver."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from alerts.messages import render
from alerts.notifiers import discord, generic
from alerts.outbox import RetryPolicy, deliver, dispatch
from store.alerts import AlertEvent
from tests.alerts.conftest import FAILED_DATA, NOW, channel, env_for, record, with_channels

FAST = RetryPolicy(min_interval=0.0, timeout=5.0)
NASTY = "<!channel> & <https://evil.example|click> *bold* @everyone [x](https://evil.example)"


def _send_one(engine, plan, receiver, ch, *, summary="p95 latency up", data=None, env=None,
              dashboard_url="https://cutover.example.org"):
    p = with_channels(plan, ch, dashboard_url=dashboard_url)
    record(engine, "verdict-failed", summary=summary, data=data or FAILED_DATA,
           severity="critical")
    assert dispatch(engine=engine, plan=p, now=NOW) == 1
    report = deliver(engine=engine, plan=p, now=NOW, env=env or env_for(receiver, ch),
                     policy=FAST)
    assert report.sent == 1, report
    [arrival] = receiver.to(ch.name)
    assert arrival.headers["Content-Type"].startswith("application/json")
    return arrival


def test_slack_block_kit_with_text_fallback(sqlite_engine, plan, receiver):
    body = _send_one(sqlite_engine, plan, receiver, channel("team-slack", "slack")).json
    assert isinstance(body["text"], str) and "auth: verdict turned FAIL" in body["text"]
    blocks = body["blocks"]
    assert blocks[0] == {"type": "header",
                         "text": {"type": "plain_text", "text": "auth: verdict turned FAIL"}}
    assert len(blocks) <= 50
    for b in blocks:
        assert b["type"] in {"header", "section", "actions", "context", "divider"}
        if b["type"] == "section":
            assert "text" in b or "fields" in b
            assert len(b.get("fields", [])) <= 10
            if "text" in b:
                assert b["text"]["type"] == "mrkdwn" and len(b["text"]["text"]) <= 3000
    everything = str(blocks)
    assert "baseline 39.8 → candidate 61" in everything and "limit 43.78" in everything
    assert "week-2" in everything and "25 %" in everything
    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == "https://cutover.example.org/?service=auth"


def test_slack_escapes_mrkdwn_control_characters(sqlite_engine, plan, receiver):
    body = _send_one(sqlite_engine, plan, receiver, channel("team-slack", "slack"),
                     summary=NASTY).json
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in body["text"]
    assert "<!channel>" not in str(body) and "<https://evil" not in str(body)


def test_teams_workflow_gets_an_adaptive_card_not_a_message_card(sqlite_engine, plan, receiver):
    body = _send_one(sqlite_engine, plan, receiver, channel("cab", "teams"), summary=NASTY).json
    assert body["type"] == "message"
    [att] = body["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert "@type" not in body and "MessageCard" not in str(body)
    kinds = [b["type"] for b in card["body"]]
    assert kinds[0] == "TextBlock" and "FactSet" in kinds
    facts = [f for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]]
    assert all(set(f) == {"title", "value"} for f in facts)
    assert any("candidate 61" in f["value"] for f in facts)
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open dashboard",
                                "url": "https://cutover.example.org/?service=auth"}]
    assert "[x](https" not in str(card) and r"\\*bold\\*" in str(card)


def test_google_chat_cards_v2_with_text_fallback(sqlite_engine, plan, receiver):
    body = _send_one(sqlite_engine, plan, receiver, channel("gchat", "google-chat"),
                     summary=NASTY).json
    assert isinstance(body["text"], str)
    [card] = body["cardsV2"]
    assert card["cardId"] and set(card["card"]) == {"header", "sections"}
    assert card["card"]["header"]["title"] == "auth: verdict turned FAIL"
    widgets = [w for s in card["card"]["sections"] for w in s["widgets"]]
    for w in widgets:
        assert len(w) == 1 and next(iter(w)) in {"textParagraph", "decoratedText", "buttonList"}
    paragraph = widgets[0]["textParagraph"]["text"]
    assert paragraph.startswith("&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;")
    [buttons] = [w["buttonList"]["buttons"] for w in widgets if "buttonList" in w]
    assert buttons[0]["onClick"]["openLink"]["url"] == "https://cutover.example.org/?service=auth"


def test_google_chat_text_cannot_mention_everyone():
    from alerts.notifiers.google_chat import chat_text
    assert "<users/all>" not in chat_text("hi <users/all>")


def test_discord_content_and_embed_within_documented_limits(sqlite_engine, plan, receiver):
    huge = dict(FAILED_DATA, reasons=["r" * 3000] * 5, reason="x" * 5000)
    body = _send_one(sqlite_engine, plan, receiver, channel("disc", "discord"),
                     summary="s" * 9000 + " @everyone", data=huge).json
    assert len(body["content"]) <= 2000
    assert body["allowed_mentions"] == {"parse": []}
    [embed] = body["embeds"]
    assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    assert len(embed["fields"]) <= 25
    assert all(len(f["name"]) <= 256 and 0 < len(f["value"]) <= 1024 for f in embed["fields"])
    assert discord.embed_size(embed) <= 6000
    assert embed["url"] == "https://cutover.example.org/?service=auth"
    assert isinstance(embed["color"], int)


def test_discord_escapes_markdown(plan):
    event = AlertEvent(id=1, at=NOW, kind="approved", service="auth", severity="info",
                       dedup_key="k", summary="*bold* __u__ `code` [x](https://evil) @here",
                       data={"actor": "ana", "reason": "p95 flat"})
    body = discord.payload(render(event, plan))
    desc = body["embeds"][0]["description"]
    assert r"\*bold\*" in desc and r"\_\_u\_\_" in desc and r"\`code\`" in desc
    assert r"\[x\]\(https://evil\)" in desc and "@here" not in desc


def test_mattermost_slack_compatible_text_and_attachments(sqlite_engine, plan, receiver):
    body = _send_one(sqlite_engine, plan, receiver, channel("mm", "mattermost"),
                     summary="latency up @channel").json
    assert "auth: verdict turned FAIL" in body["text"] and "@channel" not in body["text"]
    [att] = body["attachments"]
    assert att["fallback"] and att["color"].startswith("#")
    assert att["title_link"] == "https://cutover.example.org/?service=auth"
    assert all(set(f) == {"short", "title", "value"} for f in att["fields"])


def test_generic_json_is_signed_and_carries_an_idempotency_key(sqlite_engine, plan, receiver):
    ch = channel("hook", "generic", secret_env="HOOK_SECRET")
    secret = "hmac-s3cret-value"
    arrival = _send_one(sqlite_engine, plan, receiver, ch,
                        env=env_for(receiver, ch, HOOK_SECRET=secret))
    expected = "sha256=" + hmac.new(secret.encode(), arrival.body, hashlib.sha256).hexdigest()
    assert arrival.headers[generic.SIGNATURE_HEADER] == expected
    assert len(arrival.headers[generic.IDEMPOTENCY_HEADER]) == 32
    body = arrival.json
    assert body["kind"] == "verdict-failed" and body["service"] == "auth"
    assert body["figures"][0] == {"name": "latency_p95_ms", "baseline": "39.8",
                                  "candidate": "61", "limit": "43.78", "verdict": "fail"}


def test_generic_without_secret_env_is_unsigned(sqlite_engine, plan, receiver):
    arrival = _send_one(sqlite_engine, plan, receiver, channel("hook", "generic"))
    assert generic.SIGNATURE_HEADER not in arrival.headers
    assert generic.IDEMPOTENCY_HEADER in arrival.headers


def test_log_channel_appends_one_line_per_alert(sqlite_engine, plan, tmp_path: Path):
    path = tmp_path / "alerts.log"
    p = with_channels(plan, channel("journal", "log", path=str(path)))
    record(sqlite_engine, "approved", summary="line one\nforged line",
           data={"from_weight": 10, "to_weight": 25, "actor": "ana"})
    dispatch(engine=sqlite_engine, plan=p, now=NOW)
    assert deliver(engine=sqlite_engine, plan=p, now=NOW, env={}, policy=FAST).sent == 1
    [line] = path.read_text().splitlines()
    assert "approved auth 10 % -> 25 %" in line and "line one\\nforged line" in line


@pytest.mark.parametrize("kind,title", [
    ("auto-reverted", "auth: auto-reverted"), ("drift", "auth: route drift"),
    ("data-stale", "auth: data stale"), ("phase-complete", "phase week-2 complete"),
])
def test_each_event_kind_says_what_happened(kind, title, plan):
    event = AlertEvent(id=3, at=NOW, kind=kind, service="auth", severity="warning",
                       dedup_key="k", summary="", data={"phase": "week-2", "weight": 50,
                                                        "router_weight": 25})
    m = render(event, plan)
    assert m.title == title
    assert ("Step", "50 %") in m.facts and ("Router weight", "25 %") in m.facts


def test_drift_as_the_gate_records_it(plan):
    event = AlertEvent(id=4, at=NOW, kind="drift", service="auth", severity="warning",
                       dedup_key="drift:auth", summary="route differs",
                       data={"route": "nanopore-auth", "stored": 50, "router": 25})
    m = render(event, plan)
    assert {("Step", "50 %"), ("Router weight", "25 %"), ("Route", "nanopore-auth")} <= set(m.facts)


def test_override_and_phase_services_are_stated(plan):
    event = AlertEvent(id=5, at=NOW, kind="approved", service="auth", severity="info",
                       dedup_key="k", summary="", data={"override": True, "from_weight": 25,
                                                        "to_weight": 50, "actor": "ana"})
    assert ("Override", "yes: the gate's refusal was overridden") in render(event, plan).facts
    done = AlertEvent(id=6, at=NOW, kind="phase-complete", service=None, severity="info",
                      dedup_key="k", summary="", data={"phase": "week-2", "services": ["auth"]})
    m = render(done, plan)
    assert m.title == "phase week-2 complete" and ("Services", "auth") in m.facts


def test_markdown_escape_keeps_figures_readable():
    from alerts.messages import card_escape, markdown_escape
    assert markdown_escape("p95 61.0 ms > 43.8 (+40 %)") == r"p95 61.0 ms \> 43.8 (+40 %)"
    assert card_escape("a_b *c* [d](e) 1.5-2") == r"a\_b \*c\* \[d\](e) 1.5-2"

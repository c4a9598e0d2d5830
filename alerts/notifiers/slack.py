"""Slack incoming webhooks: Block Kit ``blocks`` plus a ``text`` fallback that
notifications and old clients show (https://api.slack.com/messaging/webhooks).

Limits honoured (https://api.slack.com/reference/block-kit/blocks): header text 150
characters, section text 3000, at most 10 section fields of 2000, 50 blocks.
Text from logs and metrics is escaped for mrkdwn (&, <, >), which also stops
``<!channel>`` and link injection."""

from __future__ import annotations

from typing import Any

from alerts.messages import Message
from alerts.messages import slack_escape as esc
from alerts.messages import truncate as cut

__all__ = ["payload"]


def payload(m: Message) -> dict[str, Any]:
    return {"text": cut(esc(m.plain), 3000), "blocks": blocks(m)}


def blocks(m: Message) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": cut(m.title, 150)}}]
    if m.summary:
        out.append(_section(esc(m.summary)))
    if m.facts:
        out.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": cut(f"*{esc(k)}*\n{esc(v)}", 2000)} for k, v in m.facts[:10]]})
    if m.figures:
        lines = [f"*{esc(f.name)}*: baseline {esc(f.baseline)} → candidate {esc(f.candidate)}"
                 + (f" (limit {esc(f.limit)})" if f.limit else "")
                 + (f" _{esc(f.verdict)}_" if f.verdict else "") for f in m.figures]
        out.append(_section("\n".join(lines)))
    if m.reasons:
        out.append(_section("\n".join(f"• {esc(r)}" for r in m.reasons)))
    if m.link:
        out.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open dashboard"},
             "url": cut(m.link, 3000)}]})
    out.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"cutover · {esc(m.kind)} · {esc(m.severity)}"}]})
    return out


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, 3000)}}

"""Mattermost incoming webhooks: Slack-compatible ``text`` (Markdown) plus message
``attachments`` with fields (https://developers.mattermost.com/integrate/webhooks/incoming/).
Mattermost renders Markdown, not Slack's mrkdwn, so text is escaped as Markdown and
@-mentions are broken up (an alert must never page @channel)."""

from __future__ import annotations

from typing import Any

from alerts.messages import Message
from alerts.messages import markdown_escape as esc
from alerts.messages import truncate as cut

__all__ = ["payload"]

COLORS = {"critical": "#d00000", "warning": "#e8a317", "resolved": "#2eb67d", "info": "#1d72b8"}
MAX_TEXT = 16000   # a post holds 16383 characters


def payload(m: Message) -> dict[str, Any]:
    text = f"**{esc(m.title)}**" + (f"\n{esc(m.summary)}" if m.summary else "")
    fields = [{"short": True, "title": k, "value": esc(v)} for k, v in m.facts]
    fields += [{"short": False, "title": f.name,
                "value": f"baseline {esc(f.baseline)} → candidate {esc(f.candidate)}"
                         + (f" (limit {esc(f.limit)})" if f.limit else "")} for f in m.figures]
    attachment: dict[str, Any] = {
        "fallback": cut(m.plain, 3000),
        "color": COLORS.get(m.severity, COLORS["info"]),
        "title": cut(m.title, 250),
        "text": cut("\n".join(f"- {esc(r)}" for r in m.reasons), MAX_TEXT),
        "fields": fields,
        "footer": f"cutover · {m.kind}",
    }
    if m.link:
        attachment["title_link"] = m.link
    return {"text": cut(text, MAX_TEXT), "attachments": [attachment]}

"""Discord webhooks: ``content`` plus one embed (https://discord.com/developers/docs/resources/webhook#execute-webhook).

Limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits):
content 2000, embed title 256, description 4096, at most 25 fields of name 256 /
value 1024, footer 2048, and 6000 characters over the whole embed.  Text is escaped
for Discord's Markdown, and ``allowed_mentions`` with no parse types means an alert
can never ping @everyone, whatever a log line says."""

from __future__ import annotations

from typing import Any

from alerts.messages import Message
from alerts.messages import discord_escape as esc
from alerts.messages import truncate as cut

__all__ = ["embed_size", "payload"]

COLORS = {"critical": 0xD00000, "warning": 0xE8A317, "resolved": 0x2EB67D, "info": 0x1D72B8}
EMBED_TOTAL = 6000


def payload(m: Message) -> dict[str, Any]:
    return {"content": cut(esc(m.title), 2000), "embeds": [embed(m)],
            "allowed_mentions": {"parse": []}}


def embed(m: Message) -> dict[str, Any]:
    desc = "\n".join([esc(m.summary)] * bool(m.summary) + [f"- {esc(r)}" for r in m.reasons])
    fields = [{"name": cut(k, 256), "value": cut(esc(v), 1024) or "-", "inline": True}
              for k, v in m.facts]
    fields += [{"name": cut(esc(f.name), 256), "inline": False,
                "value": cut(f"baseline {esc(f.baseline)} → candidate {esc(f.candidate)}"
                             + (f" (limit {esc(f.limit)})" if f.limit else ""), 1024)}
               for f in m.figures]
    out: dict[str, Any] = {"title": cut(esc(m.title), 256), "description": cut(desc, 4096),
                           "color": COLORS.get(m.severity, COLORS["info"]),
                           "timestamp": m.at.isoformat(), "fields": fields[:25],
                           "footer": {"text": f"cutover · {m.kind}"}}
    if m.link:
        out["url"] = m.link
    while embed_size(out) > EMBED_TOTAL and out["fields"]:
        out["fields"].pop()   # drop the least important (last) fields first
    if embed_size(out) > EMBED_TOTAL:
        out["description"] = cut(out["description"], max(EMBED_TOTAL - embed_size(out)
                                                          + len(out["description"]), 0))
    return out


def embed_size(e: dict[str, Any]) -> int:
    """Characters Discord counts toward the 6000 limit."""
    return (len(e.get("title", "")) + len(e.get("description", ""))
            + len(e.get("footer", {}).get("text", ""))
            + sum(len(f["name"]) + len(f["value"]) for f in e.get("fields", [])))

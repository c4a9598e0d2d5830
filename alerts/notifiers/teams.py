"""Microsoft Teams through a Workflows webhook ("Post to a channel when a webhook request
is received"): a message whose attachment is an Adaptive Card
(contentType ``application/vnd.microsoft.card.adaptive``).  The Office 365 connector
MessageCard format is retired and not sent.

Adaptive Card TextBlocks render a Markdown subset (bold, italic, lists, links), so text
from logs and metrics has those characters escaped (no injected links).  Cards are
version 1.4, which Teams renders on desktop, web and mobile."""

from __future__ import annotations

from typing import Any

from alerts.messages import Message
from alerts.messages import card_escape as esc
from alerts.messages import truncate as cut

__all__ = ["CARD_CONTENT_TYPE", "card", "payload"]

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
COLORS = {"critical": "Attention", "warning": "Warning", "resolved": "Good", "info": "Accent"}


def payload(m: Message) -> dict[str, Any]:
    return {"type": "message", "attachments": [
        {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card(m)}]}


def card(m: Message) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": esc(m.title), "weight": "Bolder", "size": "Medium",
         "wrap": True, "color": COLORS.get(m.severity, "Default")}]
    if m.summary:
        body.append({"type": "TextBlock", "text": cut(esc(m.summary), 4000), "wrap": True})
    if m.facts:
        body.append({"type": "FactSet", "facts": [
            {"title": esc(k), "value": esc(v)} for k, v in m.facts]})
    if m.figures:
        body.append({"type": "FactSet", "separator": True, "facts": [
            {"title": esc(f.name),
             "value": f"baseline {esc(f.baseline)} → candidate {esc(f.candidate)}"
                      + (f" (limit {esc(f.limit)})" if f.limit else "")} for f in m.figures]})
    for reason in m.reasons:
        body.append({"type": "TextBlock", "text": "- " + esc(reason), "wrap": True,
                     "spacing": "Small"})
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard", "version": "1.4", "msteams": {"width": "Full"}, "body": body}
    if m.link:
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open dashboard", "url": m.link}]
    return content

"""Google Chat incoming webhooks: ``cardsV2`` (a card with header, sections and widgets)
with a one-line ``text`` fallback (https://developers.google.com/workspace/chat/api/reference/rest/v1/cards).

Card text takes a small HTML subset, so it is HTML-escaped.  The ``text`` field uses
Chat's own syntax, in which ``<users/all>`` mentions everyone and ``<url|label>`` is a
link; a zero-width space after each ``<`` keeps log text from forming either."""

from __future__ import annotations

from typing import Any

from alerts.messages import Message
from alerts.messages import html_escape as esc
from alerts.messages import truncate as cut

__all__ = ["chat_text", "payload"]


def chat_text(text: str) -> str:
    return text.replace("<", "<\u200b")


def payload(m: Message) -> dict[str, Any]:
    sections: list[dict[str, Any]] = []
    if m.summary:
        sections.append({"widgets": [{"textParagraph": {"text": cut(esc(m.summary), 4000)}}]})
    if m.facts:
        sections.append({"header": "Details", "widgets": [
            {"decoratedText": {"topLabel": esc(k), "text": esc(v), "wrapText": True}}
            for k, v in m.facts]})
    if m.figures:
        sections.append({"header": "Baseline vs candidate", "widgets": [
            {"decoratedText": {"topLabel": esc(f.name), "wrapText": True,
                               "text": f"{esc(f.baseline)} → <b>{esc(f.candidate)}</b>"
                                       + (f" (limit {esc(f.limit)})" if f.limit else "")}}
            for f in m.figures]})
    if m.reasons:
        sections.append({"header": "Reasons", "widgets": [
            {"textParagraph": {"text": "<br>".join(esc(r) for r in m.reasons)}}]})
    if m.link:
        sections.append({"widgets": [{"buttonList": {"buttons": [
            {"text": "Open dashboard", "onClick": {"openLink": {"url": m.link}}}]}}]})
    subtitle = " · ".join(x for x in (m.service, m.step, m.severity) if x)
    return {
        "text": cut(chat_text(m.title), 4000),
        "cardsV2": [{"cardId": f"cutover-{m.event_id}-{m.kind}", "card": {
            "header": {"title": cut(m.title, 200), "subtitle": cut(subtitle, 200)},
            "sections": sections}}],
    }

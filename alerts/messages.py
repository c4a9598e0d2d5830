"""An event rendered into what a person reads: a title, the facts, the figures, a link.

Pure: no I/O.  :func:`render` builds a platform-neutral :class:`Message`; each notifier
turns it into its platform's payload, escaping every piece of text that came from logs,
metrics or people (summaries, reasons, actors) with the escaper for that platform's
markup (below).

What an event's ``data`` may carry (all optional; the recorder fills what it knows):
``phase``, ``weight`` (or ``stored``), ``from_weight``, ``to_weight``, ``router_weight``
(or ``router``), ``route``, ``actor``, ``reason``, ``override``, ``services``, ``verdict``, ``reasons`` (list of text), ``checks`` (list of
``{name, verdict, baseline, candidate, limit}``, as ``evaluate --json``), ``figures``
(``{baseline: {...}, candidate: {...}}``), ``source``, ``error``, ``resolves`` (the dedup
key a resolved event ends)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from slo.kinds import CONDITIONS, EventKind
from slo.plan import FIGURES, Plan
from store.alerts import AlertEvent

__all__ = [
    "CONDITIONS",
    "CONDITION_SEVERITY",
    "RESOLVES",
    "FigureRow",
    "Message",
    "card_escape",
    "condition_key",
    "discord_escape",
    "html_escape",
    "markdown_escape",
    "render",
    "slack_escape",
    "test_event",
    "truncate",
]

MAX_FIGURES = 6
MAX_REASONS = 5

E = EventKind
_TITLES: dict[EventKind, str] = {
    E.VERDICT_FAILED: "{service}: verdict turned FAIL",
    E.VERDICT_RECOVERED: "{service}: verdict back to pass",
    E.AUTO_REVERTED: "{service}: auto-reverted",
    E.APPROVED: "{service}: step approved",
    E.REVERTED: "{service}: step reverted",
    E.OVERRIDE: "{service}: gate overridden",
    E.DATA_STALE: "{service}: data stale",
    E.DATA_RECOVERED: "{service}: data fresh again",
    E.SOURCE_DOWN: "{service}: source down",
    E.SOURCE_RECOVERED: "{service}: source back",
    E.DRIFT: "{service}: route drift",
    E.DRIFT_RESOLVED: "{service}: route drift resolved",
    E.PHASE_COMPLETE: "phase complete",
    E.ROLLED_BACK: "EMERGENCY ROLLBACK: every service back to the monolith",
    E.BASELINE_DOWN: "baseline cannot take the traffic back",
    E.BASELINE_RECOVERED: "baseline has ready replicas again",
    E.PROBE_FAILED: "{service}: probe failed",
    E.PROBE_RECOVERED: "{service}: probe passes again",
    E.TEST: "cutover test message",
}
#: ongoing condition -> the event kind that resolves it (slo.kinds)
RESOLVES: dict[EventKind, EventKind] = {v: k for k, v in CONDITIONS.items()}
RESOLVED_KINDS = frozenset(RESOLVES)
#: the ``severity`` label a condition carries in Alertmanager.  A condition's firing and
#: resolved alerts must carry the same labels (Alertmanager names an alert by its label
#: set), so the severity belongs to the condition, not to whichever event said it.
CONDITION_SEVERITY: dict[EventKind, str] = {
    E.VERDICT_FAILED: "critical",
    E.DATA_STALE: "warning",
    E.SOURCE_DOWN: "warning",
    E.DRIFT: "warning",
    E.BASELINE_DOWN: "critical",
    E.PROBE_FAILED: "critical",
}


@dataclass(frozen=True)
class FigureRow:
    name: str
    baseline: str
    candidate: str
    limit: str = ""
    verdict: str = ""


@dataclass(frozen=True)
class Message:
    """Raw (unescaped) text; notifiers escape for their markup."""

    event_id: int
    kind: EventKind
    severity: str           # info | warning | critical | resolved
    title: str
    summary: str
    service: str | None
    phase: str | None
    step: str | None        # "25 %" or "25 % -> 50 %"
    facts: tuple[tuple[str, str], ...]
    figures: tuple[FigureRow, ...]
    reasons: tuple[str, ...]
    link: str | None
    at: datetime
    #: the condition this message starts, repeats or ends (its dedup key); None for acts
    condition: str | None = None

    @property
    def plain(self) -> str:
        """Plain-text rendering: every platform's fallback and the log line."""
        lines = [self.title, self.summary] if self.summary else [self.title]
        lines += [f"{k}: {v}" for k, v in self.facts]
        lines += [f"{f.name}: baseline {f.baseline}, candidate {f.candidate}"
                  + (f" (limit {f.limit})" if f.limit else "") for f in self.figures]
        lines += [f"- {r}" for r in self.reasons]
        if self.link:
            lines.append(self.link)
        return "\n".join(lines)


def render(event: AlertEvent, plan: Plan) -> Message:
    data = event.data
    phase = _text(data.get("phase")) or _phase_of(plan, event.service)
    step = _step(data)
    severity = "resolved" if event.kind in RESOLVED_KINDS else event.severity
    title = _TITLES.get(event.kind, "{service}: " + event.kind).format(
        service=event.service or "all services")
    if event.kind == "phase-complete" and phase:
        title = f"phase {phase} complete"
    return Message(
        event_id=event.id, kind=event.kind, severity=severity, title=title,
        summary=event.summary, service=event.service, phase=phase, step=step,
        facts=_facts(event, phase=phase, step=step), figures=_figures(data),
        reasons=tuple(_text(r) for r in _list(data.get("reasons")))[:MAX_REASONS],
        link=_link(plan.alerts.dashboard_url, event.service), at=event.at,
        condition=condition_key(event))


def condition_key(event: AlertEvent) -> str | None:
    """The dedup key of the condition ``event`` starts, repeats or ends; None for acts.

    A resolved event names its condition by ``data.resolves``, else by its own key with
    the kind swapped (``verdict-recovered:auth`` ends ``verdict-failed:auth``), else
    shares the condition's key."""
    if event.kind in CONDITIONS:
        return event.dedup_key
    if event.kind not in RESOLVES:
        return None
    if event.data.get("resolves"):
        return str(event.data["resolves"])
    prefix = f"{event.kind}:"
    if event.dedup_key.startswith(prefix):
        return f"{RESOLVES[event.kind]}:{event.dedup_key[len(prefix):]}"
    return event.dedup_key


def test_event(*, now: datetime) -> AlertEvent:
    return AlertEvent(id=0, at=now, kind=EventKind.TEST, service=None, severity="info",
                      dedup_key="test", data={},
                      summary="If you read this, cutover can reach this channel.")


def _facts(event: AlertEvent, *, phase: str | None, step: str | None) -> tuple[tuple[str, str], ...]:
    d = event.data
    out: list[tuple[str, str]] = []
    services = ", ".join(_text(x) for x in _list(d.get("services")))
    for label, value in (("Service", event.service), ("Services", services), ("Phase", phase),
                         ("Step", step), ("Route", d.get("route")),
                         ("Verdict", d.get("verdict")), ("Actor", d.get("actor")),
                         ("Reason", d.get("reason")), ("Source", d.get("source")),
                         ("Error", d.get("error"))):
        if value not in (None, ""):
            out.append((label, _text(value)))
    if d.get("override") is True:
        out.append(("Override", "yes: the gate's refusal was overridden"))
    router = d.get("router_weight", d.get("router"))
    if router is not None:
        out.append(("Router weight", f"{_text(router)} %"))
    out.append(("When", event.at.strftime("%Y-%m-%d %H:%M:%S UTC")))
    return tuple(out)


def _step(d: Mapping[str, Any]) -> str | None:
    if d.get("from_weight") is not None and d.get("to_weight") is not None:
        return f"{_text(d['from_weight'])} % -> {_text(d['to_weight'])} %"
    weight = d.get("weight", d.get("stored"))
    return f"{_text(weight)} %" if weight is not None else None


def _figures(d: Mapping[str, Any]) -> tuple[FigureRow, ...]:
    checks = [c for c in _list(d.get("checks")) if isinstance(c, Mapping) and c.get("name")]
    if checks:
        # the broken checks are the figures that matter; passing ones fill the rest
        checks.sort(key=lambda c: c.get("verdict") == "pass")
        return tuple(FigureRow(name=_text(c["name"]), baseline=_num(c.get("baseline")),
                               candidate=_num(c.get("candidate")), limit=_num(c.get("limit"), ""),
                               verdict=_text(c.get("verdict") or ""))
                     for c in checks[:MAX_FIGURES])
    figs = d.get("figures")
    if not isinstance(figs, Mapping):
        return ()
    base, cand = figs.get("baseline") or {}, figs.get("candidate") or {}
    if not isinstance(base, Mapping) or not isinstance(cand, Mapping):
        return ()
    names = [f for f in FIGURES if base.get(f) is not None or cand.get(f) is not None]
    return tuple(FigureRow(name=f, baseline=_num(base.get(f)), candidate=_num(cand.get(f)))
                 for f in names[:MAX_FIGURES])


def _phase_of(plan: Plan, service: str | None) -> str | None:
    if service is None:
        return None
    try:
        phase = plan.phase_of(service)
    except Exception:  # a service the plan no longer has: say nothing about its phase
        return None
    return phase.id if phase else None


def _link(base: str | None, service: str | None) -> str | None:
    if not base:
        return None
    base = base.rstrip("/")
    return f"{base}/?service={quote(service)}" if service else base


def _list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, Sequence) and not isinstance(v, str | bytes) else []


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _num(v: Any, missing: str = "n/a") -> str:
    if v is None:
        return missing
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# -- escaping, per platform --------------------------------------------------------------

def slack_escape(text: str) -> str:
    """Slack mrkdwn: only &, < and > are control characters (``<!channel>``, links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MD = re.compile(r"([\\`*_\[\]|~>])")
_CARD_MD = re.compile(r"([\\*_\[\]])")


def markdown_escape(text: str) -> str:
    """Mattermost's CommonMark: backslash the inline syntax characters (only those, so
    figures like ``61.0`` stay readable), entity-escape ``<``, break @-mentions."""
    return _MD.sub(r"\\\1", text).replace("<", "&lt;").replace("@", "@\u200b")


def card_escape(text: str) -> str:
    """Adaptive Card TextBlocks render only bold, italic, lists and links: escape just
    their characters (Teams clients differ on other escapes, so fewer is safer)."""
    return _CARD_MD.sub(r"\\\1", text)


_DISCORD = re.compile(r"([\\`*_~|>\[\]()#-])")


def discord_escape(text: str) -> str:
    """Discord markdown; mentions are also disabled with ``allowed_mentions``."""
    return _DISCORD.sub(r"\\\1", text).replace("@", "@\u200b")


def html_escape(text: str) -> str:
    """Google Chat card text takes a small HTML subset."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"

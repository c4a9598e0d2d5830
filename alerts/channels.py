"""What the plan's alert channels are, for people: kind, filters, masked target, and
whether each is configured (its URL and secret present) right now."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alerts.notifiers import build_notifier
from slo.errors import NotifyError
from slo.plan import Plan

__all__ = ["ChannelInfo", "channels_overview"]


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    kind: str
    target: str                       # masked URL, file path, or "-" when unknown
    configured: bool
    problem: str | None               # why not configured (names the variable, never a value)
    events: tuple[str, ...] | None    # None: every event
    services: tuple[str, ...] | None  # None: every service


def channels_overview(plan: Plan, env: Mapping[str, str] | None = None) -> list[ChannelInfo]:
    out = []
    for ch in plan.alerts.channels:
        try:
            target, problem = build_notifier(ch, env).target, None
        except NotifyError as e:
            target, problem = "-", str(e)
        out.append(ChannelInfo(
            name=ch.name, kind=ch.kind, target=target, configured=problem is None,
            problem=problem, events=tuple(ch.events) if ch.events is not None else None,
            services=tuple(ch.services) if ch.services is not None else None))
    return out

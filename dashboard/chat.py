"""The chat side, through the ``alerts`` package: channels with their targets masked,
recent deliveries, and a test message, each flattened into rows for a table."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from alerts import channels_overview
from alerts.outbox import recent_deliveries
from alerts.outbox import send_test as _send_test
from slo.plan import Plan
from store.alerts import DeliveryRecord

__all__ = ["channels", "deliveries", "send_test"]


def channels(plan: Plan, env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Every channel of the plan; the target is masked by the alerts package."""
    return [{"name": c.name, "kind": c.kind, "target (masked)": c.target,
             "configured": c.configured, "problem": c.problem or "",
             "events": ", ".join(c.events) if c.events is not None else "every event",
             "services": ", ".join(c.services) if c.services is not None else "every service"}
            for c in channels_overview(plan, env=env)]


def deliveries(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """The newest deliveries, six columns that fit 1280 px: the channel with its kind, the
    event with its service, the state with its tries and the last answer."""
    return [{"at": d.created_at.strftime("%Y-%m-%d %H:%M"),
             "channel": f"{d.channel} ({d.channel_kind})",
             "event": d.event.kind + (f" ({d.event.service})" if d.event.service else ""),
             "state": _state_words(d), "sent": d.sent_at.strftime("%H:%M:%S") if d.sent_at
             else None, "summary": d.event.summary}
            for d in recent_deliveries(engine=engine, limit=limit)]


def _state_words(d: DeliveryRecord) -> str:
    tries = f", {d.attempts} tries" if d.attempts != 1 else ""
    answer = f", HTTP {d.last_status}" if d.last_status else ""
    error = f": {d.last_error}" if d.last_error else ""
    return f"{d.state}{tries}{answer}{error}"


def send_test(*, plan: Plan, now: datetime) -> list[dict[str, Any]]:
    """A test message to every channel, now; one row per channel with what happened."""
    return [{"channel": r.channel, "kind": r.kind, "target (masked)": r.target,
             "sent": r.ok, "detail": r.detail} for r in _send_test(plan=plan, now=now)]

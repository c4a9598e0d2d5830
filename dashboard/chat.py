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

__all__ = ["channels", "deliveries", "send_test"]


def channels(plan: Plan, env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Every channel of the plan; the target is masked by the alerts package."""
    return [{"name": c.name, "kind": c.kind, "target (masked)": c.target,
             "configured": c.configured, "problem": c.problem or "",
             "events": ", ".join(c.events) if c.events is not None else "every event",
             "services": ", ".join(c.services) if c.services is not None else "every service"}
            for c in channels_overview(plan, env=env)]


def deliveries(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    return [{"created": d.created_at, "channel": d.channel, "kind": d.channel_kind,
             "state": str(d.state), "attempts": d.attempts, "sent": d.sent_at,
             "HTTP status": d.last_status, "error": d.last_error or "",
             "event": d.event.kind, "service": d.event.service or "",
             "summary": d.event.summary}
            for d in recent_deliveries(engine=engine, limit=limit)]


def send_test(*, plan: Plan, now: datetime) -> list[dict[str, Any]]:
    """A test message to every channel, now; one row per channel with what happened."""
    return [{"channel": r.channel, "kind": r.kind, "target (masked)": r.target,
             "sent": r.ok, "detail": r.detail} for r in _send_test(plan=plan, now=now)]

"""The chat side, through the ``alerts`` package: channels (secrets masked), recent
deliveries, and a test message.  Until that package provides these, the page shows the
plan's channels with where their secret comes from, never its value."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from slo.plan import Plan

__all__ = ["AlertsUnavailable", "channels", "deliveries", "send_test"]

log = logging.getLogger(__name__)


class AlertsUnavailable(Exception):
    """This installation cannot do what was asked of the alerts package."""


def _row(value: Any) -> dict[str, Any]:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "model_dump"):
        return dict(value.model_dump())
    return {"value": str(value)}


def channels(plan: Plan, env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Every channel of the plan, its URL masked by the alerts package."""
    try:
        from alerts import channels_overview  # type: ignore[attr-defined]
    except ImportError:
        return [_plan_channel(c, env if env is not None else os.environ)
                for c in plan.alerts.channels]
    return [_row(c) for c in channels_overview(plan, env=env)]


def _plan_channel(c: Any, env: Mapping[str, str]) -> dict[str, Any]:
    if c.url_env:
        where = f"env {c.url_env} ({'set' if env.get(c.url_env) else 'NOT SET'})"
    elif c.url_file:
        where = f"file {c.url_file} ({'present' if os.path.exists(c.url_file) else 'MISSING'})"
    else:
        where = c.path or "the log"
    return {"name": c.name, "kind": c.kind, "url": "•••• (secret)" if c.kind != "log" else "-",
            "from": where, "events": ", ".join(c.events or ["every event"]),
            "services": ", ".join(c.services or ["every service"])}


def deliveries(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    try:
        from alerts.outbox import recent_deliveries  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        raise AlertsUnavailable(f"the alerts outbox is not installed: {e}") from None
    return [_row(d) for d in recent_deliveries(engine=engine, limit=limit)]


def send_test(*, engine: Engine, plan: Plan, actor: str, now: datetime) -> Sequence[Any]:
    """Send a test message to every channel; the alerts package's answer per channel."""
    import alerts

    for name in ("send_test", "test_send", "send_test_message"):
        fn = getattr(alerts, name, None)
        if fn is not None:
            return list(fn(engine=engine, plan=plan, actor=actor, now=now) or [])
    raise AlertsUnavailable("the alerts package has no test-send function yet")

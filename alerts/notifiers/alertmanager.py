"""Alertmanager: cutover's events as alerts, posted to the v2 API (``POST /api/v2/alerts``),
so the team's routing, silences and inhibitions apply to them.

Alertmanager names an alert by its label set, so the labels are chosen to be the same on
a condition's firing alert and on the one that resolves it: ``alertname`` from the
condition (``verdict-failed`` -> ``CutoverVerdictFailed``), ``severity`` from
:data:`alerts.messages.CONDITION_SEVERITY`, ``service``, ``phase``, and ``condition`` (the
dedup key, which tells two sources' ``source-down`` apart).  An *act* (approved, reverted,
auto-reverted, ...) is an alert of its own (label ``event``, the event's id) that fires
for :data:`ACT_TTL` and then ends by itself: long enough for any ``group_wait``, so it is
notified, and short enough not to linger.

Timing, as Prometheus does it (its rule manager re-sends firing alerts with an ``endsAt``
a few intervals ahead): a firing condition's ``endsAt`` is ``resolve_timeout`` after the
post, and the outbox posts every condition still firing again each round
(:func:`alerts.outbox.deliver`), so a condition that holds stays firing, and one whose
worker is gone resolves after ``resolve_timeout`` instead of firing forever.  A resolved
event posts ``endsAt`` = its time: Alertmanager resolves the alert and, where the
receiver has ``send_resolved``, says so.

Text here is not markup: Alertmanager's templates escape it where they render HTML."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from alerts.messages import CONDITION_SEVERITY, RESOLVES, Message, truncate
from alerts.notifiers.base import post, resolve_url
from alerts.redact import mask_url
from slo.errors import NotifyError
from slo.kinds import EventKind
from slo.plan import AlertChannel

__all__ = ["ACT_TTL", "AlertmanagerNotifier", "alert", "alertname", "build", "labels"]

ACT_TTL = timedelta(minutes=10)
API_PATH = "/api/v2/alerts"
MAX_ANNOTATION = 4000


def alertname(kind: EventKind) -> str:
    """``verdict-failed`` -> ``CutoverVerdictFailed``; a resolved kind names its condition."""
    kind = RESOLVES.get(kind, kind)
    return "Cutover" + "".join(part.capitalize() for part in str(kind).split("-"))


def labels(m: Message, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The alert's identity: equal for a condition's firing and resolved messages."""
    condition_kind = RESOLVES.get(m.kind, m.kind)
    out = dict(extra or {})
    out["alertname"] = alertname(m.kind)
    out["severity"] = CONDITION_SEVERITY.get(condition_kind) or (
        m.severity if m.severity in ("info", "warning", "critical") else "info")
    if m.service:
        out["service"] = m.service
    if m.phase:
        out["phase"] = m.phase
    if m.condition is not None:
        out["condition"] = m.condition
    else:
        out["event"] = str(m.event_id)
    return out


def alert(m: Message, *, now: datetime, resolve_timeout: timedelta,
          extra_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One postable alert (Alertmanager's ``postableAlert``)."""
    if m.kind in RESOLVES:
        ends = m.at
    elif m.condition is not None:
        ends = max(now, m.at) + resolve_timeout
    else:  # an act: late delivery still fires (an endsAt already past is never notified)
        ends = max(now, m.at) + ACT_TTL
    body: dict[str, Any] = {
        "labels": labels(m, extra_labels),
        "annotations": {"summary": truncate(m.title, MAX_ANNOTATION),
                        "description": truncate(m.plain, MAX_ANNOTATION)},
        "startsAt": _iso(m.at), "endsAt": _iso(ends)}
    if m.link:
        body["generatorURL"] = m.link
    return body


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class AlertmanagerNotifier:
    """Posts to one Alertmanager (or the Service in front of an HA pair: they gossip)."""

    name: str
    url: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    resolve_timeout: timedelta = timedelta(minutes=15)
    extra_labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return mask_url(self.url)

    def send(self, message: Message, *, client: httpx.Client, idempotency_key: str) -> int | None:
        return self.post(client, [message])

    def post(self, client: httpx.Client, messages: Sequence[Message],
             now: datetime | None = None) -> int:
        """Post ``messages`` as one request (the API takes a list)."""
        now = now or datetime.now(UTC)
        body = json.dumps([alert(m, now=now, resolve_timeout=self.resolve_timeout,
                                 extra_labels=self.extra_labels) for m in messages],
                          ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        secrets = (self.url, self.token) if self.token else (self.url,)
        return post(client, channel=self.name, url=self.url.rstrip("/") + API_PATH, body=body,
                    headers=headers, secrets=secrets)


def build(channel: AlertChannel, env: Mapping[str, str]) -> AlertmanagerNotifier:
    return AlertmanagerNotifier(name=channel.name, url=resolve_url(channel, env),
                                token=_token(channel, env),
                                resolve_timeout=channel.resolve_timeout,
                                extra_labels=dict(channel.labels or {}))


def _token(channel: AlertChannel, env: Mapping[str, str]) -> str | None:
    if channel.token_env:
        token = (env.get(channel.token_env) or "").strip()
        if not token:
            raise NotifyError(channel.name, f"not configured: environment variable "
                                            f"{channel.token_env} (bearer token) is not set")
        return token
    if channel.token_file:
        try:
            token = Path(channel.token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise NotifyError(channel.name, f"not configured: cannot read token_file "
                                            f"{channel.token_file}: {e.strerror}") from None
        if not token:
            raise NotifyError(channel.name, f"not configured: token_file {channel.token_file} is empty")
        return token
    return None


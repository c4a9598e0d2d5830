"""Alertmanager's webhook, in: alerts about the services, recorded so the gate can hold.

The cluster's Alertmanager routes alerts about the services to a ``webhook_config``
pointing at ``POST /alertmanager`` on the worker's metrics port, with the inbox's token
as its bearer credentials (``http_config: {authorization: {credentials_file: ...}}``).
:func:`receive` checks the token (in constant time), validates the payload (webhook
version 4), maps each alert to a plan service by its labels, and upserts it by
fingerprint (store/inbox.py).  Its answer follows Alertmanager's retry rules: a 5xx is
retried by Alertmanager, a 4xx is not, so a store that cannot take the alerts answers 503
(nothing is lost) and only a payload that can never be read answers 400.

Which service an alert is about: the first of the inbox's ``service_labels`` (default
``service``, ``job``, ``route``) whose value is a service's name, its backend (the
Kubernetes Service) or its route.  An alert that names none is still kept (and shown),
about no service."""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from slo.errors import CutoverError
from slo.plan import Inbox, Plan
from store import inbox as store
from store.db import session_scope
from store.inbox import InboxAlert

__all__ = ["MAX_BODY", "Answer", "InboxError", "parse_webhook", "receive", "service_for",
           "token_for"]

log = logging.getLogger(__name__)

#: a webhook larger than this is refused (Alertmanager's own default max_alerts is 0 =
#: all, so a storm of a few thousand alerts still fits)
MAX_BODY = 4 * 1024 * 1024


class InboxError(CutoverError, ValueError):
    """A webhook that cannot be read; the message says what was expected."""


class _Alert(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime  # noqa: N815 (Alertmanager's name)
    endsAt: datetime | None = None  # noqa: N815
    fingerprint: str = Field(min_length=1, max_length=64)


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: Literal["4"]
    receiver: str = ""
    status: Literal["firing", "resolved"]
    alerts: list[_Alert]


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


def token_for(inbox: Inbox, env: Mapping[str, str] | None = None) -> str | None:
    """The token webhooks must carry; None when it is not configured (all refused)."""
    env = os.environ if env is None else env
    if inbox.token_env:
        return (env.get(inbox.token_env) or "").strip() or None
    try:
        return Path(inbox.token_file or "").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def service_for(labels: Mapping[str, str], plan: Plan, inbox: Inbox) -> str | None:
    for name in inbox.service_labels:
        value = labels.get(name)
        if not value:
            continue
        for s in plan.services:
            if value in (s.name, s.backend, s.route):
                return s.name
    return None


def parse_webhook(body: bytes, *, plan: Plan, inbox: Inbox, now: datetime) -> list[InboxAlert]:
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise InboxError(f"expected Alertmanager's webhook JSON, got unreadable JSON: {e}") from None
    try:
        hook = _Webhook.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the body"
        raise InboxError(f"expected Alertmanager's webhook (version 4): {where}: "
                         f"{first['msg']} ({e.error_count()} problem(s))") from None
    out = []
    for a in hook.alerts:
        if "alertname" not in a.labels:
            raise InboxError(f"alert {a.fingerprint}: expected an alertname label")
        # Go's zero time (0001-01-01) means "no end known"
        ends = a.endsAt if a.endsAt is not None and a.endsAt.year > 1 else None
        out.append(InboxAlert(
            fingerprint=a.fingerprint, alertname=a.labels["alertname"],
            service=service_for(a.labels, plan, inbox), status=a.status,
            severity=a.labels.get("severity"), starts_at=a.startsAt, ends_at=ends,
            received_at=now, labels=a.labels, annotations=a.annotations,
            receiver=hook.receiver))
    return out


def receive(*, engine: Engine, plan: Plan, body: bytes, authorization: str | None,
            now: datetime, env: Mapping[str, str] | None = None) -> Answer:
    """One webhook request, answered as Alertmanager's retries need."""
    inbox = plan.alerts.inbox
    if inbox is None:
        return Answer(404, "no inbox: the plan has no alerts.inbox")
    expected = token_for(inbox, env)
    if expected is None:
        log.error("alertmanager inbox: its token (%s) is not configured; refusing webhooks",
                  inbox.token_env or inbox.token_file)
        return Answer(503, "inbox token not configured")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return Answer(401, "expected Authorization: Bearer <the inbox token>")
    if len(body) > MAX_BODY:
        return Answer(413, f"webhook larger than {MAX_BODY} bytes")
    try:
        alerts = parse_webhook(body, plan=plan, inbox=inbox, now=now)
    except InboxError as e:
        log.warning("alertmanager inbox: %s", e)
        return Answer(400, str(e))
    try:
        with session_scope(engine) as session:
            written = store.save_alerts(session=session, alerts=alerts)
    except (SQLAlchemyError, CutoverError) as e:
        log.error("alertmanager inbox: could not record %d alerts: %s", len(alerts), e)
        return Answer(503, "could not record the alerts now; retry")
    firing = sum(a.firing for a in alerts)
    log.info("alertmanager inbox: %d alerts (%d firing), %d recorded", len(alerts), firing,
             written)
    return Answer(200, f"recorded {written} of {len(alerts)} alerts")


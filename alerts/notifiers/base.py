"""The ``Notifier`` boundary and what every webhook notifier shares: where the URL comes
from, one JSON POST, and how an answer becomes success or a :class:`NotifyError`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from alerts.messages import Message
from alerts.redact import mask_url, scrub
from slo.errors import NotifyError
from slo.plan import AlertChannel

__all__ = ["Notifier", "WebhookNotifier", "parse_retry_after", "resolve_url"]

#: a Retry-After above this is treated as this (a broken header must not park alerts for days)
MAX_RETRY_AFTER = 3600.0


class Notifier(Protocol):
    """One chat channel.  ``send`` returns the HTTP status (None when not HTTP) or raises
    :class:`NotifyError` with ``status`` and ``retry_after`` set when the far side said so."""

    @property
    def name(self) -> str: ...

    @property
    def target(self) -> str:
        """Where it goes, masked: safe to show and log."""
        ...

    def send(self, message: Message, *, client: httpx.Client, idempotency_key: str) -> int | None: ...


def resolve_url(channel: AlertChannel, env: Mapping[str, str] | None = None) -> str:
    """The channel's webhook URL from its env var or secret file; NotifyError says which
    is missing (naming the variable or file, never a value)."""
    env = os.environ if env is None else env
    if channel.url_env:
        url = (env.get(channel.url_env) or "").strip()
        if not url:
            raise NotifyError(channel.name, f"not configured: environment variable {channel.url_env} is not set")
    elif channel.url_file:
        try:
            url = Path(channel.url_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise NotifyError(channel.name, f"not configured: cannot read url_file {channel.url_file}: {e.strerror}") from None
        if not url:
            raise NotifyError(channel.name, f"not configured: url_file {channel.url_file} is empty")
    else:
        raise NotifyError(channel.name, "not configured: no url_env or url_file")
    if not url.startswith(("https://", "http://")):
        raise NotifyError(channel.name, f"expected an http(s) webhook URL, got one starting {url[:8]!r}"
                          if len(url) > 8 else "expected an http(s) webhook URL")
    return url


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class WebhookNotifier:
    """A notifier that POSTs one JSON document built by ``payload``."""

    name: str
    url: str = field(repr=False)
    payload: Callable[[Message], dict[str, Any]] = field(repr=False)
    headers: Callable[[bytes, str], dict[str, str]] | None = field(default=None, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def target(self) -> str:
        return mask_url(self.url)

    def send(self, message: Message, *, client: httpx.Client, idempotency_key: str) -> int | None:
        body = json.dumps(self.payload(message), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.headers is not None:
            headers.update(self.headers(body, idempotency_key))
        return post(client, channel=self.name, url=self.url, body=body, headers=headers,
                    secrets=(self.url, *self.secrets))


def post(client: httpx.Client, *, channel: str, url: str, body: bytes,
         headers: Mapping[str, str], secrets: tuple[str, ...]) -> int:
    hidden = (*secrets, _path(url))
    try:
        r = client.post(url, content=body, headers=dict(headers))
    except httpx.TimeoutException as e:
        raise NotifyError(channel, f"no answer in time ({type(e).__name__})") from None
    except httpx.HTTPError as e:
        raise NotifyError(channel, f"could not send: {type(e).__name__}: {scrub(str(e), hidden)}") from None
    if 200 <= r.status_code < 300:
        return r.status_code
    retry_after = parse_retry_after(r.headers.get("Retry-After")) or _body_retry_after(r)
    text = scrub(" ".join(r.text[:300].split()), hidden)
    raise NotifyError(channel, f"answered HTTP {r.status_code}" + (f": {text}" if text else ""),
                      status=r.status_code, retry_after=retry_after)


def _body_retry_after(r: httpx.Response) -> float | None:
    """Discord also states its wait in the 429 body (``{"retry_after": 1.5, ...}``)."""
    if r.status_code != 429 or "json" not in r.headers.get("Content-Type", ""):
        return None
    try:
        value = r.json().get("retry_after")
    except (ValueError, AttributeError):
        return None
    return min(max(float(value), 0.0), MAX_RETRY_AFTER) if isinstance(value, int | float) else None


def _path(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[1] if "/" in rest else ""

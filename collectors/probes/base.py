"""What every probe gets (:class:`ProbeContext`) and gives back (:class:`Outcome`), and the
reading of secrets from the environment or a mounted file (never from the plan)."""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from slo.errors import ConfigError, SourceError
from slo.plan import Phase, Plan, ServiceDef
from slo.verdict import Verdict

__all__ = ["Outcome", "ProbeContext", "ProbeUnreachable", "describe_error", "http_client", "secret"]


class ProbeUnreachable(SourceError):
    """A probe's target did not answer (or not as a target of its kind answers): the
    result is inconclusive, never a pass."""

    def __init__(self, probe: str, message: str):
        self.probe, self.message = probe, message
        super().__init__(f"probe:{probe}", message)


@dataclass(frozen=True)
class Outcome:
    """What one run measured: the verdict, the reasons in words, the figure it is judged
    on against its limit, and everything measured by name."""

    verdict: Verdict
    reasons: tuple[str, ...]
    value: float | None = None
    limit: float | None = None
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProbeContext:
    """The wiring a probe may use; anything it does not need may be None.

    ``prom``: a ``collectors.prometheus.PromClient``; ``kube``: a ``kubernetes.client.ApiClient``;
    ``state``: kept between runs of one process (the walk position of big tables, the turn
    of a file sample), by probe name."""

    plan: Plan
    now: datetime
    engine: Engine | None = None
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    prom: Any = None
    kube: Any = None
    phase: Phase | None = None
    service: ServiceDef | None = None
    state: dict[str, Any] = field(default_factory=dict)
    transport: httpx.BaseTransport | None = None


def secret(ctx: ProbeContext, *, env: str | None, file: str | None, what: str) -> str:
    """The value of environment variable ``env`` or the content of ``file``; a clear
    ConfigError (naming the variable or file, never a value) when neither gives one."""
    if env is not None:
        value = ctx.env.get(env)
        if not value:
            raise ConfigError(f"{what}: environment variable {env} is not set")
        return value.strip()
    if file is not None:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"{what}: cannot read {file}: {e.strerror}") from None
    raise ConfigError(f"{what}: no environment variable or file names it")


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default verifying TLS context (SSL_CERT_FILE honoured), built once: loading
    the CA bundle takes about 80 ms of CPU, which every probe run would otherwise spend
    (an SSLContext may be shared by connections and threads)."""
    return httpx.create_ssl_context()


def http_client(ctx: ProbeContext, timeout: float, *,
                authorization: str | None = None) -> httpx.Client:
    headers = {"Authorization": authorization} if authorization else {}
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                        headers=headers, transport=ctx.transport, follow_redirects=False,
                        verify=_tls())


def describe_error(e: httpx.HTTPError) -> str:
    """An HTTP failure in words without the URL (which may carry a credential)."""
    if isinstance(e, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(e, httpx.ConnectError):
        return "connection refused or unreachable"
    return e.__class__.__name__

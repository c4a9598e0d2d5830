"""Webhook URLs are secrets: their path is the credential.  Everything the alerts
package logs or stores about a channel goes through :func:`scrub` first, in the same
style as the command line's log filter: scheme and host kept, the rest ``***``.  Tokens,
passwords and auth headers are masked by :func:`slo.redact.redact`, which scrub applies
first."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from slo.redact import redact

__all__ = ["MaskingFilter", "mask_url", "scrub"]

_URL_PATH = re.compile(r"(https?://[^/\s'\"<>?#]+)[/?#][^\s'\"<>]*")


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/X`` -> ``https://hooks.slack.com/***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if not parts.scheme or not host:
        return "***"
    return f"{parts.scheme}://{host}/***"


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every known secret, any credential and any URL's path masked."""
    return _URL_PATH.sub(r"\1/***", redact(text, secrets))


class MaskingFilter(logging.Filter):
    """Masks URL paths in records of a third-party logger (httpx logs each request's
    full URL at INFO, which for a webhook is the credential)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


def guard_logger(name: str) -> None:
    """Install :class:`MaskingFilter` on ``name`` once."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, MaskingFilter) for f in logger.filters):
        logger.addFilter(MaskingFilter())

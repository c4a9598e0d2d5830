"""Logging set-up: plain text for people, JSON lines for log pipelines.

Secrets never reach a log line: anything that looks like a bearer token or a webhook
URL's path is masked by :class:`RedactingFilter`, whatever logger wrote it."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from alerts.redact import scrub

__all__ = ["RedactingFilter", "redact", "setup_logging"]

def redact(text: str) -> str:
    """Tokens and passwords masked (slo.redact), and every URL's path (a webhook's path
    is its secret) as the alerts package masks it."""
    return scrub(text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
               "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out)


def setup_logging(*, fmt: str = "text", verbose: int = 0) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    for noisy in ("urllib3", "httpx", "httpcore", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

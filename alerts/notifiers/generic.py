"""Generic JSON webhooks, for anything without its own notifier.

The body is the message as JSON.  Every request carries ``Idempotency-Key`` (stable for a
delivery across retries and workers: a receiver that keeps seen keys never acts twice,
closing the one window an outbox cannot, a crash between the send and marking it sent)
and, when the channel has ``secret_env``, ``X-Cutover-Signature-256: sha256=<hex>``,
the HMAC-SHA256 of the exact body bytes under that secret (as GitHub signs webhooks)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from alerts.messages import Message

__all__ = ["IDEMPOTENCY_HEADER", "SIGNATURE_HEADER", "headers_for", "payload", "signature"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_HEADER = "X-Cutover-Signature-256"


def payload(m: Message) -> dict[str, Any]:
    return {
        "version": 1,
        "event_id": m.event_id, "kind": m.kind, "severity": m.severity,
        "service": m.service, "phase": m.phase, "step": m.step,
        "title": m.title, "summary": m.summary, "at": m.at.isoformat(),
        "facts": dict(m.facts), "figures": [asdict(f) for f in m.figures],
        "reasons": list(m.reasons), "link": m.link, "text": m.plain,
    }


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def headers_for(secret: str | None) -> Callable[[bytes, str], dict[str, str]]:
    def headers(body: bytes, idempotency_key: str) -> dict[str, str]:
        out = {IDEMPOTENCY_HEADER: idempotency_key}
        if secret:
            out[SIGNATURE_HEADER] = signature(secret, body)
        return out
    return headers

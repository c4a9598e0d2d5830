"""The ``log`` channel: one line per alert appended to a file (``path``), or written to
the ``alerts.journal`` logger.  Newlines in event text are escaped so a log line can
never forge another."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

import httpx

from alerts.messages import Message
from slo.errors import NotifyError

__all__ = ["LogNotifier", "line"]

journal = logging.getLogger("alerts.journal")


def line(m: Message) -> str:
    where = " ".join(x for x in (m.service or "-", m.step or "") if x)
    text = f"{m.title}: {m.summary}" if m.summary else m.title
    return f"{m.at.isoformat()} {m.severity} {m.kind} {where} {json.dumps(text, ensure_ascii=False)}"


@dataclass(frozen=True)
class LogNotifier:
    name: str
    path: str | None = None

    @property
    def target(self) -> str:
        return self.path or "logger alerts.journal"

    def send(self, message: Message, *, client: httpx.Client, idempotency_key: str) -> int | None:
        text = line(message)
        if self.path is None:
            journal.info("%s", text)
            return None
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise NotifyError(self.name, f"cannot append to {self.path}: {e.strerror}") from None
        return None

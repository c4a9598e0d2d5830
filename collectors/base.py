"""What every collector offers the worker and ``cutover collect``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = ["CollectReport", "Collector"]


@dataclass
class CollectReport:
    """What one pass did: how much came in, and what went wrong (in words)."""

    source: str
    ok: bool = True
    items: int = 0                 # points or lines ingested
    rejected: int = 0              # lines that did not parse
    strict: int = 0                # lines read by the strict parser, not the compiled one
    newest: datetime | None = None  # the newest data now in the store
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        state = "ok" if self.ok else "FAILED"
        extra = f"; {'; '.join(self.problems)}" if self.problems else ""
        rej = f", {self.rejected} rejected" if self.rejected else ""
        return f"{self.source}: {state}, {self.items} ingested{rej}{extra}"


class Collector(Protocol):
    """``name`` labels its reports.  A collector that records its own ``source-down`` /
    ``source-recovered`` events sets ``records_source_events = True``; for the others the
    worker records them from the reports (one condition per collector)."""

    name: str
    records_source_events: bool

    def collect(self, *, now: datetime, start: datetime | None = None,
                end: datetime | None = None) -> CollectReport:
        """One pass: from the checkpoint (or ``start``) up to ``end`` (or ``now``)."""
        ...

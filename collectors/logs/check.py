"""How a format reads some lines, line by line: what ``cutover logs check`` prints.

:func:`read_lines` reads lines exactly as the collector does (the same format, the same
bounds of limits.py, the same neighbours' check of the times, the same mapping to the
plan's services and variants) but keeps, per line, what it read or why it refused it,
instead of adding it to the rollups.  Nothing is stored.  Other commands (a format
suggested for a file) call it to see which reading fits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from collectors.logs.formats import LogFormat, minute_of
from collectors.logs.limits import TimeNeighbours
from collectors.logs.mapping import UNMAPPED_REASONS, Mapper
from slo.plan import Plan

__all__ = ["CheckSummary", "LineVerdict", "read_lines"]


@dataclass(frozen=True)
class LineVerdict:
    """One line as the collector reads it.  ``reason`` is empty for a line that is
    counted; else it names why not (a line read but mapped to no service or variant
    has its fields and ``no-service`` or ``unknown-upstream``)."""

    number: int                 # 1-based, in the lines given
    text: str                   # the line (invalid UTF-8 replaced)
    reason: str = ""
    #: the minute the line counts in (the collector keys time by the minute)
    minute: datetime | None = None
    path: str | None = None
    status: int | None = None
    latency_ms: float | None = None
    bytes: int | None = None
    upstream: str | None = None
    route: str | None = None
    service: str | None = None
    variant: str | None = None

    @property
    def counted(self) -> bool:
        return not self.reason

    def contract(self) -> dict[str, Any]:
        """The machine form (``--json``): every field, times as ISO 8601."""
        return {"line": self.number, "counted": self.counted, "reason": self.reason or None,
                "minute": self.minute.isoformat() if self.minute else None,
                "path": self.path, "status": self.status, "latency_ms": self.latency_ms,
                "bytes": self.bytes, "upstream": self.upstream, "route": self.route,
                "service": self.service, "variant": self.variant}


@dataclass(frozen=True)
class CheckSummary:
    format: str
    lines: int
    counted: int
    #: reason -> lines, for every line not counted
    reasons: dict[str, int] = field(default_factory=dict)
    #: (service, variant) -> lines counted
    slots: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        """Whether the format reads most of the lines (unmapped lines are read too)."""
        unread = sum(n for r, n in self.reasons.items() if r not in _UNMAPPED)
        return self.lines > 0 and unread * 2 < self.lines

    def contract(self) -> dict[str, Any]:
        return {"format": self.format, "lines": self.lines, "counted": self.counted,
                "fits": self.fits, "reasons": dict(sorted(self.reasons.items())),
                "slots": [{"service": s, "variant": v, "lines": n}
                          for (s, v), n in sorted(self.slots.items())]}


_UNMAPPED = set(UNMAPPED_REASONS.values())


def read_lines(fmt: LogFormat, lines: Iterable[bytes], *, plan: Plan,
               now: datetime) -> tuple[list[LineVerdict], CheckSummary]:
    """Per line (without its newline), what the collector reads or why it rejects it,
    and a summary; ``now`` is the collector's clock (a later time is in the future)."""
    raw = [line.rstrip(b"\n") for line in lines]
    if not raw:
        return [], CheckSummary(format=fmt.name, lines=0, counted=0)
    block = b"\n".join(raw)
    cols = fmt.parse(block)
    mapper = Mapper(plan, fmt)
    minutes = np.asarray([_minute(fmt, t) for t in cols.ts], dtype=np.int64)
    odd = TimeNeighbours(now_minute=int(now.timestamp()) // 60).check(minutes)
    slots = mapper.slot_ids(cols.path, cols.upstream, cols.route).tolist() if len(cols) else []
    out: dict[int, LineVerdict] = {
        i: LineVerdict(number=i + 1, text=_text(raw[i]), reason=reason)
        for i, reason, _ in cols.bad}
    for k, i in enumerate(cols.index.tolist()):
        reason = ("bad-time" if minutes[k] < 0 else str(odd[k]) if odd[k] else
                  UNMAPPED_REASONS.get(slots[k], ""))
        service, variant = mapper.slots[slots[k]] if slots[k] >= 0 else (None, None)
        route = cols.route[k] if cols.route is not None else None
        out[i] = LineVerdict(
            number=i + 1, text=_text(raw[i]), reason=reason,
            minute=datetime.fromtimestamp(int(minutes[k]) * 60, UTC) if minutes[k] >= 0
            else None,
            path=_text(cols.path[k]), status=int(cols.status[k]),
            latency_ms=float(cols.latency_ms[k]), bytes=int(cols.size[k]),
            upstream=fmt.upstream_name(_text(cols.upstream[k])),
            route=(fmt.route_name(_text(route)) if route is not None else None),
            service=service, variant=variant)
    verdicts = [out[i] for i in range(len(raw))]
    return verdicts, _summary(fmt, verdicts)


def _summary(fmt: LogFormat, verdicts: list[LineVerdict]) -> CheckSummary:
    reasons = Counter(v.reason for v in verdicts if v.reason)
    slots = Counter((v.service, v.variant) for v in verdicts if v.counted)
    return CheckSummary(format=fmt.name, lines=len(verdicts),
                        counted=sum(1 for v in verdicts if v.counted), reasons=dict(reasons),
                        slots={(str(s), str(v)): n for (s, v), n in slots.items()})


def _minute(fmt: LogFormat, key: Any) -> int:
    m = minute_of(fmt.time_kind, key)
    return -1 if m is None else m


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)

"""Durations as the plan writes them (``30s``, ``10m``, ``1h30m``, ``2d``) and times as
the command line takes them (ISO 8601 or relative like ``-2h``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["format_duration", "iso", "parse_clock", "parse_duration", "parse_time",
           "simulated_time"]

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """``'1h30m'`` -> 5400 s.  Numbers are seconds.  Raises ValueError naming the text."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError(f"expected a duration like '30s' or '10m', got {text!r}")
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    s = str(text).strip()
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        raise ValueError(f"expected a duration like '30s', '10m' or '1h30m', got {text!r}")
    return timedelta(seconds=total)


def format_duration(td: timedelta) -> str:
    """5400 s -> ``'1h30m'``; the inverse of :func:`parse_duration` for whole seconds."""
    secs = int(round(td.total_seconds()))
    if secs == 0:
        return "0s"
    sign = "-" if secs < 0 else ""
    secs = abs(secs)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs >= size:
            out.append(f"{secs // size}{unit}")
            secs %= size
    return sign + "".join(out)


def iso(t: datetime | None) -> str | None:
    """``2026-11-26T12:00:00Z``: the contracts' timestamp form."""
    if t is None:
        return None
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: str, *, now: datetime) -> datetime:
    """ISO 8601 (``2026-11-26T12:00:00Z``), ``now``, or relative to ``now`` (``-2h``).

    Naive ISO times are taken as UTC.  The result is always UTC-aware."""
    s = text.strip()
    if s == "now":
        return now.astimezone(UTC)
    if s[:1] in "+-" and _PART.match(s[1:]):
        delta = parse_duration(s[1:])
        return (now - delta if s[0] == "-" else now + delta).astimezone(UTC)
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"expected a time like 2026-11-26T12:00:00Z, 'now' or '-2h', got {text!r}"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def parse_clock(text: str) -> tuple[datetime, float, float]:
    """A simulated clock as the demo hands it to its processes (env ``CUTOVER_CLOCK``):
    ``<anchor ISO time>@<anchor wall epoch seconds>x<speed>``."""
    try:
        sim, rest = text.split("@", 1)
        wall, speed = rest.split("x", 1)
        anchor = datetime.fromisoformat(sim)
        if anchor.tzinfo is None:
            raise ValueError(sim)
        return anchor.astimezone(UTC), float(wall), float(speed)
    except ValueError:
        raise ValueError("expected CUTOVER_CLOCK like "
                         f"2026-11-26T14:00:00+00:00@1795701600.0x60, got {text!r}") from None


def simulated_time(text: str, *, wall: float) -> datetime:
    """The simulated time at wall-clock ``wall`` (epoch seconds): anchor + speed x elapsed."""
    anchor, anchor_wall, speed = parse_clock(text)
    return anchor + timedelta(seconds=speed * (wall - anchor_wall))


"""Durations as the plan writes them (``30s``, ``10m``, ``1h30m``, ``2d``), times as
the command line takes them (ISO 8601 or relative like ``-2h``), and every figure in its
one unit for people (:func:`format_figure`: the dashboard, the reports, the alerts and
the command line all show a figure the same way)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["figure_of", "figure_scale", "figure_unit", "format_figure", "format_duration",
           "parse_clock", "parse_duration", "parse_time", "simulated_time"]

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



# -- figures for people ----------------------------------------------------------------

#: a check's trailing window (``error_rate_5m``, ``latency_p95_ms_2m``)
_WINDOW_SUFFIX = re.compile(r"_\d+[smhdw]$")
#: each figure's unit as shown; shares (stored 0..1) are shown in percent
_UNITS_SHOWN = {"requests": "", "min_requests": "", "rps": "req/s", "error_rate": "%",
                "uptime": "%", "memory_mb": "MiB", "cpu_cores": "cores", "burn": "x",
                "min_soak": ""}


def figure_of(name: str) -> str:
    """The figure a check, target or figure name stands for: ``error_rate_5m`` and
    ``error_rate`` are ``error_rate``; ``error_budget_burn_1h_5m`` is ``burn``."""
    if name.startswith("error_budget_burn"):
        return "burn"
    while _WINDOW_SUFFIX.search(name):
        name = _WINDOW_SUFFIX.sub("", name)
    return name


def figure_unit(name: str) -> str:
    """The one unit ``name`` is shown in (``%``, ``ms``, ``req/s``, ...; ``""``: a count)."""
    figure = figure_of(name)
    if figure.startswith("latency"):
        return "ms"
    return _UNITS_SHOWN.get(figure, "")


def figure_scale(name: str) -> float:
    """What a stored value is multiplied by to read in :func:`figure_unit` (a share's
    100 for percent; 1 otherwise): for chart axes, which draw numbers, not text."""
    return 100.0 if figure_unit(name) == "%" else 1.0


def format_figure(name: str, value: float | None, *, missing: str = "\u2014") -> str:
    """``value`` of the figure (or check) ``name`` with its unit: ``0.08 %``, ``49.9 ms``,
    ``5,272``, ``3h33m`` (a soak), ``0.1x`` (a burn rate); ``missing`` when there is none."""
    if value is None:
        return missing
    figure = figure_of(name)
    if figure == "error_rate":
        return f"{value * 100:.2f} %"
    if figure == "uptime":   # 99.9 % and 99.95 % must read apart
        return f"{value * 100:.3f} %"
    if figure.startswith("latency"):
        return f"{value:.1f} ms"
    if figure == "rps":
        return f"{value:.0f} req/s" if value >= 100 else f"{value:.1f} req/s"
    if figure == "memory_mb":
        return f"{value:.0f} MiB"
    if figure == "cpu_cores":
        return f"{value:.2f} cores"
    if figure == "min_soak":
        return format_duration(timedelta(seconds=round(value)))
    if figure == "burn":
        return f"{value:.1f}x"
    if figure in ("requests", "min_requests"):
        return f"{value:,.0f}"
    return f"{value:.4g}"

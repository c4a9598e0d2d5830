"""Number formatting and escaping shared by every report format."""

from __future__ import annotations

import re
from datetime import datetime

__all__ = ["fmt_time", "fmt_value", "md_escape"]

#: what can start markup inside a table cell or a list item: emphasis, code, links and
#: images (the brackets), raw HTML (the angle brackets), cell breaks, strikethrough
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def fmt_value(name: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if name == "error_rate":
        return f"{value * 100:.2f} %"
    if name == "uptime":   # a share of probe runs: 99.9 % and 99.95 % must read apart
        return f"{value * 100:.3f} %"
    if name == "requests":
        return f"{value:,.0f}"
    if name == "cpu_cores":
        return f"{value:.3f}"
    return f"{value:.1f}"


def fmt_time(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC") if t is not None else "n/a"


def md_escape(text: object) -> str:
    """Text from logs, metrics, plans or operators, made inert in Markdown (and in the
    HTML that Markdown renderers allow): special characters escaped, newlines flattened."""
    s = str(text).replace("\r", " ").replace("\n", " ")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return s.replace("&", "&amp;")

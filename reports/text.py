"""Number formatting and escaping shared by every report format."""

from __future__ import annotations

import re
from datetime import datetime

from slo.figure_specs import format_value

__all__ = ["fmt_time", "fmt_value", "md_escape"]

#: what can start markup inside a table cell or a list item: emphasis, code, links and
#: images (the brackets), raw HTML (the angle brackets), cell breaks, strikethrough
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def fmt_value(name: str, value: float | None) -> str:
    """A figure with its unit (slo.figure_specs: the judge's and the dashboard's too)."""
    return format_value(name, value, missing="n/a")


def fmt_time(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC") if t is not None else "n/a"


def md_escape(text: object) -> str:
    """Text from logs, metrics, plans or operators, made inert in Markdown (and in the
    HTML that Markdown renderers allow): special characters escaped, newlines flattened."""
    s = str(text).replace("\r", " ").replace("\n", " ")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return s.replace("&", "&amp;")

"""Reading an AppTest's page as text."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest


def texts(at: AppTest) -> list[str]:
    """Every markdown, text, caption, alert and badge on the page (and the sidebar's
    text), as its source."""
    kinds = ("markdown", "text", "caption", "error", "warning", "info", "success", "title",
             "subheader", "header")
    out: list[str] = []
    for kind in kinds:
        out.extend(str(e.value) for e in getattr(at, kind))
    out.extend(str(e.value) for e in at.sidebar.text)   # the signed-in user, the plan
    return out


def plain(source: str) -> str:
    """Markdown source with its backslash escapes undone: what a reader sees."""
    return re.sub(r"\\(.)", r"\1", source)


def page_text(at: AppTest) -> str:
    """The page's text as a reader sees it (escapes undone)."""
    return plain("\n".join(texts(at)))


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def button(at: AppTest, key: str):  # noqa: ANN201 - AppTest's Button type is private-ish
    return at.button(key=key)

"""What every page starts from: the plan, the store's URL, the viewer, the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import streamlit as st

from dashboard import data
from dashboard.auth import Viewer, current_viewer
from slo.errors import CutoverError
from slo.plan import Plan

__all__ = ["LIVE_EVERY", "PageContext", "context"]

#: how often live panels read the store again (the worker writes every interval)
LIVE_EVERY = timedelta(seconds=10)


@dataclass(frozen=True)
class PageContext:
    plan: Plan
    db_url: str
    viewer: Viewer
    now: datetime


def context() -> PageContext:
    """The page's context; a plan that does not load stops the page with its message."""
    settings = data.settings()
    try:
        plan = data.plan(settings.plan_path)
    except (CutoverError, OSError) as e:
        st.error(f"The plan at {settings.plan_path!r} cannot be used: {e}")
        st.stop()
    return PageContext(plan=plan, db_url=settings.db_url, viewer=current_viewer(plan),
                       now=data.now())

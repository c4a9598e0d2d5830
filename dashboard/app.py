"""The dashboard's entry point: ``streamlit run dashboard/app.py`` (see dashboard.launch).

Reads CUTOVER_PLAN and CUTOVER_DB from the environment; one file per page."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts this file's folder on sys.path, not the repository's root, and the
# project may run from a checkout without being installed.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard import components, page, rollback  # noqa: E402

# a file of our own: a Material or emoji icon makes the browser fetch it from a CDN, which a
# control room cut off from the internet cannot reach
st.set_page_config(page_title="cutover", page_icon=str(Path(__file__).with_name("static") /
                                                       "favicon.png"), layout="wide")

ctx = page.context()
# The pages live in screens/, not pages/: beside a folder named pages/ Streamlit also runs
# its older multipage mode, and a first visit to a deep link (/service?service=files, as a
# chat alert links) ran that page on its own, without this file: the raw file list in the
# sidebar, the narrow layout, no plan or signed-in panel.  A page's url path is its file's
# name (/service), as before.
nav = st.navigation([
    st.Page("screens/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("screens/service.py", title="Service", icon=":material/monitoring:"),
    st.Page("screens/decisions.py", title="Decisions", icon=":material/history:"),
    st.Page("screens/reports.py", title="Reports", icon=":material/description:"),
    st.Page("screens/alerts.py", title="Alerts", icon=":material/notifications:"),
    st.Page("screens/explore.py", title="Explore", icon=":material/query_stats:"),
])
with st.sidebar:
    st.caption("Plan")
    st.text(ctx.plan.name)
    components.render_viewer(ctx.viewer)
    rollback.render_button(ctx, where="sidebar")
    rollback.render_last(compact=True)
nav.run()

"""Reports: one phase's evidence, for the change board."""

import logging

import streamlit as st

from dashboard import data, page
from dashboard.components import md
from dashboard.exports import FORMATS, ReportUnavailable, build

ctx = page.context()
st.title("Reports")
st.caption("A phase's verdicts, decisions and figures as a file a change board can read.")

phases = {p.id: p for p in ctx.plan.phases}
phase_id = st.selectbox("Phase", list(phases), key="phase",
                        format_func=lambda i: f"{i}: {phases[i].name}")
fmt = st.radio("Format", list(FORMATS), horizontal=True, key="format",
               format_func=lambda f: FORMATS[f][0])
if st.button("Build report", key="build", type="primary"):
    try:
        with st.spinner(f"Building the {FORMATS[fmt][0]} report of {phase_id}..."):
            settings = data.settings()
            st.session_state["report"] = (phase_id, fmt, build(
                plan_path=settings.plan_path, db_url=settings.db_url, phase_id=phase_id,
                fmt=fmt, at=data.now()))
    except ReportUnavailable as e:
        st.session_state.pop("report", None)
        st.warning(f"Reports are not available: {md(e)}")
    except Exception as e:  # a report that fails must say so, not break the page
        logging.getLogger(__name__).exception("report %s (%s) failed", phase_id, fmt)
        st.session_state.pop("report", None)
        st.error(f"The report could not be built: {md(e)}")
built = st.session_state.get("report")
if built and built[:2] == (phase_id, fmt):
    _, f, payload = built
    st.download_button(f"Download {phase_id}.{FORMATS[f][1]}", payload,
                       file_name=f"{phase_id}.{FORMATS[f][1]}", mime=FORMATS[f][2], key="dl")

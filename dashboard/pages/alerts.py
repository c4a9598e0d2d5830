"""Alerts: where messages go, what was delivered, and a test message."""

import streamlit as st

from dashboard import chat, data, page
from dashboard.components import md

ctx = page.context()
st.title("Alerts")
st.subheader("Channels")
st.caption("Webhook URLs are secrets: only where each comes from is shown.")
try:
    rows = chat.channels(ctx.plan)
except Exception as e:  # a broken channel setting must not hide the rest of the page
    st.error(f"The channels cannot be listed: {md(e)}")
    rows = []
if rows:
    st.dataframe(rows, hide_index=True, width="stretch")
else:
    st.info("The plan configures no alert channels.")

if st.button("Send a test message to every channel", key="test_send",
             disabled=not ctx.viewer.may_operate,
             help=None if ctx.viewer.may_operate else "Only the plan's operators may send"):
    try:
        answers = chat.send_test(engine=data.engine(ctx.db_url), plan=ctx.plan,
                                 actor=ctx.viewer.name or "", now=data.now())
        st.success(f"Test message queued or sent to {len(answers) or len(rows)} channels.")
        if answers:
            st.dataframe([chat._row(a) for a in answers], hide_index=True)
    except chat.AlertsUnavailable as e:
        st.warning(md(e))
    except Exception as e:
        st.error(f"The test message failed: {md(e)}")


@st.fragment(run_every=page.LIVE_EVERY)
def live() -> None:
    st.subheader("Recent deliveries")
    try:
        recent = chat.deliveries(data.engine(ctx.db_url))
    except chat.AlertsUnavailable as e:
        st.info(md(e))
        recent = None
    if recent == []:
        st.info("Nothing delivered yet.")
    elif recent:
        st.dataframe(recent, hide_index=True, width="stretch")
    st.subheader("Recent events")
    events = data.events(ctx.db_url, limit=50)
    if events:
        st.dataframe([{"at": e.at, "kind": e.kind, "service": e.service,
                       "severity": e.severity, "summary": e.summary,
                       "dispatched": e.dispatched} for e in events],
                     hide_index=True, width="stretch")
    else:
        st.info("No events recorded yet.")


live()

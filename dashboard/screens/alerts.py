"""Alerts: where messages go, what was delivered, and a test message."""

import streamlit as st

from dashboard import chat, data, page
from dashboard.components import md, render_table

ctx = page.context()
st.title("Alerts")
st.subheader("Channels")
st.caption("Webhook URLs are secrets: they are shown masked.")
rows = chat.channels(ctx.plan)
if rows:
    render_table(rows)
else:
    st.info("The plan configures no alert channels.")

if st.button("Send a test message to every channel", key="test_send",
             disabled=not (ctx.viewer.may_operate and rows),
             help=None if ctx.viewer.may_operate else "Only the plan's operators may send"):
    results = chat.send_test(plan=ctx.plan, now=data.now())
    sent = sum(1 for r in results if r["sent"])
    (st.success if sent == len(results) else st.warning)(
        f"Test message sent to {sent} of {len(results)} channels.")
    render_table(results)


@st.fragment(run_every=page.LIVE_EVERY)
def live() -> None:
    st.subheader("Recent deliveries")
    recent = chat.deliveries(data.engine(ctx.db_url))
    if recent:
        render_table(recent)
    else:
        st.info("Nothing delivered yet.")
    if ctx.plan.alerts.inbox is not None:
        st.subheader("From Alertmanager")
        st.caption("Firing alerts about a service hold its next step"
                   + (f"; {', '.join(ctx.plan.alerts.inbox.revert_on)} revert it"
                      if ctx.plan.alerts.inbox.revert_on else "") + ".")
        inbox = data.inbox(ctx.db_url)
        if inbox:
            render_table(inbox)
        else:
            st.info("Nothing received from Alertmanager yet.")
    st.subheader("Recent events")
    events = data.events(ctx.db_url, limit=50)
    if events:
        render_table([{"at": e.at, "kind": e.kind, "service": e.service,
                       "severity": e.severity, "summary": e.summary,
                       "dispatched": e.dispatched} for e in events])
    else:
        st.info(md("No events recorded yet."))


live()

"""Decisions: the audit trail, filterable, downloadable."""

import streamlit as st

from dashboard import components, data, page

ctx = page.context()
st.title("Decisions")
st.caption("Every approve, revert and auto-revert, newest first, with who and why.")

cols = st.columns(5)
ALL = "(all)"
service = cols[0].selectbox("Service", [ALL] + [s.name for s in ctx.plan.services],
                            key="f_service")
action = cols[1].selectbox("Action", [ALL, "approve", "revert", "auto-revert"], key="f_action")
actor = cols[2].selectbox("Actor", [ALL] + data.actors(ctx.db_url), key="f_actor")
state = cols[3].selectbox("State", [ALL, "applied", "pending", "failed", "refused"], key="f_state")
text = cols[4].text_input("Reason contains", key="f_text")

filters = {k: (None if v == ALL else v) for k, v in
           (("service", service), ("action", action), ("actor", actor), ("state", state))}
rows = data.decisions(ctx.db_url, text=text or None, limit=5000, **filters)
PAGE = 100
pages = max(1, -(-len(rows) // PAGE))
at = st.number_input("Page", min_value=1, max_value=pages, value=1, key="f_page") if pages > 1 else 1
st.caption(f"{len(rows)} decisions" + (f"; page {at} of {pages}, {PAGE} a page" if pages > 1 else ""))
components.render_decisions(rows[(int(at) - 1) * PAGE:int(at) * PAGE])
st.download_button("Download CSV", components.decisions_csv(rows), file_name="decisions.csv",
                   mime="text/csv", key="csv", disabled=not rows)

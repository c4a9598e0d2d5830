"""Overview: where the migration stands, at one look."""

import streamlit as st

from dashboard import components, data, page, rollback, status
from dashboard.components import md

#: how many of the newest events the activity feed shows
ACTIVITY = 8

ctx = page.context()
st.title("Migration overview")
st.caption(md(ctx.plan.name))
rollback.render_last()
button, capacity = st.columns([1, 3], vertical_alignment="center")
with button:
    rollback.render_button(ctx, where="overview")


@st.fragment(run_every=page.LIVE_EVERY)
def baseline() -> None:
    rollback.render_capacity(ctx.plan, data.baseline_capacity(data.settings().plan_path,
                                                              ctx.db_url))


with capacity:
    baseline()


@st.fragment(run_every=page.LIVE_EVERY)
def live() -> None:
    names = tuple(s.name for s in ctx.plan.services)
    states, latest, now = data.states(ctx.db_url), data.latest(ctx.db_url, names), data.now()
    heartbeat = data.worker_round(ctx.db_url)
    worker = status.worker_alarm(heartbeat, now)
    cards = status.by_urgency(status.cards(ctx.plan, states, latest, now,
                                           worker_runs=worker is None,
                                           last_decisions=data.last_decisions(ctx.db_url, names)))
    components.render_alarms(cards, worker)
    explore = ctx.plan.sources.prometheus is not None
    st.subheader("Services, what needs you first")
    for row in range(0, len(cards), 3):
        for col, card in zip(st.columns(3), cards[row:row + 3], strict=False):
            with col:
                components.render_card(card, explore=explore)
                st.page_link("screens/service.py", label=f"{card.service}: charts and actions",
                             icon=":material/monitoring:", query_params={"service": card.service})
    st.subheader("Traffic split")
    in_order = {c.service: c for c in cards}
    st.plotly_chart(components.split_figure([in_order[n] for n in names if n in in_order]),
                    key="split", config={"displaylogo": False, "displayModeBar": False})
    st.subheader("Recent activity")
    components.render_activity(data.events(ctx.db_url, limit=ACTIVITY))
    st.subheader("Six weeks")
    components.render_timeline(status.phases(ctx.plan, states))
    placed = [(p.name, p.kind, f"{ph.id}/{svc.name}" if svc else ph.id)
              for ph, svc, p in ctx.plan.probes()]
    if placed:
        st.subheader("Probes")
        components.render_probes(placed, data.probe_results(ctx.db_url), now)
    st.subheader("Migration-wide success metrics")
    components.render_success(status.success_rows(ctx.plan, latest))
    st.caption(md(f"Read from the store at {now:%Y-%m-%d %H:%M:%S} UTC; refreshes every "
                  f"{int(page.LIVE_EVERY.total_seconds())} s; "
                  f"{status.worker_line(heartbeat, now)}."))


live()

"""Explore: the PromQL behind any figure of any variant, run live against the plan's
Prometheus and drawn beside the figure as the store holds it.

Linked as ``explore?service=S&variant=candidate|baseline&figure=F``."""

import html
from datetime import timedelta

import plotly.graph_objects as go
import streamlit as st

from collectors.explore import EXPLORABLE, figure_query, variant_queries_of
from dashboard import data, page
from dashboard.components import md, render_table

ctx = page.context()
settings = data.settings()
st.title("Explore")
st.caption("The query behind a figure, as cutover asks it; edit it and see what "
           "Prometheus answers, beside the figure as the store holds it.")
if ctx.plan.sources.prometheus is None:
    st.info("The plan has no sources.prometheus: no query stands behind its figures.")
    st.stop()

RANGES = {"1 h": timedelta(hours=1), "6 h": timedelta(hours=6), "24 h": timedelta(days=1)}
names = [s.name for s in ctx.plan.services]


def _pick(label: str, options: list[str], param: str) -> str:
    wanted = st.query_params.get(param)
    choice = st.selectbox(label, options, key=f"explore_{param}",
                          index=options.index(wanted) if wanted in options else 0)
    st.query_params[param] = choice
    return str(choice)


left, mid, right, far = st.columns(4)
with left:
    service = _pick("Service", names, "service")
with mid:
    variant = _pick("Variant", ["candidate", "baseline"], "variant")
with right:
    figure = _pick("Figure", list(EXPLORABLE), "figure")
with far:
    span = RANGES[st.selectbox("Range", list(RANGES), key="explore_range")]

vq = variant_queries_of(ctx.plan, service=service, variant=variant)
if vq is None:
    st.info(md(f"Prometheus is not asked about the {variant} of {service}: its figures come "
               "from the gateway's logs."))
    st.stop()
window = ctx.plan.settings(service).window
planned = figure_query(vq, figure, window=window)
st.caption(md(f"The plan's query for {figure} of the {variant} ({vq.variant}), over the "
              f"plan's window:"))
st.code(planned, language="promql")
key = f"explore_query:{service}:{variant}:{figure}"
if st.button("Back to the plan's query", key="explore_reset"):
    st.session_state[key] = planned
query = st.text_area("PromQL", value=planned, key=key, height=100)

start, end = ctx.now - span, ctx.now
step = f"{max(int(span.total_seconds() // 240), 15)}s"
try:
    frame = data.prom_range(settings.plan_path, query, start, end, step)
except Exception as e:  # the library raises its own and requests' errors
    st.error(md(f"Prometheus did not answer this query: {e}"))
    frame = None

chart = go.Figure()
if frame is not None and len(frame):
    labels = [c for c in frame.columns if c != "value"]
    groups = frame.groupby(labels, dropna=False) if labels else [((), frame)]
    for values, part in groups:
        values = values if isinstance(values, tuple) else (values,)
        name = ", ".join(f"{k}={v}" for k, v in zip(labels, values, strict=True)) or query
        chart.add_trace(go.Scatter(x=part.index, y=part["value"].astype(float), mode="lines",
                                   name=html.escape(name[:120])))
points = data.series(ctx.db_url, service, start)
stored = [(p.at, getattr(p, variant).get(figure)) for p in points]
stored = [(t, v) for t, v in stored if v is not None]
if stored:
    chart.add_trace(go.Scatter(x=[t for t, _ in stored], y=[v for _, v in stored],
                               mode="markers", name=f"stored {figure} (each evaluation)"))
chart.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10),
                    legend=dict(orientation="h"), xaxis_title="UTC")
st.plotly_chart(chart, key="explore_chart", config={"displaylogo": False})

if frame is None:
    pass
elif not len(frame):
    st.warning("Prometheus answered no series for this query over the range.")
else:
    last = frame.groupby([c for c in frame.columns if c != "value"] or (lambda _: 0),
                         dropna=False).tail(1)
    st.caption(md(f"{last.shape[0]} series; the latest sample of each:"))
    render_table([{**{c: row[c] for c in last.columns if c != "value"},
                   "at": ts.to_pydatetime(), "value": float(row["value"])}
                  for ts, row in last.iterrows()])

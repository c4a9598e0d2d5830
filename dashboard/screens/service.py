"""Service: why a service stands where it does, and the controls that move it."""

from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from dashboard import components, data, page, status
from dashboard.actions import ActionKind, Proposal, perform, propose
from dashboard.components import md
from slo.plan import FIGURES

ctx = page.context()
names = [s.name for s in ctx.plan.services]
wanted = st.query_params.get("service")
service = st.selectbox("Service", names, index=names.index(wanted) if wanted in names else 0,
                       key="service")
st.query_params["service"] = service
RANGES = {"6 h": timedelta(hours=6), "24 h": timedelta(days=1), "7 d": timedelta(days=7),
          "6 weeks": timedelta(weeks=6)}


def _range_start(span: str) -> datetime:
    """Where the charts begin: a fixed span back from now, the current step's start, the
    phase's (the service's first applied decision), or a day the viewer picks."""
    now = data.now().replace(second=0, microsecond=0)
    if span in RANGES:
        return now - RANGES[span]
    if span == "this step":
        state = data.states(ctx.db_url).get(service)
        if state is not None and state.step_since is not None:
            return state.step_since
        st.caption("No step has begun: showing the last 7 days.")
        return now - RANGES["7 d"]
    if span == "the phase":
        applied = data.decisions(ctx.db_url, service=service, state="applied", limit=1000)
        if applied:
            return min(d.at for d in applied)
        st.caption("No decision yet, so no phase has begun: showing the last 7 days.")
        return now - RANGES["7 d"]
    day = st.date_input("Since", value=(now - RANGES["7 d"]).date(),
                        max_value=now.date(), key="range_since")
    picked = day if isinstance(day, date) else now.date()
    return datetime.combine(picked, time.min, tzinfo=UTC)


def card(name: str) -> status.ServiceCard:
    states, now = data.states(ctx.db_url), data.now()
    return status.card(ctx.plan, name, states.get(name),
                       data.latest(ctx.db_url, (name,)).get(name), now,
                       judged=name in status.judged(ctx.plan, states),
                       worker_runs=status.worker_alarm(data.worker_round(ctx.db_url), now) is None,
                       last_decision=data.last_decisions(ctx.db_url, (name,)).get(name))


def _close() -> None:
    for key in ("pending_action", "action_reason", "action_sure"):
        st.session_state.pop(key, None)


def _confirm(proposal: Proposal) -> None:
    c = card(proposal.service)
    st.markdown(f"### {md(proposal.sentence)}")
    st.caption("The verdict this rests on")
    components.render_verdict(c.verdict, c)
    if proposal.kind is ActionKind.OVERRIDE:
        st.error("**OVERRIDE** — this goes past the gate's verdict. It is recorded as an "
                 "override, with your name and reason, and announced to the change board.")
    reason = st.text_area("Reason (kept in the audit trail)", key="action_reason")
    sure = (st.checkbox("I take responsibility for going past the verdict", key="action_sure")
            if proposal.kind is ActionKind.OVERRIDE else True)
    go, cancel = st.columns(2)
    if go.button(proposal.verb, key="action_confirm", type="primary",
                 disabled=not (reason.strip() and sure)):
        result = perform(engine=data.engine(ctx.db_url), plan=ctx.plan, proposal=proposal,
                         actor=ctx.viewer.name or "", actor_source=ctx.viewer.source,
                         reason=reason,
                         current=data.state_now(ctx.db_url, proposal.service), now=data.now())
        st.session_state["action_result"] = result
        _close()
        data.refresh()
        st.rerun()
    if cancel.button("Cancel", key="action_cancel"):
        _close()
        st.rerun()
    # below the controls, folded: fifteen reasons must not push Confirm off the screen
    if c.reasons:
        with st.expander(f"The verdict's reasons ({len(c.reasons)})"):
            st.markdown("\n".join(f"- {md(r)}" for r in c.reasons))


confirm = st.dialog("Confirm the change", width="large", on_dismiss=_close)(_confirm)
confirm_override = st.dialog("Override the gate", width="large", on_dismiss=_close)(_confirm)


_LABELS = {
    ActionKind.APPROVE: lambda p: f"Approve → {p.to_weight} %" if p else "Approve",
    ActionKind.REVERT: lambda p: f"Revert → {p.to_weight} %" if p else "Revert",
    ActionKind.REVERT_ALL: lambda p: "Revert to 0 %",
}


def _open(p: Proposal | None) -> None:
    st.session_state["pending_action"] = p
    st.session_state.pop("action_result", None)


@st.fragment(run_every=page.LIVE_EVERY)
def actions() -> None:
    """The controls, read again every few seconds: Approve turns available by itself when
    the soak and the requests are in.  A click opens the confirmation in a full run."""
    st.subheader("Actions")
    if "action_result" in st.session_state:
        components.render_result(st.session_state["action_result"])
    if not ctx.viewer.may_operate:
        st.info(f"Read-only: {md(ctx.viewer.label)}. Only the plan's operators may "
                "approve or revert.")
    c = card(service)
    state = data.states(ctx.db_url).get(service)
    offer = {k: propose(ctx.plan, service, state, k) for k in ActionKind}
    cols = st.columns(3)
    for col, kind, kind_type in ((cols[0], ActionKind.APPROVE, "primary"),
                                 (cols[1], ActionKind.REVERT, "secondary"),
                                 (cols[2], ActionKind.REVERT_ALL, "secondary")):
        p = offer[kind]
        label = _LABELS[kind](p) if p else f"{_LABELS[kind](None)}: no step"
        held = kind is ActionKind.APPROVE and p is not None and not c.may_approve
        if col.button(label, key=f"open_{kind.value}", type=kind_type,  # type: ignore[arg-type]
                      disabled=p is None or not ctx.viewer.may_operate or held,
                      help=f"Not available: {c.why}" if held else None):
            _open(p)
            st.rerun(scope="app")
    if offer[ActionKind.APPROVE] is not None and not c.may_approve:
        components.render_needs(c)
    with st.expander("Override: go past a verdict that is not PASS"):
        st.warning("For when the evidence is understood and the step must happen anyway. "
                   "Recorded as an override.")
        p = offer[ActionKind.OVERRIDE]
        if st.button(f"Override → {p.to_weight} %" if p else "override: no step",
                     key="open_override", icon=":material/warning:",
                     disabled=p is None or not ctx.viewer.may_operate):
            _open(p)
            st.rerun(scope="app")


def confirmation() -> None:
    pending = st.session_state.get("pending_action")
    if pending is not None and ctx.viewer.may_operate:
        (confirm_override if pending.kind is ActionKind.OVERRIDE else confirm)(pending)


@st.fragment(run_every=page.LIVE_EVERY)
def live() -> None:
    c = card(service)
    st.title(md(f"{c.service}: {c.title}"))
    if c.auto_reverted:
        st.error(f"**AUTO-REVERTED** — {md(c.auto_reverted)}", icon=":material/undo:")
    head = st.columns([1, 2, 2])
    head[0].metric("candidate weight", f"{c.weight} %",
                   f"next {c.next_weight} %" if c.next_weight is not None else "last step",
                   delta_color="off")
    with head[1]:
        components.render_step(c)
        st.caption(md(f"route {c.route}, phase {c.phase}"))
    with head[2]:
        components.render_verdict(c.verdict, c)
        components.render_blockers(c)
    if c.drift:
        st.error(f"DRIFT: {md(c.drift)}", icon=":material/error:")
    worker = status.worker_alarm(data.worker_round(ctx.db_url), data.now())
    if worker:
        st.warning(f"**WORKER NOT RUNNING** — {md(worker)}", icon=":material/schedule:")
    if c.stale:
        st.warning(f"STALE: {md(c.stale)}", icon=":material/schedule:")


@st.fragment(run_every=page.LIVE_EVERY)
def evaluation() -> None:
    c = card(service)
    st.subheader("Latest evaluation")
    components.render_checks(c)
    if c.checks:
        st.markdown("**Baseline and candidate**")
        shown = [f for f in FIGURES if c.baseline.get(f) is not None
                 or c.candidate.get(f) is not None]
        components.render_figures(c, shown, explore=ctx.plan.sources.prometheus is not None)


live()
actions()
confirmation()
evaluation()
phase = ctx.plan.phase_of(service)
mine = [(p.name, p.kind, phase.id if phase and p in phase.probes else service)
        for p in ctx.plan.probes_for(service)]
if mine:
    st.subheader("Probes")
    st.caption("What no figure measures, checked by the worker on each probe's interval and "
               "weighed by the gate: a failed probe fails or holds the step, one never run or "
               "stale keeps it inconclusive.")
    components.render_probes(mine, data.probe_results(ctx.db_url), data.now())
    for name, _kind, _where in mine:
        with st.expander(f"{name}: history"):
            components.render_probe_history(data.probe_history(ctx.db_url, name))
st.subheader("Over time")
STEP, PHASE, SINCE = "this step", "the phase", "since…"
span = st.segmented_control("Range", [*RANGES, STEP, PHASE, SINCE], default="7 d",
                            key="range") or "7 d"
start = _range_start(span)
points = data.series(ctx.db_url, service, start)
if points:
    marks = data.decisions(ctx.db_url, service=service, start=start, limit=500)
    st.plotly_chart(components.chart_figure(points, marks), key="charts",
                    config={"displaylogo": False})
    if ctx.plan.settings(service).inference == "anytime":
        st.caption("Each point is an evaluation's figures: under anytime inference, over "
                   "the step's own requests since it began (what the verdict rests on), "
                   "so a line moves slowly late in a long step; the detectors behind the "
                   "verdict read the recent minutes.")
else:
    st.info("No evaluations stored in this range yet.")

st.subheader("This step's evaluations")
now_state = data.states(ctx.db_url).get(service)
if now_state is not None and now_state.step_since is not None and now_state.weight > 0:
    evs = data.step_points(ctx.db_url, service, now_state.weight, now_state.step_since)
    if evs:
        tally = {v: sum(e.verdict == v for e in evs) for v in ("pass", "fail", "inconclusive")}
        st.caption(md(f"{len(evs)} evaluations at {now_state.weight} % since "
                      f"{now_state.step_since:%Y-%m-%d %H:%M} UTC (thinned evenly over a "
                      "long step, as the charts are): "
                      + ", ".join(f"{n} {v}" for v, n in tally.items() if n)))
        st.plotly_chart(components.step_strip(evs), key="step_strip",
                        config={"displaylogo": False})
        pick = st.selectbox(
            "Open an evaluation", list(range(len(evs) - 1, -1, -1)), key="step_evaluation",
            format_func=lambda i: f"{evs[i].at:%Y-%m-%d %H:%M:%S} UTC: "
                                  f"{evs[i].verdict.upper()}")
        opened = data.evaluation_at(ctx.db_url, service, evs[pick].at)
        if opened is not None:
            components.render_check_rows([c.contract() for c in opened.checks])
    else:
        st.info(f"No evaluation at {now_state.weight} % yet.")
else:
    st.info("No step has begun: all traffic goes to the baseline.")

st.subheader("Log lines not counted")
st.caption("Lines of the plan's gateway logs that the collector rejected (unreadable, or a "
           "value out of bounds) or could not map to a service: counted here, never in "
           "the figures. Samples are shown as written, invisible characters escaped.")
components.render_rejects(data.rejects(ctx.db_url, tuple(
    src.label for src in ctx.plan.sources.logs)))

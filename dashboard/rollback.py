"""The emergency rollback from the dashboard: "Roll back everything" in the sidebar of
every page and on the overview, one confirmation that names what will move, a required
reason.  The operator check is the gate's (rollout.rollback), not the button's: a
viewer who is not an operator sees the button disabled, and a forged click is refused
server side all the same."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import actions, data
from dashboard.components import md, render_table
from dashboard.page import PageContext
from rollout.baseline import Capacity
from slo.plan import Plan

__all__ = ["capacity_words", "render_button", "render_capacity", "render_last"]

FLAG, RESULT = "rollback_open", "rollback_result"


def render_button(ctx: PageContext, *, where: str) -> None:
    """The button; the sidebar's call also opens the dialog when asked (one dialog per
    run, whichever button was clicked)."""
    if st.button("Roll back everything", key=f"rollback_{where}", type="primary",
                 icon=":material/undo:", use_container_width=where == "sidebar",
                 disabled=not ctx.viewer.may_operate,
                 help="every service back to the monolith (0 %) at once"):
        st.session_state[FLAG] = True
        st.session_state.pop(RESULT, None)
        if where != "sidebar":
            st.rerun()
    if where == "sidebar" and st.session_state.get(FLAG) and ctx.viewer.may_operate:
        _dialog(ctx)


def capacity_words(plan: Plan, cap: Capacity | str | None) -> tuple[str, bool | None]:
    """What the baseline could take back now, in words, and whether that is enough
    (None: not known)."""
    if isinstance(cap, str):
        return f"Baseline capacity unknown: {cap}", None
    if cap is None:
        if plan.baseline.min_replicas is None:
            return ("Baseline capacity not checked: the plan sets no "
                    "baseline.min_replicas"), None
        return "Baseline capacity not read: the dry-run router has no cluster", None
    if cap.enough:
        return f"Baseline can take 100 %: {cap.words}", True
    return f"Baseline may not take 100 %: {cap.words}", False


def render_capacity(plan: Plan, cap: Capacity | str | None) -> None:
    """Beside "Roll back everything": can the monolith take all the traffic back now."""
    words, enough = capacity_words(plan, cap)
    if enough is True:
        st.success(md(words), icon=":material/check_circle:")
    elif enough is False:
        st.error(md(words), icon=":material/warning:")
    else:
        st.info(md(words), icon=":material/help:")


def _close() -> None:
    for key in (FLAG, "rollback_reason", "rollback_scale", "rollback_no_wait"):
        st.session_state.pop(key, None)


def _confirm(ctx: PageContext) -> None:
    p = actions.rollback_preview(plan=ctx.plan, engine=data.engine(ctx.db_url))
    moving = p.moving
    st.markdown(f"**{len(moving)} of {len(p.rows)} services** go back to the monolith "
                f"(0 %), all at once:")
    render_table([_row(r) for r in p.rows])
    cap = p.baseline
    scale = False
    if cap is not None:
        if cap.enough:
            st.success(md(cap.words), icon=":material/check_circle:")
        else:
            st.error(md(f"The baseline may not take 100 %: {cap.words}"),
                     icon=":material/warning:")
            if cap.exists and cap.known:
                scale = st.checkbox(f"Scale the baseline up to {cap.min_replicas} replicas "
                                    "first", value=True, key="rollback_scale")
    no_wait = (st.checkbox("Move the traffic at once (do not wait for the replicas)",
                           key="rollback_no_wait") if scale else False)
    reason = st.text_area("Reason (kept in the audit trail and sent to chat)",
                          key="rollback_reason")
    go, cancel = st.columns(2)
    if go.button(f"Roll back {len(moving)} services", key="rollback_confirm",
                 type="primary", disabled=not reason.strip()):
        table = st.empty()
        seen: list[Any] = []

        def show(result: Any) -> None:   # each service's outcome, as it comes
            seen.append(result)
            with table.container():
                render_table([actions.rollback_row(r) for r in seen])

        st.session_state[RESULT] = actions.roll_back_all(
            plan=ctx.plan, engine=data.engine(ctx.db_url), actor=ctx.viewer.name or "",
            reason=reason, scale=scale, wait=not no_wait, on_result=show, now=data.now())
        _close()
        data.refresh()
        st.rerun()
    if cancel.button("Cancel", key="rollback_cancel"):
        _close()
        st.rerun()


_dialog = st.dialog("Roll back everything to the monolith", width="large",
                    on_dismiss=_close)(_confirm)


def _row(r: Any) -> dict[str, object]:
    return {"service": r.service, "route": r.route, "stored": f"{r.weight} %",
            "route reads": "unreadable" if r.router_weight is None else f"{r.router_weight} %",
            "pending": f"#{r.pending_decision}" if r.pending_decision else "",
            "moves": "yes" if r.moves else "already at 0 %"}


def render_last(*, compact: bool = False) -> None:
    """The last rollback's outcome on this session: its headline, and (not ``compact``)
    each service's."""
    done = st.session_state.get(RESULT)
    if done is None:
        return
    if isinstance(done, str):
        st.error(md(done))
        return
    words = (f"Rollback #{done.group_id}: {done.outcome.value} in {done.seconds:.2f} s "
             "(from the click to every route read back)")
    (st.success if done.ok else st.error)(md(words))
    if not compact:
        render_table([actions.rollback_row(r) for r in done.results])

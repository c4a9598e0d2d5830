"""The pieces pages are made of: ``render_*`` helpers that draw one thing each.

Text that comes from logs, metrics, plans or people (reasons, check details, channel
names) is attacker-controlled as far as the page is concerned: it is shown with
``st.text``, in a dataframe, or in markdown escaped by :func:`md`; never with
``unsafe_allow_html``.  Plotly renders a subset of HTML in hover and annotation text, so
text bound for a chart goes through :func:`html.escape` first."""

from __future__ import annotations

import csv
import html
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import plotly.graph_objects as go
import streamlit as st

from collectors.explore import EXPLORABLE
from dashboard.actions import ActionResult, Outcome
from dashboard.auth import Identity, Viewer
from dashboard.status import (
    KEY_FIGURES,
    DisplayState,
    PhaseState,
    PhaseView,
    ServiceCard,
    SuccessRow,
    human_duration,
    verdict_caption,
    verdict_is_earlier,
)
from slo.figure_specs import FIGURE_SPECS, QUANTILE_FIGURES, SPECS, format_value, quantile_column
from slo.probe_results import ProbeResult
from slo.units import format_duration
from slo.verdict import Verdict
from store.views import DecisionView, SeriesPoint

__all__ = ["chart_figure", "decisions_csv", "explore_link", "fmt", "md", "render_alarms", "render_card", "render_check_rows", "render_checks",
           "render_decisions", "render_figures", "render_probe_history", "render_probes",
           "render_rejects", "render_result", "render_success", "render_table",
           "render_timeline", "render_verdict", "render_viewer", "step_strip", "visible"]

# Any ASCII punctuation may be backslash-escaped in CommonMark; these are the ones that
# mean something to it or to Streamlit's own syntax (:red[...], :emoji:, $latex$).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")

Colour = Literal["red", "orange", "green", "blue", "gray"]
VERDICT_COLOURS: dict[Verdict, Colour] = {Verdict.PASS: "green", Verdict.FAIL: "red", Verdict.INCONCLUSIVE: "orange"}
DISPLAY_COLOURS: dict[DisplayState, Colour] = {
    DisplayState.FAILED: "red", DisplayState.AUTO_REVERTED: "red",
    DisplayState.DRIFTED: "red", DisplayState.READY: "green",
    DisplayState.PROGRESSING: "blue", DisplayState.WAITING: "gray",
    DisplayState.DONE: "green"}
PHASE_COLOURS: dict[PhaseState, Colour] = {
    PhaseState.DONE: "green", PhaseState.CURRENT: "blue", PhaseState.UPCOMING: "gray"}
LABELS = {s.name: s.label for s in FIGURE_SPECS}


def md(text: object) -> str:
    """``text`` as markdown that shows exactly these characters and nothing else."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def fmt(figure: str, value: float | None) -> str:
    """A figure with its unit (slo.figure_specs), or an em dash when no source gives it."""
    return format_value(figure, value)


#: a check's trailing window (``error_rate_5m``, ``latency_p95_ms_2m``)
_WINDOW_SUFFIX = re.compile(r"_\d+[smhdw]$")


def check_value(check: str, value: float | None) -> str:
    """A check's baseline, candidate or limit in the unit of the figure it checks (through
    the one formatter): ``error_rate_5m`` as an error rate, ``min_soak`` as a duration,
    ``min_requests`` as a count, a burn rate as ``0.1x``."""
    if value is None:
        return fmt(check, None)
    if check == "min_soak":
        return format_duration(timedelta(seconds=round(value)))
    if check.startswith("error_budget_burn"):
        return f"{value:.1f}x"
    if check == "min_requests":
        return fmt("requests", value)
    figure = check
    while _WINDOW_SUFFIX.search(figure):
        figure = _WINDOW_SUFFIX.sub("", figure)
    return fmt(figure, value)


def render_viewer(viewer: Viewer) -> None:
    st.caption("Signed in")
    st.text(viewer.label)
    if viewer.can_log_in and st.button("Sign in", key="login"):
        st.login()
    if viewer.identity is Identity.OIDC and st.button("Sign out", key="logout"):
        st.logout()


def render_verdict(verdict: Verdict | None, card: ServiceCard | None = None) -> None:
    """The verdict's badge and, given its card, the weight and step it was made at."""
    if verdict is None:
        st.badge("NO VERDICT", color="gray")
        return
    if card is not None and verdict_is_earlier(card):
        # as `cutover status` has it: no verdict at this step; the last one in the caption
        st.badge(f"NO VERDICT AT {card.weight} %", color="gray")
    else:
        st.badge(verdict.value.upper(), color=VERDICT_COLOURS[verdict])
    caption = verdict_caption(card) if card is not None else None
    if caption:
        st.caption(md(caption))


def render_display(card: ServiceCard) -> None:
    """The service's state for people: progressing, waiting, ready, failed, ..."""
    st.badge(card.display.value.upper(), color=DISPLAY_COLOURS[card.display])


def step_bar(card: ServiceCard) -> str:
    """``0 10 **25** 50 75 100`` (percent) as badges: the steps behind in green, the
    current one in blue, those ahead in grey (numbers only: nothing to escape)."""
    out = []
    for w in card.steps:
        if w == card.weight:
            out.append(f":blue-badge[**{w}**]")
        elif w < card.weight:
            out.append(f":green-badge[{w}]")
        else:
            out.append(f":gray-badge[{w}]")
    return " ".join(out)


def step_clock(card: ServiceCard) -> str:
    """``soaked 12m of 15m at 25 %; the gate can decide in about 3m``."""
    if card.next_weight is None:
        return f"at its last step ({card.weight} %)"
    if card.soaked is None:
        return f"at {card.weight} %: all traffic to the baseline"
    parts = [f"soaked {human_duration(card.soaked)}"
             + (f" of {human_duration(card.min_soak)}" if card.min_soak else "")
             + f" at {card.weight} %"]
    if card.ready_in is not None:
        parts.append(f"the gate can decide in about {human_duration(card.ready_in)}"
                     if card.ready_in else "the gate can decide at the next verdict")
    return "; ".join(parts)


def render_step(card: ServiceCard) -> None:
    """The state, the step bar and the step's clock, in three lines."""
    render_display(card)
    st.markdown(step_bar(card))
    st.caption(md(step_clock(card)))


def render_timeline(views: Sequence[PhaseView]) -> None:
    """The six weeks side by side; the current phase stands out."""
    for col, p in zip(st.columns(len(views) or 1), views, strict=False):
        with col, st.container(border=True):
            st.badge(p.state.value.upper(), color=PHASE_COLOURS[p.state])
            st.markdown(f"**{md(p.id)}**  \n{md(p.name)}")
            if p.weights:
                st.caption(md(", ".join(f"{s} {w} %" for s, w in p.weights)))


def render_alarms(cards: Sequence[ServiceCard], worker: str | None = None) -> None:
    """A stopped worker, drift and stale data at the top of the page, loudly: each means
    what the page shows may not be what the traffic does."""
    if worker:
        st.warning(f"**WORKER NOT RUNNING** — {md(worker)}", icon=":material/schedule:")
    drift = [c for c in cards if c.drift]
    stale = [c for c in cards if c.stale]
    if drift:
        st.error("**ROUTER DRIFT** — " + "; ".join(f"{md(c.service)}: {md(c.drift)}"
                                                   for c in drift), icon=":material/error:")
    if stale:
        st.warning("**STALE DATA** — " + "; ".join(f"{md(c.service)}: {md(c.stale)}"
                                                   for c in stale), icon=":material/schedule:")


def render_card(card: ServiceCard, *, explore: bool = False) -> None:
    with st.container(border=True):
        st.markdown(f"#### {md(card.service)}  \n{md(card.title)}")
        render_step(card)
        if card.auto_reverted:
            st.error(f"AUTO-REVERTED: {md(card.auto_reverted)}", icon=":material/undo:")
        nxt = f"next {card.next_weight} %" if card.next_weight is not None else "last step"
        st.metric("candidate weight", f"{card.weight} %", nxt, delta_color="off")
        render_verdict(card.verdict, card)
        if card.drift:
            st.error(f"DRIFT: {md(card.drift)}", icon=":material/error:")
        if card.stale:
            st.warning(f"STALE: {md(card.stale)}", icon=":material/schedule:")
        render_blockers(card)
        with st.expander("Baseline and candidate"):
            render_figures(card, KEY_FIGURES, explore=explore)


def explore_link(service: str, variant: str, figure: str) -> str:
    """The Explore page's address for the PromQL behind one figure (relative, so it works
    under any base path)."""
    return "explore?" + urlencode({"service": service, "variant": variant, "figure": figure})


def render_figures(card: ServiceCard, figures: Iterable[str], *, explore: bool = False) -> None:
    """Baseline beside candidate; with ``explore`` (the plan asks Prometheus), a link to
    the query behind each figure of each variant."""
    head, rule = "| | baseline | candidate |", "|---|---:|---:|"
    if explore:
        head, rule = head + " PromQL |", rule + "---|"
    rows = []
    for f in figures:
        row = f"| {LABELS[f]} | {fmt(f, card.baseline.get(f))} | {fmt(f, card.candidate.get(f))} |"
        if explore and f in EXPLORABLE:
            row += " " + " · ".join(f"[{v}]({explore_link(card.service, v, f)})"
                                    for v in ("baseline", "candidate")) + " |"
        elif explore:
            row += " |"
        rows.append(row)
    st.markdown("\n".join([head, rule, *rows]))


def render_blockers(card: ServiceCard) -> None:
    if card.next_weight is None:
        st.success("On its last step: nothing left to approve.")
    elif card.display is DisplayState.AUTO_REVERTED and card.may_approve:
        # not a green READY beside the revert: the gate would allow it, the lead decides
        st.warning(f"**AUTO-REVERTED** — approve may start again at {card.next_weight} % "
                   "(the first step needs no verdict) once the failure is understood.")
    elif card.display is DisplayState.WAITING and card.may_approve:
        st.info(f"**WAITING** for its phase ({md(card.phase)}); its first step "
                f"({card.next_weight} %) needs no verdict.")
    elif card.blockers:
        st.markdown(f"**{card.display.value.upper()}** — blocks {card.next_weight} %:\n"
                    + "\n".join(f"- {md(b)}" for b in card.blockers))
    else:
        st.success(f"**READY** for {card.next_weight} %: {md(card.why)}")


def render_needs(card: ServiceCard) -> None:
    """Why Approve is not available, and what would make it so."""
    lines = "\n".join(f"- {md(n)}" for n in card.needs)
    st.info(f"**Approve → {card.next_weight} % is not available yet.** It needs:\n{lines}",
            icon=":material/hourglass_top:")


def render_success(rows: Sequence[SuccessRow]) -> None:
    if not rows:
        st.info("The plan names no migration-wide success metrics.")
        return
    # three to a row: five side by side cut "32.3 req/s" to "32.3 r…" at 1280 px
    cells = [(col, r) for start in range(0, len(rows), 3)
             for col, r in zip(st.columns(3), rows[start:start + 3], strict=False)]
    for col, r in cells:
        with col, st.container(border=True):
            word = {True: "MET", False: "MISSED", None: "NO DATA"}[r.met]
            colour: Colour = {True: "green", False: "red", None: "gray"}[r.met]  # type: ignore[assignment]
            st.badge(word, color=colour)
            st.metric(LABELS.get(r.figure, r.figure), fmt(r.figure, r.value))
            st.caption(md(f"target {r.target}; {r.basis}"))


def split_figure(cards: Sequence[Any]) -> go.Figure:
    """Every service's traffic split side by side: the route's share to the monolith and
    to the candidate, one bar a service in plan order (drifted ones say so)."""
    names = [c.service + (" (drifted)" if c.drift else "") for c in cards]
    bars = [("monolith", [100 - c.weight for c in cards], _COLOURS["baseline"]),
            ("candidate", [c.weight for c in cards], _COLOURS["candidate"])]
    data = [{"type": "bar", "orientation": "h", "name": name, "y": names, "x": xs,
             "marker": {"color": colour}, "text": [f"{x} %" for x in xs],
             "textposition": "inside", "insidetextanchor": "middle",
             "hovertemplate": f"%{{y}}: %{{x}} % to the {name}<extra></extra>"}
            for name, xs, colour in bars]
    layout = {"barmode": "stack", "height": 40 + 32 * len(cards),
              "margin": {"l": 10, "r": 10, "t": 10, "b": 20},
              "xaxis": {"range": [0, 100], "ticksuffix": " %", "fixedrange": True},
              "yaxis": {"autorange": "reversed", "fixedrange": True},
              "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": -0.15}}
    return go.Figure(data=data, layout=layout)


def render_activity(events: Sequence[Any]) -> None:
    """The newest events (decisions, verdict changes, drift, sources), newest first."""
    if not events:
        st.info("Nothing has happened yet.")
        return
    render_table([{"at": e.at, "service": e.service, "what": e.kind, "severity": e.severity,
                   "summary": e.summary} for e in events])


def render_table(rows: Sequence[Mapping[str, object]]) -> None:
    """Rows as a markdown table, every cell escaped.

    Not ``st.dataframe``: it converts through pandas and pyarrow, which would cost the
    server 80 MB resident of its 229 MB budget for tables of a few dozen rows."""
    if not rows:
        return
    columns = list(rows[0])
    lines = ["| " + " | ".join(md(c) for c in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    st.markdown("\n".join(lines))


def _cell(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return md(v) or " "


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def render_checks(card: ServiceCard) -> None:
    """The checks that did not pass, then the passing ones folded: each reason once."""
    if not card.checks:
        st.info("No evaluation stored yet for this service.")
        return
    render_check_rows(card.checks)
    if card.wait:
        st.info(f"Time until enough data, at the current traffic: about {md(card.wait)}")


def render_check_rows(checks: Sequence[Mapping[str, object]], *, key: str = "") -> None:
    """Checks as the evaluate contract has them: the open ones, the passing ones folded."""
    rows = [{"check": c["name"], "verdict": c["verdict"],
             **{k: check_value(str(c["name"]), _number(c[k]))
                for k in ("baseline", "candidate", "limit")},
             "detail": c["detail"]}
            for c in checks]
    open_ = [r for r in rows if r["verdict"] != Verdict.PASS.value]
    passing = [r for r in rows if r["verdict"] == Verdict.PASS.value]
    render_table(open_)
    if passing:
        with st.expander(f"{len(passing)} of {len(rows)} checks pass", expanded=not open_):
            render_table(passing)


_STRIP_COLOURS = {Verdict.PASS.value: "#2e7d32", Verdict.FAIL.value: "#c62828",
                  Verdict.INCONCLUSIVE.value: "#ef8f00"}


def step_strip(points: Sequence[SeriesPoint]) -> go.Figure:
    """Every evaluation of one step as a mark on a line, coloured by its verdict."""
    data = []
    for verdict, colour in _STRIP_COLOURS.items():
        mine = [p for p in points if p.verdict == verdict]
        data.append({"type": "scatter", "mode": "markers", "name": verdict,
                     "x": [p.at for p in mine], "y": [verdict] * len(mine),
                     "marker": {"color": colour, "size": 9, "symbol": "square"}})
    layout = {"height": 170, "margin": {"l": 90, "r": 10, "t": 10, "b": 30},
              "xaxis": {"type": "date"},
              "yaxis": {"categoryorder": "array", "categoryarray": list(_STRIP_COLOURS)},
              "showlegend": False}
    return go.Figure(data=data, layout=layout)


def render_probes(placed: Sequence[tuple[str, str, str]], latest: Mapping[str, ProbeResult],
                  now: datetime) -> None:
    """One row per probe: where it sits, its newest verdict, how old, and why.
    ``placed``: (probe name, kind, where: the phase or the service)."""
    if not placed:
        st.info("The plan gives no probes here.")
        return
    rows = []
    for name, kind, where in placed:
        r = latest.get(name)
        rows.append({"probe": name, "kind": kind, "where": where,
                     "verdict": r.verdict.value if r else "not run yet",
                     "at": r.at if r else None,
                     "age": f"{(now - r.at).total_seconds() / 60:.0f} min" if r else None,
                     "why": "; ".join(r.reasons[:3]) if r else "never run: inconclusive"})
    render_table(rows)


def render_probe_history(history: Sequence[ProbeResult]) -> None:
    if not history:
        st.caption("no results stored yet")
        return
    render_table([{"at": r.at, "verdict": r.verdict.value, "value": r.value,
                   "limit": r.limit, "why": "; ".join(r.reasons[:3])} for r in history])


def visible(text: str) -> str:
    """``text`` with every character that would not show as itself escaped: control
    characters (a terminal escape, a carriage return that hides what came before) and
    invisible format characters (a right-to-left override that reverses what follows)
    as ``\\xNN`` / ``\\uNNNN`` (the style nginx escapes its own log fields in)."""
    out = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
                       if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def render_rejects(rows: Sequence[Mapping[str, Any]]) -> None:
    """Log lines the collector did not count, per source, file and reason, with the
    samples it kept: log text, so shown as code (no markdown) and :func:`visible`."""
    if not rows:
        st.caption("No log line has been rejected.")
        return
    render_table([{"source": r["source"], "file": r["file"], "reason": r["reason"],
                   "lines": f"{r['count']:,}", "last": r["last_at"]} for r in rows])
    for r in rows:
        if not r["samples"]:
            continue
        label = f"{r['reason']}: {len(r['samples'])} of {r['count']:,} lines in {r['file']}"
        with st.expander(md(label)):
            st.code("\n".join(visible(x) for x in r["samples"]), language=None,
                    wrap_lines=True)


def render_result(result: ActionResult) -> None:
    text = f"{md(result.proposal.sentence)}: {md(result.message)}"
    {Outcome.APPLIED: st.success, Outcome.REFUSED: st.error, Outcome.CHANGED: st.warning,
     Outcome.FAILED: st.error}[result.outcome](f"**{result.outcome.value.upper()}** — {text}")


def render_decisions(rows: Sequence[DecisionView]) -> None:
    if not rows:
        st.info("No decisions match.")
        return
    # seven columns, not twelve: at 1280 px the reason gets room to read (the CSV keeps
    # every field)
    render_table([{"#": d.id, "at": d.at.strftime("%Y-%m-%d %H:%M"), "service": d.service,
                   "change": f"{d.action} {d.from_weight} → {d.to_weight} %"
                             + (" (override)" if d.override else ""),
                   "by": d.actor, "state": d.state + (f": {d.error}" if d.error else ""),
                   "reason": d.reason} for d in rows])


def decisions_csv(rows: Sequence[DecisionView]) -> bytes:
    """The decisions as CSV; cells that a spreadsheet would run as a formula are quoted
    with a leading apostrophe (OWASP: CSV injection)."""
    out = io.StringIO()
    fields = ["id", "at", "service", "action", "from_weight", "to_weight", "actor", "reason",
              "override", "state", "evaluation_id", "error"]
    w = csv.DictWriter(out, fieldnames=fields)
    w.writeheader()
    for d in rows:
        row = {**d.contract(), "error": d.error or "", "at": d.at.isoformat()}
        w.writerow({k: _csv_cell(v) for k, v in row.items()})
    return out.getvalue().encode()


def _csv_cell(v: object) -> object:
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return "" if v is None else v


#: one latency line per quantile figure (p50 dotted, p95 solid, p99 dashed, then more)
_DASHES = ("dot", "solid", "dash", "dashdot", "longdash")
_SERIES = tuple((name, quantile_column(q), _DASHES[i % len(_DASHES)])
                for i, (name, q) in enumerate(QUANTILE_FIGURES.items()))
_COLOURS = {"baseline": "#7f7f7f", "candidate": "#1f77b4"}
_DECISION_COLOURS = {"approve": "#2ca02c", "revert": "#d62728", "auto-revert": "#d62728"}
#: (figure, scale, panel title); the panels stack top to bottom on one time axis
_PANELS = ((None, 1.0, "latency (ms)"), ("error_rate", 100.0, "error rate (%)"),
           ("rps", 1.0, "request rate (req/s)"), ("memory_mb", 1.0, "memory (MiB)"),
           (None, 1.0, "candidate weight (%)"))
_GAP = 0.04


def _domain(panel: int) -> list[float]:
    height = (1 - _GAP * (len(_PANELS) - 1)) / len(_PANELS)
    top = 1 - panel * (height + _GAP)
    return [round(top - height, 4), round(top, 4)]


def _axis(panel: int) -> str:
    return "y" if panel == 0 else f"y{panel + 1}"


def chart_figure(points: Sequence[SeriesPoint], decisions: Sequence[DecisionView]) -> go.Figure:
    """Latency, error rate, request rate, memory and weight over time, baseline and
    candidate on the same axes, with every applied decision as a vertical line.

    Built from plain dicts and validated once: make_subplots and add_trace validate at
    every call and took 0.3 s for this figure, dicts take 0.04 s."""
    xs = [p.at for p in points]
    data: list[dict[str, object]] = []
    for variant in ("baseline", "candidate"):
        for figure, label, dash in _SERIES:
            data.append(_line(xs, points, variant, figure, f"{variant} {label}", dash, panel=0))
        for panel, (figure, scale, _title) in enumerate(_PANELS[1:4], start=1):
            assert figure is not None
            data.append(_line(xs, points, variant, figure, f"{variant} {LABELS[figure]}",
                              "solid", scale=scale, legend=False, panel=panel))
    wx, wy = _weight_steps(points, decisions)
    data.append({"type": "scatter", "x": wx, "y": wy, "name": "weight",
                 "yaxis": _axis(4), "showlegend": False, "hovertemplate": "weight: %{y} %<extra></extra>",
                 "line": {"shape": "hv", "color": _COLOURS["candidate"]}})
    layout: dict[str, object] = {
        "height": 900, "margin": {"l": 50, "r": 10, "t": 30, "b": 30},
        "hovermode": "x unified", "legend": {"x": 1.01, "y": 1, "yanchor": "top"},
        "hoverlabel": {"namelength": -1},   # "baseline error rate", not "baseline err..."
        # one time axis for every panel: a zoom is shared, and the hovered time is a
        # line across all of them (a crosshair), wherever the pointer is
        "xaxis": {"anchor": _axis(4), "type": "date", "showspikes": True,
                  "spikemode": "across", "spikesnap": "cursor", "spikethickness": 1,
                  "spikedash": "dot", "spikecolor": "#888"},
        "spikedistance": -1,
        **{_axis(i).replace("y", "yaxis"): {"domain": _domain(i), "anchor": "x"}
           for i in range(len(_PANELS))},
        # the weight's axis is always 0 to 100 %: a drop to 0 shows as one
        _axis(4).replace("y", "yaxis"): {"domain": _domain(4), "anchor": "x",
                                         "range": [-5, 105], "tickvals": [0, 25, 50, 75, 100]},
        "annotations": [{"text": title, "x": 0.5, "xref": "paper", "y": _domain(i)[1],
                         "yref": "paper", "yanchor": "bottom", "showarrow": False}
                        for i, (_f, _s, title) in enumerate(_PANELS)],
        "shapes": [],
    }
    _shade_steps(layout, wx, wy)
    _mark_decisions(layout, decisions, wx)
    return go.Figure(data=data, layout=layout)


def _shade_steps(layout: dict[str, Any], xs: Sequence[datetime], ys: Sequence[int]) -> None:
    """Each step as a band behind every panel, deeper the more traffic the candidate
    takes (none at 0 %), so a verdict's line reads against the step it was made in."""
    for (x0, w), x1 in zip(zip(xs, ys, strict=True), xs[1:], strict=False):
        if w <= 0 or x1 <= x0:
            continue
        layout["shapes"].append({
            "type": "rect", "x0": x0, "x1": x1, "xref": "x", "y0": 0, "y1": 1,
            "yref": "paper", "layer": "below", "line": {"width": 0},
            "fillcolor": _COLOURS["candidate"], "opacity": round(0.03 + 0.09 * w / 100, 3)})


def _weight_steps(points: Sequence[SeriesPoint], decisions: Sequence[DecisionView]
                  ) -> tuple[list[datetime], list[int]]:
    """The candidate's weight as a step line from the applied decisions themselves (at
    their own times, not the evaluations': those are thinned out over a long range, and
    none is made at 0 % after a revert), held to the newest point."""
    applied = sorted((d for d in decisions if d.state == "applied"), key=lambda d: d.at)
    if not points and not applied:
        return [], []
    xs: list[datetime] = []
    ys: list[int] = []
    if points and (not applied or points[0].at < applied[0].at):
        xs.append(points[0].at)
        ys.append(applied[0].from_weight if applied else points[0].weight)
    for d in applied:
        xs.append(d.at)
        ys.append(d.to_weight)
    end = max([*(p.at for p in points[-1:]), *(d.at for d in applied[-1:])])
    if xs[-1] < end:
        xs.append(end)
        ys.append(ys[-1])
    return xs, ys


def _line(xs: list[datetime], points: Sequence[SeriesPoint], variant: str, figure: str,
          name: str, dash: str, *, panel: int, scale: float = 1.0,
          legend: bool = True) -> dict[str, object]:
    ys = [_scaled(getattr(p, variant).get(figure), scale) for p in points]
    return {"type": "scatter", "x": xs, "y": ys, "name": name, "mode": "lines",
            "yaxis": _axis(panel), "showlegend": legend, "legendgroup": variant,
            "hovertemplate": _hover(figure),
            "line": {"color": _COLOURS[variant], "dash": dash, "width": 1.5}}


def _hover(figure: str) -> str:
    """The hover text of a chart line: its value as the one formatter prints the figure
    (its decimals and unit, a share as a percentage: the line is drawn scaled to one)."""
    spec = SPECS[figure]
    unit = "%" if spec.share else spec.unit
    return f"%{{fullData.name}}: %{{y:,.{spec.decimals}f}} {unit}".rstrip() + "<extra></extra>"


def _scaled(v: float | None, scale: float) -> float | None:
    return None if v is None else v * scale


#: decision labels closer than this share of the chart's time range stack up, not overlap
_LABEL_ROOM = 0.06


def _mark_decisions(layout: dict[str, Any], decisions: Sequence[DecisionView],
                    times: Sequence[datetime]) -> None:
    applied = sorted((d for d in decisions if d.state == "applied"), key=lambda d: d.at)
    every = [*times, *(d.at for d in applied)]
    span = ((max(every) - min(every)).total_seconds() if every else 0) or 1.0
    level, last = 0, None
    for d in applied:
        near = last is not None and (d.at - last).total_seconds() / span < _LABEL_ROOM
        level = (level + 1) % 3 if near else 0
        last = d.at
        colour = "#ff7f0e" if d.override else _DECISION_COLOURS.get(d.action, "#555")
        layout["shapes"].append({"type": "line", "x0": d.at, "x1": d.at, "xref": "x",
                                 "y0": 0, "y1": 1, "yref": "paper",
                                 "line": {"color": colour, "width": 1, "dash": "dot"}})
        layout["annotations"].append({
            "x": d.at, "xref": "x", "y": 1, "yref": "paper", "yanchor": "bottom",
            "showarrow": False, "font": {"size": 10, "color": colour}, "yshift": 12 * level,
            "text": html.escape(f"{d.from_weight}→{d.to_weight} %"),
            "hovertext": html.escape(f"{d.action} by {d.actor}: {d.reason}")})

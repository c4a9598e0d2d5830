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
from datetime import datetime
from typing import Any, Literal

import plotly.graph_objects as go
import streamlit as st

from dashboard.actions import ActionResult, Outcome
from dashboard.auth import Identity, Viewer
from dashboard.status import (
    KEY_FIGURES,
    PhaseState,
    PhaseView,
    ServiceCard,
    SuccessRow,
    verdict_caption,
)
from slo.figure_specs import FIGURE_SPECS, format_value
from slo.probe_results import ProbeResult
from slo.verdict import Verdict
from store.views import DecisionView, SeriesPoint

__all__ = ["chart_figure", "decisions_csv", "fmt", "md", "render_alarms", "render_card", "render_checks",
           "render_decisions", "render_figures", "render_probe_history", "render_probes",
           "render_rejects", "render_result", "render_success", "render_table",
           "render_timeline", "render_verdict", "render_viewer", "visible"]

# Any ASCII punctuation may be backslash-escaped in CommonMark; these are the ones that
# mean something to it or to Streamlit's own syntax (:red[...], :emoji:, $latex$).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")

Colour = Literal["red", "orange", "green", "blue", "gray"]
VERDICT_COLOURS: dict[Verdict, Colour] = {Verdict.PASS: "green", Verdict.FAIL: "red", Verdict.INCONCLUSIVE: "orange"}
PHASE_COLOURS: dict[PhaseState, Colour] = {
    PhaseState.DONE: "green", PhaseState.CURRENT: "blue", PhaseState.UPCOMING: "gray"}
LABELS = {s.name: s.label for s in FIGURE_SPECS}


def md(text: object) -> str:
    """``text`` as markdown that shows exactly these characters and nothing else."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def fmt(figure: str, value: float | None) -> str:
    """A figure with its unit (slo.figure_specs), or an em dash when no source gives it."""
    return format_value(figure, value)


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
    st.badge(verdict.value.upper(), color=VERDICT_COLOURS[verdict])
    caption = verdict_caption(card) if card is not None else None
    if caption:
        st.caption(md(caption))


def render_timeline(views: Sequence[PhaseView]) -> None:
    """The six weeks side by side; the current phase stands out."""
    for col, p in zip(st.columns(len(views) or 1), views, strict=False):
        with col, st.container(border=True):
            st.badge(p.state.value.upper(), color=PHASE_COLOURS[p.state])
            st.markdown(f"**{md(p.id)}**  \n{md(p.name)}")
            if p.weights:
                st.caption(md(", ".join(f"{s} {w} %" for s, w in p.weights)))


def render_alarms(cards: Sequence[ServiceCard]) -> None:
    """Drift and stale data at the top of the page, loudly: both mean what the page
    shows may not be what the traffic does."""
    drift = [c for c in cards if c.drift]
    stale = [c for c in cards if c.stale]
    if drift:
        st.error("**ROUTER DRIFT** — " + "; ".join(f"{md(c.service)}: {md(c.drift)}"
                                                   for c in drift), icon=":material/error:")
    if stale:
        st.warning("**STALE DATA** — " + "; ".join(f"{md(c.service)}: {md(c.stale)}"
                                                   for c in stale), icon=":material/schedule:")


def render_card(card: ServiceCard) -> None:
    with st.container(border=True):
        st.markdown(f"#### {md(card.service)}  \n{md(card.title)}")
        render_verdict(card.verdict, card)
        nxt = f"next {card.next_weight} %" if card.next_weight is not None else "last step"
        st.metric("candidate weight", f"{card.weight} %", nxt, delta_color="off")
        if card.drift:
            st.error(f"DRIFT: {md(card.drift)}", icon=":material/error:")
        if card.stale:
            st.warning(f"STALE: {md(card.stale)}", icon=":material/schedule:")
        render_figures(card, KEY_FIGURES)
        render_blockers(card)


def render_figures(card: ServiceCard, figures: Iterable[str]) -> None:
    rows = [f"| {LABELS[f]} | {fmt(f, card.baseline.get(f))} | {fmt(f, card.candidate.get(f))} |"
            for f in figures]
    st.markdown("| | baseline | candidate |\n|---|---:|---:|\n" + "\n".join(rows))


def render_blockers(card: ServiceCard) -> None:
    if card.next_weight is None:
        st.success("On its last step: nothing left to approve.")
    elif card.blockers:
        st.markdown(f"**{card.status.value.upper()}** — blocks {card.next_weight} %:\n"
                    + "\n".join(f"- {md(b)}" for b in card.blockers))
    else:
        st.success(f"**READY** for {card.next_weight} %: {md(card.why)}")


def render_success(rows: Sequence[SuccessRow]) -> None:
    if not rows:
        st.info("The plan names no migration-wide success metrics.")
        return
    for col, r in zip(st.columns(len(rows)), rows, strict=False):
        with col, st.container(border=True):
            word = {True: "MET", False: "MISSED", None: "NO DATA"}[r.met]
            colour: Colour = {True: "green", False: "red", None: "gray"}[r.met]  # type: ignore[assignment]
            st.badge(word, color=colour)
            st.metric(LABELS.get(r.figure, r.figure), fmt(r.figure, r.value))
            st.caption(md(f"target {r.target}; {r.basis}"))


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


def render_checks(card: ServiceCard) -> None:
    if not card.checks:
        st.info("No evaluation stored yet for this service.")
        return
    render_table([{"check": c["name"], "verdict": c["verdict"], "baseline": c["baseline"],
                   "candidate": c["candidate"], "limit": c["limit"], "detail": c["detail"]}
                  for c in card.checks])
    for reason in card.reasons:
        st.text(f"• {reason}")
    if card.wait:
        st.info(f"Time until enough data, at the current traffic: about {md(card.wait)}")


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
    render_table([{**d.contract(), "error": d.error} for d in rows])


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


_SERIES = (("latency_p50_ms", "p50", "dot"), ("latency_p95_ms", "p95", "solid"),
           ("latency_p99_ms", "p99", "dash"))
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
    data.append({"type": "scatter", "x": xs, "y": [p.weight for p in points], "name": "weight",
                 "yaxis": _axis(4), "showlegend": False,
                 "line": {"shape": "hv", "color": _COLOURS["candidate"]}})
    layout: dict[str, object] = {
        "height": 900, "margin": {"l": 50, "r": 10, "t": 30, "b": 30},
        "hovermode": "x unified", "legend": {"x": 1.01, "y": 1, "yanchor": "top"},
        "xaxis": {"anchor": _axis(4), "type": "date"},
        **{_axis(i).replace("y", "yaxis"): {"domain": _domain(i), "anchor": "x"}
           for i in range(len(_PANELS))},
        "annotations": [{"text": title, "x": 0.5, "xref": "paper", "y": _domain(i)[1],
                         "yref": "paper", "yanchor": "bottom", "showarrow": False}
                        for i, (_f, _s, title) in enumerate(_PANELS)],
        "shapes": [],
    }
    _mark_decisions(layout, decisions)
    return go.Figure(data=data, layout=layout)


def _line(xs: list[datetime], points: Sequence[SeriesPoint], variant: str, figure: str,
          name: str, dash: str, *, panel: int, scale: float = 1.0,
          legend: bool = True) -> dict[str, object]:
    ys = [_scaled(getattr(p, variant).get(figure), scale) for p in points]
    return {"type": "scatter", "x": xs, "y": ys, "name": name, "mode": "lines",
            "yaxis": _axis(panel), "showlegend": legend, "legendgroup": variant,
            "line": {"color": _COLOURS[variant], "dash": dash, "width": 1.5}}


def _scaled(v: float | None, scale: float) -> float | None:
    return None if v is None else v * scale


def _mark_decisions(layout: dict[str, Any], decisions: Sequence[DecisionView]) -> None:
    for d in decisions:
        if d.state != "applied":
            continue
        colour = "#ff7f0e" if d.override else _DECISION_COLOURS.get(d.action, "#555")
        layout["shapes"].append({"type": "line", "x0": d.at, "x1": d.at, "xref": "x",
                                 "y0": 0, "y1": 1, "yref": "paper",
                                 "line": {"color": colour, "width": 1, "dash": "dot"}})
        layout["annotations"].append({
            "x": d.at, "xref": "x", "y": 1, "yref": "paper", "yanchor": "bottom",
            "showarrow": False, "font": {"size": 10, "color": colour},
            "text": html.escape(f"{d.from_weight}→{d.to_weight} %"),
            "hovertext": html.escape(f"{d.action} by {d.actor}: {d.reason}")})

"""HTML: one self-contained file (plotly embedded, viewable offline, prints well)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from html import escape
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from reports.model import STEP_FIGURES, PhaseReport, ServiceReport
from reports.text import fmt_time, fmt_value
from slo.figure_specs import SPECS
from slo.units import format_duration

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:2rem auto;max-width:1100px;
color:#1b1f24;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;
margin-top:2rem}h3{margin-top:1.4rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass,.met{color:#116329;font-weight:600}.fail,.not-met{color:#cf222e;font-weight:600}
.inconclusive,.no-data{color:#9a6700;font-weight:600}.needs-sign-off{color:#57606a}.signed-off{color:#1a7f37}
.banner{padding:.8rem 1rem;border-radius:6px;margin:1rem 0}
.banner.ready{background:#dafbe1;border:1px solid #116329}
.banner.not-ready{background:#fff8c5;border:1px solid #9a6700}
.override{background:#ffebe9;font-weight:600}.meta{color:#57606a}
.chart{page-break-inside:avoid;break-inside:avoid}
@media print{body{margin:0;max-width:none}h2{page-break-after:avoid}
table{page-break-inside:auto}tr{page-break-inside:avoid}}
"""


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    return get_plotlyjs()


def render_html(report: PhaseReport) -> str:
    e = escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(report.phase_id)}: {e(report.phase_name)} - cutover report</title>",
        f"<style>{_CSS}</style><script>{_plotly_js()}</script></head><body>",
        f"<h1>{e(report.phase_id)}: {e(report.phase_name)}</h1>",
        f"<p class='meta'>{e(report.plan_name)} &middot; report as of {fmt_time(report.at)} "
        f"&middot; period {fmt_time(report.period_start)} to {fmt_time(report.at)}</p>",
        _summary(report), _decommission(report), _criteria(report),
    ]
    for i, svc in enumerate(report.services):
        parts.append(_service(svc, i, report.at))
    parts += [_decisions(report), _rollbacks(report), _alerts(report), _success(report),
              "</body></html>"]
    return "\n".join(parts)


def _cls(status: str | None) -> str:
    return (status or "none").replace(" ", "-")


def _summary(r: PhaseReport) -> str:
    kind = "ready" if r.ready else "not-ready"
    title = "Ready to close the phase" if r.ready else "Not ready to close the phase"
    items = "".join(f"<li>{escape(s)}</li>" for s in r.summary)
    return f"<div class='banner {kind}'><strong>{title}</strong><ul>{items}</ul></div>"


def _decommission(r: PhaseReport) -> str:
    d = r.decommission
    if d is None:
        return ""
    kind = "ready" if d.safe else "not-ready"
    when = f"; at the earliest {fmt_time(d.earliest)}" if d.earliest else ""
    items = "".join(f"<li>{escape(s)}</li>" for s in d.reasons)
    return (f"<div class='banner {kind}'><strong>Decommissioning the baseline: {d.status}"
            f"</strong> (after {format_duration(d.soak)} at the last step, passing, with no "
            f"rollback{when})<ul>{items}</ul></div>")


def _rollbacks(r: PhaseReport) -> str:
    if not r.rollbacks:
        return "<h2>Emergency rollbacks</h2><p>No rollbacks.</p>"
    items = "".join(f"<li>{escape(x.line)}</li>" for x in r.rollbacks)
    return f"<h2>Emergency rollbacks</h2><ul>{items}</ul>"


def _criteria(r: PhaseReport) -> str:
    rows = "".join(f"<tr><td>{escape(c.text)}</td><td class='{_cls(c.status)}'>{c.status}</td>"
                   f"<td>{escape(c.evidence)}</td></tr>" for c in r.criteria)
    return ("<h2>Success criteria</h2><table><tr><th>criterion</th><th>status</th>"
            f"<th>evidence</th></tr>{rows}</table>")


def _service(svc: ServiceReport, index: int, at: datetime) -> str:
    e = escape
    out = [f"<h2>{e(svc.title)} ({e(svc.name)})</h2>",
           f"<p>Route <code>{e(svc.route)}</code>: now at <strong>{svc.weight} %</strong> of "
           f"{svc.last_step} %; latest verdict <span class='{_cls(svc.verdict)}'>"
           f"{e(svc.verdict or 'none')}</span>.</p>"]
    if svc.history:
        out.append(_chart(_step_chart(svc, at), f"steps-{index}"))
    if svc.evaluations:
        out.append(_chart(_figure_chart(svc, "latency_p95_ms", "p95 latency"), f"p95-{index}"))
        out.append(_chart(_figure_chart(svc, "error_rate", "error rate"), f"err-{index}"))
    for st in svc.steps:
        counts = ", ".join(f"{k} {v}" for k, v in st.verdicts.items()) or "none"
        out.append(f"<h3>At {st.weight} % from {fmt_time(st.started)} to {fmt_time(st.ended)}</h3>"
                   f"<p class='meta'>evaluations: {e(counts)}</p>")
        if st.closing:
            out.append(_figures_table(st.closing, st.closing_id))
    return "\n".join(out)


def _figures_table(closing: dict[str, Any], eval_id: int | None) -> str:
    figs = closing["figures"]
    checks = {c["name"]: c for c in closing["checks"]}
    rows = []
    for name in STEP_FIGURES:
        c = checks.get(name, {})
        rows.append(f"<tr><td>{name}</td><td class='num'>{fmt_value(name, figs['baseline'].get(name))}"
                    f"</td><td class='num'>{fmt_value(name, figs['candidate'].get(name))}</td>"
                    f"<td class='num'>{fmt_value(name, c.get('limit'))}</td>"
                    f"<td class='{_cls(c.get('verdict'))}'>{escape(c.get('verdict', '-'))}</td>"
                    f"<td>{escape(c.get('detail', ''))}</td></tr>")
    reasons = "".join(f"<li>{escape(r)}</li>" for r in closing["reasons"])
    return (f"<p>Closing evaluation #{eval_id}: <span class='{_cls(closing['verdict'])}'>"
            f"{escape(closing['verdict'])}</span></p><table><tr><th>figure</th><th>baseline</th>"
            f"<th>candidate</th><th>limit</th><th>verdict</th><th>detail</th></tr>"
            f"{''.join(rows)}</table><ul>{reasons}</ul>")


def _decisions(r: PhaseReport) -> str:
    if not r.decisions:
        return "<h2>Decisions</h2><p>No decisions.</p>"
    rows = "".join(
        f"<tr class='{'override' if d['override'] else ''}'><td>{d['id']}</td>"
        f"<td>{fmt_time(d['at'])}</td><td>{escape(d['service'])}</td><td>{escape(d['action'])}</td>"
        f"<td class='num'>{d['from_weight']} %</td><td class='num'>{d['to_weight']} %</td>"
        f"<td>{escape(d['actor'])}</td><td>{'yes' if d['override'] else 'no'}</td>"
        f"<td>{escape(d['state'])}</td><td>{escape(d['reason'])}</td></tr>" for d in r.decisions)
    return ("<h2>Decisions</h2><table><tr><th>#</th><th>time</th><th>service</th><th>action</th>"
            "<th>from</th><th>to</th><th>actor</th><th>override</th><th>state</th><th>reason</th>"
            f"</tr>{rows}</table>")


def _alerts(r: PhaseReport) -> str:
    if not r.alerts:
        return "<h2>Alerts</h2><p>No alerts.</p>"
    rows = "".join(f"<tr><td>{fmt_time(a['at'])}</td><td>{escape(a['service'] or '')}</td>"
                   f"<td>{escape(a['kind'])}</td><td>{escape(a['severity'])}</td>"
                   f"<td>{escape(a['summary'])}</td><td>{escape(a['deliveries'])}</td></tr>"
                   for a in r.alerts)
    return ("<h2>Alerts</h2><table><tr><th>time</th><th>service</th><th>event</th>"
            f"<th>severity</th><th>summary</th><th>sent to</th></tr>{rows}</table>")


def _success(r: PhaseReport) -> str:
    rows = "".join(f"<tr><td>{m.figure}</td><td class='num'>{fmt_value(m.figure, m.value)}</td>"
                   f"<td>{escape(m.target)}</td><td class='{_cls(m.status)}'>{m.status}</td>"
                   f"<td>{escape(m.basis)}</td></tr>" for m in r.success)
    return ("<h2>Migration-wide success metrics so far</h2><table><tr><th>metric</th>"
            f"<th>value</th><th>target</th><th>status</th><th>how</th></tr>{rows}</table>")


def _chart(fig: go.Figure, div_id: str) -> str:
    fig.update_layout(height=260, margin={"l": 50, "r": 20, "t": 40, "b": 40},
                      template="plotly_white", legend={"orientation": "h"})
    html: str = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                            config={"displayModeBar": False, "staticPlot": False})
    return f"<div class='chart'>{html}</div>"


def _step_chart(svc: ServiceReport, at: datetime) -> go.Figure:
    # the last step lasts until the report's moment
    xs: list[datetime] = [t for t, _ in svc.history] + [at]
    ys = [w for _, w in svc.history] + [svc.history[-1][1]]
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines+markers", line_shape="hv",
                               name="candidate weight %"))
    fig.update_layout(title=f"{svc.name}: traffic on the candidate (%)", yaxis_range=[0, 105])
    return fig


def _figure_chart(svc: ServiceReport, name: str, title: str) -> go.Figure:
    fig = go.Figure()
    spec = SPECS[name]
    scale = 100.0 if spec.share else 1.0   # a share in percent, as the dashboard draws it
    for variant in ("baseline", "candidate"):
        pts = [(t, f.get(variant, {}).get(name)) for t, _, f in svc.evaluations]
        fig.add_trace(go.Scatter(x=[t for t, _ in pts],
                                 y=[v * scale if v is not None else None for _, v in pts],
                                 mode="lines", name=variant, connectgaps=False))
    fig.update_layout(title=f"{svc.name}: {title} ({spec.unit}), baseline vs candidate")
    return fig

"""Markdown: for wikis and tickets.  Deterministic: same report, same bytes."""

from __future__ import annotations

from reports.model import STEP_FIGURES, PhaseReport, ServiceReport
from reports.text import fmt_time, fmt_value, md_escape
from slo.units import format_duration

__all__ = ["render_markdown"]


def render_markdown(report: PhaseReport) -> str:
    e = md_escape
    out = [f"# {e(report.phase_id)}: {e(report.phase_name)}", "",
           f"Plan: {e(report.plan_name)}  ", f"Report as of: {fmt_time(report.at)}  ",
           f"Period: {fmt_time(report.period_start)} to {fmt_time(report.at)}  "]
    if report.starts or report.ends:
        out.append(f"Scheduled: {report.starts or '?'} to {report.ends or '?'}  ")
    out += ["", "## Summary", "",
            f"**{'Ready to close the phase' if report.ready else 'Not ready to close the phase'}**", ""]
    out += [f"- {e(r)}" for r in report.summary]
    if report.decommission is not None:
        d = report.decommission
        out += ["", f"**Decommissioning the baseline: {d.status}** (after "
                f"{format_duration(d.soak)} at the last step, passing, with no rollback"
                + (f"; at the earliest {fmt_time(d.earliest)}" if d.earliest else "") + ")", ""]
        out += [f"- {e(r)}" for r in d.reasons]
    out += ["", "## Success criteria", "", "| criterion | status | evidence |", "|---|---|---|"]
    out += [f"| {e(c.text)} | {c.status} | {e(c.evidence)} |" for c in report.criteria]
    for svc in report.services:
        out += _service(svc)
    out += ["", "## Decisions", ""]
    if report.decisions:
        out += ["| # | time | service | action | from | to | actor | override | state | reason |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        out += [f"| {d['id']} | {fmt_time(d['at'])} | {e(d['service'])} | {d['action']} | "
                f"{d['from_weight']} % | {d['to_weight']} % | {e(d['actor'])} | "
                f"{'**yes**' if d['override'] else 'no'} | {d['state']} | {e(d['reason'])} |"
                for d in report.decisions]
    else:
        out.append("No decisions.")
    out += ["", "## Emergency rollbacks", ""]
    out += [f"- {e(r.line)}" for r in report.rollbacks] or ["No rollbacks."]
    out += ["", "## Alerts", ""]
    if report.alerts:
        out += ["| time | service | event | severity | summary | sent to |",
                "|---|---|---|---|---|---|"]
        out += [f"| {fmt_time(a['at'])} | {e(a['service'])} | {e(a['kind'])} | {a['severity']} | "
                f"{e(a['summary'])} | {e(a['deliveries'])} |" for a in report.alerts]
    else:
        out.append("No alerts.")
    out += ["", "## Migration-wide success metrics so far", "",
            "| metric | value | target | status | how |", "|---|---|---|---|---|"]
    out += [f"| {m.figure} | {fmt_value(m.figure, m.value)} | {e(m.target)} | {m.status} | "
            f"{e(m.basis)} |" for m in report.success]
    return "\n".join(out) + "\n"


def _service(svc: ServiceReport) -> list[str]:
    e = md_escape
    out = ["", f"## {e(svc.title)} ({e(svc.name)})", "",
           f"Route {e(svc.route)}: now at **{svc.weight} %** of {svc.last_step} %; "
           f"latest verdict: **{svc.verdict or 'none'}**.", ""]
    if not svc.steps:
        return [*out, "No traffic step taken yet."]
    out += ["| step | from | to | verdicts | closing verdict |", "|---|---|---|---|---|"]
    for st in svc.steps:
        counts = ", ".join(f"{k} {v}" for k, v in st.verdicts.items()) or "none"
        closing = st.closing["verdict"] if st.closing else "n/a"
        out.append(f"| {st.weight} % | {fmt_time(st.started)} | {fmt_time(st.ended)} | "
                   f"{counts} | {closing} |")
    for st in svc.steps:
        if not st.closing:
            continue
        figs = st.closing["figures"]
        checks = {c["name"]: c for c in st.closing["checks"]}
        out += ["", f"### {e(svc.name)} at {st.weight} % (evaluation #{st.closing_id}, "
                f"{fmt_time(st.closing_at)})", "",
                "| figure | baseline | candidate | limit | verdict |", "|---|---|---|---|---|"]
        for name in STEP_FIGURES:
            c = checks.get(name, {})
            out.append(f"| {name} | {fmt_value(name, figs['baseline'].get(name))} | "
                       f"{fmt_value(name, figs['candidate'].get(name))} | "
                       f"{fmt_value(name, c.get('limit'))} | {c.get('verdict', '-')} |")
        extra = [c for n, c in checks.items() if n not in STEP_FIGURES]
        out += [f"| {e(c['name'])} | | | | {c['verdict']} |" for c in extra]
        if st.closing["reasons"]:
            out += ["", *[f"- {e(r)}" for r in st.closing["reasons"]]]
    return out

"""CSV and JSON: the figures and decisions as data.  Deterministic."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from reports.model import STEP_FIGURES, PhaseReport

__all__ = ["CSV_COLUMNS", "render_csv", "render_json"]

#: one long table: a row per figure of each step, per decision, per alert, per criterion
CSV_COLUMNS = ("section", "service", "weight", "at", "name", "baseline", "candidate",
               "limit", "verdict", "actor", "detail")


def render_csv(report: PhaseReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for svc in report.services:
        for st in svc.steps:
            if not st.closing:
                continue
            figs = st.closing["figures"]
            checks = {c["name"]: c for c in st.closing["checks"]}
            for name in STEP_FIGURES:
                c = checks.get(name, {})
                w.writerow(["figure", svc.name, st.weight, _iso(st.closing_at), name,
                            _num(figs["baseline"].get(name)), _num(figs["candidate"].get(name)),
                            _num(c.get("limit")), c.get("verdict", ""), "",
                            _safe(c.get("detail", ""))])
    for d in report.decisions:
        w.writerow(["decision", d["service"], d["to_weight"], _iso(d["at"]), d["action"],
                    d["from_weight"], d["to_weight"], "", d["state"], _safe(d["actor"]),
                    _safe(("override: " if d["override"] else "") + d["reason"])])
    for a in report.alerts:
        w.writerow(["alert", a["service"] or "", "", _iso(a["at"]), a["kind"], "", "", "",
                    a["severity"], "", _safe(f"{a['summary']} (sent to: {a['deliveries']})")])
    for c in report.criteria:
        w.writerow(["criterion", "", "", _iso(report.at), _safe(c.text), "", "", "", c.status,
                    "", _safe(c.evidence)])
    for m in report.success:
        w.writerow(["success", "", "", _iso(report.at), m.figure, "", _num(m.value), m.target,
                    m.status, "", m.basis])
    for r in report.rollbacks:
        w.writerow(["rollback", "", 0, _iso(r.at), f"rollback #{r.id}", "", _num(r.seconds), "",
                    r.outcome or "unfinished", _safe(r.actor),
                    _safe(f"{', '.join(r.moved) or 'nothing to move'}; why: {r.reason}")])
    flag = report.decommission
    if flag is not None:
        w.writerow(["decommission", "", "", _iso(report.at), "baseline", "", "", "",
                    flag.status, "", _safe("; ".join(flag.reasons))])
    return buf.getvalue()


def render_json(report: PhaseReport) -> str:
    data = asdict(report)
    for svc in data["services"]:
        svc["targets"] = {k: t.model_dump(exclude_none=True)
                          for k, t in sorted(svc["targets"].items())}
    return json.dumps(data, default=_default, sort_keys=True, indent=2) + "\n"


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return _iso(o)
    if isinstance(o, timedelta):   # a duration as seconds, exactly
        return o.total_seconds()
    raise TypeError(f"not serialisable: {type(o).__name__}")


def _iso(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t is not None else ""


def _num(v: float | None) -> str:
    return "" if v is None else repr(float(v)) if not float(v).is_integer() else str(int(v))


def _safe(text: str) -> str:
    """Spreadsheet formula injection: a cell starting with = + - @ is shown as text."""
    s = str(text)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s

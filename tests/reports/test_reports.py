"""Phase reports from a store with history: every format parses back to the figures of
the stored evaluations; Markdown, CSV and JSON are byte-identical for the same moment;
hostile text is escaped; no secret appears."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy.engine import Engine

from reports import build_report, render
from slo.errors import ReportError
from slo.figures import Figures
from slo.plan import Plan
from slo.verdict import Check, Evaluation, Verdict
from store.db import session_scope
from store.evaluations import save_evaluation
from store.events import record_event
from store.rollout import Decision, ServiceState

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
AT = T0 + timedelta(hours=10)
HOSTILE = "<script>alert('x')</script> | **bold** [link](javascript:alert(1)) =cmd|' /C calc'!A0"


def _eval(at: datetime, weight: int, p95: float, verdict: Verdict) -> Evaluation:
    base = Figures(start=at - timedelta(minutes=10), end=at, requests=52000, rps=86.7,
                   error_rate=0.0021, latency_avg_ms=38.1, latency_p50_ms=31.0,
                   latency_p95_ms=39.8, latency_p99_ms=92.3, memory_mb=498.2, cpu_cores=0.41)
    cand = Figures(start=at - timedelta(minutes=10), end=at, requests=weight * 52.0,
                   rps=weight * 0.0867, error_rate=0.001, latency_avg_ms=30.2,
                   latency_p50_ms=25.0, latency_p95_ms=p95, latency_p99_ms=80.0,
                   memory_mb=41.5, cpu_cores=0.05)
    limit = round(1.1 * 39.8, 3)
    checks = (Check("latency_p95_ms", verdict, 39.8, p95, limit,
                    f"p95 {p95} ms vs limit {limit} ms"),
              Check("error_rate", Verdict.PASS, 0.0021, 0.001, 0.01, "0.10 % <= 1 %"),
              Check("latency_avg_ms", Verdict.PASS, 38.1, 30.2, 100.0, "30.2 ms <= 100 ms"))
    return Evaluation(service="files", phase="week-3", weight=weight, at=at, verdict=verdict,
                      reasons=(f"p95 latency {p95} ms vs 1.10 x baseline 39.8 ms",),
                      baseline=base, candidate=cand, checks=checks, plan_hash="h")


@pytest.fixture
def history(engine: Engine) -> Engine:
    """files walked 0 -> 10 -> 25 -> 50 (the last by override), one failed decision."""
    steps = [(0, 10, T0, False, "applied"), (10, 25, T0 + timedelta(hours=2), False, "applied"),
             (25, 50, T0 + timedelta(hours=4), True, "applied"),
             (50, 75, T0 + timedelta(hours=8), False, "failed")]
    with session_scope(engine) as s:
        for i, (frm, to, at, override, state) in enumerate(steps):
            s.add(Decision(at=at, service="files", action="approve", from_weight=frm,
                           to_weight=to, actor="ana@example.org",
                           reason=HOSTILE if i == 2 else f"step {i} looked fine",
                           override=override, state=state))
        for k in range(18):  # every 30 minutes from T0
            at = T0 + timedelta(minutes=30 * k + 15)
            weight = 10 if k < 4 else 25 if k < 8 else 50
            p95 = 41.0 if weight < 50 else 47.5
            save_evaluation(session=s, evaluation=_eval(
                at, weight, p95, Verdict.PASS if weight < 50 else Verdict.FAIL))
        record_event(session=s, at=T0 + timedelta(hours=5), kind="verdict-failed",
                     service="files", severity="critical", summary=HOSTILE)
        s.add(ServiceState(service="files", phase="week-3", weight=50, version=3,
                           step_since=T0 + timedelta(hours=4)))
        # evaluations after the report's moment must not appear
        save_evaluation(session=s, evaluation=_eval(AT + timedelta(hours=1), 50, 99.0,
                                                    Verdict.FAIL))
    return engine


def test_report_model_reflects_the_store(history: Engine, plan: Plan) -> None:
    r = build_report(engine=history, plan=plan, phase_id="week-3", at=AT)
    files = r.services[0]
    assert [st.weight for st in files.steps] == [10, 25, 50]
    assert files.steps[0].verdicts == {"pass": 4}
    assert files.steps[2].verdicts == {"fail": 10}
    assert files.steps[2].closing is not None
    assert files.steps[2].closing["figures"]["candidate"]["latency_p95_ms"] == 47.5
    assert files.weight == 50 and files.verdict == "fail"
    assert not r.ready
    assert any("files is at 50 %, not yet at 100 %" in s for s in r.summary)
    assert any("is failed" in s for s in r.summary)
    assert [d["state"] for d in r.decisions] == ["applied", "applied", "applied", "failed"]
    crit = {c.text: c for c in r.criteria}
    assert crit["No data loss or corruption"].status == "needs sign-off"
    assert crit["Upload/download functionality working"].status == "met"
    assert crit["Performance metrics within targets"].status == "not met"
    success = {m.figure: m for m in r.success}
    assert success["memory_mb"].value == 41.5 and success["memory_mb"].status == "met"
    assert success["rps"].status == "not met"  # 4.3 req/s on the candidate, target >= 200


def test_markdown_csv_json_are_deterministic(history: Engine, plan: Plan) -> None:
    for fmt in ("md", "csv", "json"):
        a = render(build_report(engine=history, plan=plan, phase_id="week-3", at=AT), fmt)
        b = render(build_report(engine=history, plan=plan, phase_id="week-3", at=AT), fmt)
        assert a == b, fmt
        assert b"2026-11-30T19:00" in a or b"2026-11-30 19:00" in a  # the stated moment


def test_csv_figures_match_the_evaluations(history: Engine, plan: Plan) -> None:
    rows = list(csv.DictReader(io.StringIO(render(
        build_report(engine=history, plan=plan, phase_id="week-3", at=AT), "csv").decode())))
    p95 = {(r["weight"], r["name"]): r for r in rows if r["section"] == "figure"}
    assert float(p95[("50", "latency_p95_ms")]["candidate"]) == 47.5
    assert float(p95[("50", "latency_p95_ms")]["baseline"]) == 39.8
    assert float(p95[("50", "latency_p95_ms")]["limit"]) == 43.78
    assert p95[("50", "latency_p95_ms")]["verdict"] == "fail"
    assert float(p95[("10", "memory_mb")]["candidate"]) == 41.5
    decisions = [r for r in rows if r["section"] == "decision"]
    assert len(decisions) == 4
    # a cell that would run as a spreadsheet formula is neutralised
    hostile = next(r for r in decisions if "script" in r["detail"])
    assert hostile["detail"].startswith("override: <script>")
    assert all(not r["detail"].startswith(("=", "+", "@")) for r in rows)


def test_json_round_trips(history: Engine, plan: Plan) -> None:
    data = json.loads(render(build_report(engine=history, plan=plan, phase_id="week-3", at=AT),
                             "json"))
    step = data["services"][0]["steps"][1]
    assert step["weight"] == 25
    assert step["closing"]["figures"]["candidate"]["latency_p95_ms"] == 41.0
    assert data["at"] == "2026-11-30T19:00:00Z" and data["ready"] is False


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if not self._in_script:
            self.text.append(data)


def test_html_is_self_contained_and_escaped(history: Engine, plan: Plan) -> None:
    html = render(build_report(engine=history, plan=plan, phase_id="week-3", at=AT),
                  "html").decode()
    assert "<script src=" not in html and "<link" not in html  # nothing fetched: works offline
    assert "Plotly.newPlot" in html
    parser = _Text()
    parser.feed(html)
    text = " ".join(parser.text)
    assert "<script>alert('x')</script>" in text   # shown as text, not run
    assert "&lt;script&gt;alert(" in html
    assert html.count("<script>alert(") == 0
    assert re.search(r"47\.5", text)
    assert "Not ready to close the phase" in text


def test_markdown_escapes_hostile_text(history: Engine, plan: Plan) -> None:
    md = render(build_report(engine=history, plan=plan, phase_id="week-3", at=AT), "md").decode()
    assert "<script>" not in md and "\\<script\\>" in md
    assert "[link](javascript" not in md
    # one formatter (slo/figure_specs.py): the report's figures carry their units
    assert "| latency_p95_ms | 39.8 ms | 47.5 ms | 43.8 ms | fail |" in md


@pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("pdftotext") is None,
                    reason="needs Debian's chromium and poppler-utils (scripts/setup-dev.sh)")
def test_pdf_text_carries_the_figures(history: Engine, plan: Plan, tmp_path) -> None:
    pdf = render(build_report(engine=history, plan=plan, phase_id="week-3", at=AT), "pdf")
    assert pdf.startswith(b"%PDF")
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "week-3: File storage service" in text
    assert "47.5" in text and "Not ready to close the phase" in text


def test_unknown_phase(history: Engine, plan: Plan) -> None:
    with pytest.raises(ReportError, match="no phase 'week-9'.*week-1"):
        build_report(engine=history, plan=plan, phase_id="week-9", at=AT)


def test_phase_without_history(sqlite_engine: Engine, plan: Plan) -> None:
    r = build_report(engine=sqlite_engine, plan=plan, phase_id="week-2", at=AT)
    assert not r.ready and r.services[0].steps == []
    assert "No decisions." in render(r, "md").decode()


def test_alerts_show_where_they_went(history: Engine, plan: Plan) -> None:
    from alerts.outbox import dispatch

    before = build_report(engine=history, plan=plan, phase_id="week-3", at=AT)
    assert before.alerts[0]["deliveries"] == "not yet dispatched"
    assert dispatch(engine=history, plan=plan, now=AT) >= 2
    after = build_report(engine=history, plan=plan, phase_id="week-3", at=AT)
    # verdict-failed goes to the team's Slack and the journal, not to the change board
    assert after.alerts[0]["deliveries"] == "journal: pending; team-slack: pending"
    assert "journal: pending; team-slack: pending" in render(after, "md").decode()


# -- probes and sign-offs ---------------------------------------------------------------

def _probe(engine: Engine, probe: str, verdict: Verdict, at: datetime, *reasons: str) -> None:
    from slo.probe_results import ProbeResult
    from store.probes import save_probe_result

    with session_scope(engine) as s:
        save_probe_result(session=s, result=ProbeResult(
            probe=probe, kind="files", at=at, verdict=verdict, reasons=reasons,
            phase="week-3"))


def test_criteria_a_probe_covers_say_met_or_not_met_with_its_evidence(
        history: Engine, shipped_plan: Plan) -> None:
    _probe(history, "files-intact", Verdict.PASS, T0 + timedelta(hours=3),
           "50 files match by size and SHA-256")
    _probe(history, "files-intact", Verdict.FAIL, T0 + timedelta(hours=9),
           "runs/fc-7.pod5: same size, different SHA-256 (corrupted)")
    _probe(history, "files-intact", Verdict.PASS, AT + timedelta(minutes=5), "later: fixed")
    crit = {c.text: c for c in build_report(engine=history, plan=shipped_plan,
                                            phase_id="week-3", at=AT).criteria}
    lost = crit["No data loss or corruption"]
    assert lost.status == "not met" and lost.probes == ["files-intact"]
    assert lost.evidence == ("probe files-intact fail at 2026-11-30 18:00 UTC: "
                             "runs/fc-7.pod5: same size, different SHA-256 (corrupted)")
    early = build_report(engine=history, plan=shipped_plan, phase_id="week-3",
                         at=T0 + timedelta(hours=4)).criteria
    assert {c.text: c.status for c in early}["All files accessible through new service"] == "met"


def test_a_probe_never_run_is_no_data(history: Engine, shipped_plan: Plan) -> None:
    crit = {c.text: c for c in build_report(engine=history, plan=shipped_plan,
                                            phase_id="week-3", at=AT).criteria}
    assert crit["No data loss or corruption"].status == "no data"
    assert crit["No data loss or corruption"].evidence == "probe files-intact has not run"


def test_a_sign_off_replaces_needs_sign_off_in_every_format(history: Engine,
                                                            shipped_plan: Plan) -> None:
    from slo.probe_results import Signoff
    from store.probes import record_signoff

    with session_scope(history) as s:
        record_signoff(session=s, signoff=Signoff(
            phase="week-6", criterion="Team trained on new architecture", actor="ana@example.org",
            at=T0 + timedelta(hours=1), note=f"two sessions, 9 of 9 attended {HOSTILE}"))
        record_signoff(session=s, signoff=Signoff(   # after the report's moment: not shown
            phase="week-6", criterion="Documentation updated", actor="lee@example.org",
            at=AT + timedelta(hours=1), note="runbooks"))
    report = build_report(engine=history, plan=shipped_plan, phase_id="week-6", at=AT)
    crit = {c.text: c for c in report.criteria}
    trained = crit["Team trained on new architecture"]
    assert trained.status == "signed off"
    assert trained.evidence.startswith("signed off by ana@example.org at 2026-11-30 10:00 UTC: "
                                       "two sessions, 9 of 9 attended")
    assert crit["Documentation updated"].status == "needs sign-off"
    html = render(report, "html").decode()
    assert "<td class='signed-off'>signed off</td>" in html and "<script>alert" not in html
    md = render(report, "md").decode()
    assert "| Team trained on new architecture | signed off | signed off by ana@example.org" in md


def test_uptime_from_the_health_probe_is_a_success_metric(engine: Engine,
                                                          plan_text: str) -> None:
    """The shipped plan's health probe run for real against a loopback server: three
    runs answered ok, one degraded, one found nothing listening (down), one could not
    look (a missing credential, not counted): uptime 3 of 5, under 99.9 %."""
    from collectors.probes.base import ProbeContext
    from collectors.probes.runner import run_due
    from slo.planfile import parse_plan
    from tests.collectors.test_probes_http import _health, serve

    def runs(url: str, times: range, **env: str) -> None:
        text = plan_text.replace("http://python-gateway.nanopore.svc:8000/health", url)
        if env:
            text = text.replace(f"url: {url}", "url_env: HEALTH_URL")
        plan = parse_plan(text)
        for k in times:
            ctx = ProbeContext(plan=plan, now=T0 + timedelta(minutes=k), engine=engine,
                               env=env)
            assert [r.probe for r in run_due(ctx, only=["healthy"])] == ["healthy"]

    with serve(_health) as url:
        runs(f"{url}/health", range(3))
        runs(f"{url}/degraded", range(3, 4))
    runs(f"{url}/health", range(4, 5))   # nothing listens there now
    runs(f"{url}/health", range(5, 6), NOT_HEALTH_URL="x")
    report = build_report(engine=engine, plan=parse_plan(plan_text), phase_id="week-3", at=AT)
    uptime = next(m for m in report.success if m.figure == "uptime")
    assert (uptime.value, uptime.met, uptime.target) == (0.6, False, ">= 99.900 %"), uptime.basis
    assert uptime.basis == ("3 of 5 runs of healthy found it up (1 answered wrongly, 1 got "
                            "no answer), 2026-11-30 09:00 UTC to 2026-11-30 09:05 UTC; "
                            "1 could not look (not counted)")
    md = render(report, "md").decode()
    assert r"| uptime | 60.000 % | \>= 99.900 % | not met | 3 of 5 runs of healthy" in md
    html = render(report, "html").decode()
    assert "<td>uptime</td><td class='num'>60.000 %</td>" in html
    # the same figure for a page beside the evaluate figures' success metrics
    from reports import probe_success

    assert probe_success(engine=engine, plan=parse_plan(plan_text), at=AT) == [uptime]


def test_an_evaluation_is_filed_under_its_own_weight(engine: Engine, plan: Plan) -> None:
    """The fail that led to an auto-revert (judged at 50 %, in the round that reverted)
    belongs to the 50 % step, not to the 0 % that followed."""
    revert_at = T0 + timedelta(hours=1)
    with session_scope(engine) as s:
        s.add(Decision(at=T0, service="files", action="approve", from_weight=25,
                       to_weight=50, actor="ana@example.org", reason="go", state="applied"))
        s.add(Decision(at=revert_at, service="files", action="auto-revert", from_weight=50,
                       to_weight=0, actor="cutover", reason="3 fails", state="applied"))
        save_evaluation(session=s, evaluation=_eval(revert_at, 50, 60.0, Verdict.FAIL))
    r = build_report(engine=engine, plan=plan, phase_id="week-3", at=AT)
    steps = {st.weight: st for st in r.services[0].steps}
    assert steps[50].verdicts == {"fail": 1} and steps[50].closing_at == revert_at
    assert steps[0].verdicts == {} and steps[0].closing is None


# -- emergency rollbacks and the week-6 decommission flag ---------------------------------

DRY_RUN = "router: {kind: dry-run}"


def _at_full(engine: Engine, plan: Plan, router: object, at: datetime) -> None:
    """Every service to its last step through the gate (overrides: no traffic here), and
    a passing evaluation at it."""
    from rollout.gate import approve

    for svc in plan.services:
        for _ in plan.settings(svc.name).steps:
            approve(engine=engine, plan=plan, router=router, service=svc.name,  # type: ignore[arg-type]
                    actor="ana@example.org", reason="setup", override=True, now=at)
    _passes(engine, plan, at + timedelta(minutes=5))


def _passes(engine: Engine, plan: Plan, at: datetime, verdict: Verdict = Verdict.PASS) -> None:
    with session_scope(engine) as s:
        for svc in plan.services:
            phase = plan.phase_of(svc.name)
            save_evaluation(session=s, evaluation=Evaluation(
                service=svc.name, phase=phase.id if phase else None, weight=100, at=at,
                verdict=verdict, reasons=("at 100 %",), baseline=Figures(at, at),
                candidate=Figures(at, at), checks=(), plan_hash="h"))


def test_a_rollback_is_a_line_of_the_report_and_holds_the_decommission(
        engine: Engine, plan_text: str) -> None:
    from rollout.rollback import roll_back
    from rollout.routers import build_router
    from slo.planfile import parse_plan

    text = plan_text.replace("router: {kind: openshift-route, namespace: nanopore}", DRY_RUN)
    plan = parse_plan(text)
    router = build_router(plan, engine)
    _at_full(engine, plan, router, T0)
    week6 = build_report(engine=engine, plan=plan, phase_id="week-6",
                         at=T0 + timedelta(days=2))
    assert week6.decommission is not None and not week6.decommission.safe
    assert week6.decommission.earliest == T0 + timedelta(days=3)

    rolled = T0 + timedelta(days=2, hours=1)
    roll_back(engine=engine, plan=plan, router=router, actor="lee@example.org",
              reason=HOSTILE, now=rolled)
    _at_full(engine, plan, router, rolled + timedelta(hours=1))
    at = T0 + timedelta(days=4)
    report = build_report(engine=engine, plan=plan, phase_id="week-6", at=at)
    [rb] = report.rollbacks
    assert (rb.actor, rb.reason, rb.outcome) == ("lee@example.org", HOSTILE, "applied")
    assert rb.seconds is not None and rb.seconds >= 0
    assert rb.moved == [f"{s.name} 100 -> 0 % applied" for s in plan.services]
    flag = report.decommission
    assert flag is not None and not flag.safe
    assert flag.earliest == rolled + timedelta(hours=1, days=3)
    assert f"rollback #{rb.id} at 2026-12-02 10:00 UTC: 3d without a rollback are needed, " \
        "until 2026-12-05 10:00 UTC" in flag.reasons

    md = render(report, "md").decode()
    assert "**Decommissioning the baseline: not yet** (after 3d at the last step, passing, " \
        "with no rollback; at the earliest 2026-12-05 11:00 UTC)" in md
    assert f"- rollback #{rb.id} at 2026-12-02 10:00 UTC by lee@example.org: applied in " in md
    assert r"why: \<script\>alert(" in md
    html = render(report, "html").decode()
    assert "Decommissioning the baseline: not yet" in html
    assert "why: &lt;script&gt;alert(" in html
    rows = list(csv.DictReader(io.StringIO(render(report, "csv").decode())))
    [line] = [r for r in rows if r["section"] == "rollback"]
    assert (line["name"], line["verdict"], line["actor"]) == (
        f"rollback #{rb.id}", "applied", "lee@example.org")
    assert [r["verdict"] for r in rows if r["section"] == "decommission"] == ["not yet"]
    data = json.loads(render(report, "json"))
    assert data["decommission"]["soak"] == 3 * 86400 and data["rollbacks"][0]["id"] == rb.id

    safe = build_report(engine=engine, plan=plan, phase_id="week-6",
                        at=rolled + timedelta(days=3, hours=2))
    assert safe.decommission is not None and safe.decommission.safe, safe.decommission
    # a report of another phase lists the rollback too (it moved every service), and has
    # no decommission flag
    week3 = build_report(engine=engine, plan=plan, phase_id="week-3", at=at)
    assert [r.id for r in week3.rollbacks] == [rb.id] and week3.decommission is None


def test_a_fail_at_100_percent_restarts_the_decommission_soak(engine: Engine,
                                                              plan_text: str) -> None:
    from rollout.routers import build_router
    from slo.planfile import parse_plan

    text = plan_text.replace("router: {kind: openshift-route, namespace: nanopore}", DRY_RUN)
    plan = parse_plan(text)
    _at_full(engine, plan, build_router(plan, engine), T0)
    _passes(engine, plan, T0 + timedelta(days=4), Verdict.FAIL)
    _passes(engine, plan, T0 + timedelta(days=4, hours=1))
    flag = build_report(engine=engine, plan=plan, phase_id="week-6",
                        at=T0 + timedelta(days=5)).decommission
    assert flag is not None and not flag.safe
    assert flag.earliest == T0 + timedelta(days=7)
    assert any(r.startswith("auth failed at 100 % at 2026-12-04 09:00 UTC") for r in flag.reasons)

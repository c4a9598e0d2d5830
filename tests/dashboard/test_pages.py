"""Every page of the dashboard, run by AppTest against a seeded SQLite store."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from slo.errors import ReportError
from store.db import session_scope
from store.rollout import Decision, ServiceState
from tests.dashboard.helpers import assert_clean, page_text, plain, texts
from tests.dashboard.seed import HOSTILE, Seeded, seed_store


def test_overview_shows_the_six_weeks_the_cards_and_the_success_metrics(app, seeded):
    at = app()
    assert_clean(at)
    text = page_text(at)
    # three phases done, and the cards of auth and files (at their last step)
    assert text.count("DONE]") == 3 + 2 and "CURRENT]" in text and text.count("UPCOMING]") == 2
    for service in ("auth", "files", "samples", "ai", "audit", "gateway"):
        assert f"#### {service}" in text
    weights = {m.label: m.value for m in at.metric if m.label == "candidate weight"}
    assert weights  # one per card
    # what needs the lead first: samples ready, the three waiting for their phase, the
    # two done (the cards were in plan order: the order is the point of the page now)
    assert [m.value for m in at.metric if m.label == "candidate weight"] == \
        ["25 %", "0 %", "0 %", "0 %", "100 %", "100 %"]
    assert text.index("#### samples") < text.index("#### ai") < text.index("#### auth")
    assert "READY** for 50 %" in text          # samples: pass, soaked
    assert "Migration-wide success metrics" in text
    assert any(b in text for b in ("MET]", "MISSED]"))
    assert "ROUTER DRIFT" not in text and "STALE DATA" not in text


def test_overview_shouts_drift_and_stale_data(app, store: Engine, dry_plan):
    seed_store(store, dry_plan, now=datetime.now(UTC) - timedelta(hours=2),
               history=timedelta(hours=12), every=timedelta(minutes=30))
    with session_scope(store) as s:
        state = s.get(ServiceState, "samples")
        state.router_weight = 75
        s.add(state)
    at = app()
    assert_clean(at)
    errors = [plain(e.value) for e in at.error]
    assert any("ROUTER DRIFT" in e and "75 % to the candidate" in e for e in errors), errors
    warnings = [plain(w.value) for w in at.warning]
    # two hours without a round: the worker is named once, not every service
    assert any("WORKER NOT RUNNING" in w and "2h" in w for w in warnings), warnings
    assert not any("STALE DATA" in w for w in warnings), warnings


def test_an_empty_store_says_so_instead_of_failing(app, store):
    at = app()
    assert_clean(at)
    text = page_text(at)
    assert text.count("NO VERDICT]") == 6
    assert "no candidate figures yet" in text


def test_service_page_has_checks_charts_and_enabled_controls(app, seeded):
    at = app(page="screens/service.py", query={"service": "samples"})
    assert_clean(at)
    assert at.selectbox(key="service").value == "samples"
    assert "samples: Sample management service" in page_text(at)
    assert "| check | verdict | baseline | candidate | limit | detail |" in page_text(at)
    assert "| latency_p95_ms | pass |" in page_text(at)
    charts = at.get("plotly_chart")
    assert len(charts) == 2, "the stacked charts, then this step's strip of verdicts"
    spec = json.loads(charts[0].proto.spec)
    names = {t.get("name") for t in spec["data"]}
    assert {"baseline p95", "candidate p95", "baseline p99", "candidate p50"} <= names
    assert spec["layout"]["shapes"], "decisions marked as vertical lines"
    assert not at.button(key="open_approve").disabled
    assert at.button(key="open_approve").label == "Approve → 50 %"
    assert at.button(key="open_revert").label == "Revert → 10 %"


def test_read_only_viewer_sees_disabled_controls(app, seeded):
    at = app(operator=None, page="screens/service.py", query={"service": "samples"})
    assert_clean(at)
    for key in ("open_approve", "open_revert", "open_revert-to-0", "open_override"):
        assert at.button(key=key).disabled, key
    assert any("Read-only" in i.value for i in at.info)
    assert "not signed in" in page_text(at)


def test_a_signed_in_non_operator_is_read_only(app, seeded):
    at = app(operator="mallory@example.org", page="screens/service.py",
             query={"service": "samples"})
    assert at.button(key="open_approve").disabled
    assert "not an operator of this plan" in page_text(at)


def test_a_single_sign_on_operator_gets_the_controls(app, seeded):
    # what st.user holds once st.login went through with an [auth] section configured
    at = app(operator=None, query={"service": "samples"},
             user={"is_logged_in": True, "email": "lee@example.org", "name": "Lee"})
    assert_clean(at)
    assert "lee@example.org (operator, via single sign-on)" in page_text(at)
    at.switch_page("screens/service.py").run()
    assert not at.button(key="open_approve").disabled


def test_hostile_text_from_logs_is_shown_escaped(app, store: Engine, dry_plan):
    seed_store(store, dry_plan, now=datetime.now(UTC) - timedelta(seconds=5),
               history=timedelta(hours=6), every=timedelta(minutes=30), hostile=True)
    at = app(page="screens/service.py", query={"service": "samples"})
    assert_clean(at)
    # shown verbatim (in the check table, once its escapes are undone) ...
    assert HOSTILE in page_text(at)
    # ... and never as live markdown: every special character is escaped there
    for source in (m.value for m in at.markdown):
        assert not _live_markup(source), source
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    hover = [a.get("hovertext", "") for a in chart["layout"]["annotations"]]
    assert any("&lt;img" in h for h in hover) and not any("<img" in h for h in hover)
    for page in ("screens/overview.py", "screens/decisions.py", "screens/alerts.py"):
        at.switch_page(page).run()
        assert_clean(at)
        for source in texts(at):
            if source in (t.value for t in at.text):
                continue
            assert not _live_markup(source), (page, source)


def _live_markup(source: str) -> list[str]:
    """Markup in markdown source that is not backslash-escaped: an HTML tag, a link, a
    Streamlit colour directive or LaTeX."""
    unescaped = r"(?<!\\)"
    return re.findall(unescaped + r"<(?:img|script)|" + unescaped + r"\]" + unescaped
                      + r"\(javascript|" + unescaped + r":red" + unescaped + r"\[|"
                      + unescaped + r"\$x", source)


def test_decisions_page_filters_and_downloads_csv(app, seeded: Seeded, store: Engine):
    with session_scope(store) as s:
        s.add(Decision(at=datetime.now(UTC), service="samples", action="revert",
                       from_weight=25, to_weight=10, actor="lee@example.org",
                       reason="=HYPERLINK(\"http://evil\")", state="failed", error="409"))
    at = app(page="screens/decisions.py")
    assert_clean(at)
    assert f"{seeded.decisions + 1} decisions" in page_text(at)
    # seven columns that fit 1280 px: the step in one, the error beside the state
    assert "| # | at | service | change | by | state | reason |" in page_text(at)
    assert "| samples | revert 25 → 10 % | lee@example.org | failed: 409 |" in page_text(at)
    at.selectbox(key="f_service").select("samples").run()
    assert "3 decisions" in page_text(at)
    at.selectbox(key="f_action").select("revert").run()
    assert "1 decisions" in page_text(at)
    at.selectbox(key="f_action").select("(all)").run()
    at.text_input(key="f_text").input("soaked").run()
    assert "2 decisions" in page_text(at)
    at.text_input(key="f_text").input("").run()
    at.selectbox(key="f_actor").select("lee@example.org").run()
    assert "1 decisions" in page_text(at)
    assert at.download_button(key="csv").label == "Download CSV"
    assert not at.download_button(key="csv").disabled


def test_decisions_csv_defuses_formulas_and_keeps_every_field():
    from dashboard.components import decisions_csv
    from store.views import DecisionView

    row = DecisionView(id=1, at=datetime(2026, 11, 26, 12, tzinfo=UTC), service="auth",
                       action="approve", from_weight=25, to_weight=50, actor="ana",
                       reason='=HYPERLINK("http://evil")', override=False, state="applied",
                       error=None, evaluation_id=41)
    lines = decisions_csv([row]).decode().splitlines()
    assert lines[0] == ("id,at,service,action,from_weight,to_weight,actor,reason,override,"
                        "state,evaluation_id,error")
    assert lines[1].startswith("1,2026-11-26T12:00:00+00:00,auth,approve,25,50,ana,")
    assert "\"'=HYPERLINK(\"\"http://evil\"\")\"" in lines[1]


def test_reports_page_builds_a_phase_report_for_download(app, seeded):
    at = app(page="screens/reports.py")
    assert_clean(at)
    assert at.selectbox(key="phase").options[0].startswith("week-1")
    at.selectbox(key="phase").select_index(3).run()
    at.radio(key="format").set_value("md").run()
    at.button(key="build").click().run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    assert at.download_button(key="dl").label == "Download week-4.md"
    phase, fmt, payload = at.session_state["report"]
    assert (phase, fmt) == ("week-4", "md") and b"week-4" in payload


def test_reports_page_says_so_when_reports_are_missing(app, seeded, monkeypatch):
    from dashboard import exports

    # the builder runs in a child process, where a missing package cannot be faked from
    # here; the child's side of this is tested below, the page's side here
    def unavailable(**_kw):
        raise exports.ReportUnavailable("this installation has no report builder")
    monkeypatch.setattr(exports, "build", unavailable)
    at = app(page="screens/reports.py")
    at.button(key="build").click().run()
    assert_clean(at)
    assert any("Reports are not available" in w.value for w in at.warning)
    assert not at.get("download_button")


def test_the_report_child_names_a_missing_builder(monkeypatch, capsys):
    from dashboard import exports

    monkeypatch.setitem(sys.modules, "reports", None)   # import reports -> ImportError
    assert exports.main(["week-4", "md", "2026-11-26T12:00:00+00:00", "/dev/null"]) == \
        exports.EXIT_UNAVAILABLE
    assert "no report builder" in capsys.readouterr().err


def test_a_report_that_fails_says_why(plan_file, store_url, seeded):
    from dashboard import exports

    with pytest.raises(ReportError, match="no-such-phase|unknown|phase"):
        exports.build(plan_path=str(plan_file), db_url=store_url, phase_id="no-such-phase",
                      fmt="md", at=datetime.now(UTC))


def test_alerts_page_masks_secrets_and_gates_the_test_button(app, seeded, monkeypatch):
    secret = "https://hooks.slack.com/services/T000/B000/SECRETSECRET"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", secret)
    at = app(operator=None, page="screens/alerts.py")
    assert_clean(at)
    text = page_text(at)
    assert "| team-slack | slack |" in text
    assert "SECRETSECRET" not in text and "SECRETSECRET" not in " ".join(texts(at))
    assert at.button(key="test_send").disabled
    assert "| approved | samples |" in text, "recent events"


def test_every_page_runs_on_postgresql_too(app, engine, dry_plan, db_url):
    seed_store(engine, dry_plan, now=datetime.now(UTC) - timedelta(seconds=5),
               history=timedelta(hours=3), every=timedelta(minutes=30))
    at = app(db=db_url)
    assert [m.value for m in at.metric if m.label == "candidate weight"][:3] == \
        ["25 %", "0 %", "0 %"]
    for page in ("screens/service.py", "screens/decisions.py", "screens/alerts.py",
                 "screens/reports.py"):
        at.switch_page(page).run()
        assert_clean(at)
    with session_scope(engine) as s:
        assert s.exec(select(ServiceState)).all()


def test_an_operator_sends_a_test_message_to_a_real_receiver(app, seeded, monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
        monkeypatch.delenv("TEAMS_WEBHOOK_URL", raising=False)
        at = app(page="screens/alerts.py")
        at.button(key="test_send").click().run()
        assert_clean(at)
    finally:
        server.shutdown()
    assert len(got) == 1, "one message to the one configured webhook"
    text = page_text(at)
    assert "| team-slack | slack |" in text and "sent (HTTP 200)" in text
    assert "TEAMS_WEBHOOK_URL" in text, "the unconfigured channel names its variable"
    assert f":{server.server_port}/***" in text and "/hook" not in text, "the path is masked"


def test_rejected_log_lines_and_their_samples_are_on_the_service_page(app, seeded,
                                                                       store: Engine):
    """The samples the collector keeps are shown, as code (no markdown), with the
    characters that would not show as themselves escaped; the label, which Streamlit
    reads as markdown, is escaped too."""
    from store.rollups import add_rejects

    hidden = "GET /ok\r\x1b[2Koverwritten \u202eevil"
    with session_scope(store) as s:
        add_rejects(session=s, source="/var/log/gateway/access.log", file=HOSTILE,
                    reason="bad-status", count=1234, samples=[HOSTILE, hidden],
                    at=datetime.now(UTC))
        add_rejects(session=s, source="/var/log/gateway/access.log", file="access.log",
                    reason="no-service", count=7, samples=[], at=datetime.now(UTC))
        add_rejects(session=s, source="elsewhere", file="x.log", reason="malformed",
                    count=99, samples=["not this plan's"], at=datetime.now(UTC))
    at = app(page="screens/service.py", query={"service": "samples"})
    assert_clean(at)
    text = page_text(at)
    assert "Log lines not counted" in text and "1,234" in text and "no-service" in text
    assert "x.log" not in text                      # a source the plan does not read
    codes = [c.value for c in at.code]
    assert f"{HOSTILE}\nGET /ok\\x0d\\x1b[2Koverwritten \\u202eevil" in codes
    assert not any("not this plan's" in c for c in codes)
    (label,) = [e.label for e in at.expander if "bad-status" in plain(e.label)]
    assert not _live_markup(label) and HOSTILE in plain(label)
    for source in (m.value for m in at.markdown):
        assert not _live_markup(source), source


def test_no_rejected_line_says_so(app, seeded):
    at = app(page="screens/service.py", query={"service": "samples"})
    assert "No log line has been rejected." in page_text(at)


def test_a_figure_links_to_the_promql_behind_it(app, seeded):
    """Beside each figure of the latest evaluation, one click to the Explore page with the
    service, the variant and the figure chosen (its query as cutover asks it)."""
    from urllib.parse import parse_qs, urlsplit

    at = app(page="screens/service.py", query={"service": "samples"})
    assert_clean(at)
    links = [m for m in (e.value for e in at.markdown) if "| PromQL |" in m]
    assert links, "no figure table with its queries"
    found = re.findall(r"\[(baseline|candidate)\]\((explore\?[^)]+)\)", links[0])
    asked = {(v, *(parse_qs(urlsplit(u).query)[k][0] for k in ("service", "variant",
                                                                "figure")))
             for v, u in found}
    assert ("candidate", "samples", "candidate", "error_rate") in asked
    assert ("baseline", "samples", "baseline", "latency_p95_ms") in asked
    # the overview's cards link the same way
    at.switch_page("screens/overview.py").run()
    assert any("explore?service=samples&variant=candidate&figure=error_rate" in e.value
               for e in at.markdown)


def test_the_charts_range_takes_this_step_the_phase_or_a_day(app, seeded, store):
    """Beside the fixed spans: the current step (from its start), the phase (from the
    service's first decision) and a day picked by hand."""
    from store.views import service_states

    with session_scope(store) as s:
        since = service_states(session=s)["samples"].step_since
    at = app(page="screens/service.py", query={"service": "samples"})
    for span in ("this step", "the phase", "since…"):
        at.segmented_control(key="range").set_value(span).run()
        assert_clean(at)
        chart = json.loads(at.get("plotly_chart")[0].proto.spec)
        xs = [x for t in chart["data"] if t.get("name") != "weight" for x in t["x"]]
        first = datetime.fromisoformat(min(xs)).replace(tzinfo=UTC)
        if span == "this step":
            assert first >= since.replace(second=0, microsecond=0), (first, since)
        else:
            assert first < since, f"{span} reaches before the step"


def test_the_history_of_one_step_as_a_strip_each_evaluation_openable(app, seeded, store):
    """Every evaluation made at samples' current step, as a strip of verdicts; picking
    one shows its checks (a failing one made for the test opens with its failing check)."""
    from slo.verdict import Verdict
    from store.evaluations import EvaluationRow
    from store.views import service_states

    with session_scope(store) as s:
        state = service_states(session=s)["samples"]
        rows = s.exec(select(EvaluationRow).where(EvaluationRow.service == "samples",
                                                  EvaluationRow.weight == state.weight,
                                                  EvaluationRow.at >= state.step_since)).all()
        assert len(rows) >= 2
        oldest = min(rows, key=lambda r: r.at)
        oldest.verdict = Verdict.FAIL.value
        oldest.checks = [{"name": "error_rate", "verdict": "fail", "baseline": 0.01,
                          "candidate": 0.031, "limit": 0.01, "detail": "3.1 % > 1 %"}]
        s.add(oldest)
        count, at = len(rows), oldest.at
    at_ = app(page="screens/service.py", query={"service": "samples"})
    assert_clean(at_)
    text = page_text(at_)
    assert f"{count} evaluations at {state.weight} % since" in text and "1 fail" in text
    strip = json.loads(at_.get("plotly_chart")[1].proto.spec)   # below the charts
    marks = {t["name"]: len(t["x"]) for t in strip["data"]}
    assert marks["fail"] == 1 and sum(marks.values()) == count
    box = at_.selectbox(key="step_evaluation")
    assert box.options[-1] == f"{at:%Y-%m-%d %H:%M:%S} UTC: FAIL"   # the oldest, last
    box.select_index(len(box.options) - 1).run()
    assert "| error_rate | fail | 1.00 % | 3.10 % | 1.00 % | 3.1 % > 1 % |" in page_text(at_)

"""The control room in real Chromium against the real ``cutover demo``: what a migration
lead sees first, and what a link from a chat alert opens.

The demo is shared by this module's tests (one per test process, see tests/dashboard/demo.py);
a test that needs a dashboard nobody has opened yet starts ``cutover dashboard`` itself
on the demo's plan and store."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.demo import ROOT, VIEWPORT, RunningDemo, shoot, wait_healthy
from tests.dashboard.test_browser import CHROMIUM, free_port

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")]

#: Streamlit's centered layout caps the main column at 736 px; "wide" fills the window
CENTERED_MAX_PX = 736


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"   # a zombie has let go of its port


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _cutover_dashboard(demo: RunningDemo, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CUTOVER_DASHBOARD_OPERATOR": "ana@example.org"}
    env.pop("CUTOVER_TRUST_FORWARDED_USER", None)
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "cutover", "--plan", str(demo.plan),
                                 "--db", demo.db_url, "dashboard", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
def fresh_dashboard(demo: RunningDemo, tmp_path: Path) -> Iterator[str]:
    """``cutover dashboard`` on the demo's store, started for this test: no page of it has
    been opened yet (as after a pod restart, or on a new replica)."""
    port = free_port()
    proc = _cutover_dashboard(demo, port, tmp_path / "dashboard.out")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=180)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_a_deep_link_on_a_fresh_dashboard_opens_the_whole_app(fresh_dashboard: str,
                                                              chromium: Any) -> None:
    from playwright.sync_api import expect

    page = chromium.new_page(viewport=VIEWPORT)
    page.goto(fresh_dashboard + "/service?service=files")   # the first visit of all
    expect(page.get_by_role("heading", name="files: File storage service")).to_be_visible(
        timeout=60_000)
    nav = page.get_by_test_id("stSidebarNav")
    # the app's own navigation, not a list of the files in a folder
    expect(nav.get_by_role("link", name="Overview")).to_be_visible()
    expect(nav.get_by_role("link", name="Decisions")).to_be_visible()
    expect(nav).not_to_contain_text("app")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text("Nanopore Tracking - Python microservices")
    expect(sidebar).to_contain_text("ana@example.org")
    box = page.get_by_test_id("stMainBlockContainer").bounding_box()
    assert box is not None and box["width"] > CENTERED_MAX_PX, box


def test_cutover_dashboard_stops_its_streamlit_child_on_sigterm(demo: RunningDemo,
                                                                 tmp_path: Path) -> None:
    port = free_port()
    proc = _cutover_dashboard(demo, port, tmp_path / "dashboard.out")
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, timeout=180)
        children = _children(proc.pid)
        assert children, "cutover dashboard runs Streamlit as a child process"
        proc.send_signal(signal.SIGTERM)              # what a pod's stop or systemd sends
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    left = [c for c in children if _alive(c)]
    for c in left:                                    # do not leave it to the next test
        os.kill(c, signal.SIGKILL)
    assert not left, f"Streamlit ({left}) outlived cutover dashboard"
    assert not _listening(port), f"port {port} still answers"


def test_the_demo_opens_without_a_false_alarm(demo: RunningDemo, chromium: Any) -> None:
    """auth is done (100 %) and nothing judges it any more: its old evaluation is not
    stale data.  What says the data is fresh is the worker's heartbeat, shown instead."""
    from playwright.sync_api import expect

    page = chromium.new_page(viewport=VIEWPORT)
    page.goto(demo.url + "/")
    expect(page.get_by_text("Migration-wide success metrics")).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"worker \S+: last round \S+ ago, every 30s"))
           ).to_be_visible(timeout=30_000)
    expect(page.get_by_text("STALE DATA")).to_have_count(0)
    expect(page.get_by_text("WORKER NOT RUNNING")).to_have_count(0)
    shoot(page, "overview")


def test_approve_says_why_it_is_not_available_and_confirm_stays_in_view(
        demo: RunningDemo, chromium: Any) -> None:
    """files is held at 25 % by week 3's corrupted upload: Approve → 50 % is disabled
    and names the probe and the file.  The operator goes past it through the override
    dialog (whose Reason box and Confirm stay on screen at 800 px, the verdict's reasons
    folded below them); at 50 % the step has not soaked, so Approve → 75 % is not
    offered as if it were: it is disabled and says what it waits for."""
    from playwright.sync_api import expect

    page = chromium.new_page(viewport=VIEWPORT)
    page.goto(demo.url + "/service?service=files")
    approve = page.get_by_role("button", name="Approve → 50 %")
    expect(approve).to_be_disabled(timeout=60_000)
    held = page.get_by_test_id("stAlert").filter(has_text="is not available yet")
    expect(held).to_contain_text("files-intact", timeout=30_000)
    expect(held).to_contain_text("runs/fc-8/sample-03.pod5")
    shoot(page, "service-held")
    page.get_by_text("Override: go past a verdict that is not PASS").click()
    page.get_by_role("button", name="Override → 50 %").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("files: 25 % → 50 % on route nanopore-files",
                                   timeout=15_000)
    reason = dialog.get_by_label("Reason (kept in the audit trail)")
    confirm = dialog.get_by_role("button", name="Override and approve", exact=True)
    expect(dialog.get_by_text(re.compile(r"The verdict's reasons \(\d+\)"))).to_be_visible()
    shoot(page, "dialog")
    for control in (reason, confirm):
        box = control.bounding_box()
        assert box is not None and box["y"] + box["height"] <= VIEWPORT["height"], box
    reason.fill("the corrupted upload was a test file, re-uploaded; the rest are intact")
    reason.press("Control+Enter")
    dialog.get_by_text("I take responsibility for going past the verdict").click()
    expect(confirm).to_be_enabled(timeout=15_000)
    confirm.click()
    expect(page.get_by_text("APPLIED")).to_be_visible(timeout=30_000)

    held = page.get_by_role("button", name="Approve → 75 %")
    expect(held).to_be_disabled(timeout=30_000)
    needs = page.get_by_text("Approve → 75 % is not available yet.")
    expect(needs).to_be_visible()
    expect(page.get_by_test_id("stAlert").filter(has_text="is not available yet")
           ).to_contain_text(re.compile(r"soak: \S+ more of 15m at 50 %"))
    expect(page.get_by_text("PROGRESSING", exact=True).first).to_be_visible()
    shoot(page, "service-waiting")


def test_after_the_ai_services_auto_revert(demo: RunningDemo, chromium: Any) -> None:
    """The demo's story: the AI service pushed to 50 % fails and the worker sends it back.
    The overview puts it first, says who reverted it, when and why, shows no verdict at
    0 % (the fail was 50 %'s, as `cutover status` has it) and no green READY beside it,
    and no stale-data alarm for a service nobody judges now."""

    from playwright.sync_api import expect

    # the command the demo prints for its story, run as printed: it gets ai to 50 %
    loop = _printed_story_command(demo)
    ran = subprocess.run(["bash", "-c", loop], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PATH": f"{Path(sys.executable).parent}:"
                                                    f"{os.environ.get('PATH', '')}"})
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert demo.status()["ai"]["weight"] == 50, ran.stdout
    ai = demo.wait_for("ai", "reverted", timeout=420)
    assert ai["verdict"] is None and ai["weight"] == 0

    page = chromium.new_page(viewport=VIEWPORT)
    page.goto(demo.url + "/")
    first = page.get_by_test_id("stColumn").filter(
        has=page.get_by_role("heading", name="ai", exact=True))
    expect(first).to_contain_text("AUTO-REVERTED", timeout=60_000)
    expect(first).to_contain_text(re.compile(
        r"auto-reverted by cutover at \d{4}-\d\d-\d\d \d\d:\d\d UTC from 50 % to 0 %"))
    expect(first).to_contain_text("NO VERDICT AT 0 %")
    expect(first).to_contain_text("last verdict FAIL, judged at 50 %")
    expect(first).not_to_contain_text("READY for")
    cards = page.get_by_role("heading", level=4)
    expect(cards.first).to_have_text("ai", timeout=15_000)   # what needs the lead first
    expect(page.get_by_text("STALE DATA")).to_have_count(0)
    shoot(page, "overview-auto-reverted")

    page.goto(demo.url + "/service?service=ai")
    banner = page.get_by_test_id("stAlert").filter(has_text="auto-reverted by cutover at")
    expect(banner).to_contain_text("3 consecutive fail verdicts at 50 %", timeout=60_000)
    expect(page.get_by_text("NO VERDICT AT 0 %")).to_be_visible()
    expect(page.get_by_text("READY for 10 %")).to_have_count(0)
    shoot(page, "service-auto-reverted")


def _printed_story_command(demo: RunningDemo) -> str:
    """The shell loop ``cutover demo`` prints for its story (one approve a step)."""
    printed = demo.output.read_text()
    assert "3 approves, one step each (0 % -> 10 % -> 25 % -> 50 %)" in printed, printed
    loop = next((line.strip() for line in printed.splitlines()
                 if line.strip().startswith("for step in")), None)
    assert loop is not None and loop.endswith("done"), printed
    return loop


def test_the_overview_gives_each_verdict_as_cutover_status_does(demo: RunningDemo,
                                                                chromium: Any) -> None:
    """A card shows the verdict ``cutover status`` gives, with the weight it was made at;
    a service with no verdict at its weight (done at 100 %, not started) says so in both.
    Only services whose status did not change while the page loaded are compared."""
    from playwright.sync_api import expect

    before = demo.status()
    page = chromium.new_page(viewport=VIEWPORT)
    page.goto(demo.url + "/")
    expect(page.get_by_text("Migration-wide success metrics")).to_be_visible(timeout=60_000)
    cards = {name: page.get_by_test_id("stColumn").filter(
        has=page.get_by_role("heading", name=name, exact=True)) for name in before}
    texts = {name: card.first.inner_text(timeout=30_000) for name, card in cards.items()}
    after = demo.status()
    steady = [n for n in before if before[n] == after[n]]
    assert {"auth", "samples", "audit", "gateway"} <= set(steady), (before, after)
    for name in steady:
        s, text = after[name], texts[name]
        if s["verdict"] is None:
            assert f"NO VERDICT AT {s['weight']} %" in text or "NO VERDICT" in text, text
            assert "READY for" not in text or s["weight"] == 0, text
        else:
            assert s["verdict"].upper() in text, (s, text)
            assert f"judged at {s['evaluated_weight']} %" in text, (s, text)


_UNITS = ("ms", "%", "req/s", "MiB", "cores")


def _unit(text: str) -> str | None:
    found = re.search(r"\d\s*(" + "|".join(re.escape(u) for u in _UNITS) + r")(?![\w/])",
                      text)
    return found.group(1) if found else None


def test_each_success_metric_and_its_target_read_in_one_unit(demo: RunningDemo,
                                                             chromium: Any) -> None:
    """"0.06 %" beside "target ≤ 0.01" was two units for one figure: every migration-wide
    metric's value and its target carry the same unit."""
    from playwright.sync_api import expect

    page = chromium.new_page(viewport=VIEWPORT)
    page.goto(demo.url + "/")
    heading = page.get_by_role("heading", name="Migration-wide success metrics")
    expect(heading).to_be_visible(timeout=60_000)
    metrics = page.get_by_test_id("stVerticalBlock").filter(
        has=page.get_by_test_id("stMetric")).filter(has_text="target ")
    expect(metrics.first).to_be_visible(timeout=30_000)
    seen = 0
    for i in range(metrics.count()):
        block = metrics.nth(i)
        if block.get_by_test_id("stMetric").count() != 1:
            continue   # a block holding several cards: each is seen on its own
        value = block.get_by_test_id("stMetricValue").inner_text()
        target = re.search(r"target ([^;]+)", block.inner_text())
        assert target is not None, block.inner_text()
        if value.strip() in ("—", ""):
            continue
        assert _unit(value) == _unit(target.group(1)), (value, target.group(1))
        seen += 1
    assert seen >= 4, f"only {seen} metrics with a value and a target"


def test_the_decisions_table_fits_the_page(demo: RunningDemo, chromium: Any) -> None:
    """At 1280 px the decisions table is no wider than the page: no column cut off."""
    from playwright.sync_api import expect

    page = chromium.new_page(viewport=VIEWPORT)
    page.goto(demo.url + "/decisions")
    table = page.locator("table").first
    expect(table).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"^\d+ decisions$"))).to_be_visible(timeout=30_000)
    main = page.get_by_test_id("stMainBlockContainer").bounding_box()
    box = table.bounding_box()
    assert main is not None and box is not None
    assert box["x"] + box["width"] <= main["x"] + main["width"] + 1, (box, main)
    overflow = table.evaluate("t => t.scrollWidth - t.clientWidth")
    assert overflow <= 1, overflow
    assert table.locator("th").all_inner_texts()[:4] == ["#", "at", "service", "change"]


def _luminance(css: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_the_browsers_light_or_dark_preference_chooses_the_theme(
        demo: RunningDemo, chromium: Any) -> None:
    """Both themes keep cutover's blue (not Streamlit's red, kept for failures): the
    dashboard sets it per theme, so a custom colour does not pin the light one."""
    from playwright.sync_api import expect

    seen = {}
    for scheme in ("light", "dark"):
        page = chromium.new_page(viewport=VIEWPORT, color_scheme=scheme)
        page.goto(demo.url + "/")
        expect(page.get_by_text("Migration-wide success metrics")).to_be_visible(
            timeout=60_000)
        app = page.get_by_test_id("stApp")
        seen[scheme] = _luminance(app.evaluate("e => getComputedStyle(e).backgroundColor"))
        button = page.get_by_role("button", name="Roll back everything").first
        r, g, b = (int(v) for v in re.findall(r"\d+", button.evaluate(
            "e => getComputedStyle(e).backgroundColor"))[:3])
        assert b > r and b > g, (scheme, r, g, b)       # blue in both
        page.close()
    assert seen["light"] > 0.8 and seen["dark"] < 0.2, seen

"""End to end in real Chromium: the dashboard served by ``streamlit run`` (the argv
``cutover dashboard`` uses) on a seeded store with the dry-run router; an operator
approves a step through the confirmation dialog and sees the new weight.

Debian's chromium through Playwright, no browser download.  Set
``CUTOVER_SCREENSHOTS=DIR`` to keep the overview and service page screenshots there (the
README's pictures are of the real demo: scripts/screenshots.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from dashboard import launch
from store.db import session_scope
from store.rollout import ServiceState, dry_run_weight
from tests.dashboard.seed import seed_store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the dashboard exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the dashboard did not answer at {url} in {timeout:.0f} s")


def serve(plan_file: Path, db_url: str, port: int, log: Path,
          operator: str | None) -> subprocess.Popen[bytes]:
    env = launch.environment(str(plan_file), db_url)
    env.pop("CUTOVER_TRUST_FORWARDED_USER", None)
    if operator:
        env["CUTOVER_DASHBOARD_OPERATOR"] = operator
    return subprocess.Popen(launch.command(port, str(plan_file), db_url), env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def settle(page: Any) -> None:
    """Wait until no element is a loading skeleton and no script run is in progress."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stMetricValue").first).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=30_000)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=30_000)
    page.wait_for_timeout(500)


@pytest.fixture
def dashboard_url(plan_file: Path, store_url: str, store: Engine, dry_plan,
                  tmp_path: Path) -> Iterator[str]:
    seed_store(store, dry_plan, now=datetime.now(UTC) - timedelta(seconds=5),
               history=timedelta(days=2), every=timedelta(minutes=10))
    port = free_port()
    proc = serve(plan_file, store_url, port, tmp_path / "streamlit.log", "ana@example.org")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_approve_a_step_through_the_dialog_in_chromium(dashboard_url: str, store: Engine,
                                                       tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    keep = os.environ.get("CUTOVER_SCREENSHOTS")
    shots = Path(keep) if keep else tmp_path
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # tall enough for the whole overview in a screenshot; small otherwise (drawing
            # a tall page in a GPU-less browser slows every other test on the machine)
            page = browser.new_page(viewport={"width": 1440, "height": 2200 if keep else 900})
            page.goto(dashboard_url + "/")
            expect(page.get_by_text("Migration-wide success metrics")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("CURRENT", exact=True)).to_be_visible()
            if keep:
                settle(page)
                page.screenshot(path=str(shots / "overview.png"))

            # the card's link: same session, no reload of the app
            page.get_by_role("link", name="samples: charts and actions").click()
            approve = page.get_by_role("button", name="Approve → 50 %")
            expect(approve).to_be_enabled(timeout=30_000)
            if keep:  # plotly.js takes seconds to draw in a GPU-less headless browser
                expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
                settle(page)
                page.screenshot(path=str(shots / "service.png"))

            approve.click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_be_visible(timeout=15_000)
            expect(dialog).to_contain_text("samples: 25 % → 50 % on route nanopore-samples")
            expect(dialog).to_contain_text("PASS")
            reason = dialog.get_by_label("Reason (kept in the audit trail)")
            reason.fill("p95 flat for two days")
            reason.press("Control+Enter")        # a text area sends its value on Ctrl+Enter
            confirm = dialog.get_by_role("button", name="Approve", exact=True)
            expect(confirm).to_be_enabled(timeout=15_000)
            if keep:
                page.screenshot(path=str(shots / "dialog.png"))
            confirm.click()

            expect(page.get_by_text("APPLIED")).to_be_visible(timeout=20_000)
            expect(dialog).to_be_hidden()
            weight = page.get_by_test_id("stMetricValue").first
            expect(weight).to_have_text("50 %", timeout=15_000)
        finally:
            browser.close()
    with session_scope(store) as s:
        assert s.get(ServiceState, "samples").weight == 50
        assert dry_run_weight(session=s, service="samples") == 50


def test_rejected_log_lines_are_shown_escaped_in_chromium(dashboard_url: str, store: Engine,
                                                          tmp_path: Path):
    """The service page's rejected lines at 1280x800: the samples are text in a code
    block, markup and invisible characters as written and escaped, never live."""
    from playwright.sync_api import expect, sync_playwright

    from store.rollups import add_rejects

    sample = '<img src=x onerror="alert(1)"> **bold** \x1b[31mred\u202e'
    with session_scope(store) as s:
        add_rejects(session=s, source="/var/log/gateway/access.log",
                    file="/var/log/gateway/access.log", reason="bad-latency", count=3,
                    samples=[sample], at=datetime.now(UTC))
    keep = os.environ.get("CUTOVER_SCREENSHOTS")
    shots = Path(keep) if keep else tmp_path
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            alerts: list[str] = []
            page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
            page.goto(dashboard_url + "/service?service=samples")
            heading = page.get_by_text("Log lines not counted")
            expect(heading).to_be_visible(timeout=30_000)
            samples = page.get_by_text("bad-latency: 1 of 3 lines")
            expect(samples).to_be_visible(timeout=30_000)
            # the click event itself: the live panel above redraws every few seconds,
            # and a loaded machine's browser may never see the summary "stable" meanwhile
            samples.dispatch_event("click")
            code = page.get_by_test_id("stCode").last
            expect(code).to_contain_text('<img src=x onerror="alert(1)"> **bold** '
                                         '\\x1b[31mred\\u202e', timeout=15_000)
            heading.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / "rejects.png"))
            assert page.locator("img[src=x]").count() == 0 and alerts == []
        finally:
            browser.close()
    assert (shots / "rejects.png").stat().st_size > 10_000

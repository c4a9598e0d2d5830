"""End to end, as a newcomer would: `cutover demo` (the real command: history, worker,
simulator, dashboard), opened in real Chromium; the file storage service is held by
week 3's corrupted upload, the operator goes past it through the override dialog, sees
the new weight, and Ctrl-C stops it all."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.dashboard.test_browser import CHROMIUM, CHROMIUM_ARGS, free_port
from tests.support.listening import listening_on

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "plans" / "nanopore.yaml"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"cutover demo exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the demo's dashboard did not answer at {url} in {timeout:.0f} s")


def test_the_demo_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    out = (tmp_path / "demo.out").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "cutover", "--plan", str(PLAN), "demo",
                             "--dir", str(tmp_path / "demo"), "--port", str(port)],
                            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        assert listening_on(port) == {"127.0.0.1"}   # the demo's operator is anyone who reaches it
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                fetched: list[str] = []
                page.on("request", lambda request: fetched.append(request.url))
                page.goto(url + "/")
                expect(page.get_by_text("Migration-wide success metrics")).to_be_visible(
                    timeout=60_000)
                page.get_by_role("link", name="files: charts and actions").click()
                approve = page.get_by_role("button", name="Approve → 50 %")
                expect(approve).to_be_disabled(timeout=60_000)   # files-intact holds it
                page.get_by_text("Override: go past a verdict that is not PASS").click()
                page.get_by_role("button", name="Override → 50 %").click()
                dialog = page.get_by_role("dialog")
                expect(dialog).to_contain_text("files: 25 % → 50 % on route nanopore-files",
                                               timeout=15_000)
                reason = dialog.get_by_label("Reason (kept in the audit trail)")
                reason.fill("the corrupted upload was re-uploaded; the rest are intact")
                reason.press("Control+Enter")
                dialog.get_by_text("I take responsibility for going past the verdict").click()
                confirm = dialog.get_by_role("button", name="Override and approve",
                                             exact=True)
                expect(confirm).to_be_enabled(timeout=15_000)
                confirm.click()
                expect(page.get_by_text("APPLIED")).to_be_visible(timeout=30_000)
                expect(page.get_by_test_id("stMetricValue").first).to_have_text(
                    "50 %", timeout=15_000)
                # a control room works offline: no font, icon or script from elsewhere
                elsewhere = [u for u in fetched if not u.startswith((url, "data:", "blob:"))]
                assert not elsewhere, elsewhere
            finally:
                browser.close()
        status = subprocess.run(
            [sys.executable, "-m", "cutover", "--plan", str(tmp_path / "demo" / "plan.yaml"),
             "--db", f"sqlite:///{tmp_path / 'demo' / 'cutover.db'}", "status", "--json"],
            capture_output=True, text=True, cwd=ROOT, timeout=60, check=True)
        files = next(s for s in json.loads(status.stdout)["services"] if s["service"] == "files")
        assert (files["weight"], files["router_weight"], files["drift"]) == (50, 50, False)
    finally:
        proc.send_signal(signal.SIGINT)            # Ctrl-C
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("cutover demo did not stop within 30 s of Ctrl-C") from None
        out.close()
    assert code in (0, 130), (tmp_path / "demo.out").read_text()[-2000:]
    assert "cutover demo: stopped" in (tmp_path / "demo.out").read_text()

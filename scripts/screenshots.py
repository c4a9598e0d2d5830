"""The README's pictures: every page of the real ``cutover demo`` in Debian's Chromium at
1280 x 800, once as the window shows it and once at full length, at the demo's start and
again after the AI service's auto-revert.

    .venv/bin/python scripts/screenshots.py [--out docs/screens]

It starts ``cutover demo`` in a temporary folder, walks every page (the service page for
files, held at 25 % by a corrupted upload, and for ai), then pushes ai from 0 to 50 % as
the demo's story says (three approves with ``--override``), waits until the worker sends
it back, and walks every page again.  Writes ``<state>-<page>.png`` (the window) and
``<state>-<page>-full.png`` (the page at its whole height), and at the start the override
dialog for files filled in (``start-override-dialog.png``), and prints what it wrote."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.dashboard.demo import VIEWPORT, RunningDemo, start, stop  # noqa: E402
from tests.dashboard.test_browser import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

#: (file name, url path, a text the page shows once it has run)
PAGES = [
    ("overview", "/", "Migration-wide success metrics"),
    ("service-files", "/service?service=files", "Over time"),
    ("service-ai", "/service?service=ai", "Over time"),
    ("decisions", "/decisions", "Download CSV"),
    ("reports", "/reports", "Build report"),
    ("alerts", "/alerts", "Recent events"),
    ("explore", "/explore", "Explore"),
]
AUTO_REVERT_WAIT_S = 600


def settled(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=60_000)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60_000)
    page.wait_for_timeout(1500)


def full_height(page: Any) -> int:
    """The page's whole height: Streamlit scrolls its main block, not the document."""
    return int(page.evaluate(
        "Math.max(document.documentElement.scrollHeight, ...Array.from("
        "document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer],"
        " section.main'), e => e.scrollHeight))"))


def walk(browser: Any, demo: RunningDemo, state: str, out: Path) -> list[Path]:
    from playwright.sync_api import expect

    written = []
    for name, path, marker in PAGES:
        page = browser.new_page(viewport=VIEWPORT)
        try:
            page.goto(demo.url + path)
            expect(page.get_by_text(marker).first).to_be_visible(timeout=90_000)
            settled(page)
            window = out / f"{state}-{name}.png"
            page.screenshot(path=str(window))
            height = max(VIEWPORT["height"], full_height(page))
            page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
            settled(page)
            whole = out / f"{state}-{name}-full.png"
            page.screenshot(path=str(whole), full_page=True)
            written += [window, whole]
        finally:
            page.close()
    if state == "start":
        written.append(override_dialog(browser, demo, out / f"{state}-override-dialog.png"))
    return written


def override_dialog(browser: Any, demo: RunningDemo, path: Path) -> Path:
    """The override dialog for files, held at 25 %, filled in but not confirmed."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(demo.url + "/service?service=files")
        expect(page.get_by_role("button", name="Approve → 50 %")).to_be_disabled(
            timeout=90_000)
        page.get_by_text("Override: go past a verdict that is not PASS").click()
        page.get_by_role("button", name="Override → 50 %").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("files: 25 % → 50 %", timeout=15_000)
        dialog.get_by_label("Reason (kept in the audit trail)").fill(
            "the corrupted upload was re-uploaded; the rest are intact")
        dialog.get_by_text("I take responsibility for going past the verdict").click()
        settled(page)
        page.screenshot(path=str(path))
    finally:
        page.close()
    return path


def auto_revert_ai(demo: RunningDemo) -> dict[str, Any]:
    for _ in range(3):   # 0 -> 10 -> 25 -> 50 %, one step an approve
        demo.cli("approve", "ai", "--override", "--actor", "ana@example.org",
                 "--reason", "push the AI service (the demo's story)")
    return demo.wait_for("ai", "reverted", timeout=AUTO_REVERT_WAIT_S)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screens")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="cutover-screens-") as tmp:
        demo = start(Path(tmp), free_port())
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    written = walk(browser, demo, "start", args.out)
                    ai = auto_revert_ai(demo)
                    print(f"ai auto-reverted: weight {ai['weight']} %, state {ai['state']}")
                    written += walk(browser, demo, "reverted", args.out)
                finally:
                    browser.close()
        finally:
            stop(demo)
    for path in written:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
              f"  {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

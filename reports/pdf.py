"""PDF: the HTML report printed by headless Chromium (charts drawn, then printed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from slo.errors import ReportError

__all__ = ["find_chromium", "html_to_pdf"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    given = os.environ.get("CUTOVER_CHROMIUM")
    if given:
        return given
    return next((p for p in map(shutil.which, _CANDIDATES) if p), None)


def html_to_pdf(html: str, *, timeout: float = 120.0) -> bytes:
    browser = find_chromium()
    if browser is None:
        raise ReportError("a PDF report needs Chromium: install Debian's chromium package "
                          "or set CUTOVER_CHROMIUM to its path")
    with tempfile.TemporaryDirectory(prefix="cutover-pdf-") as tmp:
        src, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(html, encoding="utf-8")
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-pdf-header-footer",
               f"--user-data-dir={Path(tmp) / 'profile'}",
               # lets plotly draw before printing, without waiting in real time
               "--virtual-time-budget=15000", "--run-all-compositor-stages-before-draw",
               f"--print-to-pdf={out}", src.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ReportError(f"Chromium did not print the report within {timeout:.0f} s") from None
        if not out.exists() or out.stat().st_size == 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise ReportError(f"Chromium could not print the report (exit {proc.returncode}): {last}")
        return out.read_bytes()

"""ruff and mypy run clean as part of the test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = ["slo", "store", "collectors", "rollout", "alerts", "reports", "dashboard", "cutover"]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *cmd], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_ruff_clean() -> None:
    r = _run("ruff", "check", *CODE, "tests", "benchmarks")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_clean() -> None:
    r = _run("mypy", "--no-error-summary", *CODE)
    assert r.returncode == 0, r.stdout + r.stderr

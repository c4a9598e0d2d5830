"""No silent holes: under CI every skipped test is a failure.

A test that needs a tool (Prometheus, Chromium, a compiler, Alertmanager, HAProxy...)
skips where the tool is missing, which is right on a laptop and wrong in CI: a green run
on a bare machine would prove little.  Under CI (``CI`` set, as CI sets it, or
``CUTOVER_NO_SKIPS=1``) every skip is a failure, except those whose reason says the tool
cannot be had on these machines at all: those are printed in the summary (``-ra``), and
their module checks what it can another way."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

CANNOT_BE_HAD = "cannot be had here"


def strict() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("CUTOVER_NO_SKIPS") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and strict()) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if CANNOT_BE_HAD in reason:
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under CI, where every tool must be installed: {reason}"

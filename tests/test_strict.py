"""The switch that turns skips into failures under CI (tests/support/strict.py)."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

CASES = """
import pytest

def test_needs_a_tool():
    pytest.skip("needs Debian's prometheus")

def test_needs_what_no_machine_here_has():
    pytest.skip("kubectl is not on this machine, and cannot be had here")

@pytest.mark.skipif(True, reason="needs Debian's chromium")
def test_marked():
    pass
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None
         ) -> pytest.RunResult:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("CUTOVER_NO_SKIPS", raising=False)
    if ci is not None:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest('pytest_plugins = ["tests.support.strict"]')
    pytester.makepyfile(CASES)
    return pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:cacheprovider")


def test_under_ci_a_skip_for_a_missing_tool_fails(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, "true")
    # a skip in the call fails; a skipif mark skips at setup, which reports as an error
    result.assert_outcomes(failed=1, errors=1, skipped=1)
    result.stdout.fnmatch_lines(["*skipped under CI, where every tool must be installed*"])


def test_off_ci_the_same_tests_skip(pytester: pytest.Pytester,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _run(pytester, monkeypatch, None).assert_outcomes(skipped=3)

"""The dashboard's server imports its pages' modules before it listens (dashboard.serve),
so the first visit after a start does not wait for them.  Seen from outside: the shared
objects of scipy's statistics (which dashboard.actions needs) are mapped into the server
process before any page was asked for; in a bare ``streamlit run`` they are not."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine

from dashboard import launch, serve
from tests.dashboard.test_browser import free_port, wait_healthy

#: a compiled module that only the pages' imports bring in (slo.probes, via the gate)
PAGE_ONLY_OBJECT = "/scipy/stats/_stats."


def test_page_modules_are_read_from_the_app_and_every_screen() -> None:
    names = serve.page_modules()
    assert {"streamlit", "dashboard.components", "plotly.graph_objects",
            "dashboard.exports", "collectors.explore"} <= set(names)
    assert "__future__" not in names
    assert len(names) == len(set(names))


def test_names_that_are_not_modules_are_passed_over() -> None:
    serve.warm(["dashboard.components.md", "dashboard.components"])  # md is a function


def _mapped_before_any_visit(argv_for: Callable[[int], list[str]], plan_file: Path,
                             store_url: str, log: Path) -> tuple[bool, str]:
    port = free_port()
    env = launch.environment(str(plan_file), store_url)
    env["CUTOVER_DASHBOARD_OPERATOR"] = "ana@example.org"
    proc = subprocess.Popen(argv_for(port), env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        proc.terminate()
        proc.wait(15)
    return PAGE_ONLY_OBJECT in maps, log.read_text()


def test_the_server_holds_the_pages_modules_before_the_first_visit(
        plan_file: Path, store_url: str, store: Engine, tmp_path: Path) -> None:
    def served(port: int) -> list[str]:
        argv = launch.command(port, str(plan_file), store_url)
        assert argv[1] == str(launch.SERVE)
        return argv

    def bare(port: int) -> list[str]:   # the same server as Streamlit's own command
        return [sys.executable, "-m", "streamlit", *served(port)[2:]]

    mapped, output = _mapped_before_any_visit(served, plan_file, store_url,
                                              tmp_path / "served.log")
    assert mapped, output
    assert "No runtime found" not in output  # the cache warnings of the early imports
    # under Streamlit's own command the modules wait for the first visit
    mapped, output = _mapped_before_any_visit(bare, plan_file, store_url,
                                              tmp_path / "bare.log")
    assert not mapped, output

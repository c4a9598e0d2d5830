"""The dashboard's fixtures: a seeded store, a plan with the dry-run router, and an
AppTest of the real entry point reading them from the environment."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from slo.plan import Plan
from slo.planfile import parse_plan
from store.db import make_engine
from tests.conftest import PLAN_PATH, plan_text_without_probes
from tests.dashboard import demo as demo_process
from tests.dashboard.demo import RunningDemo
from tests.dashboard.seed import Seeded, seed_store

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def dry_run_plan_text(*, probes: bool = False) -> str:
    """The shipped plan on the dry-run router; without its probes unless asked."""
    text = PLAN_PATH.read_text()
    line = "router: {kind: openshift-route, namespace: nanopore}"
    assert line in text, "the shipped plan's router line moved: update this fixture"
    text = text.replace(line, "router: {kind: dry-run}")
    return text if probes else plan_text_without_probes(text)


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    p = tmp_path / "plan.yaml"
    p.write_text(dry_run_plan_text())
    return p


@pytest.fixture
def dry_plan(plan_file: Path) -> Plan:
    return parse_plan(plan_file.read_text(), source=str(plan_file))


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dash.db'}"


@pytest.fixture
def store(store_url: str, migrated_sqlite: Path) -> Iterator[Engine]:
    shutil.copyfile(migrated_sqlite, store_url.removeprefix("sqlite:///"))
    eng = make_engine(store_url)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Streamlit's caches live in the process: each test starts without them, and with
    none of the identity settings of the machine running the tests."""
    for var in ("CUTOVER_DASHBOARD_OPERATOR", "CUTOVER_TRUST_FORWARDED_USER"):
        monkeypatch.delenv(var, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def seeded(store: Engine, dry_plan: Plan) -> Seeded:
    # a little in the past, so the gate (which uses the real clock) sees every row
    return seed_store(store, dry_plan, now=datetime.now(UTC) - timedelta(seconds=5),
                      history=timedelta(hours=12), every=timedelta(minutes=10))


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, plan_file: Path,
        store_url: str) -> Callable[..., AppTest]:
    """``app(operator=...)``: the dashboard as ``operator`` (None: nobody, read-only)."""
    def make(operator: str | None = "ana@example.org", page: str | None = None,
             query: dict[str, str] | None = None, db: str | None = None,
             user: dict[str, object] | None = None) -> AppTest:
        monkeypatch.setenv("CUTOVER_PLAN", str(plan_file))
        monkeypatch.setenv("CUTOVER_DB", db or store_url)
        if operator:
            monkeypatch.setenv("CUTOVER_DASHBOARD_OPERATOR", operator)
        else:
            monkeypatch.delenv("CUTOVER_DASHBOARD_OPERATOR", raising=False)
        # generous: a report build or a first import on a loaded machine takes a while
        at = AppTest.from_file(str(APP), default_timeout=90)
        at.query_params.update(query or {})
        if user is not None:
            at.user = user
        at.run()
        if page:
            at.switch_page(page).run()
        return at
    return make


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    """The real ``cutover demo``, one per test process, shared by the browser tests."""
    from tests.dashboard.test_browser import free_port

    running = demo_process.start(tmp_path_factory.mktemp("demo"), free_port())
    yield running
    demo_process.stop(running)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A Playwright browser on Debian's chromium (no browser download)."""
    from playwright.sync_api import sync_playwright

    from tests.dashboard.test_browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()

"""The probes on the dashboard: the overview's table of every probe's newest result and
the service page's probes with their history, hostile reasons shown as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from slo.probe_results import ProbeResult
from slo.verdict import Verdict
from store.db import session_scope
from store.probes import save_probe_result
from tests.dashboard.conftest import dry_run_plan_text
from tests.dashboard.helpers import assert_clean, page_text
from tests.dashboard.seed import HOSTILE

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    """The shipped plan with its probes (this module's own, over the conftest's)."""
    p = tmp_path / "plan.yaml"
    p.write_text(dry_run_plan_text(probes=True))
    return p


def _results(store: Engine) -> None:
    with session_scope(store) as s:
        for at, verdict, why in ((NOW - timedelta(minutes=40), Verdict.PASS, "50 files match"),
                                 (NOW - timedelta(minutes=10), Verdict.FAIL,
                                  f"runs/fc-7.pod5: corrupted {HOSTILE}")):
            save_probe_result(session=s, result=ProbeResult(
                probe="files-intact", kind="files", at=at, verdict=verdict, reasons=(why,),
                phase="week-3", value=1.0 if verdict is Verdict.FAIL else 0.0, limit=0.0))


def test_the_overview_lists_every_probe_with_its_newest_result(app, store: Engine) -> None:
    _results(store)
    at = app()
    assert_clean(at)
    text = page_text(at)
    assert "Probes" in text
    assert "| files-intact | files | week-3 | fail |" in text
    assert "| sessions-held | session | week-2 | not run yet |" in text
    assert "<script>" not in "\n".join(str(m.value) for m in at.markdown)


def test_the_service_page_shows_its_probes_and_their_history(app, store: Engine) -> None:
    _results(store)
    at = app(page="screens/service.py", query={"service": "files"})
    assert_clean(at)
    text = page_text(at)
    assert "| files-intact | files | week-3 | fail | " in text
    assert "| files-deploy-time | deploy_time | files | not run yet |" in text
    assert "50 files match" in text          # the history, older result included
    assert "files-intact: history" in [e.label for e in at.expander]

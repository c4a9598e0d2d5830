"""The Alerts page shows what Alertmanager told the inbox, firing first, its text escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from store.db import session_scope
from store.inbox import InboxAlert, save_alerts
from tests.dashboard.conftest import dry_run_plan_text
from tests.dashboard.helpers import assert_clean, page_text, texts

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    p = tmp_path / "plan.yaml"
    p.write_text(dry_run_plan_text().replace(
        "alerts:\n  repeat_interval: 4h\n",
        "alerts:\n  repeat_interval: 4h\n  inbox: {token_env: INBOX_TOKEN, revert_on: [AuthDown]}\n"))
    return p


def _alert(name: str, status: str, summary: str) -> InboxAlert:
    return InboxAlert(fingerprint=name, alertname=name, service="auth", status=status,
                      severity="critical", starts_at=T0, ends_at=None, received_at=T0,
                      labels={"alertname": name}, annotations={"summary": summary})


def test_alerts_page_lists_the_inbox_firing_first_and_escaped(app, store):
    with session_scope(store) as s:
        save_alerts(session=s, alerts=[_alert("OldNews", "resolved", "fine now"),
                                       _alert("AuthErrorsHigh", "firing",
                                              "<img src=x onerror=alert(1)> **5xx**")])
    at = app(page="screens/alerts.py")
    assert_clean(at)
    text = page_text(at)
    assert "From Alertmanager" in text and "AuthDown revert it" in text
    assert text.index("AuthErrorsHigh") < text.index("OldNews")
    # a reader sees the summary's characters as written; the source escapes every one
    assert "<img src=x onerror=alert(1)> **5xx**" in text
    source = "\n".join(texts(at))
    assert r"\<img" in source and r"\*\*5xx\*\*" in source

"""The Alerts page's deliveries table: six columns that fit 1280 px, each delivery's
state with its tries and the last answer in words."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from alerts.outbox import deliver, dispatch
from dashboard.chat import deliveries
from slo.plan import Plan
from tests.alerts.conftest import NOW, channel, record, with_channels


def test_deliveries_read_as_six_columns(sqlite_engine: Engine, plan: Plan, tmp_path: Path) -> None:
    p = with_channels(plan, channel("ops-log", "log", path=str(tmp_path / "alerts.log")))
    record(sqlite_engine, "approved", service="auth", summary="auth: 0 % -> 10 % approved")
    record(sqlite_engine, "phase-complete", service=None, summary="phase week-2 complete")
    assert dispatch(engine=sqlite_engine, plan=p, now=NOW) == 2
    assert deliver(engine=sqlite_engine, plan=p, now=NOW).sent == 2
    rows = deliveries(sqlite_engine)
    assert [list(r) for r in rows] == [["at", "channel", "event", "state", "sent", "summary"]] * 2
    by_event = {r["event"]: r for r in rows}
    assert by_event["approved (auth)"]["channel"] == "ops-log (log)"
    assert by_event["approved (auth)"]["state"] == "sent"
    assert by_event["phase-complete"]["summary"] == "phase week-2 complete"

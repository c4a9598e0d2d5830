"""Prometheus stopped mid-run: the outage is recorded and alerted once, the store keeps
what it had, and the next pass after Prometheus is back fills the hole."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from collectors.prometheus import PrometheusCollector
from slo.plan import Plan
from store.events import EventRow
from store.series import SOURCE, PromCheckpoint, PromOutage, prom_figures
from tests.collectors.conftest import T0, plan_for, serve_copy
from tests.support.prom import PromServer, available

pytestmark = [pytest.mark.prometheus,
              pytest.mark.skipif(not available(), reason="needs Debian's prometheus")]


@pytest.fixture
def server(fleet_blocks: Path, tmp_path: Path) -> Iterator[PromServer]:
    """A Prometheus of this test's own: the test stops and starts it."""
    s = serve_copy(fleet_blocks, tmp_path / "prom")
    yield s
    s.stop()


def at(minutes: float):  # type: ignore[no-untyped-def]
    return T0 + timedelta(minutes=minutes)


def checkpoint(engine: Engine) -> object:
    with Session(engine) as s:
        return s.exec(select(PromCheckpoint.until).where(PromCheckpoint.target == "auth",
                                                         PromCheckpoint.kind == "requests")).one()


def test_outage_recorded_once_then_resumed_without_loss(
        plan: Plan, server: PromServer, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    c = PrometheusCollector(plan=plan_for(plan, server.url, timeout=timedelta(seconds=2)),
                            engine=engine, initial_lookback=timedelta(minutes=29))
    assert c.collect(now=at(30)).ok
    before = checkpoint(engine)
    assert before == at(30)

    server.stop()
    caplog.set_level(logging.WARNING, logger="collectors.prometheus")
    down1 = c.collect(now=at(45))
    down2 = c.collect(now=at(60))
    assert not down1.ok and not down2.ok
    assert "cannot connect" in down1.problems[0]
    assert checkpoint(engine) == before          # nothing claimed that was not pulled
    unavailable = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(unavailable) == 1                 # logged once per outage, not every pass
    with Session(engine) as s:
        outage = s.exec(select(PromOutage).where(PromOutage.target == SOURCE)).one()
        assert (outage.outcome, outage.attempts, outage.until) == ("down", 2, None)
        during = prom_figures(session=s, service="auth", variant="candidate",
                              start=at(40), end=at(60))
    assert during.requests is None
    assert any("Prometheus down since" in p for p in during.problems), during.problems

    server.start()
    back = c.collect(now=at(90))
    assert back.ok
    with Session(engine) as s:
        outage = s.exec(select(PromOutage).where(PromOutage.target == SOURCE)).one()
        events = s.exec(select(EventRow).order_by(col(EventRow.id))).all()
        whole = prom_figures(session=s, service="auth", variant="candidate",
                             start=at(2), end=at(90))
    assert outage.until == at(90)
    assert [e.kind for e in events] == ["source-down", "source-recovered"]
    assert "Prometheus" in events[0].summary and events[0].service is None
    assert whole.problems == ()                  # the hole is filled: nothing lost
    assert whole.requests == pytest.approx(22 * 88 * 60, rel=0.05)


def test_slow_prometheus_is_recorded_as_slow(plan: Plan, sqlite_engine: Engine) -> None:
    """A server that accepts and never answers: the timeout, recorded as 'slow'."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        c = PrometheusCollector(plan=plan_for(plan, url, timeout=timedelta(seconds=0.5)),
                                engine=sqlite_engine)
        report = c.collect(now=at(30), start=at(20))
    assert not report.ok and "no answer in time" in report.problems[0]
    with Session(sqlite_engine) as s:
        # the source's row; each variant never pulled also carries a marker of it
        assert s.exec(select(PromOutage.outcome).where(PromOutage.target == SOURCE)).all() == ["slow"]
        assert set(s.exec(select(PromOutage.outcome)).all()) == {"slow"}

"""The store's read-only views for the dashboard, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from store import views
from store.db import session_scope
from store.evaluations import EvaluationRow
from store.events import record_event
from store.rollout import Decision, ServiceState

T0 = datetime(2026, 10, 15, tzinfo=UTC)


def _evaluations(engine: Engine, service: str, n: int, *, step: timedelta = timedelta(minutes=1),
                 verdict: str = "pass") -> None:
    rows = [{"service": service, "phase": "week-2", "at": T0 + i * step, "weight": 25,
             "verdict": verdict, "reasons": [f"#{i}"], "plan_hash": "t",
             "figures": {"baseline": {"rps": float(i)}, "candidate": {"rps": i / 2}},
             "checks": []} for i in range(n)]
    with session_scope(engine) as s:
        s.execute(insert(EvaluationRow), rows)


def test_series_is_downsampled_in_order_and_ends_at_the_newest(engine: Engine):
    _evaluations(engine, "auth", 1000)
    _evaluations(engine, "files", 50)
    with session_scope(engine) as s:
        points = views.evaluation_series(session=s, service="auth", max_points=100)
    assert 50 <= len(points) <= 100
    ats = [p.at for p in points]
    assert ats == sorted(ats)
    assert ats[0] == T0 and ats[-1] == T0 + 999 * timedelta(minutes=1)
    assert points[-1].baseline["rps"] == 999.0 and points[-1].candidate["rps"] == 499.5
    assert all(p.at.tzinfo is not None for p in points)


def test_series_keeps_every_point_when_there_are_few(engine: Engine):
    _evaluations(engine, "auth", 30)
    with session_scope(engine) as s:
        assert len(views.evaluation_series(session=s, service="auth", max_points=600)) == 30
        start = T0 + timedelta(minutes=20)
        assert [p.at for p in views.evaluation_series(session=s, service="auth", start=start)] \
            == [T0 + timedelta(minutes=m) for m in range(20, 30)]


def test_series_of_nothing_is_empty_and_a_silly_limit_is_refused(engine: Engine):
    with session_scope(engine) as s:
        assert views.evaluation_series(session=s, service="auth") == []
        with pytest.raises(ValueError, match="max_points"):
            views.evaluation_series(session=s, service="auth", max_points=1)


def test_latest_evaluation_of_each_service(engine: Engine):
    _evaluations(engine, "auth", 10)
    _evaluations(engine, "files", 3, step=timedelta(hours=1), verdict="fail")
    with session_scope(engine) as s:
        latest = views.latest_evaluations(session=s, services=["auth", "files", "ai"])
    assert set(latest) == {"auth", "files"}
    assert latest["auth"][1].reasons == ("#9",)
    assert latest["files"][1].verdict.value == "fail"
    assert latest["files"][1].at == T0 + timedelta(hours=2)


def test_decisions_filtered_by_every_field_and_reason_text(engine: Engine):
    with session_scope(engine) as s:
        for i, (svc, action, actor, state, reason) in enumerate([
                ("auth", "approve", "ana", "applied", "p95 flat"),
                ("auth", "revert", "lee", "applied", "100% errors_spike"),
                ("files", "approve", "ana", "failed", "route 409"),
                ("files", "auto-revert", "cutover", "applied", "3 fails")]):
            s.add(Decision(at=T0 + timedelta(minutes=i), service=svc, action=action,
                           from_weight=0, to_weight=10, actor=actor, reason=reason, state=state))
    with session_scope(engine) as s:
        def ids(**kw):
            return [d.reason for d in views.decisions_filtered(session=s, **kw)]
        assert ids() == ["3 fails", "route 409", "100% errors_spike", "p95 flat"]  # newest first
        assert ids(service="auth") == ["100% errors_spike", "p95 flat"]
        assert ids(action="approve", actor="ana", state="failed") == ["route 409"]
        assert ids(text="ERRORS") == ["100% errors_spike"]
        assert ids(text="0% e") == ["100% errors_spike"]
        assert ids(text="%") == ["100% errors_spike"], "% is matched literally"
        assert ids(text="s_s") == ["100% errors_spike"], "_ is matched literally"
        assert ids(start=T0 + timedelta(minutes=1), end=T0 + timedelta(minutes=2)) == \
            ["route 409", "100% errors_spike"]
        assert ids(limit=1) == ["3 fails"]
        assert views.decision_actors(session=s) == ["ana", "cutover", "lee"]


def test_event_counts_and_recent_events(engine: Engine):
    with session_scope(engine) as s:
        for i, kind in enumerate(["approved", "drift", "drift", "test"]):
            record_event(session=s, at=T0 + timedelta(minutes=i), kind=kind, summary=kind,
                         service="auth" if kind != "test" else None)
    with session_scope(engine) as s:
        assert views.event_counts(session=s) == {"approved": 1, "drift": 2, "test": 1}
        assert views.event_counts(session=s, since=T0 + timedelta(minutes=2)) == \
            {"drift": 1, "test": 1}
        recent = views.recent_events(session=s, limit=2)
        assert [e.kind for e in recent] == ["test", "drift"]
        assert [e.kind for e in views.recent_events(session=s, service="auth")] == \
            ["drift", "drift", "approved"]


def test_service_states_as_values(engine: Engine):
    with session_scope(engine) as s:
        s.add(ServiceState(service="auth", weight=25, version=3, router_weight=50,
                           drift_since=T0, step_since=T0))
    with session_scope(engine) as s:
        state = views.service_states(session=s)["auth"]
    assert (state.weight, state.router_weight, state.version) == (25, 50, 3)
    assert state.drift_since == T0 and state.step_since == T0

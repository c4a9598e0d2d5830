"""Cached access to the plan, the store and the packages that act on them.

``st.cache_resource`` holds what is built once and never mutated (the engine, the plan);
``st.cache_data`` holds query results for a few seconds, keyed by the database URL so two
stores in one process (tests) never share answers.  Nothing here reads Prometheus or
Kubernetes: the store is the source of truth, kept current by the worker.  The one
exception is an operator's action, which goes through ``rollout`` to the router."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st
from sqlalchemy.engine import Engine

from slo.plan import Plan
from slo.planfile import parse_plan
from slo.probe_results import ProbeResult
from slo.units import simulated_time
from slo.verdict import Evaluation
from store import views
from store.db import make_engine, session_scope
from store.evaluations import stored_evaluation
from store.heartbeat import WorkerRound, last_round
from store.probes import latest_probe_results
from store.probes import probe_history as store_probe_history
from store.rollups import list_rejects

if TYPE_CHECKING:
    from rollout.baseline import Capacity

__all__ = ["Settings", "actors", "baseline_capacity", "decisions", "engine", "event_counts",
           "events", "last_decisions", "latest", "now", "plan", "probe_history", "probe_results",
           "refresh", "rejects", "series", "settings", "state_now", "states", "step_points",
           "worker_round", "evaluation_at"]

log = logging.getLogger(__name__)

LIVE_TTL = timedelta(seconds=5)      # what the worker changes every interval
SERIES_TTL = timedelta(seconds=30)
BASELINE_TTL = timedelta(seconds=15)  # one Deployment read per quarter minute at most   # charts: a new point a minute at most matters


@dataclass(frozen=True)
class Settings:
    plan_path: str
    db_url: str


def settings() -> Settings:
    return Settings(plan_path=os.environ.get("CUTOVER_PLAN", "plans/nanopore.yaml"),
                    db_url=os.environ.get("CUTOVER_DB", "sqlite:///cutover.db"))


def now() -> datetime:
    """The wall clock, or the demo's simulated clock when it runs sped up."""
    clock = os.environ.get("CUTOVER_CLOCK")
    if not clock:
        return datetime.now(UTC)
    return simulated_time(clock, wall=time.time())


@st.cache_resource(show_spinner=False)
def engine(db_url: str) -> Engine:
    return make_engine(db_url)


@st.cache_resource(show_spinner=False)
def _plan(path: str, mtime_ns: int) -> Plan:
    return parse_plan(Path(path).read_text(encoding="utf-8"), source=path)


def plan(path: str) -> Plan:
    """The plan at ``path``, parsed again only when the file changes."""
    return _plan(path, Path(path).stat().st_mtime_ns)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def states(db_url: str) -> dict[str, views.StateView]:
    with session_scope(engine(db_url)) as s:
        return views.service_states(session=s)


def state_now(db_url: str, service: str) -> views.StateView | None:
    """Uncached: what the store holds right now (an action compares against it)."""
    with session_scope(engine(db_url)) as s:
        return views.service_states(session=s).get(service)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def latest(db_url: str, services: tuple[str, ...]) -> dict[str, tuple[int, Evaluation]]:
    with session_scope(engine(db_url)) as s:
        return views.latest_evaluations(session=s, services=services)


@st.cache_data(ttl=SERIES_TTL, show_spinner=False, max_entries=64)
def series(db_url: str, service: str, start: datetime | None,
           max_points: int = 600) -> list[views.SeriesPoint]:
    with session_scope(engine(db_url)) as s:
        return views.evaluation_series(session=s, service=service, start=start,
                                       max_points=max_points)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False, max_entries=64)
def decisions(db_url: str, **filters: Any) -> list[views.DecisionView]:
    with session_scope(engine(db_url)) as s:
        return views.decisions_filtered(session=s, **filters)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def last_decisions(db_url: str, services: tuple[str, ...]) -> dict[str, views.DecisionView]:
    """Each service's newest applied decision (an auto-revert is told from it)."""
    out: dict[str, views.DecisionView] = {}
    with session_scope(engine(db_url)) as s:
        for name in services:
            rows = views.decisions_filtered(session=s, service=name, state="applied", limit=1)
            if rows:
                out[name] = rows[0]
    return out


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def worker_round(db_url: str) -> WorkerRound | None:
    """The worker's newest round (its heartbeat), or None when none is recorded."""
    with session_scope(engine(db_url)) as s:
        return last_round(session=s)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def actors(db_url: str) -> list[str]:
    with session_scope(engine(db_url)) as s:
        return views.decision_actors(session=s)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def events(db_url: str, limit: int = 50) -> list[views.EventView]:
    with session_scope(engine(db_url)) as s:
        return views.recent_events(session=s, limit=limit)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def event_counts(db_url: str, since: datetime | None = None) -> dict[str, int]:
    with session_scope(engine(db_url)) as s:
        return views.event_counts(session=s, since=since)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def probe_results(db_url: str) -> dict[str, ProbeResult]:
    """Each probe's newest result, by probe name."""
    with session_scope(engine(db_url)) as s:
        return latest_probe_results(session=s)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False, max_entries=64)
def probe_history(db_url: str, probe: str, limit: int = 30) -> list[ProbeResult]:
    """``probe``'s newest results, newest first."""
    with session_scope(engine(db_url)) as s:
        return store_probe_history(session=s, probe=probe, limit=limit)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def inbox(db_url: str, limit: int = 50) -> list[dict[str, Any]]:
    """What the cluster's Alertmanager told us, firing first, then newest."""
    from store.inbox import recent_alerts

    with session_scope(engine(db_url)) as s:
        found = recent_alerts(session=s, limit=limit)
    found.sort(key=lambda a: not a.firing)
    return [{"alert": a.alertname, "service": a.service, "status": a.status,
             "severity": a.severity, "since": a.starts_at,
             "summary": a.annotations.get("summary", ""), "last heard": a.received_at}
            for a in found]


@st.cache_resource(show_spinner=False)
def _prometheus(path: str, mtime_ns: int) -> Any:
    from collectors.prometheus import prometheus_connect

    source = _plan(path, mtime_ns).sources.prometheus
    return prometheus_connect(source) if source is not None else None


def prometheus(path: str) -> Any:
    """The plan's Prometheus as a ``PrometheusConnect`` (None: the plan has none)."""
    return _prometheus(path, Path(path).stat().st_mtime_ns)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False, max_entries=32)
def prom_range(path: str, query: str, start: datetime, end: datetime, step: str) -> Any:
    """A range query's answer as a pandas frame (collectors.explore.run_range)."""
    from collectors.explore import run_range

    return run_range(prometheus(path), query, start=start, end=end, step=step)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def rejects(db_url: str, sources: tuple[str, ...], limit: int = 20) -> list[dict[str, Any]]:
    """Rejected log lines of these sources, most frequent first, with their samples."""
    with session_scope(engine(db_url)) as s:
        rows = list_rejects(session=s)
    return [r for r in rows if r["source"] in sources][:limit]


@st.cache_data(ttl=BASELINE_TTL, show_spinner=False)
def baseline_capacity(plan_path: str, db_url: str) -> Capacity | str | None:
    """The baseline's Deployment as the cluster says now (dashboard.actions)."""
    from dashboard.actions import baseline_capacity as read

    return read(plan=plan(plan_path), engine=engine(db_url))


def step_points(db_url: str, service: str, weight: int,
                since: datetime) -> list[views.SeriesPoint]:
    """The evaluations of ``service`` at the step of ``weight`` begun at ``since``, as
    chart points (thinned in SQL over a long step, as the charts are)."""
    return [p for p in series(db_url, service, since) if p.weight == weight]


@st.cache_data(ttl=SERIES_TTL, show_spinner=False, max_entries=64)
def evaluation_at(db_url: str, service: str, at: datetime) -> Evaluation | None:
    """The one evaluation of ``service`` stored for ``at``, with its checks."""
    with session_scope(engine(db_url)) as s:
        return stored_evaluation(session=s, service=service, at=at)


def refresh() -> None:
    """Forget cached query results (after an action, so the page shows its effect)."""
    for fn in (states, latest, series, decisions, actors, events, event_counts, rejects,
               worker_round, last_decisions, baseline_capacity, evaluation_at):
        fn.clear()

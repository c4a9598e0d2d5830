"""A fake API server holding the shipped plan's Routes, the real kubernetes client
talking to it, and helpers to store the evaluations the gate rests on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from rollout.routers import api_client_for, build_router
from rollout.routers.base import TrafficRouter
from slo.figures import Figures
from slo.plan import Plan
from slo.verdict import Evaluation, Verdict
from store.db import session_scope
from store.evaluations import save_evaluation
from tests.support.k8s_fake import FakeApiServer, route

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TOKEN = "s3cret-sa-token"
ANA = "ana@example.org"


@pytest.fixture
def k8s(plan: Plan) -> Iterator[FakeApiServer]:
    """Every service's Route at 0 %: the monolith on spec.to, the candidate at 0; the
    files route also carries a maintenance page nobody at cutover manages."""
    with FakeApiServer(token=TOKEN) as fake:
        for svc in plan.services:
            alternates = [{"kind": "Service", "name": svc.backend, "weight": 0}]
            if svc.name == "files":
                alternates.insert(0, {"kind": "Service", "name": "maintenance-page",
                                      "weight": 0})
            fake.put(route(svc.route, alternates=alternates))
        yield fake


@pytest.fixture
def api_client(k8s: FakeApiServer) -> Any:
    return api_client_for(k8s.url, token=TOKEN)


@pytest.fixture
def router(plan: Plan, engine: Engine, api_client: Any) -> TrafficRouter:
    return build_router(plan, engine, api_client=api_client)


def judged(engine: Engine, service: str, *, weight: int, at: datetime,
           verdict: Verdict = Verdict.PASS, reason: str = "",
           step_since: datetime | None = None) -> int:
    """Store an evaluation as the judge would have (``step_since``: the step it names);
    its id."""
    figures = Figures(start=at - timedelta(minutes=10), end=at, requests=5000.0,
                      error_rate=0.001, latency_p95_ms=40.0)
    ev = Evaluation(service=service, phase=None, weight=weight, at=at, verdict=verdict,
                    reasons=(reason or f"{verdict.value} at {weight} %",),
                    baseline=figures, candidate=figures, step_since=step_since)
    with session_scope(engine) as s:
        row = save_evaluation(session=s, evaluation=ev)
        assert row.id is not None
        return row.id


def candidate_weights(fake: FakeApiServer, name: str, backend: str) -> tuple[int, int]:
    """(baseline weight on spec.to, candidate weight among alternateBackends)."""
    r = fake.get(name)
    cand = next(b for b in r["spec"]["alternateBackends"] if b["name"] == backend)
    return r["spec"]["to"]["weight"], cand["weight"]

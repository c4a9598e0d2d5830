"""A store seeded with a migration in progress, for the dashboard's tests and benchmark.

The story at ``now``: auth and files are done (100 %), samples is the current phase at
25 % with a passing verdict, ai, audit and the gateway have not started.  Each started
service has an evaluation every ``every`` from its phase's start, and an applied
approve decision at each step; the worker's heartbeat is at ``now``.  Written with bulk inserts so six weeks of minute
evaluations take seconds."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from slo.plan import Plan
from store.db import session_scope
from store.evaluations import EvaluationRow
from store.events import record_event
from store.heartbeat import record_round
from store.rollout import Decision, ServiceState, set_dry_run_weight

HOSTILE = ('<img src=x onerror="alert(1)"> **bold** :red[red] $x^2$ '
           '[click](javascript:alert(1)) <script>alert(2)</script>')
#: where each service stands at ``now`` (services not named: 0 %, not started)
STORY = {"auth": 100, "files": 100, "samples": 25}
ACTOR = "ana@example.org"


@dataclass(frozen=True)
class Seeded:
    now: datetime
    evaluations: int
    decisions: int


def seed_store(engine: Engine, plan: Plan, *, now: datetime,
               history: timedelta = timedelta(weeks=6), every: timedelta = timedelta(minutes=1),
               hostile: bool = False, seed: int = 7, every_service: bool = False) -> Seeded:
    """``every_service``: the services not started yet are evaluated too (at 0 %, from
    the first day), as the benchmark's worst case of six weeks for every service."""
    rng = random.Random(seed)
    start = now - history
    phase_len = history / max(1, len(plan.phases))
    evaluations = decisions = 0
    with session_scope(engine) as session:
        for i, phase in enumerate(plan.phases):
            for service in phase.services:
                if service not in STORY and not every_service:
                    continue
                begin = start + i * phase_len if service in STORY else start
                steps = _steps(plan, service, begin, phase_len)
                rows = list(_evaluations(service, phase.id, steps, begin, now, every, rng,
                                         hostile=hostile))
                session.execute(insert(EvaluationRow), rows)
                evaluations += len(rows)
                decisions += _decisions(session, service, steps, hostile=hostile)
                if steps:
                    _state(session, service, phase.id, steps, now)
        record_event(session=session, at=now - timedelta(minutes=5), kind="approved",
                     service="samples", summary=HOSTILE if hostile else "samples 10 → 25 %")
        # a worker did its round just now (its heartbeat is what says the data is fresh)
        record_round(session=session, holder="seed:1", at=now, seconds=0.5,
                     interval=plan.interval, ok=True)
    return Seeded(now=now, evaluations=evaluations, decisions=decisions)


def _steps(plan: Plan, service: str, begin: datetime,
           phase_len: timedelta) -> list[tuple[datetime, int]]:
    """(when, weight) of each step taken, spread over the first part of the phase."""
    target = STORY.get(service, 0)
    taken = [s for s in plan.settings(service).steps if s <= target]
    gap = phase_len / (len(plan.settings(service).steps) + 1)
    return [(begin + (k + 1) * gap, w) for k, w in enumerate(taken)]


def _weight_at(steps: list[tuple[datetime, int]], at: datetime) -> int:
    w = 0
    for when, weight in steps:
        if when <= at:
            w = weight
    return w


def _figures(rng: random.Random, weight: int, *, candidate: bool) -> dict[str, Any]:
    total_rps = 80 + rng.gauss(0, 4)
    share = weight / 100 if candidate else 1 - weight / 100
    rps = max(0.0, total_rps * share)
    p50 = (28 if candidate else 31) + rng.gauss(0, 1)
    f: dict[str, Any] = {
        "requests": round(rps * 600), "rps": round(rps, 3),
        "error_rate": max(0.0, (0.0015 if candidate else 0.0021) + rng.gauss(0, 0.0003)),
        "latency_avg_ms": p50 * 1.2, "latency_p50_ms": p50, "latency_p95_ms": p50 * 1.3,
        "latency_p99_ms": p50 * 2.9, "memory_mb": (180 if candidate else 498) + rng.gauss(0, 5),
        "cpu_cores": (0.2 if candidate else 0.41) + rng.gauss(0, 0.02)}
    if candidate and weight == 0:
        f = {k: None for k in f}
    return f


def _evaluations(service: str, phase: str, steps: list[tuple[datetime, int]], begin: datetime,
                 now: datetime, every: timedelta, rng: random.Random, *,
                 hostile: bool) -> Any:
    at = begin
    while at <= now:
        weight = _weight_at(steps, at)
        base, cand = _figures(rng, weight, candidate=False), _figures(rng, weight, candidate=True)
        verdict = "pass" if weight > 0 else "inconclusive"
        detail = HOSTILE if hostile else f"p95 {cand['latency_p95_ms'] or 0:.1f} ms"
        yield {"service": service, "phase": phase, "at": at, "weight": weight,
               "verdict": verdict, "plan_hash": "seed",
               "reasons": [detail if verdict == "pass" else "no candidate traffic yet"],
               "figures": {"baseline": base, "candidate": cand},
               "checks": [{"name": "latency_p95_ms", "verdict": verdict,
                           "baseline": base["latency_p95_ms"],
                           "candidate": cand["latency_p95_ms"],
                           "limit": base["latency_p95_ms"] * 1.1, "detail": detail}],
               "wait_seconds": None if verdict == "pass" else 600.0}
        at += every


def _decisions(session: Any, service: str, steps: list[tuple[datetime, int]], *,
               hostile: bool) -> int:
    prev = 0
    for when, weight in steps:
        session.add(Decision(at=when, service=service, action="approve", from_weight=prev,
                             to_weight=weight, actor=ACTOR, state="applied", applied_at=when,
                             reason=HOSTILE if hostile else f"soaked, p95 flat at {prev} %"))
        prev = weight
    return len(steps)


def _state(session: Any, service: str, phase: str, steps: list[tuple[datetime, int]],
           now: datetime) -> None:
    when, weight = steps[-1] if steps else (None, 0)
    session.add(ServiceState(service=service, phase=phase, weight=weight, status="ready",
                             step_since=when, router_weight=weight, router_checked_at=now,
                             version=len(steps), updated_at=when))
    # the dry-run router's route agrees with the store: no drift to begin with
    set_dry_run_weight(session=session, service=service, weight=weight, at=now)

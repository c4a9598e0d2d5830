"""Wiring for the probes: the Prometheus and Kubernetes clients they may use, built once
from the plan, and a :class:`ProbeRunner` that keeps the probes' state between rounds."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from collectors.probes.base import ProbeContext
from collectors.probes.runner import run_due
from slo.errors import ConfigError
from slo.plan import Plan
from slo.probe_results import ProbeResult

__all__ = ["ProbeRunner"]

log = logging.getLogger(__name__)

_KUBE_KINDS = frozenset({"deploy_time", "recovery_time"})


def _prom(plan: Plan) -> Any:
    if plan.sources.prometheus is None:
        return None
    from collectors.prometheus import PromClient, build_http_client

    return PromClient(build_http_client(plan.sources.prometheus))


def _kube(plan: Plan) -> Any:
    if not any(p.kind in _KUBE_KINDS for _, _, p in plan.probes()):
        return None
    from rollout.routers.kube import kube_api_client

    try:
        return kube_api_client(plan)
    except ConfigError as e:   # the probes that need it say so in their results
        log.warning("probes: no Kubernetes API: %s", e)
        return None


@dataclass
class ProbeRunner:
    """``runner(now)`` runs the due probes at ``now``; ``prom`` and ``kube`` default to
    the plan's (pass them to point the probes elsewhere, as the tests do)."""

    plan: Plan
    engine: Engine
    prom: Any = None
    kube: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    built: bool = False

    def __call__(self, now: datetime, *, only: list[str] | None = None) -> list[ProbeResult]:
        if not self.plan.probes():
            return []
        if not self.built:
            self.prom = self.prom if self.prom is not None else _prom(self.plan)
            self.kube = self.kube if self.kube is not None else _kube(self.plan)
            self.built = True
        ctx = ProbeContext(plan=self.plan, now=now, engine=self.engine, prom=self.prom,
                           kube=self.kube, state=self.state)
        return run_due(ctx, only=only)

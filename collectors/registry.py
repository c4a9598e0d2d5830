"""The collectors a plan asks for, built once and handed to the worker."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from collectors.base import Collector
from slo.plan import Plan

__all__ = ["build_collectors"]


def build_collectors(plan: Plan, engine: Engine) -> list[Collector]:
    """One collector per kind of source in the plan: Prometheus, gateway logs."""
    out: list[Collector] = []
    if plan.sources.prometheus is not None:
        from collectors.prometheus import PrometheusCollector

        out.append(PrometheusCollector(plan=plan, engine=engine))
    if plan.sources.logs:
        from collectors.logs import LogCollector

        out.append(LogCollector(plan=plan, engine=engine))
    return out

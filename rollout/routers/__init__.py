"""Traffic routers: OpenShift Routes, Gateway API HTTPRoutes, and the dry-run router.

A router kind is one module here with a class that has ``kind`` (a ``RouterKind``) and
``from_plan(plan, engine, api_client)``, and one line in :data:`ROUTERS`;
tests/rollout/test_routers.py checks that the registry and the plan's kinds agree."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from rollout.routers.base import TrafficRouter
from rollout.routers.dryrun import DryRunRouter
from rollout.routers.gateway_api import GatewayApiRouter
from rollout.routers.kube import api_client_for
from rollout.routers.openshift import OpenShiftRouteRouter
from slo.errors import ConfigError
from slo.kinds import RouterKind
from slo.plan import Plan

__all__ = ["ROUTERS", "TrafficRouter", "api_client_for", "build_router"]

#: the plan's ``router.kind`` -> the class that routes that way
ROUTERS: dict[RouterKind, Any] = {
    RouterKind.OPENSHIFT_ROUTE: OpenShiftRouteRouter,
    RouterKind.GATEWAY_API: GatewayApiRouter,
    RouterKind.DRY_RUN: DryRunRouter,
}


def build_router(plan: Plan, engine: Engine, *, api_client: Any = None) -> TrafficRouter:
    """The router the plan names; ``api_client`` (a kubernetes ApiClient) replaces the
    one built from kubeconfig or the in-cluster service account (tests pass theirs)."""
    kind = plan.router.kind
    try:
        cls = ROUTERS[RouterKind(kind)]
    except (KeyError, ValueError):
        raise ConfigError(f"unknown router kind {kind!r}; expected one of "
                          f"{', '.join(ROUTERS)}") from None
    router: TrafficRouter = cls.from_plan(plan, engine, api_client)
    return router

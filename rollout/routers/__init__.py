"""Traffic routers: OpenShift Routes, Gateway API HTTPRoutes, and the dry-run router."""

from rollout.routers.base import ROUTERS, TrafficRouter, api_client_for, build_router

__all__ = ["ROUTERS", "TrafficRouter", "api_client_for", "build_router"]

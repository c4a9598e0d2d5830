"""The traffic router seam: one small protocol.

A router knows, for a service of the plan, how to read the share of traffic the
candidate gets and how to set it.  Weights are percentages (0..100) on both sides of
this protocol; each router translates to what its API wants.  The routers and their
registry (``rollout.routers.ROUTERS``, by the plan's ``router.kind``) are in the package;
what the Kubernetes routers share is ``rollout.routers.kube``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from slo.plan import Plan

__all__ = ["RouterType", "TrafficRouter"]


@runtime_checkable
class TrafficRouter(Protocol):
    """Reads and sets the candidate's share of a service's traffic, in percent."""

    kind: str

    def read_weight(self, service: str) -> int:
        """The weight the router applies now; RouterError when it cannot be read."""
        ...

    def set_weight(self, service: str, weight: int, *, expected: int | None = None) -> int:
        """Set ``weight`` and return the weight read back afterwards.

        ``expected``: the weight the caller saw; if a concurrent change moved the route
        elsewhere, refuse (RouterError, status 409) instead of overwriting it."""
        ...


class RouterType(Protocol):
    """A router class, as the registry holds it: it builds itself from the plan."""

    def from_plan(self, plan: Plan, engine: Engine, api_client: Any) -> TrafficRouter:
        """``api_client``: a kubernetes ApiClient to use instead of building one."""
        ...

"""OpenShift Routes (route.openshift.io/v1): the baseline Service on ``spec.to``, the
candidate among ``spec.alternateBackends``.

The weights are relative (0..256 each, at most 3 alternate backends; OpenShift docs,
"Route-based deployment strategies").  We write ``100 - w`` on the baseline and ``w`` on
the candidate, so the percentage is also the weight.  A route changed by hand may hold
any weights: we read the candidate's share of the two we manage, and leave other
alternate backends as they were.

The kubernetes client sends ``application/merge-patch+json`` for a dict body, and a
merge patch replaces a list whole: the patch carries the complete ``alternateBackends``
list, and ``metadata.resourceVersion`` so that a change made between our read and our
write answers 409 instead of being overwritten."""

from __future__ import annotations

import logging
from typing import Any

from rollout.routers.kube import MAX_TRIES, KubeObjectRouter
from slo.errors import RouterError
from slo.kinds import RouterKind
from slo.plan import Plan, ServiceDef

__all__ = ["MAX_ALTERNATES", "MAX_TRIES", "OpenShiftRouteRouter", "candidate_percent",
           "weights_patch"]

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "route.openshift.io", "v1", "routes"
MAX_ALTERNATES = 3       # OpenShift's limit on spec.alternateBackends
MAX_ROUTE_WEIGHT = 256
DEFAULT_WEIGHT = 100     # a backend without a weight gets 100 (route API default)
BALANCE = "haproxy.router.openshift.io/balance"


def _spec(route: dict[str, Any], name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    spec = route.get("spec") or {}
    to = spec.get("to")
    if not isinstance(to, dict) or not to.get("name"):
        raise RouterError(name, "the route has no spec.to backend")
    return to, list(spec.get("alternateBackends") or [])


def candidate_percent(route: dict[str, Any], *, baseline: str, candidate: str) -> int:
    """The candidate's share (percent) of the traffic between baseline and candidate."""
    name = route.get("metadata", {}).get("name", "?")
    to, alternates = _spec(route, name)
    if to["name"] != baseline:
        raise RouterError(name, f"expected spec.to to name the baseline Service "
                          f"{baseline!r}, found {to['name']!r}")
    base_w = int(to.get("weight", DEFAULT_WEIGHT))
    cand = next((b for b in alternates if b.get("name") == candidate), None)
    cand_w = int(cand.get("weight", DEFAULT_WEIGHT)) if cand is not None else 0
    if base_w + cand_w == 0:
        return 0
    return round(100 * cand_w / (base_w + cand_w))


def weights_patch(route: dict[str, Any], *, baseline: str, candidate: str,
                  weight: int) -> dict[str, Any]:
    """The merge patch that puts ``weight`` percent on the candidate, keeping every
    other alternate backend exactly as it was."""
    name = route.get("metadata", {}).get("name", "?")
    _to, alternates = _spec(route, name)
    kept = [dict(b) for b in alternates]
    for b in kept:
        if b.get("name") == candidate:
            b["weight"] = weight
            break
    else:
        kept.append({"kind": "Service", "name": candidate, "weight": weight})
    if len(kept) > MAX_ALTERNATES:
        raise RouterError(name, f"adding {candidate!r} would make {len(kept)} alternate "
                          f"backends; OpenShift allows at most {MAX_ALTERNATES}", status=422)
    return {
        "metadata": {"resourceVersion": route["metadata"]["resourceVersion"]},
        "spec": {"to": {"kind": "Service", "name": baseline, "weight": 100 - weight},
                 "alternateBackends": kept},
    }


class OpenShiftRouteRouter(KubeObjectRouter):
    kind = RouterKind.OPENSHIFT_ROUTE
    resource = (GROUP, VERSION, PLURAL)
    what = "route"

    def __init__(self, *, plan: Plan, api_client: Any):
        super().__init__(plan=plan, api_client=api_client)
        self._warned: set[str] = set()

    def _patch(self, svc: ServiceDef, route: dict[str, Any], weight: int) -> Any:
        return weights_patch(route, baseline=self._plan.baseline.backend,
                             candidate=svc.backend, weight=weight)

    def _percent(self, svc: ServiceDef, route: dict[str, Any]) -> int:
        pct = candidate_percent(route, baseline=self._plan.baseline.backend,
                                candidate=svc.backend)
        self._note_balance(svc, route, pct)
        return pct

    def _note_balance(self, svc: ServiceDef, route: dict[str, Any], pct: int) -> None:
        # HAProxy splits by weight reliably only with roundrobin (OpenShift docs,
        # "Route-specific annotations"); leastconn/source ignore weights per connection
        balance = (route.get("metadata", {}).get("annotations") or {}).get(BALANCE)
        if 0 < pct < 100 and balance != "roundrobin" and svc.route not in self._warned:
            self._warned.add(svc.route)
            log.warning("route %s splits traffic %d/%d but %s is %r, not roundrobin: "
                        "the split may not follow the weights", svc.route, 100 - pct, pct,
                        BALANCE, balance)

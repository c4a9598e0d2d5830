"""Gateway API HTTPRoutes (gateway.networking.k8s.io/v1): the weights of the baseline's
and the candidate's ``backendRefs`` in the matching rule.

A rule is chosen by the service's ``rule`` index, else it is the first rule that names
both backends.  Both must be there already: a backendRef needs a port, which only the
person who wrote the route knows.  Weights are relative (0..1,000,000, absent means 1).

The change is a JSON patch (RFC 6902): ``test`` ops pin the backendRefs' positions,
and ``metadata.resourceVersion`` replaced with the one we read makes a concurrent change
answer 409; a merge patch would have to resend every rule whole."""

from __future__ import annotations

import logging
from typing import Any

from rollout.routers.kube import KubeObjectRouter
from slo.errors import RouterError
from slo.kinds import RouterKind
from slo.plan import ServiceDef

__all__ = ["GatewayApiRouter", "RuleRefs", "find_refs", "weights_json_patch"]

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
DEFAULT_WEIGHT = 1      # Gateway API: a backendRef without a weight has weight 1


class RuleRefs:
    """Where the two backends sit in the route: rule index and backendRef indexes."""

    def __init__(self, rule: int, baseline: int, candidate: int, refs: list[dict[str, Any]]):
        self.rule, self.baseline, self.candidate, self.refs = rule, baseline, candidate, refs

    def percent(self) -> int:
        b = int(self.refs[self.baseline].get("weight", DEFAULT_WEIGHT))
        c = int(self.refs[self.candidate].get("weight", DEFAULT_WEIGHT))
        return 0 if b + c == 0 else round(100 * c / (b + c))


def _index(refs: list[dict[str, Any]], name: str) -> int | None:
    return next((i for i, r in enumerate(refs) if r.get("name") == name), None)


def find_refs(route: dict[str, Any], *, baseline: str, candidate: str,
              rule: int | None) -> RuleRefs:
    name = route.get("metadata", {}).get("name", "?")
    rules = (route.get("spec") or {}).get("rules") or []
    candidates = [rule] if rule is not None else range(len(rules))
    for i in candidates:
        if i >= len(rules):
            raise RouterError(name, f"expected a rule {i}, the route has {len(rules)}",
                              status=404)
        refs = rules[i].get("backendRefs") or []
        bi, ci = _index(refs, baseline), _index(refs, candidate)
        if bi is not None and ci is not None:
            return RuleRefs(i, bi, ci, refs)
    where = f"rule {rule}" if rule is not None else "any rule"
    raise RouterError(name, f"expected backendRefs {baseline!r} and {candidate!r} in {where}; "
                      "add the candidate (with its port, weight 0) to the HTTPRoute first",
                      status=404)


def weights_json_patch(route: dict[str, Any], at: RuleRefs, *, baseline: str,
                       candidate: str, weight: int) -> list[dict[str, Any]]:
    base = f"/spec/rules/{at.rule}/backendRefs"
    return [
        {"op": "test", "path": f"{base}/{at.baseline}/name", "value": baseline},
        {"op": "test", "path": f"{base}/{at.candidate}/name", "value": candidate},
        {"op": "replace", "path": "/metadata/resourceVersion",
         "value": route["metadata"]["resourceVersion"]},
        {"op": "add", "path": f"{base}/{at.baseline}/weight", "value": 100 - weight},
        {"op": "add", "path": f"{base}/{at.candidate}/weight", "value": weight},
    ]


class GatewayApiRouter(KubeObjectRouter):
    kind = RouterKind.GATEWAY_API
    resource = (GROUP, VERSION, PLURAL)
    what = "HTTPRoute"
    content_type = "application/json-patch+json"

    def _percent(self, svc: ServiceDef, route: dict[str, Any]) -> int:
        return self._refs(svc, route).percent()

    def _patch(self, svc: ServiceDef, route: dict[str, Any], weight: int) -> Any:
        return weights_json_patch(route, self._refs(svc, route),
                                  baseline=self._plan.baseline.backend, candidate=svc.backend,
                                  weight=weight)

    def _refs(self, svc: ServiceDef, route: dict[str, Any]) -> RuleRefs:
        return find_refs(route, baseline=self._plan.baseline.backend, candidate=svc.backend,
                         rule=svc.rule)

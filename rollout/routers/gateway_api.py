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

from rollout.routers.base import REQUEST_TIMEOUT, get_object, kube_errors
from slo.errors import RouterError
from slo.plan import Plan, ServiceDef

__all__ = ["GatewayApiRouter", "RuleRefs", "find_refs", "weights_json_patch"]

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
MAX_TRIES = 5
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


class GatewayApiRouter:
    kind = "gateway-api"

    def __init__(self, *, plan: Plan, api_client: Any):
        from kubernetes import client

        self._plan = plan
        self._namespace = plan.router.namespace or "default"
        self._api = client.CustomObjectsApi(api_client)

    def read_weight(self, service: str) -> int:
        svc = self._plan.service(service)
        return self._refs(svc, self._get(svc)).percent()

    def set_weight(self, service: str, weight: int, *, expected: int | None = None) -> int:
        if not 0 <= weight <= 100:
            raise RouterError(service, f"weight {weight} is outside 0..100 (percent)")
        svc = self._plan.service(service)
        for attempt in range(1, MAX_TRIES + 1):
            route = self._get(svc)
            at = self._refs(svc, route)
            current = at.percent()
            if expected is not None and current not in (expected, weight):
                raise RouterError(svc.route, f"changed by someone else: it shows {current} %, "
                                  f"expected {expected} %; not overwriting it", status=409)
            ops = weights_json_patch(route, at, baseline=self._plan.baseline.backend,
                                     candidate=svc.backend, weight=weight)
            try:
                with kube_errors(svc.route, f"setting {svc.backend} to {weight} %"):
                    self._api.patch_namespaced_custom_object(
                        GROUP, VERSION, self._namespace, PLURAL, svc.route, ops,
                        _content_type="application/json-patch+json",
                        _request_timeout=REQUEST_TIMEOUT)
            except RouterError as e:
                if e.status != 409:
                    raise
                log.info("HTTPRoute %s changed between read and patch (try %d of %d)",
                         svc.route, attempt, MAX_TRIES)
                continue
            return self._refs(svc, self._get(svc)).percent()
        raise RouterError(svc.route, f"still changing under us after {MAX_TRIES} tries (409)",
                          status=409)

    def _get(self, svc: ServiceDef) -> dict[str, Any]:
        return get_object(self._api, kind=(GROUP, VERSION, PLURAL), namespace=self._namespace,
                          name=svc.route, what="HTTPRoute")

    def _refs(self, svc: ServiceDef, route: dict[str, Any]) -> RuleRefs:
        return find_refs(route, baseline=self._plan.baseline.backend, candidate=svc.backend,
                         rule=svc.rule)

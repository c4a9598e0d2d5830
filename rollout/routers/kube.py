"""What the Kubernetes routers share: the client's set-up (kubeconfig or the in-cluster
service account), API errors as RouterError with credentials scrubbed, and
:class:`KubeObjectRouter`, the read / refuse-if-moved / patch / re-read-on-409 /
read-back loop that the OpenShift Route and Gateway API routers fill in."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine

from slo.errors import ConfigError, RouterError
from slo.plan import Plan
from slo.redact import redact

__all__ = ["MAX_TRIES", "REQUEST_TIMEOUT", "KubeObjectRouter", "api_client_for",
           "client_secrets", "get_object", "kube_api_client", "kube_errors"]

log = logging.getLogger(__name__)

#: seconds per API request: a hung API server must not leave a decision pending long
REQUEST_TIMEOUT = 10.0


def kube_api_client(plan: Plan) -> Any:
    """A kubernetes ApiClient from the in-cluster service account (``router.in_cluster``
    or when running in a pod without a kubeconfig) or from kubeconfig."""
    from kubernetes import client, config

    cfg = client.Configuration()
    rc = plan.router
    try:
        if rc.in_cluster or (rc.kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ
                             and not os.environ.get("KUBECONFIG")):
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(config_file=rc.kubeconfig, context=rc.context,
                                    client_configuration=cfg)
    except (config.ConfigException, OSError) as e:
        raise ConfigError(f"cannot configure the Kubernetes client for router "
                          f"{rc.kind}: {e}") from None
    return client.ApiClient(cfg)


def api_client_for(host: str, *, token: str | None = None, ca_file: str | None = None,
                   verify_tls: bool = True) -> Any:
    """An ApiClient for an API server URL and a bearer token (a service-account token
    from outside the cluster, or a test's fake API server)."""
    from kubernetes import client

    cfg = client.Configuration(host=host)
    if token:
        # the generated client looks the key up as "authorization" and sends it as is
        cfg.api_key = {"authorization": "Bearer " + token}
    cfg.verify_ssl = verify_tls
    if ca_file:
        cfg.ssl_ca_cert = ca_file
    return client.ApiClient(cfg)


def client_secrets(api: Any) -> tuple[str, ...]:
    """The credentials an API object (or ApiClient) sends: its bearer token, a password."""
    cfg = getattr(getattr(api, "api_client", api), "configuration", None)
    keys = dict(getattr(cfg, "api_key", None) or {})
    found = [str(v) for v in keys.values() if v]
    found += [v.split(None, 1)[1] for v in found if " " in v]   # "Bearer <token>"
    password = getattr(cfg, "password", None)
    return tuple(found + ([password] if password else []))


@contextmanager
def kube_errors(route: str, doing: str, api: Any = None) -> Iterator[None]:
    """Kubernetes client failures as RouterError with the HTTP status and the API
    server's own message (its Status object), never the request's headers: the message
    is scrubbed of ``api``'s token and anything else that looks like a credential."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as e:
        said = redact(_status_message(e), client_secrets(api))
        raise RouterError(route, f"{doing}: HTTP {e.status} {said}", status=e.status) from None
    except HTTPError as e:
        said = redact(str(e), client_secrets(api))
        raise RouterError(route, f"{doing}: API server unreachable: {said}") from None


def _status_message(e: Any) -> str:
    import json

    try:
        body = json.loads(e.body or "{}")
        return str(body.get("message") or e.reason or "")
    except (ValueError, AttributeError):
        return str(e.reason or "")


def get_object(api: Any, *, kind: tuple[str, str, str], namespace: str, name: str,
               what: str) -> dict[str, Any]:
    """One custom object (``kind`` = group, version, plural) read as a JSON object."""
    group, version, plural = kind
    with kube_errors(name, f"reading the {what}", api):
        obj = api.get_namespaced_custom_object(group, version, namespace, plural, name,
                                               _request_timeout=REQUEST_TIMEOUT)
    if not isinstance(obj, dict):
        raise RouterError(name, f"expected a JSON object, got {type(obj).__name__}")
    return obj


#: 409s re-read and re-checked before giving up
MAX_TRIES = 5


class KubeObjectRouter:
    """What the OpenShift Route and Gateway API routers share: read the object, refuse to
    overwrite a weight someone else set, patch with its resourceVersion, re-read and
    re-check on 409 (at most :data:`MAX_TRIES` times), and read the weight back.

    A subclass names its ``resource`` (group, version, plural) and says how a weight is
    read from the object (:meth:`_percent`) and how it is written (:meth:`_patch`)."""

    kind: str = ""
    resource: tuple[str, str, str] = ("", "", "")
    what = "object"
    content_type: str | None = None   # None: the client's merge patch for a dict body

    @classmethod
    def from_plan(cls, plan: Plan, _engine: Engine, api_client: Any) -> KubeObjectRouter:
        return cls(plan=plan, api_client=api_client or kube_api_client(plan))

    def __init__(self, *, plan: Plan, api_client: Any):
        from kubernetes import client

        self._plan = plan
        self._namespace = plan.router.namespace or "default"
        self._api = client.CustomObjectsApi(api_client)

    @property
    def api_client(self) -> Any:
        """The kubernetes ApiClient it talks through (the baseline's reader shares it)."""
        return self._api.api_client

    def read_weight(self, service: str) -> int:
        svc = self._plan.service(service)
        return self._percent(svc, self._get(svc))

    def set_weight(self, service: str, weight: int, *, expected: int | None = None) -> int:
        if not 0 <= weight <= 100:
            raise RouterError(service, f"weight {weight} is outside 0..100 (percent)")
        svc = self._plan.service(service)
        for attempt in range(1, MAX_TRIES + 1):
            route = self._get(svc)
            current = self._percent(svc, route)
            if expected is not None and current not in (expected, weight):
                raise RouterError(svc.route, f"changed by someone else: it shows {current} %, "
                                  f"expected {expected} %; not overwriting it", status=409)
            try:
                self._send(svc, self._patch(svc, route, weight), weight)
            except RouterError as e:
                if e.status != 409:
                    raise
                log.info("%s %s changed between read and patch (try %d of %d); re-reading",
                         self.what, svc.route, attempt, MAX_TRIES)
                continue
            # read back: what the router applies is what counts, not what we sent
            return self._percent(svc, self._get(svc))
        raise RouterError(svc.route, f"still changing under us after {MAX_TRIES} tries (409)",
                          status=409)

    def _send(self, svc: Any, body: Any, weight: int) -> None:
        group, version, plural = self.resource
        extra: dict[str, Any] = {"_content_type": self.content_type} if self.content_type else {}
        with kube_errors(svc.route, f"setting {svc.backend} to {weight} %", self._api):
            self._api.patch_namespaced_custom_object(
                group, version, self._namespace, plural, svc.route, body,
                _request_timeout=REQUEST_TIMEOUT, **extra)

    def _get(self, svc: Any) -> dict[str, Any]:
        return get_object(self._api, kind=self.resource, namespace=self._namespace,
                          name=svc.route, what=self.what)

    def _percent(self, svc: Any, route: dict[str, Any]) -> int:
        raise NotImplementedError

    def _patch(self, svc: Any, route: dict[str, Any], weight: int) -> Any:
        raise NotImplementedError


"""Query presets: every variant's PromQL filled from metric and label names a platform
already exports, so a plan names no query.

``openshift-router``: the OpenShift router (HAProxy) counts every request per route and
per server in the cluster's Prometheus (``haproxy_server_*``, labels ``namespace``,
``route``, ``service``, ``pod``, ``server``; the backend ``be_http:<namespace>:<route>``
and the server ``pod:<pod>:<service>:<port>:...`` of haproxy.config become those labels).
A route's baseline and candidate are told apart by ``service``: the candidate is the
route's own server set for the service's backend; the baseline is the monolith's
backend over every route (its figures are the monolith's as a whole, as with its own
metrics).  What the router has: requests, 5xx answers (``code="5xx"``), an average
response time (``haproxy_server_http_average_response_latency_milliseconds``: HAProxy's
average over the last 1024 requests, a gauge), and whether each server is up.  What it
has not: latency quantiles, memory and CPU; those keep the defaults over the variant's
own metrics, selected by the same ``namespace`` and ``service`` labels (what a
ServiceMonitor puts on every series it scrapes), unless the variant's ``selector`` says
otherwise.

Templates use ``{router}`` for the router's selector (filled here) beside the usual
``{selector}``, ``{window}`` and ``{quantile}`` (filled by the collector)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["PRESETS", "Preset", "label_selector"]


@dataclass(frozen=True)
class Preset:
    name: str
    #: figure key -> template (``{router}`` is this preset's selector)
    templates: Mapping[str, str] = field(default_factory=dict)

    def fill(self, *, router: str) -> dict[str, str]:
        return {k: v.replace("{router}", router) for k, v in self.templates.items()}


OPENSHIFT_ROUTER = Preset(
    name="openshift-router",
    templates={
        "rps": "sum(rate(haproxy_server_http_responses_total{{router}}[{window}]))",
        "error_rps": 'sum(rate(haproxy_server_http_responses_total{{router},code="5xx"}[{window}]))',
        # no top-level "/": the collector stores this as the average itself (seconds)
        "latency_avg": ("avg(haproxy_server_http_average_response_latency_milliseconds"
                        "{{router}}) * 0.001"),
        "up": "avg(haproxy_server_up{{router}})",
    })

PRESETS: dict[str, Preset] = {p.name: p for p in (OPENSHIFT_ROUTER,)}


def label_selector(labels: Mapping[str, str]) -> str:
    """``{"namespace": "x", "route": "y"}`` -> ``namespace="x",route="y"`` (escaped)."""
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

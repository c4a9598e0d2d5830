"""The migration plan: what moves, in which order, in which steps, judged by which targets.

A plan is configuration (pydantic, validated once at load).  Everything downstream asks
it for *resolved* settings (:meth:`Plan.settings`), in which the phase's and the
service's overrides are merged over ``defaults``: defaults, then the phase, then the
service (the most specific wins).  Target specs merge field by field; a field set to
``null`` removes the inherited limit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from slo.figure_specs import FIGURE_SPECS
from slo.kinds import ChannelKind, EventKind, RouterKind
from slo.presets import PRESETS, label_selector
from slo.probe_specs import ProbeSpec
from slo.units import format_duration, parse_duration

__all__ = [
    "FIGURES",
    "PROBE_FIGURES",
    "AlertChannel",
    "Duration",
    "Phase",
    "Plan",
    "ServiceDef",
    "ServiceSettings",
    "TargetSpec",
    "Variant",
]

#: The figures of the evaluate contract, in the order they are shown.
FIGURES: tuple[str, ...] = tuple(s.name for s in FIGURE_SPECS if s.evaluated)
#: Success metrics that no evaluation carries but probes measure, each with the probe kinds
#: that can: ``uptime`` is the share of an availability probe's runs that found the service
#: up (a run whose target did not answer counts as down).
PROBE_FIGURES: dict[str, tuple[str, ...]] = {"uptime": ("http",)}
QUERY_KEYS = ("rps", "error_rps", "latency_quantile", "latency_avg", "memory_bytes",
              "cpu_cores", "up")
#: the labels cutover itself sets on an Alertmanager alert (a channel's labels may not)
ALERT_LABELS = ("alertname", "severity", "service", "phase", "condition", "event")
EVENTS = ("verdict-failed", "verdict-recovered", "auto-reverted", "approved", "reverted",
          "override", "data-stale", "data-recovered", "source-down", "source-recovered",
          "drift", "drift-resolved", "phase-complete", "rolled-back", "baseline-down",
          "baseline-recovered", "probe-failed", "probe-recovered", "test")


def _duration(v: Any) -> timedelta:
    return parse_duration(v)


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetSpec(_Model):
    """Limits on one figure.  Absolute (``max``, ``min``), relative to the baseline
    (``max_ratio_to_baseline``), per service or summed over a group (``scope``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max: float | None = None
    min: float | None = None
    max_ratio_to_baseline: float | None = Field(default=None, gt=0)
    scope: Literal["service", "total"] = "service"

    @model_validator(mode="after")
    def _bounds(self) -> TargetSpec:
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    @property
    def empty(self) -> bool:
        return self.max is None and self.min is None and self.max_ratio_to_baseline is None


class TargetOverride(_Model):
    """One layer's limits on a figure, as written: each field may be left out (inherited)
    or set to null (the inherited limit removed), so the merge sees which.  Validated as
    the plan is read, so an error names the value's own line."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max: float | None = None
    min: float | None = None
    max_ratio_to_baseline: float | None = Field(default=None, gt=0)
    scope: Literal["service", "total"] | None = None
    #: success metrics only: the probes whose runs measure it (uptime)
    probes: list[str] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> TargetOverride:
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def raw(self) -> dict[str, Any]:
        """The fields as written (a null kept: it removes an inherited limit)."""
        return self.model_dump(exclude_unset=True)


Targets = dict[str, TargetSpec]


def _figure_name(key: str) -> str:
    if key not in FIGURES:
        raise ValueError(f"unknown figure {key!r}; expected one of {', '.join(FIGURES)}")
    return key


def _success_name(key: str) -> str:
    if key not in FIGURES and key not in PROBE_FIGURES:
        raise ValueError(f"unknown figure {key!r}; expected one of "
                         f"{', '.join((*FIGURES, *PROBE_FIGURES))}")
    return key


#: a figure named as a key of ``targets``
FigureName = Annotated[str, AfterValidator(_figure_name)]
#: figure -> limits, as a layer writes them (null: every inherited limit removed)
TargetLayer = dict[FigureName, TargetOverride | None]
#: ``success_metrics``: the evaluate figures, and those probes measure (PROBE_FIGURES)
SuccessLayer = dict[Annotated[str, AfterValidator(_success_name)], TargetOverride | None]


class AutoRevert(_Model):
    after_failures: int = Field(default=3, ge=1)
    enabled: bool = True


class Tolerance(_Model):
    """How far a comparison with the baseline may drift before it counts as broken.

    A ratio target of 1.0 ("no increase in error rates") cannot be proven within the
    noise of a canary's few thousand requests, so an error share counts as increased only
    above ``error_min_ratio`` x the baseline's plus ``error_budget_share`` of the error
    budget, and a latency only above ``latency_ratio`` x (five times the sketches' 1 %
    accuracy).  The reasons always state the allowance used."""

    error_min_ratio: float = Field(default=1.5, ge=1)
    error_budget_share: float = Field(default=0.1, ge=0, le=1)
    latency_ratio: float = Field(default=1.05, ge=1)


Inference = Literal["anytime", "fixed"]


class Overridable(_Model):
    """Settings a phase or a service may set over ``defaults``.

    ``targets`` is kept raw (field-level merge needs to see explicit nulls)."""

    steps: list[int] | None = None
    window: Duration | None = None
    min_soak: Duration | None = None
    min_requests: int | None = Field(default=None, ge=0)
    confidence: float | None = Field(default=None, gt=0.5, lt=1)
    #: how the judge's intervals hold: ``anytime`` (confidence sequences over the step's
    #: requests, valid at every look at once) or ``fixed`` (one interval per look, at
    #: ``confidence``, over the plan's window)
    inference: Inference | None = None
    #: anytime only: the chance that a candidate within its targets and tolerance is
    #: ever failed during a step, shared over every check that can fail one
    false_fail: float | None = Field(default=None, gt=0, lt=0.5)
    auto_revert: AutoRevert | None = None
    tolerance: Tolerance | None = None
    targets: TargetLayer | None = None

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("expected at least one step")
        for s in v:
            if not 0 < s <= 100:
                raise ValueError(f"step {s} is outside 1..100 (weights are percentages)")
        if any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError(f"steps must be strictly increasing, got {v}")
        return v


class Defaults(Overridable):
    steps: list[int] = Field(default_factory=lambda: [10, 25, 50, 75, 100])
    window: Duration = timedelta(minutes=10)
    min_soak: Duration = timedelta(minutes=15)
    min_requests: int = Field(default=500, ge=0)
    confidence: float = Field(default=0.98, gt=0.5, lt=1)
    inference: Inference = "anytime"
    false_fail: float = Field(default=0.01, gt=0, lt=0.5)
    auto_revert: AutoRevert = AutoRevert()
    tolerance: Tolerance = Tolerance()


class PrometheusSource(_Model):
    url: str
    step: Duration = timedelta(seconds=30)
    #: the range of each per-step rate(); None: the step itself, exact when scrapes align
    #: with it.  rate() needs two samples in its range, so on a real cluster set it to at
    #: least twice the scrape interval (the per-step figures are then smoothed over it).
    rate_window: Duration | None = None
    bearer_token_env: str | None = None
    bearer_token_file: str | None = None
    ca_file: str | None = None
    verify_tls: bool = True
    timeout: Duration = timedelta(seconds=30)
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. X-Scope-OrgID for Mimir
    #: fill every variant's queries from a platform's metric names (slo/presets.py)
    preset: Literal["openshift-router"] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"expected an http(s) URL, got {v!r}")
        return v.rstrip("/")


class PodLogs(_Model):
    namespace: str
    label_selector: str
    container: str | None = None


class LogTemplate(_Model):
    """A log format given as the template its server was configured with, keyed by the
    server that wrote it: ``{haproxy: "%ci:%cp [%tr] ..."}`` (an IngressController's
    ``httpLogFormat``) or ``{nginx: "$remote_addr ..."}``.  A bare string ``format:``
    keeps its meaning (a format's name, or an nginx template)."""

    haproxy: str | None = None
    nginx: str | None = None

    @model_validator(mode="after")
    def _one(self) -> LogTemplate:
        if (self.haproxy is None) == (self.nginx is None):
            raise ValueError("expected exactly one of 'haproxy' or 'nginx' (the server whose "
                             "log format the template is)")
        return self

    def __str__(self) -> str:
        server = "haproxy" if self.haproxy is not None else "nginx"
        return f"{server} template"


class LogSource(_Model):
    """A gateway access log: a file (``path``) or the pods' stdout (``pods``)."""

    name: str | None = None
    path: str | None = None
    pods: PodLogs | None = None
    #: json | nginx | haproxy | envoy | an nginx log_format template | {haproxy: TEMPLATE}
    format: str | LogTemplate = "json"
    fields: dict[str, str] = Field(default_factory=dict)  # JSON field names, if not the defaults

    @model_validator(mode="after")
    def _where(self) -> LogSource:
        if (self.path is None) == (self.pods is None):
            raise ValueError("expected exactly one of 'path' (a file) or 'pods' (pod logs)")
        return self

    @property
    def label(self) -> str:
        return self.name or self.path or f"pods:{self.pods.namespace}/{self.pods.label_selector}"  # type: ignore[union-attr]


class Sources(_Model):
    prometheus: PrometheusSource | None = None
    logs: list[LogSource] = Field(default_factory=list)


class RouterConfig(_Model):
    kind: RouterKind = RouterKind.DRY_RUN
    namespace: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    #: a cluster router takes who acts from the cluster (rollout/identity.py); true lets
    #: --actor / CUTOVER_ACTOR name someone instead (recorded as typed)
    allow_actor: bool = False

    @model_validator(mode="after")
    def _ns(self) -> RouterConfig:
        if self.kind != "dry-run" and not self.namespace:
            raise ValueError(f"router kind {self.kind!r} needs a namespace")
        return self


class VariantPrometheus(_Model):
    selector: str | None = None    # required unless sources.prometheus.preset fills it
    rps: str | None = None
    error_rps: str | None = None
    latency_quantile: str | None = None
    latency_avg: str | None = None
    memory_bytes: str | None = None
    cpu_cores: str | None = None
    up: str | None = None

    @field_validator("latency_quantile")
    @classmethod
    def _q(cls, v: str | None) -> str | None:
        if v is not None and "{quantile}" not in v:
            raise ValueError("a latency_quantile query needs the {quantile} placeholder")
        return v

    def overrides(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in QUERY_KEYS if getattr(self, k) is not None}


class VariantLogs(_Model):
    upstream: list[str] = Field(default_factory=list)
    path_prefix: str | None = None
    route: str | None = None

    @field_validator("upstream", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError(f"a path prefix starts with '/', got {v!r}")
        return v.rstrip("/") or "/" if v is not None else v


class Variant(_Model):
    """The baseline (the monolith): one name, one backend, how sources name it."""

    name: str
    backend: str
    #: the Deployment behind ``backend`` (default: the same name), read for its capacity
    deployment: str | None = None
    #: replicas a rollback wants ready (the guide's `oc scale ... --replicas=3`); unset:
    #: the baseline's capacity is not checked
    min_replicas: int | None = Field(default=None, ge=1)
    prometheus: VariantPrometheus | None = None
    logs: VariantLogs | None = None


class ServiceDef(Overridable):
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    title: str | None = None
    route: str
    backend: str
    rule: int | None = Field(default=None, ge=0)   # gateway-api: which rule of the HTTPRoute
    prometheus: VariantPrometheus | None = None
    logs: VariantLogs | None = None
    probes: list[ProbeSpec] = Field(default_factory=list)


class Criterion(_Model):
    """A success criterion of a phase, as the seed states it; ``figures`` name the
    evaluate figures and ``probes`` the probes (of the phase or its services) that give
    evidence for it (neither: it needs a person's word, given with ``cutover signoff``)."""

    text: str
    figures: list[str] = Field(default_factory=list)
    probes: list[str] = Field(default_factory=list)

    @field_validator("figures")
    @classmethod
    def _figures(cls, v: list[str]) -> list[str]:
        for f in v:
            if f not in FIGURES:
                raise ValueError(f"unknown figure {f!r}; expected one of {', '.join(FIGURES)}")
        return v


class Phase(Overridable):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str
    services: list[str] = Field(default_factory=list)
    starts: date | None = None
    ends: date | None = None
    criteria: list[Criterion] = Field(default_factory=list)
    probes: list[ProbeSpec] = Field(default_factory=list)
    #: this phase decommissions the baseline (the guide's week 6), safe only once every
    #: service has been at its last step and passing this long with no rollback
    decommission_after: Duration | None = None

    @field_validator("decommission_after")
    @classmethod
    def _positive_soak(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and v <= timedelta(0):
            raise ValueError(f"expected a positive duration, got {format_duration(v)}")
        return v

    @field_validator("criteria", mode="before")
    @classmethod
    def _criteria(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"text": c} if isinstance(c, str) else c for c in v]
        return v


class AlertChannel(_Model):
    name: str
    kind: ChannelKind
    url_env: str | None = None
    url_file: str | None = None
    secret_env: str | None = None     # generic: HMAC-SHA256 signing secret
    path: str | None = None           # log: a file to append to (default: the logger)
    # alertmanager: a bearer token (OpenShift's alertmanager-main sits behind an auth
    # proxy), labels added to every alert (e.g. namespace, for the cluster's routing), and
    # how long a firing condition lasts there unless cutover says it again
    token_env: str | None = None
    token_file: str | None = None
    labels: dict[str, str] | None = None
    resolve_timeout: Duration = timedelta(minutes=15)
    events: list[EventKind] | None = None   # None: every event
    services: list[str] | None = None  # None: every service

    @model_validator(mode="before")
    @classmethod
    def _no_inline_url(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "url" in data:
            raise ValueError("webhook URLs are secrets: give url_env or url_file, not url")
        return data

    @model_validator(mode="after")
    def _where(self) -> AlertChannel:
        if self.kind != "log" and not (self.url_env or self.url_file):
            raise ValueError(f"a {self.kind} channel needs url_env or url_file")
        if self.kind != "alertmanager" and (self.token_env or self.token_file or self.labels):
            raise ValueError("token_env, token_file and labels are for alertmanager channels")
        for name in self.labels or {}:
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) or name in ALERT_LABELS:
                raise ValueError(f"label {name!r}: expected a Prometheus label name other than "
                                 f"{', '.join(ALERT_LABELS)}")
        return self

    @field_validator("events")
    @classmethod
    def _events(cls, v: list[str] | None) -> list[str] | None:
        for e in v or []:
            if e not in EVENTS:
                raise ValueError(f"unknown event {e!r}; expected one of {', '.join(EVENTS)}")
        return v


class Inbox(_Model):
    """Alertmanager's webhooks in (``POST /alertmanager`` on the worker's metrics port)."""

    token_env: str | None = None       # the bearer token Alertmanager's webhook_config sends
    token_file: str | None = None
    #: labels whose value may name a service (its name, its backend or its route)
    service_labels: list[str] = Field(default_factory=lambda: ["service", "job", "route"])
    #: a firing alert of these severities holds the service's next approve
    hold_severities: list[str] = Field(default_factory=lambda: ["critical"])
    #: alertnames that, firing on a service, revert its step (the worker's policy round)
    revert_on: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _token(self) -> Inbox:
        if not (self.token_env or self.token_file):
            raise ValueError("the inbox needs token_env or token_file: Alertmanager's "
                             "webhook_config sends it as a bearer token")
        return self


class Alerts(_Model):
    channels: list[AlertChannel] = Field(default_factory=list)
    inbox: Inbox | None = None
    repeat_interval: Duration = timedelta(hours=4)
    dashboard_url: str | None = None


class Plan(_Model):
    name: str
    interval: Duration = timedelta(seconds=30)
    sources: Sources = Sources()
    router: RouterConfig = RouterConfig()
    baseline: Variant
    defaults: Defaults = Defaults()
    success_metrics: SuccessLayer = Field(default_factory=dict)
    services: list[ServiceDef]
    phases: list[Phase]
    alerts: Alerts = Alerts()
    #: who may approve and revert, as the cluster names them; ``any`` lets every actor
    #: (said on purpose); left out, only on the dry-run router (a cluster router refuses)
    operators: list[str] | Literal["any"] | None = None

    @model_validator(mode="after")
    def _queries(self) -> Plan:
        src = self.sources.prometheus
        if src is not None and src.preset:
            if not self.router.namespace:
                raise ValueError(f"the {src.preset} preset selects by namespace: give "
                                 "router.namespace")
            return self
        for name, v in [("baseline", self.baseline)] + [(f"service {s.name}", s)
                                                         for s in self.services]:
            if v.prometheus is not None and not v.prometheus.selector:
                raise ValueError(f"{name}: prometheus needs a selector (or "
                                 "sources.prometheus.preset)")
        return self

    # -- lookups -----------------------------------------------------------------
    def service(self, name: str) -> ServiceDef:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)

    def phase(self, phase_id: str) -> Phase:
        for p in self.phases:
            if p.id == phase_id:
                return p
        raise KeyError(phase_id)

    def phase_of(self, service: str) -> Phase | None:
        for p in self.phases:
            if service in p.services:
                return p
        return None

    def probes(self) -> list[tuple[Phase, ServiceDef | None, Any]]:
        """Every probe with where it sits: (phase, service or None for a phase's own)."""
        out: list[tuple[Phase, ServiceDef | None, Any]] = []
        for phase in self.phases:
            out += [(phase, None, p) for p in phase.probes]
            for name in phase.services:
                svc = next((s for s in self.services if s.name == name), None)
                out += [(phase, svc, p) for p in svc.probes] if svc else []
        return out

    def probes_for(self, service: str) -> list[Any]:
        """The probes weighed in ``service``'s evaluations: its phase's and its own."""
        phase = self.phase_of(service)
        return (list(phase.probes) if phase else []) + list(self.service(service).probes)

    def variant_queries(self) -> list[VariantQueries]:
        """Each variant's Prometheus queries: the default templates, then the preset's,
        then the variant's own overrides; the baseline first (``service`` None)."""
        src = self.sources.prometheus
        preset = PRESETS[src.preset] if src is not None and src.preset else None
        out = []
        variants: list[tuple[str | None, Variant | ServiceDef]] = [(None, self.baseline)]
        variants += [(s.name, s) for s in self.services]
        for service, v in variants:
            if v.prometheus is None and preset is None:
                continue
            own = {"namespace": self.router.namespace or "", "service": v.backend}
            selector = v.prometheus.selector if v.prometheus and v.prometheus.selector else (
                label_selector(own))
            templates: dict[str, str] = {}
            if preset is not None:
                route = {"route": v.route} if isinstance(v, ServiceDef) else {}
                templates = preset.fill(router=label_selector({**own, **route}))
            templates.update(v.prometheus.overrides() if v.prometheus else {})
            out.append(VariantQueries(service=service, variant=v.name, selector=selector,
                                      templates=templates))
        return out

    def may_operate(self, actor: str) -> bool:
        if self.operators == "any":
            return True
        if self.operators is None:   # validation refuses this with a cluster router
            return self.router.kind == "dry-run"
        return actor in self.operators

    def settings(self, service: str) -> ServiceSettings:
        """The service's settings with defaults < phase < service merged."""
        svc = self.service(service)
        phase = self.phase_of(service)
        layers: list[Overridable] = [self.defaults] + ([phase] if phase else []) + [svc]
        merged: dict[str, Any] = {}
        raw_targets: dict[str, dict[str, Any]] = {}
        for layer in layers:
            for key in OVERRIDABLE_KEYS:
                value = getattr(layer, key)
                if value is not None:
                    merged[key] = value
            raw_targets = merge_targets(raw_targets, layer.targets or {})
        return ServiceSettings(
            service=service,
            phase=phase.id if phase else None,
            targets=_build_targets(raw_targets),
            **merged,
        )

    def success_targets(self) -> dict[str, TargetSpec]:
        """Migration-wide success metrics (the seed's) on the evaluate figures, judged
        over every service."""
        figures = {k: v for k, v in self.success_metrics.items() if k in FIGURES}
        return _build_targets(merge_targets({}, figures))

    def success_probes(self) -> dict[str, tuple[TargetSpec, list[str]]]:
        """Success metrics measured by probes (``uptime: {min: 0.999, probes: [...]}``):
        each one's limits and the probes whose runs measure it."""
        out = {}
        for name, raw in self.success_metrics.items():
            if name in PROBE_FIGURES and raw is not None:
                spec = TargetSpec.model_validate(raw.model_dump(exclude={"probes"},
                                                                exclude_none=True))
                out[name] = (spec, list(raw.probes or []))
        return out


#: Every key a phase or a service may set over ``defaults``, read off the model itself, so
#: a key added to :class:`Overridable` is merged without a second list to keep in step
#: (``targets`` merges field by field, apart).
OVERRIDABLE_KEYS: tuple[str, ...] = tuple(k for k in Overridable.model_fields if k != "targets")


def merge_targets(base: dict[str, dict[str, Any]],
                  over: Mapping[str, TargetOverride | Mapping[str, Any] | None]
                  ) -> dict[str, dict[str, Any]]:
    """Field-level merge of raw target specs; an explicit ``None`` drops the field
    (or, for a whole figure, every limit on it)."""
    out = {k: dict(v) for k, v in base.items()}
    for figure, spec in over.items():
        if spec is None:
            out.pop(figure, None)
            continue
        cur = out.setdefault(figure, {})
        fields = spec.raw() if isinstance(spec, TargetOverride) else spec
        for field, value in fields.items():
            if value is None:
                cur.pop(field, None)
            else:
                cur[field] = value
    return out


def _build_targets(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, TargetSpec]:
    built = {k: TargetSpec.model_validate(dict(v)) for k, v in raw.items()}
    return {k: v for k, v in built.items() if not v.empty}


@dataclass(frozen=True)
class VariantQueries:
    """What Prometheus is asked about one variant (Plan.variant_queries)."""

    service: str | None          # None: the baseline
    variant: str                 # the baseline's or the service's name
    selector: str                # fills {selector}
    templates: dict[str, str]    # figure key -> template, where not the default


@dataclass(frozen=True)
class ServiceSettings:
    """What the judge and the gate need for one service, overrides resolved."""

    service: str
    phase: str | None
    steps: list[int]
    window: timedelta
    min_soak: timedelta
    min_requests: int
    confidence: float
    auto_revert: AutoRevert
    targets: dict[str, TargetSpec]
    tolerance: Tolerance = Tolerance()
    inference: Inference = "anytime"
    false_fail: float = 0.01

    def next_step(self, weight: int) -> int | None:
        """The first step above ``weight``, or None at (or past) the last one."""
        return next((s for s in self.steps if s > weight), None)

    def previous_step(self, weight: int) -> int:
        """The last step below ``weight``, or 0 (all traffic on the baseline)."""
        below = [s for s in self.steps if s < weight]
        return below[-1] if below else 0


def plan_hash(text: str) -> str:
    """Short content hash stored with each evaluation, so a verdict names its plan."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]

"""The baseline's capacity: can the monolith take 100 % of the traffic back?

Read through the Kubernetes API: the baseline's Deployment (``baseline.deployment``,
default the baseline's ``backend``), its desired and ready replicas, or that it no
longer exists.  ``baseline.min_replicas`` (3 in the shipped plan, as the guide's
emergency rollback scales it) is what a rollback wants ready.

- :func:`read` says what there is now (a :class:`Capacity`, never an exception: an
  unreadable or forbidden Deployment is a capacity whose ``error`` says why);
- :func:`scale_up` patches the Deployment's ``scale`` subresource to ``min_replicas``
  (``oc scale deployment nanopore-monolith --replicas=3``); 403 is an answer, not a
  crash: the rollback goes on and says the scale step was not allowed;
- :func:`wait_ready` polls until enough replicas are ready or a bounded timeout ends;
- :func:`observe` (every worker round) records the condition ``baseline-down`` (no
  ready replica while a service is below 100 %: an alert, and :func:`hold` makes the
  gate refuse approves) and ``baseline-recovered`` when it ends.

The dry-run router has no cluster: there, nothing is read and nothing is held.

RBAC: ``get`` on ``deployments`` and ``patch`` on ``deployments/scale`` (deploy/rbac.yaml)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from rollout.routers.base import TrafficRouter
from rollout.routers.kube import REQUEST_TIMEOUT, kube_errors
from slo.errors import RouterError
from slo.kinds import EventKind
from slo.plan import Plan
from store.db import session_scope
from store.events import last_event_kind, record_event
from store.rollout import get_state

__all__ = ["DOWN_KEY", "Capacity", "Scaled", "hold", "observe", "read", "reader_for",
           "scale_up", "wait_ready"]

log = logging.getLogger(__name__)

DOWN_KEY = "baseline-down:*"
#: how often wait_ready reads the Deployment again
POLL = 1.0


@dataclass(frozen=True)
class Capacity:
    """What the baseline's Deployment says now."""

    deployment: str
    min_replicas: int
    exists: bool = True
    desired: int | None = None
    ready: int | None = None
    #: why it could not be read (403, unreachable, ...); None when it was
    error: str | None = None
    status: int | None = None

    @property
    def known(self) -> bool:
        return self.error is None

    @property
    def enough(self) -> bool:
        """Enough replicas ready to take 100 % (unknown counts as not enough)."""
        return self.known and self.exists and (self.ready or 0) >= self.min_replicas

    @property
    def down(self) -> bool:
        """Known to have no ready replica at all (or no Deployment)."""
        return self.known and (not self.exists or not self.ready)

    @property
    def words(self) -> str:
        if not self.known:
            return f"Deployment {self.deployment} cannot be read: {self.error}"
        if not self.exists:
            return f"Deployment {self.deployment} does not exist (decommissioned?)"
        return (f"Deployment {self.deployment}: {self.ready} of {self.desired} replicas "
                f"ready; a rollback wants {self.min_replicas}")

    def contract(self) -> dict[str, Any]:
        return {"deployment": self.deployment, "min_replicas": self.min_replicas,
                "exists": self.exists, "desired": self.desired, "ready": self.ready,
                "enough": self.enough, "error": self.error}


@dataclass(frozen=True)
class Scaled:
    """What :func:`scale_up` did: ``to`` replicas asked for, or why not."""

    deployment: str
    from_replicas: int | None
    to: int | None
    error: str | None = None
    status: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def words(self) -> str:
        if self.ok:
            return f"scaled {self.deployment} from {self.from_replicas} to {self.to} replicas"
        if self.status == 403:
            return (f"the scale step was not allowed (HTTP 403: the Role lacks patch on "
                    f"deployments/scale): {self.error}")
        return f"could not scale {self.deployment}: {self.error}"


class KubeBaseline:
    """The baseline's Deployment through the kubernetes client (apps/v1)."""

    def __init__(self, *, plan: Plan, api_client: Any):
        from kubernetes import client

        self._plan = plan
        self._namespace = plan.router.namespace or "default"
        self._apps = client.AppsV1Api(api_client)

    @property
    def deployment(self) -> str:
        return self._plan.baseline.deployment or self._plan.baseline.backend

    def read(self) -> Capacity:
        want = self._plan.baseline.min_replicas or 1
        try:
            with kube_errors(self.deployment, "reading the baseline's Deployment"):
                dep = self._apps.read_namespaced_deployment(
                    self.deployment, self._namespace, _request_timeout=REQUEST_TIMEOUT)
        except RouterError as e:
            if e.status == 404:
                return Capacity(deployment=self.deployment, min_replicas=want, exists=False)
            return Capacity(deployment=self.deployment, min_replicas=want,
                            error=_why(e), status=e.status)
        return Capacity(deployment=self.deployment, min_replicas=want,
                        desired=dep.spec.replicas or 0,
                        ready=(dep.status.ready_replicas or 0) if dep.status else 0)

    def scale(self, replicas: int) -> None:
        with kube_errors(self.deployment, f"scaling the baseline to {replicas} replicas"):
            self._apps.patch_namespaced_deployment_scale(
                self.deployment, self._namespace, {"spec": {"replicas": replicas}},
                _request_timeout=REQUEST_TIMEOUT)


def _why(e: RouterError) -> str:
    # kube_errors speaks of routes; here the object is the Deployment, named already
    return str(e).removeprefix(f"route {e.route}: ")


def reader_for(plan: Plan, router: TrafficRouter) -> KubeBaseline | None:
    """The baseline's reader over the router's API client; None for the dry-run router
    (no cluster) or a plan without ``baseline.min_replicas`` (nothing asked)."""
    api = getattr(router, "api_client", None)
    if api is None or plan.baseline.min_replicas is None:
        return None
    return KubeBaseline(plan=plan, api_client=api)


def read(reader: KubeBaseline | None) -> Capacity | None:
    return reader.read() if reader is not None else None


def scale_up(reader: KubeBaseline, capacity: Capacity) -> Scaled | None:
    """Raise the Deployment to ``min_replicas`` if it wants fewer; None if it has enough
    (never scales down)."""
    if not capacity.exists or (capacity.desired or 0) >= capacity.min_replicas:
        return None
    try:
        reader.scale(capacity.min_replicas)
    except RouterError as e:
        log.info("baseline scale-up refused: %s", e)
        return Scaled(deployment=capacity.deployment, from_replicas=capacity.desired,
                      to=None, error=_why(e), status=e.status)
    log.info("scaled the baseline %s from %s to %d replicas", capacity.deployment,
                capacity.desired, capacity.min_replicas)
    return Scaled(deployment=capacity.deployment, from_replicas=capacity.desired,
                  to=capacity.min_replicas)


def wait_ready(reader: KubeBaseline, *, timeout: timedelta,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep,
               on_change: Callable[[Capacity], None] | None = None) -> Capacity:
    """Read until ``min_replicas`` are ready or ``timeout`` has passed; the last read."""
    end = clock() + timeout.total_seconds()
    last: Capacity | None = None
    while True:
        cap = reader.read()
        if on_change is not None and (last is None or cap.ready != last.ready):
            on_change(cap)
        last = cap
        if cap.enough or not cap.exists or clock() >= end:
            return cap
        sleep(min(POLL, max(0.0, end - clock())))


# -- the worker's round and the gate's hold ---------------------------------------------

def observe(*, engine: Engine, plan: Plan, router: TrafficRouter,
            now: datetime) -> Capacity | None:
    """Read the baseline; record ``baseline-down`` while it has no ready replica and any
    service is below 100 % (a repeat while it lasts, throttled by the outbox), and
    ``baseline-recovered`` once it has one again.  Unreadable: nothing is decided."""
    cap = read(reader_for(plan, router))
    if cap is None or not cap.known:
        return cap
    with session_scope(engine) as s:
        exposed = _below_full(s, plan)
        down_now = cap.down and bool(exposed)
        was_down = last_event_kind(session=s, dedup_keys=[DOWN_KEY]) == "baseline-down"
        data = {**cap.contract(), "services": exposed}
        if down_now:
            record_event(session=s, at=now, kind=EventKind.BASELINE_DOWN, severity="critical",
                         dedup_key=DOWN_KEY, data=data,
                         summary=f"the baseline cannot take the traffic back: {cap.words}; "
                                 f"{', '.join(exposed)} below 100 %: approves are held")
        elif was_down:
            record_event(session=s, at=now, kind=EventKind.BASELINE_RECOVERED, dedup_key=DOWN_KEY,
                         data=data, summary=f"the baseline has ready replicas again: {cap.words}")
    return cap


def _below_full(s: Session, plan: Plan) -> list[str]:
    out = []
    for svc in plan.services:
        st = get_state(session=s, service=svc.name)
        if st is None or plan.settings(svc.name).next_step(st.weight) is not None:
            out.append(svc.name)
    return out


def hold(s: Session) -> str | None:
    """Why the gate holds every approve now (the last baseline reading was down), or
    None."""
    if last_event_kind(session=s, dedup_keys=[DOWN_KEY]) != "baseline-down":
        return None
    return ("held: the baseline has no ready replica to take the traffic back "
            "(baseline-down); scale it up, or roll back")


# -- before a rollback ---------------------------------------------------------------------

def make_ready(reader: KubeBaseline | None, *, scale: bool, wait: bool, timeout: timedelta,
               say: Callable[[str], None] = log.warning,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Before a rollback: read the baseline, warn when it lacks capacity, scale it up
    (``scale``) and wait for its replicas (``wait``, at most ``timeout``).  Never stops
    the rollback: what was found and done is returned (kept on the decision group) and
    told through ``say``."""
    cap = read(reader)
    if reader is None or cap is None:
        return {}
    record: dict[str, Any] = {"before": cap.contract()}
    if cap.enough:
        return record
    say(f"warning: {cap.words}" + ("" if scale or not cap.exists
                                   else "; --scale-baseline scales it up first"))
    if not scale or not cap.exists:
        return record
    scaled = scale_up(reader, cap)
    if scaled is not None:
        record["scaled"] = {"from": scaled.from_replicas, "to": scaled.to,
                            "error": scaled.error}
        say(scaled.words)
        if not scaled.ok:
            return record
    if not wait:
        say("not waiting for the baseline's replicas (--no-wait): moving the traffic now")
        return record
    t0 = clock()
    say(f"waiting up to {timeout.total_seconds():g} s for {cap.min_replicas} ready "
        "replicas")
    after = wait_ready(reader, timeout=timeout, clock=clock, sleep=sleep,
                       on_change=lambda c: say(f"  {c.ready} of {c.min_replicas} ready"))
    record["after"] = after.contract()
    record["waited_seconds"] = clock() - t0
    if not after.enough:
        say(f"the baseline is still short after {clock() - t0:.0f} s ({after.words}); "
            "moving the traffic anyway")
    return record

"""``kind: deploy_time`` and ``kind: recovery_time`` from the Kubernetes API: how long each
Deployment's latest rollout took (its newest ReplicaSet's creation to the controller's
"NewReplicaSetAvailable"), and how long a restarted pod took to be Ready again (the
container's last termination to the Ready condition's transition).  Operational metrics
of the seed: deployment time < 5 min per service, recovery time < 2 min."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from collectors.probes.base import Outcome, ProbeContext, ProbeUnreachable
from slo.errors import ConfigError
from slo.probe_specs import DeployTimeProbe, RecoveryTimeProbe
from slo.probes import judge_durations

__all__ = ["rollout_seconds", "run_deploy_time", "run_recovery_time"]

REVISION = "deployment.kubernetes.io/revision"


def _apis(spec: DeployTimeProbe | RecoveryTimeProbe, ctx: ProbeContext) -> tuple[Any, Any]:
    if ctx.kube is None:
        raise ProbeUnreachable(spec.name, "no Kubernetes API configured (the plan's router "
                               "is dry-run and no kubeconfig was given)")
    from kubernetes import client

    return client.AppsV1Api(ctx.kube), client.CoreV1Api(ctx.kube)


def _namespace(spec: DeployTimeProbe | RecoveryTimeProbe, ctx: ProbeContext) -> str:
    ns = spec.namespace or ctx.plan.router.namespace
    if not ns:
        raise ConfigError(f"probe {spec.name}: no namespace (give one, or the router's)")
    return ns


def _deployments(spec: DeployTimeProbe | RecoveryTimeProbe, ctx: ProbeContext) -> list[str]:
    if spec.deployments:
        return list(spec.deployments)
    if ctx.service is not None:
        return [ctx.service.backend]
    if ctx.phase is not None:
        return [ctx.plan.service(s).backend for s in ctx.phase.services]
    return []


def _call(spec: Any, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return fn(*args, **kw)
    except ApiException as e:
        raise ProbeUnreachable(spec.name, f"{what}: the API answered {e.status} "
                               f"{e.reason}") from None
    except HTTPError as e:
        raise ProbeUnreachable(spec.name, f"{what}: {e.__class__.__name__}") from None


def _selector(dep: Any) -> str:
    labels = dep.spec.selector.match_labels or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def rollout_seconds(dep: Any, sets: list[Any], now: datetime) -> tuple[str, float, bool] | None:
    """(ReplicaSet name, seconds, finished) for the Deployment's latest rollout: finished
    when the Progressing condition says the newest ReplicaSet is available; else the
    seconds it has been going."""
    owned = [rs for rs in sets if any(r.uid == dep.metadata.uid
                                      for r in rs.metadata.owner_references or [])]
    if not owned:
        return None
    newest = max(owned, key=lambda rs: int((rs.metadata.annotations or {}).get(REVISION, 0)))
    started = newest.metadata.creation_timestamp
    for cond in dep.status.conditions or []:
        if (cond.type == "Progressing" and cond.reason == "NewReplicaSetAvailable"
                and f'"{newest.metadata.name}"' in (cond.message or "")):
            return newest.metadata.name, (cond.last_update_time - started).total_seconds(), True
    return newest.metadata.name, (now - started).total_seconds(), False


def run_deploy_time(spec: DeployTimeProbe, ctx: ProbeContext) -> Outcome:
    apps, _ = _apis(spec, ctx)
    ns = _namespace(spec, ctx)
    done: list[tuple[str, float | None]] = []
    going: list[tuple[str, float]] = []
    for name in _deployments(spec, ctx):
        dep = _call(spec, f"Deployment {name}", apps.read_namespaced_deployment, name, ns)
        sets = _call(spec, f"ReplicaSets of {name}", apps.list_namespaced_replica_set, ns,
                     label_selector=_selector(dep)).items
        found = rollout_seconds(dep, sets, ctx.now)
        if found is None:
            done.append((name, None))
        elif found[2]:
            done.append((f"{name} ({found[0]})", found[1]))
        else:
            going.append((f"{name} ({found[0]})", found[1]))
    verdict, reasons, worst = judge_durations(what="rollout took", durations=done,
                                              limit=spec.max, unfinished=going)
    return Outcome(verdict, tuple(reasons), value=worst, limit=spec.max.total_seconds(),
                   figures={"rollouts": {n: s for n, s in done + going}})


def _restarts(pod: Any) -> Iterator[tuple[str, datetime, datetime | None]]:
    """(container, when it died, when the pod was Ready again or None)."""
    ready = next((c for c in pod.status.conditions or [] if c.type == "Ready"), None)
    for cs in pod.status.container_statuses or []:
        term = cs.last_state.terminated if cs.last_state else None
        if not cs.restart_count or term is None or term.finished_at is None:
            continue
        back = (ready.last_transition_time if ready is not None and ready.status == "True"
                and ready.last_transition_time >= term.finished_at else None)
        yield cs.name, term.finished_at, back


def run_recovery_time(spec: RecoveryTimeProbe, ctx: ProbeContext) -> Outcome:
    apps, core = _apis(spec, ctx)
    ns = _namespace(spec, ctx)
    done: list[tuple[str, float | None]] = []
    going: list[tuple[str, float]] = []
    for name in _deployments(spec, ctx):
        dep = _call(spec, f"Deployment {name}", apps.read_namespaced_deployment, name, ns)
        pods = _call(spec, f"Pods of {name}", core.list_namespaced_pod, ns,
                     label_selector=_selector(dep)).items
        for pod in pods:
            for container, died, back in _restarts(pod):
                if ctx.now - died > spec.window:
                    continue
                label = f"{pod.metadata.name}/{container}"
                if back is None:
                    going.append((label, (ctx.now - died).total_seconds()))
                else:
                    done.append((label, (back - died).total_seconds()))
    verdict, reasons, worst = judge_durations(what="ready again after", durations=done,
                                              limit=spec.max, unfinished=going)
    if not done and not going:
        reasons = [f"no restart in the last {spec.window.days or 1} days to judge"]
    return Outcome(verdict, tuple(reasons), value=worst, limit=spec.max.total_seconds(),
                   figures={"restarts": {n: s for n, s in done + going}})

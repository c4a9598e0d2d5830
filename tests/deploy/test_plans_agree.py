"""The cluster's plan (deploy/base/plan.yaml) is the shipped plan (plans/nanopore.yaml)
with the cluster's sources.  The two are separate files on purpose (kustomize loads
nothing from outside deploy/), so this test is what keeps them one plan: every key they
share agrees, and the only keys in one and not the other are the differences listed here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

#: Where the cluster's plan differs, and why.  A path is a dotted key; a whole subtree under
#: it may differ.
CLUSTER_DIFFERENCES = {
    "sources.prometheus.url": "Thanos Querier instead of a local Prometheus",
    "sources.prometheus.ca_file": "the service CA that OpenShift mounts into every pod",
    "sources.logs": "the gateway pods' logs instead of a file",
    "router.in_cluster": "the Routes patched with the pod's service account",
}


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> leaf value; lists stay whole (a list differs as one value)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): node}


def _allowed(path: str) -> bool:
    return any(path == d or path.startswith(d + ".") for d in CLUSTER_DIFFERENCES)


def _plans() -> tuple[dict[str, Any], dict[str, Any]]:
    local = yaml.safe_load((ROOT / "plans" / "nanopore.yaml").read_text())
    cluster = yaml.safe_load((ROOT / "deploy" / "base" / "plan.yaml").read_text())
    return _flatten(local), _flatten(cluster)


def test_every_shared_key_agrees() -> None:
    local, cluster = _plans()
    differing = {p: (local[p], cluster[p]) for p in local.keys() & cluster.keys()
                 if local[p] != cluster[p] and not _allowed(p)}
    assert differing == {}, "the two plans disagree (plans/nanopore.yaml, deploy/base/plan.yaml)"


def test_keys_in_one_plan_only_are_the_listed_differences() -> None:
    local, cluster = _plans()
    only = sorted(p for p in local.keys() ^ cluster.keys() if not _allowed(p))
    assert only == [], "a key is in one plan only; add it to the other or to CLUSTER_DIFFERENCES"


def test_every_listed_difference_is_real() -> None:
    local, cluster = _plans()
    stale = [d for d in CLUSTER_DIFFERENCES
             if not any(_allowed(p) and (p not in local or p not in cluster
                                         or local[p] != cluster[p])
                        for p in (local.keys() | cluster.keys()) if p == d or p.startswith(d + "."))]
    assert stale == [], "these differences are gone: drop them from CLUSTER_DIFFERENCES"

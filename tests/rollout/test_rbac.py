"""deploy/rbac.yaml grants exactly what cutover uses: get and patch on Routes and
HTTPRoutes of the namespace, get on the baseline's Deployment and patch on its scale
(the emergency rollback), bound to cutover's service account."""

from __future__ import annotations

from pathlib import Path

import yaml

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"
PLAN = Path(__file__).resolve().parents[2] / "deploy" / "base" / "plan.yaml"


def test_role_grants_exactly_get_and_patch_on_routes() -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all(RBAC.read_text()) if d}
    assert set(docs) == {"ServiceAccount", "Role", "RoleBinding"}
    role = docs["Role"]
    rules = {(g, r): sorted(rule["verbs"]) for rule in role["rules"]
             for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules == {("route.openshift.io", "routes"): ["get", "patch"],
                     ("gateway.networking.k8s.io", "httproutes"): ["get", "patch"],
                     ("apps", "deployments"): ["get"],
                     ("apps", "deployments/scale"): ["patch"]}
    # the rollback's rules name the baseline's Deployment, and only it
    plan = yaml.safe_load(PLAN.read_text())["baseline"]
    for rule in role["rules"]:
        if rule["apiGroups"] == ["apps"]:
            assert rule["resourceNames"] == [plan["deployment"]]
    assert not any("resourceNames" in r and "*" in r["resourceNames"] for r in role["rules"])
    binding = docs["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    (subject,) = binding["subjects"]
    assert (subject["kind"], subject["name"]) == ("ServiceAccount",
                                                  docs["ServiceAccount"]["metadata"]["name"])
    namespaces = {d["metadata"]["namespace"] for d in docs.values()}
    assert namespaces == {"nanopore"} and subject["namespace"] == "nanopore"


def test_probes_role_reads_deployments_replicasets_and_pods_only() -> None:
    path = RBAC.parent / "base" / "probes-rbac.yaml"
    docs = {d["kind"]: d for d in yaml.safe_load_all(path.read_text()) if d}
    assert set(docs) == {"Role", "RoleBinding"}
    rules = {(g, r): sorted(rule["verbs"]) for rule in docs["Role"]["rules"]
             for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules == {("apps", "deployments"): ["get"], ("apps", "replicasets"): ["list"],
                     ("", "pods"): ["list"]}
    assert docs["RoleBinding"]["roleRef"]["name"] == docs["Role"]["metadata"]["name"]
    assert [s["name"] for s in docs["RoleBinding"]["subjects"]] == ["cutover"]
    kustomization = yaml.safe_load((RBAC.parent / "base" / "kustomization.yaml").read_text())
    assert "probes-rbac.yaml" in kustomization["resources"]


def test_identity_grants_exactly_create_on_selfsubjectreviews() -> None:
    path = RBAC.with_name("identity-rbac.yaml")
    docs = {d["kind"]: d for d in yaml.safe_load_all(path.read_text()) if d}
    assert set(docs) == {"ClusterRole", "ClusterRoleBinding"}
    (rule,) = docs["ClusterRole"]["rules"]
    assert rule == {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"],
                    "verbs": ["create"]}
    (subject,) = docs["ClusterRoleBinding"]["subjects"]
    assert (subject["kind"], subject["name"]) == ("Group", "cutover-operators")
    assert "identity-rbac.yaml" in RBAC.with_name("kustomization.yaml").read_text()

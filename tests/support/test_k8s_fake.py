"""The API fake's Deployments, ReplicaSets and Pods, read and changed through the real
``kubernetes`` client, as the probes and the rollback use them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client

from tests.support.k8s_fake import (
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    FakeApiServer,
    deployment,
    match_labels,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer() as fake:
        fake.put(deployment("python-auth", created=T0 - timedelta(days=3), replicas=2))
        fake.roll_out("python-auth", started=T0 - timedelta(days=3),
                      available=T0 - timedelta(days=3) + timedelta(seconds=50))
        yield fake


@pytest.fixture
def apps(api: FakeApiServer) -> tuple[client.AppsV1Api, client.CoreV1Api]:
    config = client.Configuration(host=api.url)
    c = client.ApiClient(config)
    return client.AppsV1Api(c), client.CoreV1Api(c)


def test_a_rollout_leaves_a_new_replica_set_and_its_ready_pods(
        api: FakeApiServer, apps: tuple[client.AppsV1Api, client.CoreV1Api]) -> None:
    started, done = T0, T0 + timedelta(seconds=95)
    new_rs = api.roll_out("python-auth", started=started, available=done, image="app:2")
    apps_api, core = apps

    dep = apps_api.read_namespaced_deployment("python-auth", "nanopore")
    assert dep.status.available_replicas == 2
    progressing = next(c for c in dep.status.conditions if c.type == "Progressing")
    assert progressing.reason == "NewReplicaSetAvailable"
    assert progressing.last_update_time == done
    assert new_rs in progressing.message

    sets = apps_api.list_namespaced_replica_set("nanopore", label_selector="app=python-auth")
    by_name = {rs.metadata.name: rs for rs in sets.items}
    assert by_name[new_rs].metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert by_name[new_rs].metadata.creation_timestamp == started
    assert [rs.spec.replicas for n, rs in by_name.items() if n != new_rs] == [0]
    assert by_name[new_rs].metadata.owner_references[0].uid == dep.metadata.uid

    pods = core.list_namespaced_pod("nanopore", label_selector="app=python-auth").items
    assert len(pods) == 2
    assert {p.metadata.owner_references[0].name for p in pods} == {new_rs}
    ready = [next(c for c in p.status.conditions if c.type == "Ready") for p in pods]
    assert {(c.status, c.last_transition_time) for c in ready} == {("True", done)}


def test_a_rollout_still_going_is_not_available(
        api: FakeApiServer, apps: tuple[client.AppsV1Api, client.CoreV1Api]) -> None:
    api.roll_out("python-auth", started=T0, available=None)
    dep = apps[0].read_namespaced_deployment("python-auth", "nanopore")
    assert not dep.status.available_replicas
    assert {c.type: c.reason for c in dep.status.conditions}["Progressing"] == \
        "ReplicaSetUpdated"


def test_a_restarted_pod_keeps_when_it_died_and_when_it_was_ready(
        api: FakeApiServer, apps: tuple[client.AppsV1Api, client.CoreV1Api]) -> None:
    name = api.items(PODS)[0]["metadata"]["name"]
    api.restart_pod(name, died=T0, ready=T0 + timedelta(seconds=40))
    pod = apps[1].read_namespaced_pod(name, "nanopore")
    status = pod.status.container_statuses[0]
    assert status.restart_count == 1
    assert status.last_state.terminated.finished_at == T0
    ready = next(c for c in pod.status.conditions if c.type == "Ready")
    assert (ready.status, ready.last_transition_time) == ("True", T0 + timedelta(seconds=40))


def test_a_pod_not_ready_after_its_restart_says_so(
        api: FakeApiServer, apps: tuple[client.AppsV1Api, client.CoreV1Api]) -> None:
    name = api.items(PODS)[1]["metadata"]["name"]
    api.restart_pod(name, died=T0, ready=None)
    pod = apps[1].read_namespaced_pod(name, "nanopore")
    assert next(c for c in pod.status.conditions if c.type == "Ready").status == "False"
    assert pod.status.container_statuses[0].ready is False


def test_scale_is_read_and_patched_through_the_subresource(
        api: FakeApiServer, apps: tuple[client.AppsV1Api, client.CoreV1Api]) -> None:
    apps_api = apps[0]
    assert apps_api.read_namespaced_deployment_scale("python-auth", "nanopore").spec.replicas == 2
    scaled = apps_api.patch_namespaced_deployment_scale("python-auth", "nanopore",
                                                        {"spec": {"replicas": 0}})
    assert scaled.spec.replicas == 0
    assert api.get("python-auth", kind=DEPLOYMENTS)["spec"]["replicas"] == 0
    with pytest.raises(client.ApiException) as bad:
        apps_api.patch_namespaced_deployment_scale("python-auth", "nanopore",
                                                   {"spec": {"replicas": -1}})
    assert bad.value.status == 422


def test_a_deployment_patch_with_an_old_resource_version_conflicts(
        api: FakeApiServer, apps: tuple[client.AppsV1Api, client.CoreV1Api]) -> None:
    apps_api = apps[0]
    seen = apps_api.read_namespaced_deployment("python-auth", "nanopore")
    api.edit("python-auth", lambda d: d["spec"].update(replicas=3), kind=DEPLOYMENTS)
    with pytest.raises(client.ApiException) as conflict:
        apps_api.patch_namespaced_deployment("python-auth", "nanopore", {
            "metadata": {"resourceVersion": seen.metadata.resource_version},
            "spec": {"replicas": 1}})
    assert conflict.value.status == 409
    assert api.get("python-auth", kind=DEPLOYMENTS)["spec"]["replicas"] == 3


def test_strategic_merge_merges_containers_by_name(
        api: FakeApiServer, apps: tuple[client.AppsV1Api, client.CoreV1Api]) -> None:
    api.edit("python-auth", lambda d: d["spec"]["template"]["spec"]["containers"].append(
        {"name": "proxy", "image": "oauth-proxy:4"}), kind=DEPLOYMENTS)
    apps[0].patch_namespaced_deployment("python-auth", "nanopore", {"spec": {"template": {
        "spec": {"containers": [{"name": "app", "image": "app:9"}]}}}})
    containers = api.get("python-auth", kind=DEPLOYMENTS)["spec"]["template"]["spec"][
        "containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("app", "app:9"),
                                                              ("proxy", "oauth-proxy:4")]
    assert "strategic-merge-patch" in api.requests[-1].content_type


def test_lists_filter_by_label_selector(api: FakeApiServer,
                                        apps: tuple[client.AppsV1Api, client.CoreV1Api]) -> None:
    api.put(deployment("python-files", created=T0, labels={"app": "python-files",
                                                           "tier": "api"}))
    names = [d.metadata.name for d in apps[0].list_namespaced_deployment(
        "nanopore", label_selector="tier in (api, web)").items]
    assert names == ["python-files"]
    assert len(apps[0].list_namespaced_deployment("nanopore").items) == 2
    assert apps[0].list_namespaced_replica_set("nanopore", label_selector="!app").items == []
    assert len(api.items(REPLICASETS, selector="app=python-auth")) == 1


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    ("app=a", {"app": "a"}, True),
    ("app==a,tier!=db", {"app": "a", "tier": "db"}, False),
    ("tier notin (db)", {"app": "a"}, True),
    ("app", {}, False),
    ("!app", {}, True),
    ("", {"x": "y"}, True),
])
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert match_labels(selector, labels) is matches


def test_an_unreadable_selector_is_a_bad_request(
        apps: tuple[client.AppsV1Api, client.CoreV1Api]) -> None:
    with pytest.raises(client.ApiException) as bad:
        apps[1].list_namespaced_pod("nanopore", label_selector="app in a,b)")
    assert bad.value.status == 400


def test_an_unknown_deployment_is_not_found(
        apps: tuple[client.AppsV1Api, client.CoreV1Api]) -> None:
    with pytest.raises(client.ApiException) as missing:
        apps[0].read_namespaced_deployment("nope", "nanopore")
    assert missing.value.status == 404

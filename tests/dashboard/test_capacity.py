"""Beside "Roll back everything" the overview says whether the baseline can take all the
traffic back now: its Deployment read through the real kubernetes client from the API
fake (a kubeconfig in the plan), not enough replicas in red, enough in green; and on the
dry-run router, that nothing was read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from tests.conftest import PLAN_PATH, plan_text_without_probes
from tests.dashboard.helpers import assert_clean, plain
from tests.support.k8s_cluster import FakeCluster
from tests.support.k8s_fake import FakeApiServer, route, write_kubeconfig

TOKEN = "dashboard-token"
SHIPPED_ROUTER = "router: {kind: openshift-route, namespace: nanopore}"


@pytest.fixture
def cluster(tmp_path: Path, plan_file: Path) -> Iterator[FakeCluster]:
    """The shipped plan (``baseline.min_replicas: 3``) on the API fake, in ``plan_file``."""
    with FakeApiServer(token=TOKEN) as fake, FakeCluster(fake, step=0.05) as c:
        fake.users[TOKEN] = "ana@example.org"
        for name in ("nanopore-auth", "nanopore-files", "nanopore-samples", "nanopore-ai",
                     "nanopore-audit", "nanopore-app"):
            fake.put(route(name, alternates=[]))
        kubeconfig = tmp_path / "kubeconfig"
        write_kubeconfig(kubeconfig, server=fake.url, token=TOKEN)
        text = PLAN_PATH.read_text()
        assert SHIPPED_ROUTER in text
        plan_file.write_text(plan_text_without_probes(text.replace(
            SHIPPED_ROUTER, "router: {kind: openshift-route, namespace: nanopore, "
                            f"kubeconfig: {kubeconfig}}}")))
        c.stuck = True   # replicas stay as each test puts them
        yield c


def _capacity(at) -> tuple[str, str]:
    for kind in ("error", "success", "info"):
        for e in getattr(at, kind):
            if plain(e.value).startswith("Baseline "):
                return kind, plain(e.value)
    raise AssertionError("no word on the baseline's capacity")


def test_the_overview_says_whether_the_baseline_can_take_it_all_back(
        app, store, cluster: FakeCluster) -> None:
    cluster.monolith(ready=1, replicas=1)
    at = app()
    assert_clean(at)
    kind, words = _capacity(at)
    assert kind == "error", words
    assert words == ("Baseline may not take 100 %: Deployment nanopore-monolith: 1 of 1 "
                     "replicas ready; a rollback wants 3")
    cluster.monolith(ready=3, replicas=3)
    st.cache_data.clear()   # the page reads the Deployment again every 15 s
    at = app()
    kind, words = _capacity(at)
    assert (kind, words) == ("success", "Baseline can take 100 %: Deployment "
                             "nanopore-monolith: 3 of 3 replicas ready; a rollback wants 3")


def test_on_the_dry_run_router_nothing_is_read_and_it_says_so(app, store) -> None:
    kind, words = _capacity(app())
    assert (kind, words) == ("info", "Baseline capacity not read: the dry-run router has "
                             "no cluster")

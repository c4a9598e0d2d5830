"""``cutover revert --all``: the emergency rollback through a kubeconfig, the fake API
server and the real kubernetes client; its table, its JSON, its exit codes, and a
rollback killed with SIGKILL mid-way, then run again: nothing is left half-applied."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from cutover.cli import main
from cutover.context import load_plan
from rollout import gate
from rollout.routers import api_client_for, build_router
from store.db import make_engine, session_scope
from store.groups import DecisionGroup
from store.rollout import Decision, ServiceState
from tests.support.k8s_cluster import FakeCluster
from tests.support.k8s_fake import FakeApiServer, route, write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
PLAN_TEXT = (ROOT / "plans" / "nanopore.yaml").read_text()
SHIPPED_ROUTER = "router: {kind: openshift-route, namespace: nanopore}"
ANA, LEE = "ana@example.org", "lee@example.org"
TOKEN = "rollback-token"
ROUTES = {"auth": ("nanopore-auth", "python-auth"), "files": ("nanopore-files", "python-files"),
          "samples": ("nanopore-samples", "python-samples"), "ai": ("nanopore-ai", "python-ai"),
          "audit": ("nanopore-audit", "python-audit"), "gateway": ("nanopore-app", "python-gateway")}
AT = {"auth": 25, "files": 10, "samples": 50, "ai": 10, "audit": 75, "gateway": 10}


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[FakeApiServer, list[str]]]:
    """The shipped plan on the fake API through a kubeconfig; every service moved to
    its weight in ``AT`` by the gate (override past the missing verdicts)."""
    monkeypatch.delenv("CUTOVER_ACTOR", raising=False)
    with FakeApiServer(token=TOKEN) as fake:
        fake.users[TOKEN] = LEE   # who the cluster says the kubeconfig's token is
        for name, backend in ROUTES.values():
            fake.put(route(name, alternates=[{"kind": "Service", "name": backend, "weight": 0}]))
        kubeconfig = tmp_path / "kubeconfig"
        write_kubeconfig(kubeconfig, server=fake.url, token=TOKEN)
        assert SHIPPED_ROUTER in PLAN_TEXT
        plan = tmp_path / "plan.yaml"
        plan.write_text(PLAN_TEXT.replace(SHIPPED_ROUTER, "router: {kind: openshift-route, "
                                          f"namespace: nanopore, kubeconfig: {kubeconfig}}}"))
        args = ["--plan", str(plan), "--db", f"sqlite:///{tmp_path / 'cutover.db'}"]
        assert main(["db", "upgrade", *args]) == 0
        _set_weights(str(plan), args[3], fake)
        yield fake, args


def _set_weights(plan_path: str, db_url: str, fake: FakeApiServer) -> None:
    """The gate in process (one CLI call per step would take a second each)."""
    plan, _ = load_plan(plan_path)
    engine = make_engine(db_url)
    router = build_router(plan, engine, api_client=api_client_for(fake.url, token=TOKEN))
    for service, weight in AT.items():
        while router.read_weight(service) < weight:
            gate.approve(engine=engine, plan=plan, router=router, service=service,
                         actor=ANA, reason="setup", override=True, now=datetime.now(UTC))
    engine.dispose()


def route_weight(fake: FakeApiServer, service: str) -> int:
    name, backend = ROUTES[service]
    spec = fake.get(name)["spec"]
    return next(b["weight"] for b in spec["alternateBackends"] if b["name"] == backend)


def store_rows(db_url: str, table: type) -> list:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            return list(s.exec(select(table)).all())
    finally:
        engine.dispose()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_table_then_json_then_nothing_to_do(cluster: tuple[FakeApiServer, list[str]],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fake, cli = cluster
    capsys.readouterr()
    code, out, _ = run(capsys, "revert", "--all", "--reason", "incident 7", *cli)
    head, header, *rows = out.strip().splitlines()
    assert code == 0 and head.startswith("rollback #1: applied in ")
    assert [r.split()[:4] for r in rows] == [
        [s, ROUTES[s][0], str(w), "%"] for s, w in AT.items()]
    assert all(r.split()[4:7] == ["APPLIED", "0", "%"] for r in rows)
    assert all(route_weight(fake, s) == 0 for s in AT)
    code, out, _ = run(capsys, "revert", "--all", "--json", "--reason", "again", *cli)
    doc = json.loads(out)
    assert code == 0 and doc["outcome"] == "nothing" and doc["group_id"] == 2
    assert {r["service"]: r["result"] for r in doc["results"]} == dict.fromkeys(AT, "already")
    code, out, _ = run(capsys, "decisions", "--json", *cli)
    groups = {d["group_id"] for d in json.loads(out)["decisions"] if d["action"] == "revert"}
    assert groups == {1}


def test_partial_failure_exits_3_and_names_the_route(cluster: tuple[FakeApiServer, list[str]],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    fake, cli = cluster
    capsys.readouterr()
    fake.fail_next(500, method="PATCH")
    code, out, _ = run(capsys, "revert", "--all", "--json", "--reason", "incident", *cli)
    doc = json.loads(out)
    (bad,) = [r for r in doc["results"] if r["result"] == "failed"]
    assert code == 3 and doc["outcome"] == "partial" and "HTTP 500" in bad["message"]
    assert route_weight(fake, bad["service"]) == AT[bad["service"]]
    # every route failing is exit 1
    fake.fail_next(500, method="PATCH", times=10)
    code, out, _ = run(capsys, "revert", "--all", "--reason", "incident", *cli)
    assert code == 1 and out.startswith("rollback #2: failed")


@pytest.mark.slow
def test_killed_mid_rollback_then_run_again(cluster: tuple[FakeApiServer, list[str]],
                                            tmp_path: Path) -> None:
    """SIGKILL once three routes are patched and the other three are in flight; the
    API server still applies what it had received, as a real one would."""
    fake, cli = cluster
    gate_open = threading.Event()
    arrived: list[int] = []
    lock = threading.Lock()

    def hold(_api: FakeApiServer) -> None:
        with lock:
            arrived.append(1)
            n = len(arrived)
        if n > 3:
            gate_open.wait(30)

    fake.before_patch = hold
    db_url = cli[3]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cutover", "revert", "--all", "--reason", "incident",
         *cli], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 180   # a bound for a loaded machine, not a speed
        while time.monotonic() < deadline:
            done = [d for d in store_rows(db_url, Decision)
                    if d.group_id is not None and d.state == "applied"]
            if len(done) == 3 and len(arrived) == 6:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            pytest.fail(f"the rollback never got 3 routes patched and 3 in flight: {arrived}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        gate_open.set()
    fake.before_patch = None

    # nothing half-applied: a service's store weight is its route's, or a pending
    # decision of the killed group says the move was under way
    states = {s.service: s for s in store_rows(db_url, ServiceState)}
    members = [d for d in store_rows(db_url, Decision) if d.group_id == 1]
    pending = {d.service for d in members if d.state == "pending"}
    assert len(members) == 6 and len(pending) == 3
    for d in members:
        if d.state == "applied":
            assert states[d.service].weight == 0 == route_weight(fake, d.service)
        else:
            assert states[d.service].weight == AT[d.service]
            assert route_weight(fake, d.service) in (0, AT[d.service])
    (killed,) = store_rows(db_url, DecisionGroup)
    assert killed.finished_at is None

    again = subprocess.run(
        [sys.executable, "-m", "cutover", "revert", "--all", "--json", "--reason",
         "incident, again", *cli], cwd=ROOT, capture_output=True, text=True,
        timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["outcome"] in ("applied", "nothing") and doc["closed_interrupted"] == [1]
    assert all(route_weight(fake, s) == 0 for s in AT)
    assert all(s.weight == 0 for s in store_rows(db_url, ServiceState))
    assert not [d for d in store_rows(db_url, Decision) if d.state == "pending"]
    groups = {g.id: g.outcome for g in store_rows(db_url, DecisionGroup)}
    assert groups == {1: "interrupted", 2: doc["outcome"]}


def test_scale_baseline_then_roll_back(cluster: tuple[FakeApiServer, list[str]],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    fake, cli = cluster
    with FakeCluster(fake, step=0.05) as controllers:
        controllers.monolith(ready=1)
        capsys.readouterr()
        code, out, err = run(capsys, "revert", "--all", "--scale-baseline", "--wait-timeout",
                             "30s", "--json", "--reason", "incident", *cli)
        assert controllers.ready() == 3
    doc = json.loads(out)
    assert code == 0 and doc["outcome"] == "applied"
    assert doc["baseline"]["scaled"] == {"from": 1, "to": 3, "error": None}
    said = [line for line in err.splitlines() if " WARNING " not in line]   # not the log's
    assert said[:3] == [
        "warning: Deployment nanopore-monolith: 1 of 1 replicas ready; a rollback wants 3",
        "scaled nanopore-monolith from 1 to 3 replicas",
        "waiting up to 30 s for 3 ready replicas"]
    assert said[-1] == "  3 of 3 ready"
    assert all(route_weight(fake, s) == 0 for s in AT)


@pytest.mark.parametrize("argv", [["revert", "auth", "--scale-baseline"],
                                  ["revert", "--all", "--no-wait"],
                                  ["revert", "--all", "--scale-baseline", "--wait-timeout",
                                   "soon"]],
                         ids=["scale_one_service", "no_wait_alone", "bad_timeout"])
def test_bad_rollback_arguments_exit_2(cluster: tuple[FakeApiServer, list[str]],
                                       capsys: pytest.CaptureFixture[str],
                                       argv: list[str]) -> None:
    fake, cli = cluster
    patches = fake.count("PATCH")
    capsys.readouterr()
    code, _, err = run(capsys, *argv, "--reason", "x", *cli)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("cutover: ")
    assert fake.count("PATCH") == patches

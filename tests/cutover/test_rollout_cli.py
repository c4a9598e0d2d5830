"""``cutover status | approve | revert | decisions``: the contract's JSON, exit codes,
one line on a refusal; against the dry-run router and, through a kubeconfig, the fake
API server with the real kubernetes client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cutover.cli import main
from store.db import make_engine, session_scope
from store.rollout import add_decision
from tests.support.k8s_fake import FakeApiServer, route, write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
PLAN_TEXT = (ROOT / "plans" / "nanopore.yaml").read_text()
SHIPPED_ROUTER = "router: {kind: openshift-route, namespace: nanopore}"
ANA, LEE = "ana@example.org", "lee@example.org"
TOKEN = "cli-token"


def _plan(tmp_path: Path, router: str) -> str:
    assert SHIPPED_ROUTER in PLAN_TEXT
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN_TEXT.replace(SHIPPED_ROUTER, router))
    return str(path)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Global arguments for a dry-run plan on a fresh SQLite store."""
    monkeypatch.delenv("CUTOVER_ACTOR", raising=False)
    args = ["--plan", _plan(tmp_path, "router: {kind: dry-run}"),
            "--db", f"sqlite:///{tmp_path / 'cutover.db'}"]
    assert main(["db", "upgrade", *args]) == 0
    yield args


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_approve_refuse_override_status_decisions(cli: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "approve", "auth", "--reason", "week 2", "--actor", ANA, *cli)
    assert code == 0 and out.startswith("auth: approve 0 % -> 10 % applied")
    code, out, err = run(capsys, "approve", "auth", "--reason", "more", "--actor", ANA, *cli)
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "cutover: auth: not approved: no verdict yet at 10 %: waiting for data "
        "(--override with a reason goes past a verdict)"]
    code, out, _ = run(capsys, "approve", "auth", "--reason", "CAB said so", "--override",
                       "--actor", LEE, *cli)
    assert code == 0 and "10 % -> 25 %" in out and "[override]" in out

    code, out, _ = run(capsys, "status", "--json", *cli)
    assert code == 0
    services = json.loads(out)["services"]
    auth = services[0]
    assert {k: auth[k] for k in ("service", "phase", "weight", "router_weight", "drift",
                                 "next_weight", "state", "verdict", "evaluated_at")} == {
        "service": "auth", "phase": "week-2", "weight": 25, "router_weight": 25,
        "drift": False, "next_weight": 50, "state": "waiting", "verdict": None,
        "evaluated_at": None}
    assert [s["service"] for s in services] == ["auth", "files", "samples", "ai", "audit",
                                                "gateway"]

    code, out, _ = run(capsys, "decisions", "--json", *cli)
    rows = json.loads(out)["decisions"]
    assert [(d["action"], d["from_weight"], d["to_weight"], d["actor"], d["override"],
             d["state"]) for d in rows] == [("approve", 10, 25, LEE, True, "applied"),
                                           ("approve", 10, 25, ANA, False, "refused"),
                                           ("approve", 0, 10, ANA, False, "applied")]
    assert rows[1]["error"] == "not approved: no verdict yet at 10 %: waiting for data " \
        "(--override with a reason goes past a verdict)"
    assert rows[0]["at"].endswith("Z") and rows[0]["reason"] == "CAB said so"

    code, out, _ = run(capsys, "status", *cli)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["SERVICE", "PHASE", "WEIGHT"]
    assert "waiting OVERRIDE" in out.splitlines()[1]
    code, out, _ = run(capsys, "decisions", "--service", "auth", *cli)
    assert code == 0 and "OVERRIDE" in out and "CAB said so" in out


def test_actor_from_env_then_os_user(cli: list[str], capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUTOVER_ACTOR", "mallory@example.org")
    code, _, err = run(capsys, "approve", "auth", "--reason", "x", *cli)
    assert code == 1 and "'mallory@example.org' is not among the plan's operators" in err
    monkeypatch.setenv("CUTOVER_ACTOR", ANA)
    assert run(capsys, "approve", "auth", "--reason", "x", *cli)[0] == 0
    monkeypatch.delenv("CUTOVER_ACTOR")
    monkeypatch.setattr("getpass.getuser", lambda: "os-user")
    code, _, err = run(capsys, "revert", "auth", "--reason", "x", *cli)
    assert code == 1 and "'os-user'" in err


def test_revert_and_revert_all(cli: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    for svc in ("auth", "files"):
        assert run(capsys, "approve", svc, "--reason", "go", "--actor", ANA, *cli)[0] == 0
    code, out, _ = run(capsys, "revert", "auth", "--reason", "errors", "--actor", LEE, *cli)
    assert code == 0 and "auth: revert 10 % -> 0 % applied" in out
    # the emergency rollback prints one table: a row per service, what each one did
    code, out, _ = run(capsys, "revert", "--all", "--reason", "incident", "--actor", LEE, *cli)
    head, header, *rows = out.strip().splitlines()
    assert code == 0 and head.startswith("rollback #1: applied in ")
    assert header.split() == ["SERVICE", "ROUTE", "FROM", "RESULT", "ROUTER", "DECISION",
                              "AFTER", "MESSAGE"]
    table = {r.split()[0]: r.split()[2:6] for r in rows}
    assert table["files"] == ["10", "%", "APPLIED", "0"]
    assert table["auth"] == ["0", "%", "ALREADY", "0"]
    assert [r.split()[0] for r in rows] == ["auth", "files", "samples", "ai", "audit", "gateway"]
    code, out, _ = run(capsys, "revert", "--all", "--reason", "again", "--actor", LEE, *cli)
    assert code == 0 and out.startswith("rollback #2: nothing in ")
    assert "every service is already at 0 %" in out.splitlines()[0]
    code, out, _ = run(capsys, "status", "--json", *cli)
    states = {s["service"]: (s["weight"], s["state"]) for s in json.loads(out)["services"]}
    assert states["auth"] == (0, "reverted") and states["files"] == (0, "reverted")
    assert states["samples"] == (0, "ready")


@pytest.mark.parametrize("argv", [["revert", "--reason", "x"],
                                  ["revert", "auth", "--all", "--reason", "x"],
                                  ["approve", "billing", "--reason", "x"],
                                  ["approve", "auth", "--reason", " "],
                                  ["decisions", "--limit", "0"]],
                         ids=["neither", "both", "unknown_service", "blank_reason", "limit"])
def test_bad_input_exits_2(cli: list[str], capsys: pytest.CaptureFixture[str],
                           argv: list[str]) -> None:
    code, _, err = run(capsys, *argv, "--actor", ANA, *cli)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("cutover: ")


def test_status_settles_a_decision_left_pending_by_a_crash(
        cli: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(cli[3])
    with session_scope(engine) as s:
        add_decision(session=s, at=datetime.now(UTC) - timedelta(minutes=10), service="auth",
                     action="approve", from_weight=0, to_weight=10, actor=ANA, reason="crash")
    engine.dispose()
    assert run(capsys, "status", *cli)[0] == 0
    code, out, _ = run(capsys, "decisions", "--json", *cli)
    (d,) = json.loads(out)["decisions"]
    assert d["state"] == "failed" and "not applied" in d["error"]


@pytest.fixture
def openshift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[FakeApiServer, list[str]]]:
    monkeypatch.delenv("CUTOVER_ACTOR", raising=False)
    with FakeApiServer(token=TOKEN) as fake:
        for name, backend in (("nanopore-auth", "python-auth"),
                              ("nanopore-files", "python-files"),
                              ("nanopore-samples", "python-samples"), ("nanopore-ai", "python-ai"),
                              ("nanopore-audit", "python-audit"),
                              ("nanopore-app", "python-gateway")):
            fake.put(route(name, alternates=[{"kind": "Service", "name": backend,
                                              "weight": 0}]))
        kubeconfig = tmp_path / "kubeconfig"
        write_kubeconfig(kubeconfig, server=fake.url, token=TOKEN)
        plan = _plan(tmp_path, "router: {kind: openshift-route, namespace: nanopore, "
                               f"kubeconfig: {kubeconfig}}}")
        args = ["--plan", plan, "--db", f"sqlite:///{tmp_path / 'cutover.db'}"]
        assert main(["db", "upgrade", *args]) == 0
        yield fake, args


def test_openshift_route_through_a_kubeconfig(openshift: tuple[FakeApiServer, list[str]],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    fake, cli = openshift
    fake.users[TOKEN] = ANA    # who the cluster says the kubeconfig's token is
    code, out, _ = run(capsys, "approve", "auth", "--reason", "go", *cli)
    assert code == 0 and "the router reads 10 %" in out
    spec = fake.get("nanopore-auth")["spec"]
    assert spec["to"]["weight"] == 90 and spec["alternateBackends"][0]["weight"] == 10
    fake.edit("nanopore-auth", lambda r: r["spec"]["alternateBackends"][0].update(weight=30)
              or r["spec"]["to"].update(weight=70))
    code, out, _ = run(capsys, "status", "--json", *cli)
    auth = json.loads(out)["services"][0]
    assert (auth["weight"], auth["router_weight"], auth["drift"]) == (10, 30, True)
    fake.fail_next(500, method="PATCH")
    fake.users[TOKEN] = LEE
    code, out, err = run(capsys, "revert", "auth", "--reason", "undo", *cli)
    assert code == 1 and err.count("\n") == 1 and "HTTP 500" in err
    code, out, _ = run(capsys, "decisions", "--json", *cli)
    assert json.loads(out)["decisions"][0]["state"] == "failed"


def test_on_a_cluster_the_actor_is_who_the_cluster_says(
        openshift: tuple[FakeApiServer, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    fake, cli = openshift
    fake.users[TOKEN] = ANA
    code, _, err = run(capsys, "approve", "auth", "--reason", "go", "--actor", LEE, *cli)
    assert code == 2 and "--actor is refused with the openshift-route router" in err
    assert "router.allow_actor" in err
    code, _, _ = run(capsys, "approve", "auth", "--reason", "go", *cli)
    assert code == 0
    code, out, _ = run(capsys, "decisions", "--json", *cli)
    d = json.loads(out)["decisions"][0]
    assert (d["actor"], d["actor_source"]) == (ANA, "selfsubjectreview")
    assert any(r.method == "POST" and r.path.endswith("/selfsubjectreviews")
               for r in fake.requests)


def test_a_cluster_identity_that_is_no_operator_is_refused(
        openshift: tuple[FakeApiServer, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    fake, cli = openshift   # the token is the service account's: not an operator
    code, _, err = run(capsys, "approve", "auth", "--reason", "go", *cli)
    assert code == 1 and "system:serviceaccount:nanopore:cutover" in err
    assert fake.get("nanopore-auth")["spec"]["alternateBackends"][0]["weight"] == 0


def test_a_cluster_that_refuses_the_review_says_which_rule_is_missing(
        openshift: tuple[FakeApiServer, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    fake, cli = openshift
    fake.fail_next(403, method="POST")
    code, _, err = run(capsys, "revert", "auth", "--reason", "undo", "--to", "0", *cli)
    assert code == 1 and "HTTP 403" in err and "selfsubjectreviews" in err


def test_the_plan_may_allow_a_typed_actor_and_the_decision_says_so(
        tmp_path: Path, openshift: tuple[FakeApiServer, list[str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    fake, cli = openshift
    plan = Path(cli[1])
    plan.write_text(plan.read_text().replace("namespace: nanopore, kubeconfig",
                                             "namespace: nanopore, allow_actor: true, kubeconfig"))
    code, _, _ = run(capsys, "approve", "auth", "--reason", "go", "--actor", ANA, *cli)
    assert code == 0
    code, out, _ = run(capsys, "decisions", "--json", *cli)
    d = json.loads(out)["decisions"][0]
    assert (d["actor"], d["actor_source"]) == (ANA, "flag")

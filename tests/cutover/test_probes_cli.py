"""``cutover probes run|list`` and ``cutover signoff`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cutover.cli import main
from slo.planfile import without_probes
from store.db import make_engine, session_scope, upgrade
from store.probes import signoffs
from tests.collectors.test_probes_http import _health, serve
from tests.conftest import PLAN_PATH


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, str]:
    """A plan whose only probe is a health check of ``{url}``, and an upgraded store."""
    db = f"sqlite:///{tmp_path / 'c.db'}"
    engine = make_engine(db)
    upgrade(engine)
    engine.dispose()
    return tmp_path / "plan.yaml", db


def _plan(path: Path, url: str) -> str:
    data = without_probes(yaml.safe_load(PLAN_PATH.read_text()))
    data["router"] = {"kind": "dry-run"}   # sign-off names its signer with --actor
    data["phases"][0]["probes"] = [{"name": "healthy", "kind": "http", "url": url}]
    data["phases"][0]["criteria"][0] = {"text": "All Python services healthy and responding",
                                        "probes": ["healthy"]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def test_probes_run_and_list(files: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    path, db = files
    with serve(_health) as url:
        plan = _plan(path, f"{url}/health")
        assert main(["probes", "list", "--plan", plan, "--db", db]) == 0
        assert "NOT RUN YET" in capsys.readouterr().out
        assert main(["probes", "run", "--plan", plan, "--db", db, "--json"]) == 0
        [result] = json.loads(capsys.readouterr().out)["results"]
        assert (result["probe"], result["verdict"]) == ("healthy", "pass")
        # not due again within its interval
        assert main(["probes", "run", "--plan", plan, "--db", db]) == 0
        assert capsys.readouterr().out.strip() == "no probe was due"
    assert main(["probes", "list", "--plan", plan, "--db", db, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)["probes"]
    assert listed["latest"]["verdict"] == "pass" and listed["phase"] == "week-1"


def test_a_failing_probe_exits_1(files: tuple[Path, str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    path, db = files
    with serve(_health) as url:
        plan = _plan(path, f"{url}/missing")
        assert main(["probes", "run", "--plan", plan, "--db", db, "--all"]) == 1
    assert "status 404, expected 200" in capsys.readouterr().out


def test_an_unknown_probe_is_bad_input(files: tuple[Path, str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path, db = files
    plan = _plan(path, "http://127.0.0.1:1/health")
    assert main(["probes", "run", "--plan", plan, "--db", db, "--probe", "nope"]) == 2
    assert "unknown probe 'nope'; expected one of healthy" in capsys.readouterr().err


def test_signoff_by_number_or_text_is_recorded(files: tuple[Path, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path, db = files
    plan = _plan(path, "http://127.0.0.1:1/health")
    assert main(["signoff", "--plan", plan, "--db", db, "--phase", "week-6", "--criterion",
                 "4", "--note", "two sessions held, 9 of 9 attended",
                 "--actor", "ana@example.org"]) == 0
    assert "'Team trained on new architecture' signed off by ana@example.org" in \
        capsys.readouterr().out
    assert main(["signoff", "--plan", plan, "--db", db, "--phase", "week-6", "--criterion",
                 "documentation", "--note", "runbooks reviewed", "--actor", "lee@example.org",
                 "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [s["criterion"] for s in shown["signoffs"]] == [
        "Team trained on new architecture", "Documentation updated"]
    engine = make_engine(db)
    with session_scope(engine) as s:
        assert [x.actor for x in signoffs(session=s, phase="week-6")] == [
            "ana@example.org", "lee@example.org"]
    engine.dispose()


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--phase", "week-9", "--criterion", "1"], 2, "unknown phase 'week-9'"),
    (["--phase", "week-6", "--criterion", "7"], 2, "names no criteria of phase week-6"),
    (["--phase", "week-6", "--criterion", "1", "--actor", "mallory@example.org"], 1,
     "mallory@example.org is not an operator"),
    (["--phase", "week-6", "--criterion", "1", "--note", "  "], 2, "--note: say what"),
])
def test_signoff_refusals(files: tuple[Path, str], capsys: pytest.CaptureFixture[str],
                          args: list[str], code: int, says: str) -> None:
    path, db = files
    plan = _plan(path, "http://127.0.0.1:1/health")
    base = ["signoff", "--plan", plan, "--db", db, "--note", "done", "--actor",
            "ana@example.org"]
    assert main(base + args) == code
    assert says in capsys.readouterr().err

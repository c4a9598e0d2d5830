"""The command line's contract: exit codes, one clear line on stderr, globals anywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cutover.cli import main

ROOT = Path(__file__).resolve().parents[2]
PLAN = str(ROOT / "plans" / "nanopore.yaml")


def test_plan_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "check", "--plan", PLAN]) == 0
    out = capsys.readouterr().out
    assert "ok (Nanopore Tracking" in out and "week-5: AI and audit services - ai, audit" in out


def test_globals_before_or_after_the_subcommand(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert main(["--plan", PLAN, "--db", db, "db", "upgrade"]) == 0
    assert main(["db", "upgrade", "--db", db, "--plan", PLAN]) == 0
    assert (tmp_path / "a.db").exists()


def test_broken_plan_exits_2_naming_each_problem(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = Path(PLAN).read_text().replace("services: [ai, audit]", "services: [ai2, audit]")
    text = text.replace("window: 10m", "window: 10 minutes")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert main(["plan", "check", "--plan", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    line = text.splitlines().index("  window: 10 minutes") + 1
    assert err == [f"{bad}: defaults.window: expected a duration like '30s', '10m' or '1h30m', "
                   f"got '10 minutes' (line {line})"]
    text = Path(PLAN).read_text().replace("services: [ai, audit]", "services: [ai2, audit]")
    bad.write_text(text)
    assert main(["plan", "check", "--plan", str(bad)]) == 2
    line = text.splitlines().index("    services: [ai2, audit]") + 1
    assert (f"phases[4].services[0]: 'ai2' is not a defined service (line {line})"
            in capsys.readouterr().err)


def test_missing_plan_and_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "check", "--plan", "/nonexistent/plan.yaml"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["approve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cutover:") and "required" in err
    assert main(["frobnicate"]) == 2


def test_plan_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["plan", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "cutover plan"


def test_commands_refuse_an_unmigrated_store(tmp_path: Path) -> None:
    from cutover.context import Context
    from slo.errors import ConfigError

    ctx = Context(plan_path=PLAN, db_url=f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ConfigError, match="run `cutover db upgrade` first"):
        ctx.ready_engine()


def test_python_dash_m_entry_point() -> None:
    r = subprocess.run([sys.executable, "-m", "cutover", "plan", "check", "--plan", PLAN],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


def test_relative_times_need_no_equals_sign(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert main(["db", "upgrade", "--db", db]) == 0
    assert main(["evaluate", "--at", "-2h", "--json", "--plan", PLAN, "--db", db]) == 0
    assert '"results"' in capsys.readouterr().out
    assert main(["evaluate", "--at", "-2 hours", "--plan", PLAN, "--db", db]) == 2
    assert "expected a time" in capsys.readouterr().err

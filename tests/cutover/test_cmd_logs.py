"""``cutover logs check``: a file or standard input, the plan's format or --format,
text for people and --json for machines, exit 0 / 1 / 2."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cutover.cli import main
from tests.collectors.test_logs_support import json_line, nginx, requests

ROOT = Path(__file__).resolve().parents[2]
PLAN = str(ROOT / "plans" / "nanopore.yaml")


def test_a_file_in_the_plans_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "access.log"
    reqs = requests(30)
    path.write_text("".join(json_line(r) + "\n" for r in reqs) + '{"status": "200"}\n')
    assert main(["logs", "check", str(path), "--plan", PLAN, "--lines", "40"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}: 31 lines read as json: ")
    assert "-> auth/candidate" in out[1] and "/api/auth/login" in out[1]
    assert out[-1] == '31  NO-TIME: {"status": "200"}'
    assert out[0].endswith("; not counted: 1 no-time, 4 unknown-upstream")


def test_json_output_with_a_template_format(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "access.log.gz"
    with gzip.open(path, "wt") as f:
        f.write("".join(nginx(r) + "\n" for r in requests(25)))
    assert main(["logs", "check", str(path), "--plan", PLAN, "--format", "nginx",
                 "--lines", "5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["lines"] == 5 and doc["summary"]["fits"] is True
    first = doc["lines"][0]
    assert (first["line"], first["path"], first["service"], first["variant"]) == (
        1, "/api/auth/login", "auth", "candidate")
    assert first["latency_ms"] == requests(25)[0].latency_ms


def test_standard_input_and_a_format_that_does_not_fit(tmp_path: Path) -> None:
    lines = "".join(nginx(r) + "\n" for r in requests(10))
    run = subprocess.run([sys.executable, "-m", "cutover", "--plan", PLAN, "logs", "check",
                          "--format", "json"], input=lines, capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert run.returncode == 1, run.stderr
    assert run.stdout.startswith("standard input: 10 lines read as json: 0 counted")
    assert "does not read most of these lines" in run.stdout


def test_escapes_what_a_terminal_would_obey(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(b"\x1b[2Jgarbage\n")
    assert main(["logs", "check", str(path), "--plan", PLAN]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2Jgarbage" in out


def test_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "check", str(tmp_path / "missing.log"), "--plan", PLAN]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["logs", "check", "--plan", PLAN, "--format", "nope"]) == 2
    assert "unknown log format 'nope'" in capsys.readouterr().err
    bare = tmp_path / "plan.yaml"
    bare.write_text(Path(PLAN).read_text().replace(
        "    - {path: /var/log/gateway/access.log, format: json}\n", "    []\n"
    ).replace("  logs:\n    # the FastAPI gateway writes one JSON object per request\n",
              "  logs:\n"))
    (tmp_path / "a.log").write_text("x\n")
    assert main(["logs", "check", str(tmp_path / "a.log"), "--plan", str(bare)]) == 2
    assert "--format" in capsys.readouterr().err


def test_json_field_names_are_learned_or_asked_for(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "access.log"
    docs = [json.loads(json_line(r)) for r in requests(10)]
    path.write_text("".join(json.dumps({"ts" if k == "time" else k: v for k, v in d.items()})
                            + "\n" for d in docs))
    assert main(["logs", "check", str(path), "--plan", PLAN, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["fields_learned"]["time"] == "ts" and doc["summary"]["counted"] > 0
    for d in docs:
        d["ts"] = d["timestamp"] = d.pop("time")
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    assert main(["logs", "check", str(path), "--plan", PLAN]) == 2
    err = capsys.readouterr().err
    assert "more than one time field (ts, timestamp)" in err and "fields: {" in err

"""``cutover evaluate``: the contract's JSON, one text line per service, exit codes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from cutover.cli import main
from slo.plan import FIGURES
from store.db import session_scope
from store.evaluations import EvaluationRow
from store.rollout import ServiceState
from tests.slo.judgekit import AT

ROOT = Path(__file__).resolve().parents[2]
PLAN = str(ROOT / "plans" / "nanopore.yaml")
AT_TEXT = "2026-11-26T12:00:00Z"


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _run(engine: Engine, *args: str) -> int:
    return main(["evaluate", "--plan", PLAN, "--db", _url(engine), *args])


def test_json_has_the_contract_shape(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    with session_scope(engine) as s:
        s.add(ServiceState(service="auth", weight=25, step_since=AT - timedelta(minutes=5)))
    assert _run(engine, "--at", AT_TEXT, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["at", "results"] and out["at"] == AT_TEXT
    [r] = out["results"]
    assert list(r) == ["service", "phase", "weight", "verdict", "reasons", "figures", "checks",
                       "step_since"]
    assert r["step_since"] == "2026-11-26T11:55:00Z"
    assert (r["service"], r["phase"], r["weight"]) == ("auth", "week-2", 25)
    assert r["verdict"] == "inconclusive"            # an empty store: never a pass
    assert "soaked 5m of 15m at 25 %: about 10 more minutes" in r["reasons"]
    assert list(r["figures"]) == ["baseline", "candidate"]
    assert list(r["figures"]["candidate"]) == [*FIGURES, "errors"]
    check = r["checks"][0]
    assert list(check) == ["name", "verdict", "baseline", "candidate", "limit", "detail"]
    with session_scope(engine) as s:
        rows = s.exec(select(EvaluationRow)).all()
        assert [(e.service, e.at.isoformat()) for e in rows] == [("auth", "2026-11-26T12:00:00+00:00")]


def test_text_is_one_line_per_service(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    with session_scope(engine) as s:
        s.add(ServiceState(service="auth", weight=100, step_since=AT - timedelta(days=1)))
        s.add(ServiceState(service="files", weight=10, step_since=AT - timedelta(hours=1)))
        s.add(ServiceState(service="ai", weight=50, step_since=AT - timedelta(hours=1)))
    assert _run(engine, "--at", AT_TEXT) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"evaluated at {AT_TEXT}"
    assert [ln.split()[0] for ln in lines[1:]] == ["files", "ai"]
    assert lines[1].split()[1:5] == ["week-3", "10", "%", "INCONCLUSIVE"]
    assert "more)" in lines[1]


def test_one_service_and_relative_time(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(engine, "--service", "gateway", "--at=-2h", "--json") == 0
    [r] = json.loads(capsys.readouterr().out)["results"]
    assert r["service"] == "gateway" and r["weight"] == 0


def test_unknown_service_exits_2(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(engine, "--service", "nope") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cutover: unknown service 'nope'; expected one of auth, files")
    assert "\n" not in err


def test_bad_time_exits_2(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(engine, "--at", "yesterday-ish") == 2
    assert "expected a time like 2026-11-26T12:00:00Z" in capsys.readouterr().err


def test_store_behind_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'new.db'}"
    assert main(["evaluate", "--plan", PLAN, "--db", db]) == 2
    assert "run `cutover db upgrade` first" in capsys.readouterr().err


def test_machine_output_carries_full_precision_and_the_counts() -> None:
    """``error_rate`` 0.0040306... was printed as 0.00403: a reader could not redo the
    arithmetic.  Now the share is exact and ``errors`` says what it was made of."""
    from slo.figures import Figures

    f = Figures(start=AT - timedelta(minutes=10), end=AT, requests=2481.0, errors=10.0,
                error_rate=10 / 2481, latency_p95_ms=41.23456789, rps=4.135)
    out = json.loads(json.dumps(f.contract()))
    assert out["error_rate"] == 10 / 2481 and out["errors"] == 10 and out["requests"] == 2481
    assert out["error_rate"] * out["requests"] == pytest.approx(out["errors"], rel=1e-12)
    assert out["latency_p95_ms"] == 41.23456789 and out["rps"] == 4.135
    assert out["memory_mb"] is None   # no source gives it: null, never a number

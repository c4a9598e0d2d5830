"""``cutover backtest``: the judge replayed over stored history, with the step timeline
from decisions, a file or the logs' split; nothing stored unless asked."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from cutover.cli import main
from store.db import session_scope
from store.evaluations import EvaluationRow
from store.events import EventRow
from store.rollout import Decision
from store.rollups import RollupDelta, upsert_rollups
from tests.slo.judgekit import AT, sketch

ROOT = Path(__file__).resolve().parents[2]
PLAN = str(ROOT / "plans" / "nanopore.yaml")
START = AT - timedelta(hours=2)


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _run(engine: Engine, *args: str) -> int:
    return main(["backtest", "--plan", PLAN, "--db", _url(engine), "--service", "auth", *args])


def _history(engine: Engine, *, share: float = 0.10, bad_after: int | None = None) -> None:
    """Two hours of auth's log rollups at ``share`` on the candidate; 5 % errors on the
    candidate after minute ``bad_after``; a decision to 10 % at the start."""
    deltas = []
    for i in range(120):
        minute = START + timedelta(minutes=i)
        total = 3000
        for variant, n in (("baseline", round(total * (1 - share))),
                           ("candidate", round(total * share))):
            errors = 0.05 if variant == "candidate" and bad_after is not None \
                and i >= bad_after else 0.003
            deltas.append(RollupDelta(service="auth", variant=variant, minute=minute,
                                      requests=n, errors=round(n * errors), bytes_sent=0,
                                      sketch=sketch(n, median_ms=30.0)))
    with session_scope(engine) as s:
        upsert_rollups(session=s, deltas=deltas)
        s.add(Decision(at=START, service="auth", action="approve", from_weight=0, to_weight=10,
                       actor="ana", state="applied", applied_at=START))


def _window(every: str = "30m") -> list[str]:
    return ["--from", (START + timedelta(minutes=30)).isoformat(), "--to", AT.isoformat(),
            "--every", every]


def test_json_entries_follow_the_evaluate_contract_and_nothing_is_stored(
        engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    _history(engine, bad_after=100)
    assert _run(engine, *_window(), "--json") == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["at"] for r in results] == ["2026-11-26T10:30:00Z", "2026-11-26T11:00:00Z",
                                          "2026-11-26T11:30:00Z", "2026-11-26T12:00:00Z"]
    first = results[0]
    assert {"service", "at", "weight", "step_since", "verdict", "reasons", "figures",
            "checks"} <= set(first)
    assert (first["weight"], first["step_since"]) == (10, "2026-11-26T10:00:00Z")
    assert first["figures"]["candidate"]["errors"] is not None
    assert results[-1]["verdict"] == "fail"        # the regression of the last 20 minutes
    with session_scope(engine) as s:
        assert s.exec(select(EvaluationRow)).all() == []


def test_text_summary_names_first_fail_and_would_have_reverted(
        engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    _history(engine, bad_after=100)
    assert _run(engine, "--from", (AT - timedelta(minutes=10)).isoformat(), "--to",
                AT.isoformat(), "--every", "1m") == 0
    out = capsys.readouterr().out
    summary = out.split("summary\n", 1)[1]
    assert "auth: fail " in summary and "first fail 2026-11-26T11:" in summary
    assert "would have reverted at 2026-11-26T11:" in summary


def test_store_writes_once_and_a_rerun_skips_what_it_has(
        engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    _history(engine, bad_after=100)       # its last look fails
    assert _run(engine, *_window(), "--store") == 0
    with session_scope(engine) as s:
        rows = s.exec(select(EvaluationRow)).all()
        assert len(rows) == 4 and {r.step_since for r in rows} == {START}
        assert "fail" in {r.verdict for r in rows}
        assert s.exec(select(EventRow)).all() == []      # a replay pages nobody
    capsys.readouterr()
    assert _run(engine, *_window(), "--store") == 0
    assert "auth" not in capsys.readouterr().out.split("summary", 1)[0]   # nothing redone


def test_a_steps_file_and_its_bad_rows(engine: Engine, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _history(engine)
    good = tmp_path / "steps.csv"
    good.write_text("service,weight,since\nauth,25,2026-11-26T11:00:00Z\n")
    assert _run(engine, *_window(), "--steps", str(good), "--json") == 0
    weights = [r["weight"] for r in json.loads(capsys.readouterr().out)["results"]]
    assert weights == [0, 25, 25, 25]
    bad = tmp_path / "steps.yaml"
    bad.write_text("- {service: billing, weight: 10, since: 2026-11-26T11:00:00Z}\n")
    assert _run(engine, *_window(), "--steps", str(bad)) == 2
    assert "row 1: unknown service 'billing'" in capsys.readouterr().err


def test_observed_steps_come_from_the_logs_split(engine: Engine,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _history(engine, share=0.24)          # the gateway sent 24 %: the plan's 25 % step
    assert _run(engine, *_window(), "--steps", "observed", "--json") == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert {r["weight"] for r in results} == {25}
    assert results[0]["step_since"] == "2026-11-26T10:00:00Z"

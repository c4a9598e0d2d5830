"""``cutover collect`` end to end: the plan file, the store, a real Prometheus."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session, func, select

from cutover.cli import main
from store.db import make_engine
from store.series import BASELINE, PromStep
from tests.collectors.conftest import T0
from tests.support.prom import PromServer, available, free_port

pytestmark = [pytest.mark.prometheus,
              pytest.mark.skipif(not available(), reason="needs Debian's prometheus")]


def plan_file(plan_text: str, url: str, tmp_path: Path) -> Path:
    data = yaml.safe_load(plan_text)
    data["sources"] = {"prometheus": {"url": url, "step": "30s"}}   # no logs: Prometheus only
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def iso(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def cli(plan: Path, db: str, *args: str) -> int:
    return main(["--plan", str(plan), "--db", db, *args])


def test_collect_once_from_to(plan_text: str, prometheus: PromServer, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    plan, db = plan_file(plan_text, prometheus.url, tmp_path), f"sqlite:///{tmp_path / 'c.db'}"
    assert cli(plan, db, "db", "upgrade") == 0
    capsys.readouterr()
    assert cli(plan, db, "collect", "--once", "--from", iso(1), "--to", iso(31)) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("prometheus: ok, ")
    with Session(make_engine(db)) as s:
        n = s.exec(select(func.count()).select_from(PromStep)
                   .where(PromStep.target == BASELINE)).one()
    assert n == 61


def test_collect_fails_with_exit_1_when_prometheus_is_down(
        plan_text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = plan_file(plan_text, f"http://127.0.0.1:{free_port()}", tmp_path)
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert cli(plan, db, "db", "upgrade") == 0
    assert cli(plan, db, "collect", "--once", "--from", iso(1), "--to", iso(31)) == 1
    assert "prometheus: FAILED, 0 ingested; prometheus: cannot connect" in capsys.readouterr().out


def test_collect_refuses_bad_times(plan_text: str, prometheus: PromServer, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    plan, db = plan_file(plan_text, prometheus.url, tmp_path), f"sqlite:///{tmp_path / 'c.db'}"
    assert cli(plan, db, "db", "upgrade") == 0
    assert cli(plan, db, "collect", "--once", "--from", iso(30), "--to", iso(10)) == 2
    assert "is not before --to" in capsys.readouterr().err
    assert cli(plan, db, "collect", "--once", "--from", "yesterday") == 2
    assert "expected a time like" in capsys.readouterr().err


def test_collect_needs_an_upgraded_store(plan_text: str, prometheus: PromServer,
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = plan_file(plan_text, prometheus.url, tmp_path)
    assert cli(plan, f"sqlite:///{tmp_path / 'new.db'}", "collect", "--once") == 2
    assert "cutover db upgrade" in capsys.readouterr().err

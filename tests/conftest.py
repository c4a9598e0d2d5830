"""Shared fixtures: the shipped plan, and a fresh store on SQLite and on PostgreSQL.

PostgreSQL runs at 127.0.0.1:5432 on these machines (database ``test``, user
``postgres``, trust auth).  Each test run (and each xdist worker) gets a database of its
own, dropped at the end, so runs never collide."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from slo.plan import Plan
from slo.planfile import parse_plan, without_probes
from store.db import make_engine, upgrade

# under CI a skipped test fails: tests/support/strict.py
pytest_plugins = ["tests.support.strict", "pytester"]

ROOT = Path(__file__).resolve().parent.parent
PLAN_PATH = ROOT / "plans" / "nanopore.yaml"
PG_ADMIN = os.environ.get("CUTOVER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def plan_text() -> str:
    return PLAN_PATH.read_text()


@pytest.fixture(scope="session")
def shipped_plan(plan_text: str) -> Plan:
    """The shipped plan as it is, probes and all."""
    return parse_plan(plan_text, source=str(PLAN_PATH))


@pytest.fixture(scope="session")
def plan(plan_text: str) -> Plan:
    """The shipped plan without its probes: the gate judges figures alone (the probes'
    own tests use ``shipped_plan``)."""
    return parse_plan(plan_text_without_probes(plan_text), source=str(PLAN_PATH))


def plan_text_without_probes(text: str) -> str:
    return yaml.safe_dump(without_probes(yaml.safe_load(text)), sort_keys=False)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run (worker); its URL."""
    name = f"cutover_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # pragma: no cover - depends on the machine
        pytest.fail(f"PostgreSQL at {PG_ADMIN} is not usable: {e}")
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_pg(url: str) -> None:
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL: SQLite in a temp dir, or the run's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cutover.db'}"
    url: str = request.getfixturevalue("pg_database")
    _reset_pg(url)
    return url


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite store at the newest schema, made once: copying it is 50x faster than
    running the migrations for every test."""
    path = tmp_path_factory.mktemp("template") / "empty.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    with eng.connect() as conn:   # fold the WAL into the file before it is copied
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    eng.dispose()
    return path


@pytest.fixture
def engine(db_url: str, migrated_sqlite: Path) -> Iterator[Engine]:
    """An engine on a store at the newest schema, on both databases (SQLite copied from
    the migrated template; PostgreSQL migrated, which is as fast as a template copy)."""
    copy = db_url.startswith("sqlite:///")
    if copy:
        shutil.copyfile(migrated_sqlite, db_url.removeprefix("sqlite:///"))
    eng = make_engine(db_url)
    if not copy:
        upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Engine]:
    """A SQLite store only, for tests where the database does not matter."""
    path = tmp_path / "cutover.db"
    shutil.copyfile(migrated_sqlite, path)
    eng = make_engine(f"sqlite:///{path}")
    yield eng
    eng.dispose()


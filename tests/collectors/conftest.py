"""A real Prometheus on a backfilled fleet, shared by the Prometheus collector tests.

Two hours at a 15 s scrape from T0: the monolith (two pods, errors as
``status_code="500"``), auth (two pods, ``status="5xx"``, one pod restarting at
T0+50m), files (one pod, a scrape gap from T0+60m to T0+75m).  The plan's other
services (samples, ai, audit, gateway) have no series at all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slo.plan import Plan, PrometheusSource, Sources
from tests.support import prom
from tests.support.fleet import FleetVariant, Pod, write_fleet

T0 = datetime(2026, 11, 20, tzinfo=UTC)
T0S = T0.timestamp()
END = T0 + timedelta(hours=2)
GAP = (T0 + timedelta(minutes=60), T0 + timedelta(minutes=75))
RESTART = T0 + timedelta(minutes=50)

FLEET = (
    FleetVariant("nanopore-monolith", (Pod("mono-1:3000", 30, 0.01, 420, 0.30),
                                       Pod("mono-2:3000", 25, 0.02, 380, 0.25)),
                 status_label="status_code", latency_median_s=0.04),
    FleetVariant("python-auth", (Pod("auth-1:8000", 10, 0.004, 120, 0.10),
                                 Pod("auth-2:8000", 12, 0.008, 110, 0.12,
                                     restart_at=RESTART.timestamp())),
                 latency_median_s=0.02),
    FleetVariant("python-files", (Pod("files-1:8000", 6, 0.03, 150, 0.05),),
                 latency_median_s=0.08, gap=(GAP[0].timestamp(), GAP[1].timestamp())),
)


def fleet_file(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return write_fleet(directory / "fleet.om", FLEET, start=T0S, end=END.timestamp())


@pytest.fixture(scope="session")
def fleet_blocks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fleet backfilled once into TSDB blocks; servers copy them."""
    base = tmp_path_factory.mktemp("fleet")
    blocks = base / "blocks"
    prom.backfill(fleet_file(base), blocks)
    return blocks


def serve_copy(blocks: Path, workdir: Path) -> prom.PromServer:
    import shutil

    data = workdir / "data"
    shutil.copytree(blocks, data)
    return prom.PromServer(data_dir=data, workdir=workdir).start()


@pytest.fixture(scope="session")
def prometheus(fleet_blocks: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[prom.PromServer]:
    """One Prometheus per test session (per xdist worker) serving the fleet."""
    server = serve_copy(fleet_blocks, tmp_path_factory.mktemp("prom"))
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                              marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[str]:
    """A store of the module's own on SQLite and on PostgreSQL (a database of its own, so
    the function-scoped ``engine`` fixture's resets never touch it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'cutover.db'}"
        return
    from sqlalchemy import create_engine, text

    from tests.conftest import PG_ADMIN

    name = f"cutover_prom_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def plan_for(plan: Plan, url: str, **source: object) -> Plan:
    """The shipped plan, pulling from ``url`` and from no log."""
    src = PrometheusSource(url=url, step=timedelta(seconds=30), **source)  # type: ignore[arg-type]
    return plan.model_copy(update={"sources": Sources(prometheus=src)})

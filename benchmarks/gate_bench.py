"""What the gate costs on top of the router: ``service_status`` of every service and an
approve + revert cycle, on SQLite and PostgreSQL, through the real kubernetes client to
the loopback fake API server; against a baseline, in the same run, of the bare API
calls they need (a GET per service; a GET and a PATCH per change).

    python benchmarks/gate_bench.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kubernetes import client
from sqlalchemy import create_engine, text

from rollout import gate
from rollout.routers import api_client_for, build_router
from slo.planfile import parse_plan
from store.db import make_engine, upgrade
from tests.support.k8s_fake import FakeApiServer, route

ROOT = Path(__file__).resolve().parents[1]
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 11, 26, 12, tzinfo=UTC)
ANA = "ana@example.org"


def _ms(fn: Callable[[int], object], rounds: int) -> float:
    times = []
    for i in range(rounds):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _pg_url() -> tuple[str, Callable[[], None]]:
    name = f"gate_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return PG.rsplit("/", 1)[0] + f"/{name}", drop


def main(rounds: int = 30) -> None:
    plan = parse_plan((ROOT / "plans" / "nanopore.yaml").read_text())
    rows = []
    with FakeApiServer(token="t") as fake, tempfile.TemporaryDirectory() as tmp:
        for svc in plan.services:
            fake.put(route(svc.route, alternates=[{"kind": "Service", "name": svc.backend,
                                                   "weight": 0}]))
        api = api_client_for(fake.url, token="t")
        raw = client.CustomObjectsApi(api)

        def get(name: str) -> dict:
            return raw.get_namespaced_custom_object("route.openshift.io", "v1", "nanopore",
                                                    "routes", name)

        def bare_status(_i: int) -> None:
            for svc in plan.services:
                get(svc.route)

        def bare_cycle(_i: int) -> None:
            for w in (10, 0):
                r = get("nanopore-auth")
                raw.patch_namespaced_custom_object(
                    "route.openshift.io", "v1", "nanopore", "routes", "nanopore-auth",
                    {"metadata": {"resourceVersion": r["metadata"]["resourceVersion"]},
                     "spec": {"to": {"weight": 100 - w}, "alternateBackends": [
                         {"kind": "Service", "name": "python-auth", "weight": w}]}})

        base_status, base_cycle = _ms(bare_status, rounds), _ms(bare_cycle, rounds)
        pg, drop = _pg_url()
        try:
            for label, url in (("sqlite", f"sqlite:///{tmp}/bench.db"), ("postgresql", pg)):
                engine = make_engine(url)
                upgrade(engine)
                router = build_router(plan, engine, api_client=api)

                def status(i: int) -> None:
                    gate.service_status(engine=engine, plan=plan, router=router,
                                        now=T0 + timedelta(hours=i))

                def cycle(i: int) -> None:
                    now = T0 + timedelta(hours=i)
                    gate.approve(engine=engine, plan=plan, router=router, service="auth",
                                 actor=ANA, reason="bench", now=now)
                    gate.revert(engine=engine, plan=plan, router=router, service="auth",
                                actor=ANA, reason="bench", now=now + timedelta(minutes=1))

                rows.append((f"status, 6 services ({label})", base_status,
                             _ms(status, rounds)))
                rows.append((f"approve + revert ({label})", base_cycle, _ms(cycle, rounds)))
                engine.dispose()
        finally:
            drop()
    print(f"median of {rounds} rounds; baseline = the bare API calls, same run")
    print(f"{'operation':38} {'baseline ms':>12} {'gate ms':>9} {'x':>6}")
    for name, base, ours in rows:
        print(f"{name:38} {base:12.1f} {ours:9.1f} {ours / base:6.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)

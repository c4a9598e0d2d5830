"""The emergency rollback: seconds from the command to all six routes read back at 0 %,
through the real kubernetes client to the loopback fake API server (SQLite store), with
each PATCH taking ``--api-ms`` (default 150 ms, a loaded API server's patch; the fake
alone answers in about 1 ms).  In the same run:

- ``oc patch`` x 6, one after another: the six bare PATCHes (the floor an operator with
  a terminal has; ``oc`` itself would add its start-up per call);
- the six bare PATCHes at once (the floor for doing them in parallel);
- ``gate.revert_all``: cutover's rollback before, one service after another;
- ``rollback.roll_back``: every route at once, one decision group;
- ``cutover revert --all`` as a process (Python's start-up and imports included).

    PYTHONPATH=. python benchmarks/rollback_bench.py [--rounds 5] [--api-ms 150]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from rollout import gate, rollback
from rollout.routers import api_client_for, build_router
from slo.plan import Plan
from slo.planfile import parse_plan
from store.db import make_engine, upgrade
from tests.support.k8s_fake import FakeApiServer, route, write_kubeconfig

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench"
ANA, LEE = "ana@example.org", "lee@example.org"
#: where each service stands when the incident starts
AT = {"auth": 25, "files": 10, "samples": 50, "ai": 10, "audit": 75, "gateway": 10}


def _plan(kubeconfig: Path) -> tuple[Plan, Path]:
    text = (ROOT / "plans" / "nanopore.yaml").read_text().replace(
        "router: {kind: openshift-route, namespace: nanopore}",
        f"router: {{kind: openshift-route, namespace: nanopore, kubeconfig: {kubeconfig}}}")
    path = kubeconfig.with_name("plan.yaml")
    path.write_text(text)
    return parse_plan(text), path


def _kubeconfig(tmp: Path, url: str) -> Path:
    path = tmp / "kubeconfig"
    write_kubeconfig(path, server=url, token=TOKEN)
    return path


class Bench:
    def __init__(self, fake: FakeApiServer, plan: Plan, tmp: Path):
        self.fake, self.plan, self.tmp = fake, plan, tmp
        self.api = api_client_for(fake.url, token=TOKEN)
        self.n = 0

    def fresh(self) -> Any:
        """A new store and every route and state at ``AT`` (through the gate)."""
        self.n += 1
        delay, self.fake.patch_delay = self.fake.patch_delay, 0.0
        for svc in self.plan.services:
            self.fake.put(route(svc.route, alternates=[
                {"kind": "Service", "name": svc.backend, "weight": 0}]))
        self.db = f"sqlite:///{self.tmp / f'bench-{self.n}.db'}"
        engine = make_engine(self.db)
        upgrade(engine)
        router = build_router(self.plan, engine, api_client=self.api)
        for name, weight in AT.items():
            while router.read_weight(name) < weight:
                gate.approve(engine=engine, plan=self.plan, router=router, service=name,
                             actor=ANA, reason="setup", override=True, now=datetime.now(UTC))
        self.fake.patch_delay = delay
        return engine, router

    def at_zero(self) -> bool:
        return all(self._weight(svc) == 0 for svc in self.plan.services)

    def _weight(self, svc: Any) -> int:
        spec = self.fake.get(svc.route)["spec"]
        return next(b["weight"] for b in spec["alternateBackends"] if b["name"] == svc.backend)

    def bare_patch(self, svc: Any) -> None:
        api = client.CustomObjectsApi(self.api)
        api.patch_namespaced_custom_object(
            "route.openshift.io", "v1", "nanopore", "routes", svc.route,
            {"spec": {"to": {"kind": "Service", "name": self.plan.baseline.backend,
                             "weight": 100},
                      "alternateBackends": [{"kind": "Service", "name": svc.backend,
                                             "weight": 0}]}})
        api.get_namespaced_custom_object("route.openshift.io", "v1", "nanopore", "routes",
                                         svc.route)   # read back, as the rollback does


def _time(bench: Bench, run: Callable[[Any, Any], None], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        engine, router = bench.fresh()
        t = time.perf_counter()
        run(engine, router)
        out.append(time.perf_counter() - t)
        assert bench.at_zero(), "not every route reads 0 %"
        engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--api-ms", type=float, default=150.0)
    args = ap.parse_args()
    with FakeApiServer(token=TOKEN) as fake, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        plan, plan_path = _plan(_kubeconfig(tmp, fake.url))
        bench = Bench(fake, plan, tmp)
        fake.patch_delay = args.api_ms / 1000
        now = datetime.now(UTC)
        cases: list[tuple[str, Callable[[Any, Any], None]]] = [
            ("oc patch x 6, one after another (bare API calls)",
             lambda e, r: [bench.bare_patch(s) for s in plan.services]),
            ("bare API calls, 6 at once",
             lambda e, r: list(ThreadPoolExecutor(6).map(bench.bare_patch, plan.services))),
            ("cutover before: gate.revert_all (sequential)",
             lambda e, r: gate.revert_all(engine=e, plan=plan, router=r, actor=LEE,
                                          reason="bench", now=now)),
            ("cutover: rollback.roll_back (every route at once)",
             lambda e, r: rollback.roll_back(engine=e, plan=plan, router=r, actor=LEE,
                                             reason="bench", now=now)),
            ("cutover revert --all (a process: start-up included)",
             lambda e, r: subprocess.run(
                 [sys.executable, "-m", "cutover", "--plan", str(plan_path), "--db", bench.db,
                  "revert", "--all", "--reason", "bench", "--actor", LEE],
                 check=True, capture_output=True, cwd=ROOT,
                 env={**os.environ, "PYTHONPATH": str(ROOT)})),
        ]
        rows = [(name, _time(bench, run, args.rounds)) for name, run in cases]
    floor = statistics.median(rows[0][1])
    print(f"rollback of 6 routes (at {', '.join(f'{k} {v} %' for k, v in AT.items())}); "
          f"each PATCH takes {args.api_ms:g} ms at the API; {args.rounds} rounds, median "
          "(min-max)")
    print(f"{'how':<54} {'seconds':>8} {'range':>15} {'vs oc x 6':>10}")
    for name, times in rows:
        med = statistics.median(times)
        print(f"{name:<54} {med:>8.3f} {min(times):>7.3f}-{max(times):<7.3f} "
              f"{med / floor:>9.2f}x")


if __name__ == "__main__":
    main()

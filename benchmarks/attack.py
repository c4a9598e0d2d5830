"""The attacks of the production-safety review, rerun end to end on real processes, on
SQLite and PostgreSQL, through the real kubernetes client against the loopback API fake
(tests/support/attacks.py; tests/cutover/test_attacks.py runs a few of them):

- *kill -9 mid-patch*: ``approve`` killed while the API server holds its PATCH (which it
  then applies), and ``revert --all`` run at once; baseline: the same ``revert --all``
  after an approve that finished (nothing to settle);
- *concurrent overrides*: 8 ``approve --override --from-weight 10`` at once;
- *collect beside the worker*: ``collect --once`` run while a worker collects the same
  log every second.

After each try, the alerts it raised are delivered to two webhook channels on a loopback
receiver by two ``worker --once`` started at once (then single rounds until nothing is
due): *deliveries per alert* is the POSTs received over the alerts the outbox holds for
those channels (1.00: each delivered exactly once), with any Idempotency-Key that came
twice counted as repeated.

    PYTHONPATH=. python benchmarks/attack.py [TRIES]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from store.db import make_engine, upgrade
from tests.support.attacks import (
    ANA,
    LEE,
    Cluster,
    Delivered,
    Hooks,
    cluster,
    collect_beside_worker,
    concurrent,
    decisions,
    deliver_beside,
    kill_approve_mid_patch,
    log_sources,
)

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def store(kind: str, tmp: Path) -> Iterator[str]:
    """A migrated, empty store of ``kind``; its URL."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / f'{uuid.uuid4().hex[:8]}.db'}"
        drop: Callable[[], None] = lambda: None  # noqa: E731
    else:
        name = f"attack_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG.rsplit("/", 1)[0] + f"/{name}"

        def drop() -> None:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        drop()


def _revert_all(c: Cluster) -> float:
    t = time.perf_counter()
    done = c.run("revert", "--all", "--reason", "incident", "--actor", LEE)
    seconds = time.perf_counter() - t
    if done.returncode != 0 or c.candidate() != 0:
        raise SystemExit(f"revert --all failed: {done.stderr}")
    return seconds


def kill_mid_patch(c: Cluster) -> dict[str, float]:
    killed = kill_approve_mid_patch(c)
    seconds = _revert_all(c)
    rows = decisions(c)
    return {"applied": sum(d["state"] == "applied" for d in rows),
            "pending": sum(d["state"] == "pending" for d in rows),
            "route": killed.route_after, "seconds": seconds}


def clean_revert(c: Cluster) -> dict[str, float]:
    done = c.run("approve", "auth", "--reason", "week 2", "--actor", ANA)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    seconds = _revert_all(c)
    return {"applied": sum(d["state"] == "applied" for d in decisions(c)), "pending": 0,
            "seconds": seconds}


def overrides(c: Cluster, n: int = 8) -> dict[str, float]:
    if c.run("approve", "auth", "--reason", "go", "--actor", ANA).returncode != 0:
        raise SystemExit("the first approve failed")
    t = time.perf_counter()
    results = concurrent(c, [["approve", "auth", "--override", "--from-weight", "10",
                              "--reason", f"override {i}", "--actor", ANA]
                             for i in range(n)])
    seconds = time.perf_counter() - t
    return {"steps": sum(r.returncode == 0 for r in results), "route": c.candidate(),
            "refused": sum(d["state"] == "refused" for d in decisions(c)),
            "seconds": seconds}


def main(tries: int = 5) -> None:
    rows = []
    hooks = Hooks()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for kind in ("sqlite", "postgresql"):
            for name, attack in (("revert --all, nothing pending (baseline)", clean_revert),
                                 ("kill -9 approve mid-patch, then revert --all", kill_mid_patch),
                                 ("8 approve --override at once", overrides)):
                seen, sent = [], []
                for i in range(tries):
                    here = tmp / f"{kind}-{attack.__name__}-{i}"
                    here.mkdir()
                    hooks.keys.clear()
                    with store(kind, here) as url, cluster(here, url, hooks=hooks) as c:
                        seen.append(attack(c))
                        sent.append(deliver_beside(c, hooks))
                rows.append(_row(kind, name, seen) + [_deliveries(sent)])
            seen_logs = []
            for i in range(max(1, tries // 2)):
                here = tmp / f"{kind}-logs-{i}"
                here.mkdir()
                log = here / "access.log"
                log.touch()
                with store(kind, here) as url, cluster(here, url,
                                                        sources=log_sources(log)) as c:
                    t = time.perf_counter()
                    r = collect_beside_worker(c, log, lines=20_000, tries=2)
                    seen_logs.append({"written": r.written, "stored": r.stored,
                                      "refused": r.collect_code == 1,
                                      "seconds": time.perf_counter() - t})
            rows.append(_row(kind, "collect --once beside the worker", seen_logs) + ["-"])
    hooks.close()
    header = ["store", "attack", "tries", "steps applied", "lines written / stored",
              "left pending", "seconds (median)", "deliveries per alert"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip())


def _deliveries(sent: list[Delivered]) -> str:
    """Over every try: POSTs received per alert and channel, and the counts behind it."""
    alerts = sum(d.alerts for d in sent)
    arrivals = sum(d.arrivals for d in sent)
    words = (f"{arrivals / alerts:.2f} ({arrivals} POSTs for {alerts} alert deliveries, "
             f"{sum(d.sent for d in sent)} sent, {sum(d.repeated for d in sent)} repeated)")
    return words if alerts else "no alert raised"


def _row(kind: str, name: str, seen: list[dict[str, float]]) -> list[str]:
    tries = len(seen)
    seconds = f"{statistics.median(s['seconds'] for s in seen):.2f}"
    if "written" in seen[0]:
        lines = " ".join(f"{int(s['written'])}/{int(s['stored'])}" for s in seen)
        return [kind, name, str(tries), "-", lines, "-", seconds]
    if "steps" in seen[0]:
        steps = (f"{sum(int(s['steps']) for s in seen)} in {tries} tries, "
                 f"{sum(int(s['refused']) for s in seen)} refused (route at "
                 f"{'/'.join(str(w) for w in sorted({int(s['route']) for s in seen}))} %)")
        return [kind, name, str(tries), steps, "-", "0", seconds]
    steps = f"{sum(int(s['applied']) for s in seen)} (approve + revert per try)"
    return [kind, name, str(tries), steps, "-", str(sum(int(s["pending"]) for s in seen)),
            seconds]


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)

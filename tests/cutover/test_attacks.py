"""The attacks that broke cutover, rerun on real processes: an ``approve`` killed with
SIGKILL mid-patch, operators overriding at once, ``collect`` beside the worker.  On SQLite
and PostgreSQL, through the real kubernetes client against the API fake.  A few tries
each here; ``benchmarks/attack.py`` runs more and prints the table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from cutover.cmd_collect import WORKER_LEADS
from tests.support.attacks import (
    ANA,
    LEE,
    Cluster,
    Hooks,
    cluster,
    collect_beside_worker,
    concurrent,
    decisions,
    deliver_beside,
    kill_approve_mid_patch,
    log_sources,
    status,
    stored_requests,
    write_lines,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def ops(tmp_path: Path, engine: Engine) -> Iterator[Cluster]:
    with cluster(tmp_path, engine.url.render_as_string(hide_password=False)) as c:
        yield c


def test_revert_all_right_after_an_approve_killed_mid_patch(ops: Cluster) -> None:
    """Not refused, not two minutes later: at once (tests/rollout covers revert --to 0)."""
    killed = kill_approve_mid_patch(ops)
    assert (killed.route_after, killed.pending) == (10, 1)
    done = ops.run("revert", "--all", "--reason", "incident", "--actor", LEE)
    assert done.returncode == 0, done.stderr
    assert ops.candidate() == 0
    revert, approve = decisions(ops)
    assert (approve["state"], approve["read_back"]) == ("applied", 10), approve
    assert (revert["state"], revert["actor"], revert["from_weight"]) == ("applied", LEE, 10)


def test_the_worker_settles_a_killed_approve_and_judges_the_weight_the_route_carries(
        ops: Cluster) -> None:
    """tests/rollout covers the patch that never landed (settled failed)."""
    killed = kill_approve_mid_patch(ops)
    assert killed.pending == 1
    ops.run("worker", "--once")    # its sources do not answer: the round still runs
    (d,) = decisions(ops)
    assert (d["state"], d["read_back"]) == ("applied", 10), d
    auth = status(ops)
    assert (auth["weight"], auth["router_weight"], auth["drift"]) == (10, 10, False)
    # judged at the weight the route carries (inconclusive: its sources are down)
    assert auth["evaluated_at"] is not None and auth["verdict"] == "inconclusive", auth


def test_concurrent_overrides_make_one_step(ops: Cluster) -> None:
    assert ops.run("approve", "auth", "--reason", "go", "--actor", ANA).returncode == 0
    results = concurrent(ops, [["approve", "auth", "--override", "--from-weight", "10",
                                "--reason", f"override {i}", "--actor", who]
                               for i, who in enumerate((ANA, LEE, ANA, LEE))])
    won = [r for r in results if r.returncode == 0]
    lost = [r for r in results if r.returncode != 0]
    assert len(won) == 1 and len(lost) == 3, [r.stderr for r in results]
    assert "10 % -> 25 %" in won[0].stdout
    for r in lost:   # told what happened, in one line
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert "you looked at 10 %, it is at 25 % now" in r.stderr, r.stderr
    assert ops.candidate() == 25
    states = sorted(d["state"] for d in decisions(ops))
    assert states == ["applied", "applied", "refused", "refused", "refused"]


def test_alerts_of_an_attack_reach_each_channel_exactly_once(tmp_path: Path,
                                                             engine: Engine) -> None:
    """An approve killed mid-patch, the emergency rollback, then two workers delivering at
    once: every alert reaches each of two webhook channels once, by Idempotency-Key."""
    hooks = Hooks()
    try:
        with cluster(tmp_path, engine.url.render_as_string(hide_password=False),
                     hooks=hooks) as c:
            kill_approve_mid_patch(c)
            assert c.run("revert", "--all", "--reason", "incident", "--actor",
                         LEE).returncode == 0
            seen = deliver_beside(c, hooks)
    finally:
        hooks.close()
    assert seen.alerts >= 2 * len(Hooks.CHANNELS), seen   # the approve and the rollback
    assert (seen.sent, seen.arrivals, seen.repeated) == (seen.alerts, seen.alerts, 0), seen


@pytest.fixture
def ops_logs(tmp_path: Path, engine: Engine) -> Iterator[tuple[Cluster, Path]]:
    log = tmp_path / "access.log"
    log.touch()
    with cluster(tmp_path, engine.url.render_as_string(hide_password=False),
                 sources=log_sources(log)) as c:
        yield c, log


def test_collect_beside_the_worker_counts_each_line_once(ops_logs: tuple[Cluster, Path]
                                                         ) -> None:
    c, log = ops_logs
    seen = collect_beside_worker(c, log, lines=2000, tries=1)
    assert seen.collect_code == 1 and seen.collect_err.strip().splitlines()[-1] == WORKER_LEADS, seen
    assert seen.stored == seen.written == 4000
    # with the worker gone, collect backfills from the checkpoint: nothing twice either
    write_lines(log, 500)
    done = c.run("collect", "--once")
    assert done.returncode == 0, done.stderr
    assert stored_requests(c) == 4500

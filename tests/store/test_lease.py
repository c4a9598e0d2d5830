"""The worker lease on SQLite and PostgreSQL: one holder at a time, and a standby takes
over within one interval when the leader is killed (real processes, ``kill -9``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from store.db import make_engine
from store.lease import Lease, advisory_key

ROOT = Path(__file__).resolve().parents[2]

# A worker's loop reduced to its lease: every interval, try to lead and say so.
WORKER = """
import json, sys, time
from store.db import make_engine
from store.lease import Lease
url, interval = sys.argv[1], float(sys.argv[2])
lease = Lease(make_engine(url), name="worker")
while True:
    t = time.time()  # when this attempt started
    leader = lease.acquire()
    print(json.dumps({"t": t, "leader": leader}), flush=True)
    time.sleep(interval)
"""


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_one_holder_at_a_time(engine: Engine) -> None:
    a = Lease(engine, holder="a")
    b = Lease(engine, holder="b")
    assert a.acquire() and a.held
    assert not b.acquire() and not b.held
    assert a.acquire(), "acquire is idempotent for the holder"
    a.release()
    assert not a.held
    assert b.acquire() and b.held
    assert not a.acquire()
    b.release()


def test_names_are_independent(engine: Engine) -> None:
    worker = Lease(engine, name="worker")
    other = Lease(engine, name="reports")
    assert worker.acquire() and other.acquire()
    worker.release()
    other.release()


def test_release_when_not_held_is_a_no_op(engine: Engine) -> None:
    lease = Lease(engine)
    lease.release()
    assert not lease.held
    with Lease(engine) as held:
        assert held.acquire()
    again = Lease(engine)
    assert again.acquire(), "leaving the context releases"
    again.release()


def test_a_second_engine_sees_the_lease(engine: Engine) -> None:
    """Two engines on one database, as two processes would have."""
    other_engine = make_engine(_url(engine))
    try:
        mine, theirs = Lease(engine), Lease(other_engine)
        assert mine.acquire()
        assert not theirs.acquire()
        mine.release()
        assert theirs.acquire()
        theirs.release()
    finally:
        other_engine.dispose()


@pytest.mark.postgres
def test_leader_notices_a_lost_connection(pg_database: str) -> None:
    """The server ended the leader's session: its next acquire says False, a standby leads."""
    from sqlalchemy import text

    eng = make_engine(pg_database)
    try:
        leader, standby = Lease(eng, holder="leader"), Lease(eng, holder="standby")
        assert leader.acquire()
        with eng.connect() as conn:
            conn.execute(text(
                # only this database's lock holders: other test runs share the server
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() "
                "AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())"))
            conn.commit()
        assert standby.acquire()
        assert not leader.acquire()
        assert not leader.held
        standby.release()
    finally:
        eng.dispose()


def test_advisory_key_is_stable_and_signed_64_bit() -> None:
    assert advisory_key("worker") == advisory_key("worker")
    assert advisory_key("worker") != advisory_key("reports")
    assert -(2**63) <= advisory_key("worker") < 2**63


def test_in_memory_sqlite_locks_within_the_process() -> None:
    eng = make_engine("sqlite:///:memory:")
    a, b = Lease(eng, name="memory-test"), Lease(eng, name="memory-test")
    assert a.acquire() and not b.acquire()
    a.release()
    assert b.acquire()
    b.release()


def test_lease_file_that_cannot_be_opened_says_where(tmp_path: Path) -> None:
    from slo.errors import StoreError

    eng = make_engine(f"sqlite:///{tmp_path / 'cutover.db'}")
    (tmp_path / "cutover.db.worker.lease").mkdir()  # in the way of the lock file
    with pytest.raises(StoreError, match=r"lease file .*cutover.db.worker.lease"):
        Lease(eng).acquire()


# -- two real workers, the leader killed --------------------------------------------

INTERVAL = 1.0


class _Worker:
    def __init__(self, url: str):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, url, str(INTERVAL)],
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.lines: list[dict[str, float | bool]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.append(json.loads(line))

    def poll(self) -> None:
        """Lines arrive on the reader thread; kept for the call sites' readability."""

    def leads(self) -> bool:
        return bool(self.lines) and bool(self.lines[-1]["leader"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()


def _wait(cond, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


@pytest.mark.slow
def test_standby_takes_over_within_one_interval_after_kill_9(engine: Engine) -> None:
    workers = [_Worker(_url(engine)), _Worker(_url(engine))]
    try:
        def settled() -> bool:
            for w in workers:
                w.poll()
            return all(len(w.lines) >= 2 for w in workers)

        assert _wait(settled, 60), "workers did not start"
        leaders = [w for w in workers if w.leads()]
        assert len(leaders) == 1, f"expected exactly one leader, got {len(leaders)}"
        leader = leaders[0]
        standby = workers[1 - workers.index(leader)]
        assert not any(line["leader"] for line in standby.lines)

        killed_at = time.time()
        os.kill(leader.proc.pid, signal.SIGKILL)
        leader.proc.wait(timeout=10)

        def taken_over() -> bool:
            standby.poll()
            return standby.leads()

        assert _wait(taken_over, 10 * INTERVAL), "the standby never took over"
        first = next(line for line in standby.lines if line["leader"])
        # its first attempt after the kill leads (0.2 s for the server or the kernel to
        # drop the dead holder's lock): "within one interval", however loaded the machine
        after = [x for x in standby.lines if float(x["t"]) > killed_at + 0.2]
        assert after and after[0]["leader"], f"attempts after the kill: {after[:3]}"
        took = float(first["t"]) - killed_at
        assert took <= INTERVAL + 2.0, f"took over after {took:.2f} s"
        leader.poll()
        last_lead = max((float(x["t"]) for x in leader.lines if x["leader"]), default=0.0)
        assert last_lead < float(first["t"]), "two leaders at once"
        # and it stays the leader
        n = len(standby.lines)
        assert _wait(lambda: (standby.poll(), len(standby.lines) >= n + 2)[1], 5 * INTERVAL)
        assert all(line["leader"] for line in standby.lines[n - 1:])
    finally:
        for w in workers:
            w.stop()

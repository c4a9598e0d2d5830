"""Following files: partial lines, rotations, truncation, late files, gzip backfill, the
window's end, and a SIGKILL in the middle of a file."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from collectors.base import CollectReport
from collectors.logs import LogCollector
from slo.plan import LogSource, Plan
from store.db import session_scope
from store.rollups import get_checkpoint, rollup_totals
from tests.collectors.test_logs_support import T0, Req, expected, nginx, requests, with_logs, write

ROOT = Path(__file__).resolve().parents[2]


def _collector(plan: Plan, engine: Engine, path: Path, **kw: int) -> LogCollector:
    src = LogSource(path=str(path), format="nginx")
    return LogCollector(plan=with_logs(plan, src), engine=engine, **kw)


def _collect(plan: Plan, engine: Engine, path: Path, **kw: object) -> CollectReport:
    # the clock after every line the tests write (a later line would be in the future)
    report = _collector(plan, engine, path).collect(now=T0 + timedelta(hours=4), **kw)  # type: ignore[arg-type]
    assert report.ok, report.problems
    return report


def _totals(engine: Engine) -> dict[tuple[str, str], int]:
    with session_scope(engine) as s:
        return rollup_totals(session=s)


def _truth(reqs: list[Req]) -> dict[tuple[str, str], int]:
    return {sv: int(t["requests"]) for sv, t in expected(reqs).items()}


def _lines(reqs: list[Req]) -> list[str]:
    return [nginx(r) for r in reqs]


def test_partial_lines_wait_for_their_newline(plan: Plan, engine: Engine, tmp_path: Path) -> None:
    reqs = requests(300)
    path = tmp_path / "access.log"
    lines = _lines(reqs)
    write(path, lines[:100])
    with path.open("a") as f:
        f.write(lines[100][:40])               # the writer is in the middle of a line
    _collect(plan, engine, path)
    assert sum(_totals(engine).values()) == sum(_truth(reqs[:100]).values())
    with path.open("a") as f:
        f.write(lines[100][40:] + "\n")
    write(path, lines[101:], mode="a")
    _collect(plan, engine, path)
    _collect(plan, engine, path)               # nothing new: nothing counted twice
    assert _totals(engine) == _truth(reqs)


def test_rotation_by_rename_finishes_the_old_file_first(plan: Plan, sqlite_engine: Engine,
                                                       tmp_path: Path) -> None:
    reqs = requests(900)
    a, b, c = _lines(reqs[:300]), _lines(reqs[300:600]), _lines(reqs[600:])
    path = tmp_path / "access.log"
    write(path, a[:150])
    _collect(plan, sqlite_engine, path)
    write(path, a[150:], mode="a")             # written after our pass, before rotation
    path.rename(tmp_path / "access.log.1")
    write(path, b)
    _collect(plan, sqlite_engine, path)
    assert _totals(sqlite_engine) == _truth(reqs[:600])
    # rotated twice between passes: .1 -> .2.gz, live -> .1, a new live file
    with (tmp_path / "access.log.1").open("rb") as src, \
            gzip.open(tmp_path / "access.log.2.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.utime(tmp_path / "access.log.2.gz", (time.time() - 60, time.time() - 60))
    (tmp_path / "access.log.1").unlink()
    write(path, c[:10], mode="a")
    path.rename(tmp_path / "access.log.1")
    write(path, c[10:])
    _collect(plan, sqlite_engine, path)
    assert _totals(sqlite_engine) == _truth(reqs)


def test_copytruncate_reads_the_copy_then_starts_over(plan: Plan, engine: Engine,
                                                       tmp_path: Path) -> None:
    reqs = requests(600)
    a, b = _lines(reqs[:400]), _lines(reqs[400:])
    path = tmp_path / "access.log"
    write(path, a[:200])
    _collect(plan, engine, path)
    write(path, a[200:], mode="a")
    shutil.copy(path, tmp_path / "access.log.1")      # logrotate copytruncate
    with path.open("r+") as f:
        f.truncate(0)
    write(path, b)
    _collect(plan, engine, path)
    assert _totals(engine) == _truth(reqs)


def test_truncation_without_a_copy_starts_over_and_says_so(plan: Plan, sqlite_engine: Engine,
                                                           tmp_path: Path) -> None:
    reqs = requests(300)
    path = tmp_path / "access.log"
    write(path, _lines(reqs[:200]))
    _collect(plan, sqlite_engine, path)
    write(path, _lines(reqs[200:]))                     # truncated and rewritten
    report = _collector(plan, sqlite_engine, path).collect(now=T0)
    assert any("truncated or rotated away" in p for p in report.problems)
    assert _totals(sqlite_engine) == _truth(reqs)


def test_a_file_that_appears_later(plan: Plan, sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "later" / "access.log"
    report = _collect(plan, sqlite_engine, path)
    assert report.items == 0 and report.problems == [f"{path}: no such file (yet)"]
    reqs = requests(50)
    path.parent.mkdir()
    write(path, _lines(reqs))
    _collect(plan, sqlite_engine, path)
    assert _totals(sqlite_engine) == _truth(reqs)


def test_backfill_from_gzip_rotations_once(plan: Plan, engine: Engine, tmp_path: Path) -> None:
    reqs = requests(900, spread_s=3 * 3600)             # three hours
    path = tmp_path / "access.log"
    old = tmp_path / "access.log.2.gz"
    with gzip.open(old, "wt") as f:
        f.write("".join(x + "\n" for x in _lines(reqs[:300])))
    write(tmp_path / "access.log.1", _lines(reqs[300:600]))
    write(path, _lines(reqs[600:]))
    now = time.time()
    os.utime(old, (now - 7200, now - 7200))
    os.utime(tmp_path / "access.log.1", (now - 3600, now - 3600))
    start = T0 + timedelta(minutes=30)
    _collect(plan, engine, path, start=start)
    inside = [r for r in reqs if r.at >= start]
    assert _totals(engine) == _truth(inside)
    _collect(plan, engine, path, start=start)           # again: each file read once
    _collect(plan, engine, path)
    assert _totals(engine) == _truth(inside)


def test_the_window_end_leaves_later_lines_for_later(plan: Plan, sqlite_engine: Engine,
                                                     tmp_path: Path) -> None:
    reqs = requests(600, spread_s=180)
    path = tmp_path / "access.log"
    write(path, _lines(reqs))
    _collect(plan, sqlite_engine, path, end=T0 + timedelta(minutes=1))
    assert _totals(sqlite_engine) == _truth([r for r in reqs if r.at < T0 + timedelta(minutes=1)])
    _collect(plan, sqlite_engine, path)
    assert _totals(sqlite_engine) == _truth(reqs)


def test_one_endless_line_does_not_hold_memory(plan: Plan, sqlite_engine: Engine,
                                               tmp_path: Path) -> None:
    reqs = requests(20)
    path = tmp_path / "access.log"
    with path.open("w") as f:
        f.write(nginx(reqs[0]) + "\n" + "y" * 3_000_000 + "\n")
        f.write("".join(x + "\n" for x in _lines(reqs[1:])))
    report = _collector(plan, sqlite_engine, path, block_size=65536).collect(now=T0)
    assert report.rejected == 1
    assert _totals(sqlite_engine) == _truth(reqs)


KILLED = """
import sys
from datetime import datetime, UTC
from pathlib import Path
from collectors.logs import LogCollector
from slo.plan import LogSource, Sources
from slo.planfile import parse_plan
from store.db import make_engine
plan = parse_plan(Path("plans/nanopore.yaml").read_text(), source="plan")
plan = plan.model_copy(update={"sources": Sources(logs=[LogSource(path=sys.argv[2], format="nginx")])})
engine = make_engine(sys.argv[1])
LogCollector(plan=plan, engine=engine, block_size=8192, flush_bytes=8192).collect(
    now=datetime.now(UTC))
"""


def test_sigkill_mid_file_then_resume_is_exact(plan: Plan, db_url: str, engine: Engine,
                                               tmp_path: Path) -> None:
    reqs = requests(8_000, spread_s=1200)
    path = tmp_path / "access.log"
    write(path, _lines(reqs))
    size = path.stat().st_size
    proc = subprocess.Popen([sys.executable, "-c", KILLED, db_url, str(path)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    offset = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with session_scope(engine) as s:
            cp = get_checkpoint(session=s, source=str(path), stream="file")
        offset = cp.offset if cp else 0
        if offset > size // 10:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        pytest.fail(f"the collector ended before the kill (exit {proc.returncode}); "
                    f"make the file bigger")
    assert 0 < offset < size
    partial = sum(_totals(engine).values())
    assert 0 < partial < sum(_truth(reqs).values())
    _collect(plan, engine, path)
    assert _totals(engine) == _truth(reqs)


def test_read_ahead_keeps_order_stops_when_closed_and_hands_errors_over() -> None:
    """prefetched(): the same pieces in the same order with their parses; closing it
    early stops its thread; an error while parsing is raised in the reading thread."""
    import threading

    from collectors.logs.tail import Piece, prefetched

    pieces = [Piece(i * 10, i * 10 + 10, f"line {i}".encode(), 1) for i in range(50)]
    got = list(prefetched(iter(pieces), lambda block: block.upper()))  # type: ignore[arg-type]
    assert [p for p, _ in got] == pieces
    assert [c for _, c in got] == [p.block.upper() for p in pieces]

    gen = prefetched(iter(pieces), lambda block: block)  # type: ignore[arg-type]
    assert next(gen)[0] == pieces[0]
    gen.close()
    assert not any(t.name == "log-read-ahead" and t.is_alive() for t in threading.enumerate())

    def bad(block: bytes) -> bytes:
        if block == b"line 3":
            raise ValueError("cannot parse line 3")
        return block

    seen = []
    with pytest.raises(ValueError, match="line 3"):
        for piece, _ in prefetched(iter(pieces), bad):  # type: ignore[arg-type]
            seen.append(piece)
    assert seen == pieces[:3]
    assert not any(t.name == "log-read-ahead" and t.is_alive() for t in threading.enumerate())

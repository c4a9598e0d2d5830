"""``cutover demo``: the seed's migration on this machine, in week 3, with live traffic."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from slo.errors import ConfigError
from slo.plan import Plan

#: the weight the demo's story pushes the AI service to
STORY_WEIGHT = 50

__all__ = ["demo"]

DEFAULT_DIR = ".cutover-demo"
#: what ``--db`` is when nobody set it (cutover.cli's default)
_CLI_DEFAULT_DB = "sqlite:///cutover.db"
#: every request is written (about 43 KB of log per simulated second): at 120x that is
#: 5 MB/s, a rotation every 13 s, still far slower than the collector reads
MAX_SPEED = 120.0


def demo(args: argparse.Namespace) -> int:
    from cutover.demo import DemoPaths, prepare

    if not 0 < args.speed <= MAX_SPEED:
        raise ConfigError(f"--speed: expected a number in (0, {MAX_SPEED:g}] (simulated seconds "
                          f"per second), got {args.speed:g}")
    _check_address(args.address)
    paths = DemoPaths(Path(args.dir or DEFAULT_DIR).resolve())
    db_url = args.db if _db_given(args.db) else paths.db_url
    t0 = time.monotonic()
    print(f"cutover demo: writing weeks 1 and 2 and the start of week 3 into "
          f"{_shown(db_url)} ...", file=sys.stderr)
    setup = prepare(source_plan=Path(args.plan), paths=paths, db_url=db_url,
                    now=datetime.now(UTC))
    h = setup.history
    print(f"cutover demo: history from {h.start:%Y-%m-%d %H:%M} to {h.end:%Y-%m-%d %H:%M} UTC: "
          f"{h.evaluations} evaluations, {h.decisions} decisions "
          f"({time.monotonic() - t0:.1f}s); plan {paths.plan}", file=sys.stderr)
    if args.seed_only:
        setup.close()
        return 0
    return _run(setup, port=args.port, speed=args.speed, address=args.address)


def _check_address(address: str) -> None:
    """Before minutes of seeding: the demo's dashboard is trusted the same way."""
    from dashboard.launch import check_address, is_loopback

    try:
        check_address(address, os.environ)
    except ValueError as e:
        raise ConfigError(f"demo: {e}") from None
    if not is_loopback(address):
        print(f"cutover demo: --address {address}: whoever reaches it acts as the demo's "
              "operator (on the dry-run router)", file=sys.stderr)


def _db_given(db: str) -> bool:
    return db != _CLI_DEFAULT_DB or "CUTOVER_DB" in os.environ


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _to_fifty(plan: Plan) -> list[int]:
    """The AI service's steps from 0 up to 50 %: one approve moves one step."""
    return [w for w in plan.settings("ai").steps if w <= STORY_WEIGHT]


def _story_steps(plan: Plan) -> str:
    steps = _to_fifty(plan)
    return (f"{len(steps)} approves, one step each "
            f"({' -> '.join(f'{w} %' for w in [0, *steps])})")


def _run(setup: object, *, port: int, speed: float, address: str = "127.0.0.1") -> int:
    from cutover.cmd_worker import Dashboard
    from cutover.demo import DEMO_OPERATOR, Demo, DemoSetup
    from cutover.simulator import CLOCK_ENV, SimClock
    from cutover.worker import handle_signals

    assert isinstance(setup, DemoSetup)
    clock = SimClock.starting(setup.history.end, speed=speed)
    running = Demo(plan=setup.plan, plan_hash=setup.plan_hash, engine=setup.engine,
                   paths=setup.paths, clock=clock)
    dash = Dashboard(port=port, plan_path=str(setup.paths.plan), db_url=setup.db_url,
                     extra_env={CLOCK_ENV: clock.to_text(),
                                "CUTOVER_DASHBOARD_OPERATOR": DEMO_OPERATOR},
                     address=address)
    stop = threading.Event()
    try:
        running.start()
        dash.start()
        print(f"\ncutover demo: open {dash.url}  (signed in as {DEMO_OPERATOR}; "
              f"listening on {address})\n"
              f"  time runs at {speed:g}x; traffic in {setup.paths.access_log}; "
              f"alerts in {setup.paths.alerts_log}\n"
              "  the story: push the AI service (ai) to 50 % and watch the verdict turn "
              "fail, the worker revert it and the alert arrive.\n"
              f"  from a terminal, {_story_steps(setup.plan)}:\n"
              f"    for step in {' '.join(str(w) for w in _to_fifty(setup.plan))}; do "
              f"cutover --plan {setup.paths.plan} --db {_shown(setup.db_url)}"
              f" approve ai --override --actor {DEMO_OPERATOR} --reason 'push the AI service'"
              "; done\n"
              "  Ctrl-C stops everything.", file=sys.stderr)
        with handle_signals(stop):
            while not stop.wait(1.0):
                if not dash.running():
                    print("cutover demo: the dashboard exited; stopping", file=sys.stderr)
                    return 1
    finally:
        dash.stop()
        running.close()
        setup.close()
    print("cutover demo: stopped", file=sys.stderr)
    return 0

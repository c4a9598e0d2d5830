"""A worker killed (SIGKILL) in the middle of a delivery: nothing is lost, and only the
message in flight at the kill may arrive twice, carrying the same Idempotency-Key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from alerts.notifiers.generic import IDEMPOTENCY_HEADER
from alerts.outbox import RetryPolicy, deliver, dispatch
from store.alerts import AlertDelivery
from store.db import session_scope
from tests.alerts.conftest import NOW, Answer, channel, env_for, record, with_channels

ROOT = Path(__file__).resolve().parents[2]


def _states(engine) -> list[str]:
    with session_scope(engine) as s:
        return [r.state for r in s.exec(select(AlertDelivery).order_by(AlertDelivery.id)).all()]


def test_worker_killed_mid_delivery_loses_nothing(engine, db_url, plan, receiver, tmp_path):
    ch = channel("hook", "generic")
    p = with_channels(plan, ch)
    env = env_for(receiver, ch)
    for i in range(3):
        record(engine, "approved", summary=f"step {i}")
    assert dispatch(engine=engine, plan=p, now=NOW) == 3
    (tmp_path / "plan.json").write_text(p.model_dump_json())
    (tmp_path / "env.json").write_text(json.dumps(env))
    receiver.script = [Answer(200), Answer(200, hang=60)]   # the 2nd request never returns

    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "alerts" / "deliver_worker.py"), db_url,
         str(tmp_path / "plan.json"), str(tmp_path / "env.json"), NOW.isoformat()],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        receiver.wait_for(2, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert _states(engine) == ["sent", "sending", "pending"]

    # a new worker right away: the killed one's claim still holds, so only the third goes
    policy = RetryPolicy(min_interval=0, timeout=5)
    assert deliver(engine=engine, plan=p, now=NOW, env=env, policy=policy).sent == 1
    assert _states(engine) == ["sent", "sending", "sent"]
    # once the lease is over, the one in flight at the kill is sent again.  The run's
    # clock is NOW plus the real seconds it ran, so the claim was made a little after
    # NOW: a minute past the lease clears that on a loaded machine
    later = NOW + policy.lease + timedelta(minutes=1)
    assert deliver(engine=engine, plan=p, now=later, env=env, policy=policy).sent == 1
    assert _states(engine) == ["sent", "sent", "sent"]

    keys = Counter(a.headers[IDEMPOTENCY_HEADER] for a in receiver.arrivals)
    summaries = Counter(a.json["summary"] for a in receiver.arrivals)
    assert summaries == {"step 0": 1, "step 1": 2, "step 2": 1}   # the documented window
    assert sorted(keys.values()) == [1, 1, 2]       # ... and the repeat carries the same key

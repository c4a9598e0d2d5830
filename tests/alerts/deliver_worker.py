"""Run one deliver() in its own process, for the crash test (it gets SIGKILLed)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from alerts.outbox import RetryPolicy, deliver
from slo.plan import Plan
from store.db import make_engine


def main(db_url: str, plan_path: str, env_path: str, now: str) -> None:
    plan = Plan.model_validate_json(Path(plan_path).read_text())
    env = json.loads(Path(env_path).read_text())
    deliver(engine=make_engine(db_url), plan=plan, now=datetime.fromisoformat(now), env=env,
            policy=RetryPolicy(min_interval=0, timeout=60))


if __name__ == "__main__":
    main(*sys.argv[1:5])

"""How the dashboard process is started: the argv and the environment it reads.

The command line (``cutover dashboard``, ``cutover up``, ``cutover demo``) builds both
here and runs them; the app reads its settings from ``CUTOVER_PLAN`` / ``CUTOVER_DB``
in the environment, never from argv, so a database password never shows in ``ps``."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["APP", "command", "environment"]

APP = Path(__file__).resolve().with_name("app.py")
ENV_PLAN, ENV_DB = "CUTOVER_PLAN", "CUTOVER_DB"


def command(port: int, plan_path: str, db_url: str) -> list[str]:
    """The ``streamlit run .../dashboard/app.py`` argv serving on ``port``.

    ``plan_path`` and ``db_url`` are checked here but travel in the environment: pass
    :func:`environment` as the child's ``env``."""
    if not 0 < port < 65536:
        raise ValueError(f"expected a TCP port in 1..65535, got {port}")
    if not plan_path or not db_url:
        raise ValueError("expected a plan path and a database URL")
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.port", str(port),
            "--server.headless", "true",
            "--server.fileWatcherType", "none",     # no inotify watchers in production
            "--server.runOnSave", "false",
            "--browser.gatherUsageStats", "false",  # no telemetry from a control room
            "--client.toolbarMode", "viewer",
            # blue, not Streamlit's red: red is kept for failures and the override path
            "--theme.primaryColor", "#1f6feb"]


def environment(plan_path: str, db_url: str,
                base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the dashboard's settings."""
    env = dict(os.environ if base is None else base)
    env[ENV_PLAN] = str(Path(plan_path).resolve())
    env[ENV_DB] = db_url
    return env

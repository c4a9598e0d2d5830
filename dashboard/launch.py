"""How the dashboard process is started: the argv and the environment it reads.

The command line (``cutover dashboard``, ``cutover up``, ``cutover demo``) builds both
here and runs them; the app reads its settings from ``CUTOVER_PLAN`` / ``CUTOVER_DB``
in the environment, never from argv, so a database password never shows in ``ps``."""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["APP", "DEFAULT_ADDRESS", "check_address", "command", "environment",
           "is_loopback", "trusts_forwarded_user", "url"]

APP = Path(__file__).resolve().with_name("app.py")
#: the server process: Streamlit's command line after the pages' imports (dashboard.serve)
SERVE = APP.with_name("serve.py")
ENV_PLAN, ENV_DB = "CUTOVER_PLAN", "CUTOVER_DB"
#: the variable that makes the dashboard believe X-Forwarded-Email / X-Forwarded-User
#: (dashboard.auth reads it; it is named here so the launcher need not import Streamlit)
ENV_TRUST_FORWARDED = "CUTOVER_TRUST_FORWARDED_USER"
#: Streamlit's own default is every interface; ours is loopback
DEFAULT_ADDRESS = "127.0.0.1"


def is_loopback(address: str) -> bool:
    """Whether a listening ``address`` is reachable from this machine only.

    ``localhost`` counts (it names loopback by convention, RFC 6761 section 6.3); any
    other host name does not, since what it resolves to can change.  An empty address is
    Streamlit's "every interface"."""
    text = address.strip().strip("[]")
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def url(address: str, port: int) -> str:
    """Where a browser on this machine finds a dashboard listening on ``address``."""
    text = address.strip().strip("[]")
    if not text or is_loopback(text):
        return f"http://localhost:{port}"
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:  # a host name
        return f"http://{text}:{port}"
    if ip.is_unspecified:  # every interface: loopback is one of them
        return f"http://localhost:{port}"
    return f"http://[{ip}]:{port}" if ip.version == 6 else f"http://{ip}:{port}"


def trusts_forwarded_user(env: Mapping[str, str]) -> bool:
    return env.get(ENV_TRUST_FORWARDED) == "1"


def check_address(address: str, env: Mapping[str, str]) -> None:
    """Refuse (ValueError) a non-loopback ``address`` while the forwarded-user header is
    trusted: anyone who reaches Streamlit directly could send that header and be taken for
    any operator.  Only a proxy on the same host (the pod's oauth-proxy) may stand in front."""
    if trusts_forwarded_user(env) and not is_loopback(address):
        raise ValueError(
            f"--address {address or '(every interface)'}: {ENV_TRUST_FORWARDED}=1 trusts "
            "the X-Forwarded-Email / X-Forwarded-User header, so the dashboard must listen "
            "on loopback only (127.0.0.1, ::1 or localhost) behind a proxy on this host; "
            f"unset {ENV_TRUST_FORWARDED} to listen on {address or 'every interface'}")


def command(port: int, plan_path: str, db_url: str,
            address: str = DEFAULT_ADDRESS) -> list[str]:
    """The ``streamlit run .../dashboard/app.py`` argv serving on ``address:port``.

    ``plan_path`` and ``db_url`` are checked here but travel in the environment: pass
    :func:`environment` as the child's ``env``.  The address is a flag, which Streamlit
    ranks above ``STREAMLIT_SERVER_ADDRESS`` and any config.toml."""
    if not 0 < port < 65536:
        raise ValueError(f"expected a TCP port in 1..65535, got {port}")
    if not plan_path or not db_url:
        raise ValueError("expected a plan path and a database URL")
    if not address.strip():
        raise ValueError("--address: expected an address to listen on (127.0.0.1, 0.0.0.0, "
                         "::1, ...), got nothing")
    return [sys.executable, str(SERVE), "run", str(APP),
            "--server.address", address.strip(),
            "--server.port", str(port),
            "--server.headless", "true",
            "--server.fileWatcherType", "none",     # no inotify watchers in production
            "--server.runOnSave", "false",
            "--browser.gatherUsageStats", "false",  # no telemetry from a control room
            "--client.toolbarMode", "viewer",
            # blue, not Streamlit's red: red is kept for failures and the override path;
            # set per theme, so the browser's light or dark preference still chooses
            "--theme.light.primaryColor", "#1f6feb",
            "--theme.dark.primaryColor", "#58a6ff"]


def environment(plan_path: str, db_url: str,
                base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the dashboard's settings."""
    env = dict(os.environ if base is None else base)
    env[ENV_PLAN] = str(Path(plan_path).resolve())
    env[ENV_DB] = db_url
    return env

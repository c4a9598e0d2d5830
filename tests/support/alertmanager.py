"""A real Alertmanager for tests: Debian's ``prometheus-alertmanager`` on 127.0.0.1 with a
free port, a config of its own in a temp dir (never Debian's), clustering off, and one
webhook receiver (the test's) that every alert is routed to.

    with alertmanager_with(tmp_path, webhook="http://127.0.0.1:PORT/hook") as am:
        httpx.post(am.url + "/api/v2/alerts", json=[...])
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.prom import free_port

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"

CONFIG = """\
route:
  receiver: hook
  group_by: ['...']       # every alert a group of its own: one webhook per alert
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {webhook!r}
        send_resolved: true
{auth}{extra}"""


def available() -> bool:
    return Path(ALERTMANAGER).exists()


@dataclass
class Alertmanager:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        r = httpx.get(self.url + "/api/v2/alerts", params=params, timeout=5)
        r.raise_for_status()
        out: list[dict[str, Any]] = r.json()
        return out

    def post(self, alerts: list[dict[str, Any]]) -> None:
        httpx.post(self.url + "/api/v2/alerts", json=alerts, timeout=5).raise_for_status()

    def wait_for(self, predicate: Any, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Poll the alerts until ``predicate(alerts)`` holds; the alerts then."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.alerts()
            if predicate(found) or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


@contextmanager
def alertmanager_with(tmp_path: Path, *, webhook: str, extra: str = "",
                      port: int | None = None,
                      token: str | None = None) -> Iterator[Alertmanager]:
    """``token``: the webhook's bearer credentials (from a file, as on a cluster)."""
    home = tmp_path / f"alertmanager-{time.monotonic_ns()}"
    home.mkdir()
    auth = ""
    if token is not None:
        (home / "token").write_text(token)
        auth = ("        http_config:\n          authorization:\n"
                f"            credentials_file: {str(home / 'token')!r}\n")
    (home / "alertmanager.yml").write_text(CONFIG.format(webhook=webhook, extra=extra,
                                                         auth=auth))
    port = port or free_port()
    log = home / "alertmanager.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={home / 'alertmanager.yml'}",
             f"--storage.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--cluster.listen-address=", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT)
    am = Alertmanager(url=f"http://127.0.0.1:{port}", process=proc, log=log)
    try:
        _wait_ready(am)
        yield am
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(am: Alertmanager, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if am.process.poll() is not None:
            raise RuntimeError(f"alertmanager exited: {am.log.read_text()[-2000:]}")
        try:
            if httpx.get(am.url + "/-/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"alertmanager not ready in {timeout}s: {am.log.read_text()[-2000:]}")

"""The real ``cutover demo`` as a test fixture: started once per test process (one per
xdist worker) and shared by the browser tests, since writing its history and starting
its worker and dashboard takes half a minute.

Tests that share it must not depend on each other's order: each acts on a service of
its own or only reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "plans" / "nanopore.yaml"
VIEWPORT = {"width": 1280, "height": 800}


@dataclass(frozen=True)
class RunningDemo:
    url: str
    dir: Path
    process: subprocess.Popen[bytes]
    output: Path

    @property
    def plan(self) -> Path:
        return self.dir / "plan.yaml"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.dir / 'cutover.db'}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``cutover --plan <demo plan> --db <demo store> ARGS``."""
        return subprocess.run([sys.executable, "-m", "cutover", "--plan", str(self.plan),
                               "--db", self.db_url, *args],
                              capture_output=True, text=True, cwd=ROOT, timeout=120,
                              check=check)

    def status(self) -> dict[str, dict[str, Any]]:
        """``cutover status --json``, by service."""
        services = json.loads(self.cli("status", "--json").stdout)["services"]
        return {s["service"]: s for s in services}

    def wait_for(self, service: str, state: str, timeout: float) -> dict[str, Any]:
        """``service``'s status once its state is ``state`` (AssertionError after
        ``timeout`` seconds, with the last status seen)."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.status()[service]
            if now["state"] == state:
                return now
            if time.monotonic() > deadline:
                raise AssertionError(f"{service} not {state} in {timeout:.0f} s: {now}")
            time.sleep(5)


def wait_healthy(url: str, proc: subprocess.Popen[Any], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the process exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"nothing answered at {url} in {timeout:.0f} s")


def start(base: Path, port: int) -> RunningDemo:
    output = base / "demo.out"
    with output.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cutover", "--plan", str(PLAN), "demo",
                                 "--dir", str(base / "demo"), "--port", str(port)],
                                cwd=base, stdout=out, stderr=subprocess.STDOUT)
    demo = RunningDemo(url=f"http://127.0.0.1:{port}", dir=base / "demo", process=proc,
                       output=output)
    try:
        wait_healthy(demo.url, proc)
    except AssertionError:
        stop(demo)
        raise AssertionError(output.read_text()[-3000:]) from None
    return demo


def stop(demo: RunningDemo) -> int:
    demo.process.send_signal(signal.SIGINT)
    try:
        return demo.process.wait(30)
    except subprocess.TimeoutExpired:
        demo.process.kill()
        return demo.process.wait()


def shoot(page: Any, name: str) -> None:
    """With ``CUTOVER_SCREENSHOTS=DIR``, keep a screenshot of ``page`` as ``DIR/name.png``
    (to look at what a test saw; the README's come from scripts/screenshots.py);
    otherwise nothing."""
    keep = os.environ.get("CUTOVER_SCREENSHOTS")
    if not keep:
        return
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=30_000)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=30_000)
    page.wait_for_timeout(1000)
    Path(keep).mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(Path(keep) / f"{name}.png"))

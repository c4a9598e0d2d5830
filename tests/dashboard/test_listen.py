"""Where the dashboard listens, and the forwarded-user header it may trust.

The attack: with ``CUTOVER_TRUST_FORWARDED_USER=1`` the dashboard listened on every
interface, and a browser sending ``X-Forwarded-Email: ana@example.org`` straight to
Streamlit was taken for that operator.  Now the command refuses a non-loopback address
while the header is trusted (before anything listens), the dashboard says at start that
it trusts the header on loopback only, and the app itself ignores the header when it finds
itself listening elsewhere.  The real dashboard is started and the kernel's socket table
says what it listens on; Debian's chromium sends the spoofed header."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from cutover.cli import main
from dashboard import launch
from dashboard.auth import Identity, resolve_viewer
from tests.dashboard.test_browser import CHROMIUM, CHROMIUM_ARGS, free_port, wait_healthy
from tests.support.listening import listening_on

ROOT = Path(__file__).resolve().parents[2]
ANA = "ana@example.org"
TRUST = {"CUTOVER_TRUST_FORWARDED_USER": "1"}


# -- the rule --------------------------------------------------------------------------

@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("LocalHost", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("10.1.2.3", False),
    ("dashboard.example.org", False), ("::ffff:10.0.0.1", False),
])
def test_is_loopback(address: str, loopback: bool) -> None:
    assert launch.is_loopback(address) is loopback


@pytest.mark.parametrize("address, url", [
    ("127.0.0.1", "http://localhost:8501"), ("0.0.0.0", "http://localhost:8501"),
    ("::", "http://localhost:8501"), ("10.1.2.3", "http://10.1.2.3:8501"),
    ("fd00::1", "http://[fd00::1]:8501"), ("dash.example.org", "http://dash.example.org:8501"),
])
def test_the_url_printed_for_an_address(address: str, url: str) -> None:
    assert launch.url(address, 8501) == url


def test_a_trusted_header_refuses_every_interface_and_names_why() -> None:
    launch.check_address("0.0.0.0", {})          # not trusted: any address is fine
    launch.check_address("127.0.0.1", TRUST)
    launch.check_address("::1", TRUST)
    with pytest.raises(ValueError, match=r"CUTOVER_TRUST_FORWARDED_USER=1.*loopback only"):
        launch.check_address("0.0.0.0", TRUST)
    with pytest.raises(ValueError, match="every interface"):
        launch.check_address("", TRUST)


def test_the_command_names_the_address_as_a_flag() -> None:
    argv = launch.command(8501, "plan.yaml", "sqlite://")
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    argv = launch.command(8501, "plan.yaml", "sqlite://", "0.0.0.0")
    assert argv[argv.index("--server.address") + 1] == "0.0.0.0"
    with pytest.raises(ValueError, match="--address"):
        launch.command(8501, "plan.yaml", "sqlite://", " ")


def test_the_app_ignores_a_trusted_header_off_loopback(plan) -> None:
    headers = {"X-Forwarded-Email": ANA}
    on_loopback = resolve_viewer(plan=plan, user_info={}, headers=headers, env=TRUST,
                                 address="127.0.0.1")
    assert (on_loopback.name, on_loopback.identity) == (ANA, Identity.FORWARDED)
    for address in ("0.0.0.0", "", "::"):
        v = resolve_viewer(plan=plan, user_info={}, headers=headers, env=TRUST,
                           address=address)
        assert (v.name, v.identity, v.may_operate) == (None, Identity.ANONYMOUS, False)


# -- the commands refuse, before anything listens ---------------------------------------

@pytest.mark.parametrize("command", [["dashboard"], ["up"], ["demo", "--dir", "d"]])
def test_each_command_refuses_every_interface_while_trusting_the_header(
        command: list[str], plan_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CUTOVER_TRUST_FORWARDED_USER", "1")
    monkeypatch.chdir(tmp_path)
    port = free_port()
    code = main(["--plan", str(plan_file), "--db", f"sqlite:///{tmp_path / 'x.db'}",
                 *command, "--address", "0.0.0.0", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--address 0.0.0.0" in err and "loopback only" in err
    assert listening_on(port) == set()
    assert not (tmp_path / "d").exists(), "the demo seeded a store before refusing"


def test_a_spoofed_header_sent_to_a_refused_dashboard_never_gets_there(
        plan_file: Path, store_url: str, store, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **TRUST, "PYTHONPATH": str(ROOT)}
    env.pop("CUTOVER_DASHBOARD_OPERATOR", None)
    done = subprocess.run([sys.executable, "-m", "cutover", "--plan", str(plan_file),
                           "--db", store_url, "dashboard", "--address", "0.0.0.0",
                           "--port", str(port)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "loopback only" in done.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", headers={"X-Forwarded-Email": ANA}, timeout=2)
    assert listening_on(port) == set()


# -- the real dashboard ------------------------------------------------------------------

def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _trusted_dashboard(plan_file: Path, store_url: str, port: int,
                       err: Path) -> subprocess.Popen[bytes]:
    """``cutover dashboard`` with the header trusted and no --address."""
    env = {**os.environ, **TRUST, "PYTHONPATH": str(ROOT)}
    env.pop("CUTOVER_DASHBOARD_OPERATOR", None)
    env.pop("STREAMLIT_SERVER_ADDRESS", None)
    return subprocess.Popen([sys.executable, "-m", "cutover", "--plan", str(plan_file),
                             "--db", store_url, "dashboard", "--port", str(port)],
                            env=env, cwd=err.parent, stdout=subprocess.DEVNULL,
                            stderr=err.open("wb"), start_new_session=True)


def _by_hand_on_every_interface(plan_file: Path, store_url: str, port: int,
                                err: Path) -> subprocess.Popen[bytes]:
    """``streamlit run`` without ``cutover dashboard`` (so nothing refused it), told to
    trust the header and to listen on every interface."""
    env = launch.environment(str(plan_file), store_url)
    env.update(TRUST)
    env.pop("CUTOVER_DASHBOARD_OPERATOR", None)
    return subprocess.Popen(launch.command(port, str(plan_file), store_url, "0.0.0.0"),
                            env=env, stdout=subprocess.DEVNULL, stderr=err.open("wb"),
                            start_new_session=True)


def _open(browser: Any, url: str, headers: dict[str, str]) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 800},
                            extra_http_headers=headers)
    page.goto(url + "/")
    return page


def _viewer_label(page: Any) -> str:
    """What the sidebar says about who is looking."""
    from playwright.sync_api import expect

    label = page.get_by_text("(operator, via", exact=False).or_(
        page.get_by_text("not signed in (read-only)"))
    expect(label.first).to_be_visible(timeout=60_000)
    return str(label.first.inner_text())


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_a_trusted_header_is_believed_on_loopback_only(plan_file: Path, store_url: str,
                                                       store, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    trusted, by_hand = free_port(), free_port()
    errs = {trusted: tmp_path / "dashboard.err", by_hand: tmp_path / "streamlit.err"}
    procs = {trusted: _trusted_dashboard(plan_file, store_url, trusted, errs[trusted]),
             by_hand: _by_hand_on_every_interface(plan_file, store_url, by_hand,
                                                  errs[by_hand])}
    spoof = {"X-Forwarded-Email": ANA}
    try:
        for port, proc in procs.items():
            wait_healthy(f"http://127.0.0.1:{port}", proc)
        # cutover dashboard: 127.0.0.1 alone, and it says why at start
        assert listening_on(trusted) == {"127.0.0.1"}
        with pytest.raises(httpx.ConnectError):  # every interface would answer here too
            httpx.get(f"http://127.0.0.2:{trusted}/_stcore/health", timeout=2)
        said = errs[trusted].read_text()
        assert "trusting the forwarded user header" in said and "127.0.0.1 only" in said
        assert listening_on(by_hand) & {"0.0.0.0", "::"}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                # both load at once (each app's first run takes seconds)
                pages = {port: _open(browser, f"http://127.0.0.1:{port}", spoof)
                         for port in procs}
                # the proxy's case: over loopback the header names the operator ...
                assert _viewer_label(pages[trusted]).startswith(
                    f"{ANA} (operator, via the OpenShift oauth-proxy")
                # ... and a Streamlit on every interface never believes it
                assert _viewer_label(pages[by_hand]) == "not signed in (read-only)"
            finally:
                browser.close()
    finally:
        for proc in procs.values():
            _stop(proc)
    assert "the forwarded user header is ignored" in errs[by_hand].read_text()

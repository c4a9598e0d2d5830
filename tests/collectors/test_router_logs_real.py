"""The router's log path for real: Debian's HAProxy, configured as an OpenShift router is
(backend ``be_http:<namespace>:<route>``, server ``pod:<pod>:<service>:...``, a custom
``log-format`` with a host capture), logs over UDP syslog to Debian's rsyslog, which writes
the file in its traditional (RFC 3164) and in RFC 5424 form; cutover reads both files with
the same template to the requests that were really sent."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from collectors.logs import LogCollector
from slo.plan import LogSource, LogTemplate, Plan
from store.db import session_scope
from store.rollups import log_figures, rollup_totals
from tests.collectors.test_logs_support import with_logs

TEMPLATE = ("%ci:%cp [%tr] %ft %b/%s %[capture.req.hdr(0)] %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS "
            "%tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r")


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(f"/usr/sbin/{name}")
    if path is None:
        pytest.skip(f"{name} is not installed (scripts/setup-dev.sh installs it)")
    return path


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Backend(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        status = 503 if self.path.endswith("/fail") else 200
        body = b"x" * (100 if status == 200 else 7)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    rsyslogd = _tool("rsyslogd")
    port = _free_port(socket.SOCK_DGRAM)
    classic, modern = tmp_path / "router-3164.log", tmp_path / "router-5424.log"
    work = tmp_path / "rsyslog"
    work.mkdir()
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(f'''
global(workDirectory="{work}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{port}")
local0.* action(type="omfile" file="{classic}" template="RSYSLOG_TraditionalFileFormat")
local0.* action(type="omfile" file="{modern}" template="RSYSLOG_SyslogProtocol23Format")
''')
    proc = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslog.pid")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "rsyslogd died"
    yield port, classic, modern
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def router(tmp_path: Path, backend: int, syslog: tuple[int, Path, Path]) -> Iterator[int]:
    haproxy = _tool("haproxy")
    port = _free_port()
    server = f"pod:python-auth-5d9f8-x2x:python-auth:8080-tcp:127.0.0.1:{backend}"
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f'''
global
    log 127.0.0.1:{syslog[0]} local0
defaults
    mode http
    log global
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe_sni
    bind 127.0.0.1:{port}
    capture request header Host len 64
    log-format "{TEMPLATE}"
    default_backend be_http:nanopore:nanopore-auth
backend be_http:nanopore:nanopore-auth
    server {server} 127.0.0.1:{backend}
''')
    check = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def test_haproxy_through_rsyslog_reads_what_was_sent(router: int, syslog: tuple[int, Path, Path],
                                                     plan: Plan, engine: Engine) -> None:
    sent_ok, sent_fail = 40, 10
    with httpx.Client(base_url=f"http://127.0.0.1:{router}",
                      headers={"Host": "app.example.org"}) as client:
        for i in range(sent_ok):
            assert client.get(f"/api/auth/login?n={i}").status_code == 200
        for _ in range(sent_fail):
            assert client.get("/api/auth/fail").status_code == 503
    _, classic, modern = syslog
    deadline = time.monotonic() + 20
    while min(_lines(classic), _lines(modern)) < sent_ok + sent_fail:
        assert time.monotonic() < deadline, (classic.read_text() if classic.exists() else "no file")
        time.sleep(0.1)
    assert re.match(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ haproxy\[\d+\]: ",
                    classic.read_text()), classic.read_text()[:200]          # RFC 3164
    assert re.match(r"<134>1 \S+ \S+ haproxy \d+ ", modern.read_text()), modern.read_text()[:200]
    for path in (classic, modern):
        src = LogSource(path=str(path), format=LogTemplate(haproxy=TEMPLATE))
        report = LogCollector(plan=with_logs(plan, src), engine=engine).collect(now=datetime.now(UTC))
        assert report.ok, report.problems
    with session_scope(engine) as s:
        assert rollup_totals(session=s) == {("auth", "candidate"): 2 * (sent_ok + sent_fail)}
        f = log_figures(session=s, service="auth", variant="candidate",
                        start=datetime.now(UTC) - timedelta(hours=1),
                        end=datetime.now(UTC) + timedelta(minutes=5))
    assert f.requests == 2 * (sent_ok + sent_fail)
    assert f.error_rate == pytest.approx(sent_fail / (sent_ok + sent_fail))

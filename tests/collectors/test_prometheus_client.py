"""The HTTP side against a loopback server: path prefix (Thanos, Mimir), bearer token from
an env var or a token file, extra headers, and each kind of bad answer sorted into its
outcome."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from collectors.prometheus import (
    PromClient,
    PullOutcome,
    QueryFailed,
    SourceUnavailable,
    build_http_client,
    chunk_ranges,
)
from slo.errors import ConfigError
from slo.plan import PrometheusSource

MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": [
    {"metric": {"le": "0.1"}, "values": [[1795132830, "1.5"], [1795132860, "NaN"]]}]}}
T = datetime(2026, 11, 20, tzinfo=UTC)


class Fake(BaseHTTPRequestHandler):
    answer: tuple[int, Any] = (200, MATRIX)
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        code, payload = self.answer
        raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[tuple[str, type[Fake]]]:
    handler = type("H", (Fake,), {"seen": [], "answer": (200, MATRIX)})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", handler
    srv.shutdown()
    srv.server_close()


def query(url: str, **src: Any) -> list[Any]:
    source = PrometheusSource(url=url, **src)
    with build_http_client(source, env={"PROM_TOKEN": "s3cret-env"}) as http:
        return PromClient(http).query_range("up", start=T, end=T + timedelta(minutes=1),
                                            step_seconds=30)


def test_prefix_token_from_env_and_headers(fake: tuple[str, type[Fake]]) -> None:
    url, h = fake
    series = query(url + "/thanos/", bearer_token_env="PROM_TOKEN",
                   headers={"X-Scope-OrgID": "nanopore"})
    seen = h.seen[0]
    assert seen["path"] == "/thanos/api/v1/query_range"
    assert seen["headers"]["Authorization"] == "Bearer s3cret-env"
    assert seen["headers"]["X-Scope-OrgID"] == "nanopore"
    assert "step=30" in seen["body"] and "query=up" in seen["body"]
    assert series[0].labels == {"le": "0.1"}
    assert series[0].values.tolist() == [1.5]     # NaN dropped


def test_token_from_a_mounted_file(fake: tuple[str, type[Fake]], tmp_path: Path) -> None:
    url, h = fake
    token = tmp_path / "token"
    token.write_text("s3cret-file\n")
    query(url, bearer_token_file=str(token))
    assert h.seen[0]["headers"]["Authorization"] == "Bearer s3cret-file"


def test_missing_token_file_is_a_config_error(fake: tuple[str, type[Fake]], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="token file"):
        query(fake[0], bearer_token_file=str(tmp_path / "nope"))


@pytest.mark.parametrize(("code", "payload", "error", "outcome"), [
    (401, {"status": "error", "error": "unauthorized"}, SourceUnavailable, PullOutcome.REFUSED),
    (400, {"status": "error", "errorType": "bad_data", "error": "parse error"}, QueryFailed,
     PullOutcome.QUERY_ERROR),
    (422, {"status": "error", "errorType": "execution", "error": "too many samples"},
     QueryFailed, PullOutcome.QUERY_ERROR),
    (503, {"status": "error", "errorType": "timeout", "error": "query timed out"},
     SourceUnavailable, PullOutcome.SLOW),
    (502, "<html>bad gateway</html>", SourceUnavailable, PullOutcome.HTTP_ERROR),
    (200, "not json", SourceUnavailable, PullOutcome.HTTP_ERROR),
    (200, {"status": "success", "data": {"resultType": "vector", "result": []}}, QueryFailed,
     PullOutcome.QUERY_ERROR),
])
def test_bad_answers_sorted_into_outcomes(fake: tuple[str, type[Fake]], code: int, payload: Any,
                                          error: type[Exception], outcome: PullOutcome) -> None:
    url, h = fake
    h.answer = (code, payload)
    with pytest.raises(error) as e:
        query(url, bearer_token_env="PROM_TOKEN")
    assert e.value.outcome == outcome  # type: ignore[attr-defined]
    assert "s3cret" not in str(e.value)


def test_connection_refused_is_down() -> None:
    from tests.support.prom import free_port

    with pytest.raises(SourceUnavailable) as e:
        query(f"http://127.0.0.1:{free_port()}")
    assert e.value.outcome == PullOutcome.DOWN


def test_chunks_cover_the_range_under_the_point_limit() -> None:
    end = T + timedelta(weeks=6)
    chunks = list(chunk_ranges(T, end, step=30))
    assert chunks[0][0] == T and chunks[-1][1] == end
    for (lo, hi), nxt in zip(chunks, chunks[1:] + [(None, None)]):
        assert (hi - lo).total_seconds() / 30 + 1 <= 11_000
        if nxt[0] is not None:
            assert nxt[0] == hi + timedelta(seconds=30)


@pytest.fixture
def tls_fake(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The fake behind TLS with a self-signed certificate for 127.0.0.1."""
    import ssl
    import subprocess

    cert, key = tmp_path / "ca.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    handler = type("H", (Fake,), {"seen": [], "answer": (200, MATRIX)})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{srv.server_address[1]}", cert
    srv.shutdown()
    srv.server_close()


def test_custom_ca_file_is_trusted(tls_fake: tuple[str, Path]) -> None:
    url, ca = tls_fake
    assert query(url, ca_file=str(ca))[0].values.tolist() == [1.5]


def test_unknown_ca_is_refused_unless_verification_is_off(tls_fake: tuple[str, Path]) -> None:
    url, _ = tls_fake
    with pytest.raises(SourceUnavailable) as e:
        query(url)
    assert e.value.outcome == PullOutcome.DOWN and "CERTIFICATE_VERIFY_FAILED" in str(e.value)
    assert query(url, verify_tls=False)[0].values.tolist() == [1.5]


def test_progress_bar_draws_in_place() -> None:
    import io

    from cutover.cmd_collect import progress_bar

    out = io.StringIO()
    draw = progress_bar("prometheus", out, width=10)
    for i in range(1, 5):
        draw(i, 4)
    text = out.getvalue()
    assert text.count("\r") == 4 and text.endswith("[##########] 4/4\n")
    silent = io.StringIO()
    progress_bar("prometheus", silent)(1, 1)   # one chunk: no bar
    assert silent.getvalue() == ""

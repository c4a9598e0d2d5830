"""The HTTP probes against real HTTP servers on loopback: health checks, the same
requests to the monolith and the service compared, sessions carried across variants,
and files compared by size and SHA-256 (through URLs, and between two trees)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from collectors.probes.base import ProbeContext
from collectors.probes.runner import run_probe
from slo.plan import Plan
from slo.probe_results import ProbeResult
from slo.probe_specs import CompareProbe, FilesProbe, HttpProbe, SessionProbe
from slo.verdict import Verdict

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
Route = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


@contextmanager
def serve(route: Route) -> Iterator[str]:
    """A real HTTP server on a free loopback port answering with ``route``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.body = self.rfile.read(length) if length else b""
            status, headers, body = route(self)
            self.send_response(status)
            for k, v in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _json(doc: Any, status: int = 200, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(doc).encode()


def run(spec: Any, plan: Plan, **env: str) -> ProbeResult:
    ctx = ProbeContext(plan=plan, now=NOW, env=env)
    return run_probe((plan.phases[0], None, spec), ctx)


# -- http -------------------------------------------------------------------------------

def _health(h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
    if h.path == "/health":
        return _json({"status": "ok", "checks": [{"db": "up"}]})
    if h.path == "/degraded":
        return _json({"status": "degraded"})
    if h.path == "/slow":
        time.sleep(0.3)
        return _json({"status": "ok"})
    if h.path == "/private":
        ok = h.headers.get("Authorization") == "Bearer s3cret-token"
        return _json({"status": "ok"} if ok else {"error": "no"}, 200 if ok else 401)
    return _json({"error": "not found"}, 404)


def test_http_healthy_passes_with_its_figures(plan: Plan) -> None:
    with serve(_health) as url:
        result = run(HttpProbe(kind="http", name="h", url=f"{url}/health", json_path="status",
                               json_equals="ok"), plan)
    assert result.verdict is Verdict.PASS, result.reasons
    assert result.figures["status"] == 200 and result.value is not None


@pytest.mark.parametrize(("path", "extra", "says"), [
    ("/degraded", {"json_path": "status", "json_equals": "ok"},
     'status is "degraded", expected "ok"'),
    ("/nope", {}, "status 404, expected 200"),
    ("/slow", {"max_latency_ms": 100}, "> 100 ms"),
    ("/health", {"body_contains": "ready"}, "the body lacks 'ready'"),
    ("/health", {"json_path": "checks.0.cache"}, "no checks.0.cache in the answer"),
])
def test_http_failures_say_what(plan: Plan, path: str, extra: dict[str, Any], says: str) -> None:
    with serve(_health) as url:
        result = run(HttpProbe(kind="http", name="h", url=f"{url}{path}", **extra), plan)
    assert result.verdict is Verdict.FAIL
    assert says in result.reasons[0]


def test_http_unreachable_is_inconclusive(plan: Plan) -> None:
    with serve(_health) as url:
        pass   # closed again: nothing listens there now
    result = run(HttpProbe(kind="http", name="h", url=f"{url}/health"), plan)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.reasons[0].startswith("could not run:")


def test_http_credentials_come_from_the_environment_and_stay_out_of_results(
        plan: Plan) -> None:
    with serve(_health) as url:
        spec = HttpProbe(kind="http", name="h", url_env="HEALTH_URL",
                         authorization_env="HEALTH_AUTH")
        ok = run(spec, plan, HEALTH_URL=f"{url}/private", HEALTH_AUTH="Bearer s3cret-token")
        missing = run(spec, plan, HEALTH_URL=f"{url}/private")
    assert ok.verdict is Verdict.PASS, ok.reasons
    assert "the URL in HEALTH_URL" in ok.reasons[0]
    assert missing.verdict is Verdict.INCONCLUSIVE
    assert "HEALTH_AUTH is not set" in missing.reasons[0]
    for r in (ok, missing):
        assert "s3cret" not in json.dumps(r.contract()) and "/private" not in json.dumps(
            r.contract())


# -- compare ------------------------------------------------------------------------------

SAMPLES = [{"id": 1, "sample_name": "ecoli-01", "status": "sequencing", "updated_at": "t1"},
           {"id": 2, "sample_name": "yeast-02", "status": "complete", "updated_at": "t2"}]


def _api(samples: list[dict[str, Any]], *, stamp: str) -> Route:
    def route(h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(h.path)
        if parts.path == "/api/samples":
            found = [s for s in samples if "ecoli" in s["sample_name"]] \
                if "search=ecoli" in (parts.query or "") else samples
            return _json({"items": found, "total": len(found), "request_id": stamp})
        if parts.path == "/api/samples/2":
            return _json(samples[1])
        return _json({"error": "not found"}, 404)
    return route


def _compare(a: str, b: str, *paths: str) -> CompareProbe:
    return CompareProbe(kind="compare", name="c", baseline_url=a, candidate_url=b,
                        requests=[{"path": p} for p in paths],  # type: ignore[misc]
                        ignore=["request_id", "items.*.updated_at"])


def test_same_answers_but_for_ignored_fields_pass(plan: Plan) -> None:
    theirs = [dict(s, updated_at="other") for s in SAMPLES]
    with serve(_api(SAMPLES, stamp="a")) as a, serve(_api(theirs, stamp="b")) as b:
        result = run(_compare(a, b, "/api/samples", "/api/samples?search=ecoli"), plan)
    assert result.verdict is Verdict.PASS, result.reasons
    assert result.figures == {"requests": 2, "differing": 0}


def test_a_different_field_fails_and_names_its_path(plan: Plan) -> None:
    theirs = [SAMPLES[0], dict(SAMPLES[1], status="sequencing")]
    with serve(_api(SAMPLES, stamp="a")) as a, serve(_api(theirs, stamp="b")) as b:
        result = run(_compare(a, b, "/api/samples", "/api/samples/2"), plan)
    assert result.verdict is Verdict.FAIL
    assert 'GET /api/samples: items.1.status: "complete" from the monolith, "sequencing" ' \
        "from the service" in result.reasons
    assert result.figures["differing"] == 2


def test_search_that_finds_less_fails(plan: Plan) -> None:
    with serve(_api(SAMPLES, stamp="a")) as a, serve(_api(SAMPLES[1:], stamp="b")) as b:
        result = run(_compare(a, b, "/api/samples?search=ecoli"), plan)
    assert result.verdict is Verdict.FAIL
    assert any("1 items from the monolith, 0 from the service" in r for r in result.reasons)


def test_a_different_status_fails(plan: Plan) -> None:
    with serve(_api(SAMPLES, stamp="a")) as a, serve(_health) as b:
        result = run(_compare(a, b, "/api/samples/2"), plan)
    assert result.verdict is Verdict.FAIL
    assert "status 200 from the monolith, 404 from the service" in result.reasons[0]


# -- sessions -------------------------------------------------------------------------------

def _auth_service(store: dict[str, str]) -> Route:
    """Logs in (sets a cookie and answers a token) and checks either, in ``store``."""
    def route(h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        if h.path == "/login":
            creds = json.loads(h.body or b"{}")  # type: ignore[attr-defined]
            if creds != {"username": "probe", "password": "pw-123"}:
                return _json({"error": "bad credentials"}, 401)
            sid = secrets.token_hex(8)
            store[sid] = "probe"
            return _json({"access_token": sid}, **{"Set-Cookie": f"sid={sid}; Path=/"})
        cookie = dict(c.strip().split("=", 1) for c in (h.headers.get("Cookie") or "").split(";")
                      if "=" in c)
        token = (h.headers.get("Authorization") or "").removeprefix("Bearer ")
        who = store.get(cookie.get("sid", "")) or store.get(token)
        return _json({"user": who}) if who else _json({"error": "no session"}, 401)
    return route


LOGIN = '{"username": "probe", "password": "pw-123"}'


@pytest.mark.parametrize("carry", ["cookie", "authorization"])
def test_a_shared_session_store_holds(plan: Plan, carry: str) -> None:
    shared: dict[str, str] = {}
    with serve(_auth_service(shared)) as mono, serve(_auth_service(shared)) as svc:
        result = run(SessionProbe(kind="session", name="s", login_url=f"{mono}/login",
                                  check_url=f"{svc}/me", login_body_env="LOGIN",
                                  carry=carry), plan, LOGIN=LOGIN)  # type: ignore[arg-type]
    assert result.verdict is Verdict.PASS, result.reasons
    assert "held" in result.reasons[0]


@pytest.mark.parametrize("carry", ["cookie", "authorization"])
def test_separate_session_stores_do_not_hold(plan: Plan, carry: str) -> None:
    with serve(_auth_service({})) as mono, serve(_auth_service({})) as svc:
        result = run(SessionProbe(kind="session", name="s", login_url=f"{mono}/login",
                                  check_url=f"{svc}/me", login_body_env="LOGIN",
                                  carry=carry), plan, LOGIN=LOGIN)  # type: ignore[arg-type]
    assert result.verdict is Verdict.FAIL
    assert "was not honoured" in result.reasons[0] and "status 401" in result.reasons[0]


def test_a_refused_login_is_inconclusive_and_keeps_the_password_out(plan: Plan) -> None:
    with serve(_auth_service({})) as mono:
        result = run(SessionProbe(kind="session", name="s", login_url=f"{mono}/login",
                                  check_url=f"{mono}/me", login_body_env="LOGIN"), plan,
                     LOGIN='{"username": "probe", "password": "wrong-pw-9"}')
    assert result.verdict is Verdict.INCONCLUSIVE and "answered 401" in result.reasons[0]
    assert "wrong-pw-9" not in json.dumps(result.contract())


# -- files ------------------------------------------------------------------------------------

def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


GOOD = {"runs/flowcell-a.pod5": b"A" * 4096, "runs/flowcell b.fast5": b"B" * 1000,
        "forms/sample-01.pdf": b"%PDF-1.7 " + b"x" * 500, "forms/sample-02.pdf": b"%PDF-1.7 y"}
DAMAGED = {**GOOD, "runs/flowcell-a.pod5": b"A" * 4095 + b"Z",      # corrupted
           "runs/flowcell b.fast5": b"B" * 600}                       # truncated
del DAMAGED["forms/sample-02.pdf"]                                    # missing


def _files(root: Path) -> Route:
    def route(h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        p = root / unquote(urlsplit(h.path).path).removeprefix("/files/")
        return (200, {}, p.read_bytes()) if p.is_file() else (404, {}, b"")
    return route


def _names_each_damage(result: ProbeResult) -> None:
    assert result.verdict is Verdict.FAIL
    assert set(result.reasons) == {
        "runs/flowcell-a.pod5: same size, different SHA-256 (corrupted)",
        "runs/flowcell b.fast5: 600 bytes on the new service, 1000 on the monolith",
        "forms/sample-02.pdf: missing from the new service"}
    assert result.figures == {"files": 4, "mismatched": 3}


def test_files_through_both_variants_name_each_damaged_file(plan: Plan, tmp_path: Path) -> None:
    old, new = _tree(tmp_path / "old", GOOD), _tree(tmp_path / "new", DAMAGED)
    with serve(_files(old)) as a, serve(_files(new)) as b:
        result = run(FilesProbe(kind="files", name="f", baseline_url=f"{a}/files",
                                candidate_url=f"{b}/files", manifest=sorted(GOOD)), plan)
    _names_each_damage(result)


def test_files_between_two_trees(plan: Plan, tmp_path: Path) -> None:
    old, new = _tree(tmp_path / "old", GOOD), _tree(tmp_path / "new", DAMAGED)
    _names_each_damage(run(FilesProbe(kind="files", name="f", baseline_dir=str(old),
                                      candidate_dir=str(new)), plan))
    same = _tree(tmp_path / "copy", GOOD)
    ok = run(FilesProbe(kind="files", name="f", baseline_dir=str(old), candidate_dir=str(same)),
             plan)
    assert ok.verdict is Verdict.PASS and ok.reasons == ("4 files match by size and SHA-256",)


def test_a_sample_walks_every_file_over_runs(plan: Plan, tmp_path: Path) -> None:
    old, new = _tree(tmp_path / "old", GOOD), _tree(tmp_path / "new", DAMAGED)
    spec = FilesProbe(kind="files", name="f", baseline_dir=str(old), candidate_dir=str(new),
                      sample=1)
    ctx = ProbeContext(plan=plan, now=NOW)
    seen = [run_probe((plan.phases[0], None, spec), ctx).verdict for _ in range(4)]
    assert seen.count(Verdict.FAIL) == 3 and seen.count(Verdict.PASS) == 1

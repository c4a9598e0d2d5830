"""Every format, on generated logs of known truth: exact counts, quantiles within 1 %."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from sqlalchemy.engine import Engine

from collectors.logs import LogCollector
from collectors.logs.formats import (
    INGRESS_TEMPLATE,
    JsonFormat,
    compile_nginx_template,
    json_time_key,
    minute_of,
)
from collectors.logs.mapping import NO_SERVICE, UNKNOWN_UPSTREAM, Mapper, path_segments
from collectors.logs.registry import format_for
from slo.errors import ConfigError
from slo.plan import LogSource, Plan
from store.db import session_scope
from store.rollups import list_rejects, log_figures, log_minutes, rollup_totals
from tests.collectors.test_logs_support import (
    T0,
    Req,
    envoy,
    expected,
    haproxy,
    json_line,
    nginx,
    requests,
    with_logs,
    write,
)

WINDOW = (T0 - timedelta(hours=1), T0 + timedelta(hours=2))


def _ingest(plan: Plan, engine: Engine, path: Path, fmt: str,
            fields: dict[str, str] | None = None) -> None:
    src = LogSource(path=str(path), format=fmt, fields=fields or {})
    report = LogCollector(plan=with_logs(plan, src), engine=engine).collect(now=T0)
    assert report.ok, report.problems


def _check_truth(engine: Engine, reqs: list[Req]) -> None:
    truth = expected(reqs)
    with session_scope(engine) as s:
        totals = rollup_totals(session=s)
        assert totals == {sv: t["requests"] for sv, t in truth.items()}
        for (service, variant), t in truth.items():
            f = log_figures(session=s, service=service, variant=variant, start=WINDOW[0],
                            end=WINDOW[1])
            assert f.requests == t["requests"]
            assert f.errors == t["errors"]
            assert f.error_rate == pytest.approx(t["errors"] / t["requests"])
            assert f.sources == ("logs",) and f.problems == ()
            for q in ("p50", "p95", "p99"):
                got = getattr(f, f"latency_{q}_ms")
                assert got == pytest.approx(t[q], rel=0.01), (service, variant, q)


@pytest.mark.parametrize("fmt,writer", [
    ("nginx", nginx), ("json", json_line), ("haproxy", haproxy), ("envoy", envoy),
])
def test_known_truth_in_every_format(fmt: str, writer, plan: Plan, engine: Engine,
                                     tmp_path: Path) -> None:
    reqs = requests(3000)
    path = tmp_path / "access.log"
    write(path, [writer(r) for r in reqs])
    _ingest(plan, engine, path, fmt)
    _check_truth(engine, reqs)


def test_json_with_its_own_field_names_and_seconds(plan: Plan, sqlite_engine: Engine,
                                                   tmp_path: Path) -> None:
    reqs = requests(500)
    names = {"time": "ts", "path": "uri", "latency_ms": "elapsed", "upstream": "backend"}
    lines = []
    for r in reqs:
        sec = Req(r.at, r.path, r.upstream, r.status, r.size, r.latency_ms / 1000)
        lines.append(json_line(sec, names))
    path = tmp_path / "gw.log"
    write(path, lines)
    _ingest(plan, sqlite_engine, path, "json",
            {"time": "ts", "path": "uri", "latency_s": "elapsed", "upstream": "backend"})
    _check_truth(sqlite_engine, reqs)


def test_pasted_ingress_nginx_template(plan: Plan, sqlite_engine: Engine,
                                       tmp_path: Path) -> None:
    """ingress-nginx names the upstream <namespace>-<service>-<port>."""
    fmt = "log_format upstreaminfo '" + INGRESS_TEMPLATE + "';"
    plan = plan.model_copy(update={"baseline": plan.baseline.model_copy(update={
        "logs": plan.baseline.logs.model_copy(update={"upstream": ["nanopore-nanopore-monolith-80"]})})})
    lines = []
    for i in range(60):
        t = (T0 + timedelta(seconds=i)).strftime("%d/%b/%Y:%H:%M:%S +0000")
        lines.append(f'10.0.0.1 - - [{t}] "POST /api/samples/{i} HTTP/2.0" 200 12 "-" "ua" 321 '
                     f'0.{i:03d} [nanopore-nanopore-monolith-80] [] 10.1.1.1:80, 10.1.1.2:80 12 '
                     f'0.{i:03d} 200 abcdef')
    path = tmp_path / "ingress.log"
    write(path, lines)
    _ingest(plan, sqlite_engine, path, fmt)
    with session_scope(sqlite_engine) as s:
        assert rollup_totals(session=s) == {("samples", "baseline"): 60}


def test_template_variables_choose_time_path_and_latency() -> None:
    fmt = compile_nginx_template('$time_iso8601 $request_uri $status $request_time $upstream_addr')
    cols = fmt.parse(b"2026-11-26T12:00:05+01:00 /api/auth 503 0.250 10.0.0.1:80, 10.0.0.2:80")
    assert len(cols) == 1 and cols.bad == []
    assert minute_of(fmt.time_kind, cols.ts[0]) == int((T0 - timedelta(hours=1)).timestamp()) // 60
    assert cols.latency_ms[0] == pytest.approx(250)
    assert fmt.upstream_name(cols.upstream[0].decode()) == "10.0.0.2:80"   # the one that answered
    with pytest.raises(ConfigError, match="lacks"):
        compile_nginx_template("$remote_addr $status")


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown log format 'apache'"):
        format_for("apache")
    with pytest.raises(ConfigError, match="unknown JSON log field"):
        format_for("json", {"durationz": "x"})


# -- mapping ---------------------------------------------------------------------------

def test_path_prefix_is_segment_wise_and_longest_wins(plan: Plan) -> None:
    m = Mapper(plan, format_for("json"))
    assert m.service_of(path="/api/auth") == "auth"
    assert m.service_of(path="/api/auth/login?next=/x") == "auth"
    assert m.service_of(path="/api/authors") == "gateway"       # "/" takes the rest
    assert m.service_of(path="http://h.example/api/files/1") == "files"
    assert m.service_of(path="-") is None
    assert path_segments("/a//b/") == ("a", "b")
    assert m.slot_of(path="/api/auth", upstream="somebody") == UNKNOWN_UPSTREAM
    assert m.slot_of(path="*", upstream="python-auth") == NO_SERVICE
    assert m.slots[m.slot_of(path="/api/auth/x", upstream="nanopore-monolith")] == ("auth", "baseline")


def test_haproxy_route_name_beats_the_path(plan: Plan) -> None:
    fmt = format_for("haproxy")
    m = Mapper(plan, fmt)
    r = Req(T0, "/api/auth/login", "python-files", 200, 1, 5.0)
    cols = fmt.parse(haproxy(r, route="nanopore-files").encode())
    slot = m.slot_ids(cols.path, cols.upstream, cols.route)
    assert m.slots[int(slot[0])] == ("files", "candidate")


def test_minute_is_the_time_the_format_writes() -> None:
    # nginx: $time_local with its zone; HAProxy: accept date (start), no zone
    assert minute_of("clf", b"26/Nov/2026:13:00:59 +0100") == int(T0.timestamp()) // 60
    assert minute_of("clf", b"26/Nov/2026:12:00") == int(T0.timestamp()) // 60
    assert minute_of("iso", b"2026-11-26T12:00") == int(T0.timestamp()) // 60
    assert minute_of("json", json_time_key("2026-11-26T12:00:59.999Z")) == int(T0.timestamp()) // 60
    assert minute_of("json", json_time_key("2026-11-26T13:00:01.5+01:00")) == int(T0.timestamp()) // 60
    assert minute_of("json", T0.timestamp() + 59.9) == int(T0.timestamp()) // 60
    assert minute_of("clf", b"32/Nov/2026:12:00") is None


# -- hostile lines ---------------------------------------------------------------------

HOSTILE = [
    b"",                                             # empty
    b"\x00\x01\x02\x03binary\x00garbage\x7f",         # binary
    b"caf\xe9 not utf-8 \xff\xfe",                     # Latin-1
    b"x" * 100_000,                                  # 100 KB
    b'{"time": "2026-11-26T12:00:00Z", "path": "/api/auth"',  # cut short
    b'[1, 2, 3]',                                     # JSON, not an object
    b'{"time": "yesterday", "path": "/api/auth", "status": 200, "latency_ms": 3, '
    b'"upstream": "python-auth"}',                    # bad time
    b'<script>alert(1)</script>',
]


@pytest.mark.parametrize("fmt,writer", [("nginx", nginx), ("json", json_line),
                                        ("haproxy", haproxy), ("envoy", envoy)])
def test_hostile_lines_are_counted_never_fatal(fmt: str, writer, plan: Plan,
                                               engine: Engine, tmp_path: Path) -> None:
    reqs = requests(400)
    good = [writer(r).encode() for r in reqs]
    mixed: list[bytes] = []
    for i, line in enumerate(good):
        mixed.append(line)
        if i % 50 == 0:
            mixed.append(HOSTILE[(i // 50) % len(HOSTILE)])
    path = tmp_path / "access.log"
    path.write_bytes(b"\n".join(mixed) + b"\n")
    src = LogSource(path=str(path), format=fmt)
    report = LogCollector(plan=with_logs(plan, src), engine=engine).collect(now=T0)
    assert report.ok
    assert report.rejected == len(mixed) - len(good)
    _check_truth(engine, reqs)
    with session_scope(engine) as s:
        rejects = list_rejects(session=s, source=str(path))
    reasons = {r["reason"]: r for r in rejects}
    bad = {k: v for k, v in reasons.items() if k not in ("no-service", "unknown-upstream")}
    assert sum(r["count"] for r in bad.values()) == report.rejected
    assert "too-long" in bad and "binary" in bad
    for r in bad.values():
        assert len(r["samples"]) <= 5
        assert all(len(x) < 400 for x in r["samples"])     # a 100 KB line is cut short


def test_log_minutes_for_charts(plan: Plan, sqlite_engine: Engine, tmp_path: Path) -> None:
    reqs = requests(1200, spread_s=180)     # three minutes
    path = tmp_path / "access.log"
    write(path, [nginx(r) for r in reqs])
    _ingest(plan, sqlite_engine, path, "nginx")
    with session_scope(sqlite_engine) as s:
        rows = log_minutes(session=s, service="auth", variant="candidate", start=WINDOW[0],
                           end=WINDOW[1])
    assert [r.minute for r in rows] == [T0 + timedelta(minutes=i) for i in range(3)]
    assert sum(r.requests for r in rows) == expected(reqs)[("auth", "candidate")]["requests"]
    assert all(r.p50 is not None and r.p50 <= r.p95 <= r.p99 for r in rows)


def test_the_registry_builds_the_log_collector(plan: Plan, sqlite_engine: Engine,
                                               tmp_path: Path) -> None:
    from collectors.registry import build_collectors

    src = LogSource(path=str(tmp_path / "access.log"), format="nginx")
    plan = with_logs(plan, src).model_copy(update={"sources": with_logs(plan, src).sources
                                                   .model_copy(update={"prometheus": None})})
    (collector,) = build_collectors(plan, sqlite_engine)
    assert isinstance(collector, LogCollector) and collector.name == "logs"
    report = collector.collect(now=T0)
    assert report.ok and report.items == 0


def test_nginx_compiled_scanner_and_the_strict_regex_agree(plan: Plan) -> None:
    """Clean nginx lines take the compiled scanner; a block with one odd line hands that
    line to the regex; both give the same columns for the same good lines."""
    from collectors.logs.formats import NGINX

    good = "\n".join(nginx(r) for r in requests(200)).encode()
    strict = NGINX.strict().parse(good)
    assert strict.scanned == 0
    fast = NGINX.parse(good)
    assert fast.scanned == 200
    assert fast.bad == strict.bad == []
    for name in ("status", "size", "latency_ms"):
        assert (getattr(fast, name) == getattr(strict, name)).all(), name
    assert [minute_of("clf", t) for t in fast.ts] == [minute_of("clf", t) for t in strict.ts]
    mapper = Mapper(plan, NGINX)
    assert (mapper.slot_ids(fast.path, fast.upstream, None)
            == mapper.slot_ids(strict.path, strict.upstream, None)).all()
    odd = good + b'\n10.0.0.1 - - [26/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" 200 "x"'
    mixed = NGINX.parse(odd)
    assert len(mixed) == 200 and [(i, r) for i, r, _ in mixed.bad] == [(200, "malformed")]


def test_json_compiled_and_orjson_paths_agree_and_odd_lines_fall_back() -> None:
    fmt = JsonFormat()
    block = "\n".join(json_line(r) for r in requests(300)).encode()
    fast = fmt.parse(block)
    assert fast.scanned == len(fast) == 300         # the compiled scanner read them all
    lines = block.split(b"\n")
    slow = fmt._columns([orjson.loads(x) for x in lines], np.arange(len(lines)), [])
    for name in ("status", "size", "latency_ms"):
        assert (getattr(fast, name) == getattr(slow, name)).all(), name
    assert list(fast.path) == list(slow.path) and list(fast.upstream) == list(slow.upstream)
    assert [minute_of("json", t) for t in fast.ts] == [minute_of("json", t) for t in slow.ts]
    # two objects on one line and a blank one: the strict parser reads those two
    two = lines[0] + b" " + lines[1]
    hostile = b"\n".join([two, b"   ", *lines[2:]])
    cols = fmt.parse(hostile)
    assert cols.scanned == len(lines) - 2
    assert sorted((i, r) for i, r, _ in cols.bad) == [(0, "not-json"), (1, "empty")]
    assert len(cols) == len(lines) - 2

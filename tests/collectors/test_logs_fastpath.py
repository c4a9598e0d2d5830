"""The compiled scanner (collectors/logs/_scan.c) reads exactly what the strict parsers
read: same rollups, same rejects, same positions, on clean blocks and on blocks with
near-miss, hostile and randomly mutated lines mixed in.  A line the scanner is not sure
of goes to the strict parser, so every comparison below also checks that hand-over."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from collectors.logs.formats import (
    COMPILED,
    ENVOY,
    HAPROXY,
    INGRESS_TEMPLATE,
    NGINX,
    Columns,
    JsonFormat,
    LogFormat,
    compile_nginx_template,
    minute_of,
)
from collectors.logs.ingest import Aggregate, Ingestor, Rejects
from collectors.logs.mapping import Mapper
from slo.plan import Plan
from store.rollups import RollupDelta
from tests.collectors.test_logs_support import envoy, haproxy, json_line, nginx, requests

pytestmark = pytest.mark.skipif(not COMPILED, reason="the compiled scanner is not built")

HEAD = b'10.0.0.1 - - [26/Nov/2026:12:00:07 +0000] '
TAIL = b' "-" "ua" 0.010 "python-auth"'

#: lines the strict regex reads, though they are not what the generator writes
UNUSUAL = [
    HEAD + b'"GET /api/auth/login HTTP/1.1" 599 5 "-" "ua" 0.010 "python-auth"',
    HEAD + b'"GET /api/auth" 200 5 "-" "ua" 12 "python-auth"',
    HEAD + b'"/api/auth" 503 0 "-" "ua" 0.5 "python-auth"',
    HEAD + b'"GET  /api/auth HTTP/1.1" 200 5' + TAIL,            # two spaces: path ""
    HEAD + b'"/x /api/auth HTTP/1.1" 200 5' + TAIL,              # the path is the 2nd word
    HEAD + b'"GET /api/auth HTTP/1.1" 200 00012 "-" "ua" 0.010 "10.0.0.1:80, python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010 "a,, b, , python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010 ""',
    b'- - me [31/Feb/2026:12:00:07 +0000] "GET /api/auth HTTP/1.1" 200 5' + TAIL,  # bad time
    b'10.0.0.1 - - [26/Nov/2026:12:00:07 -0130] "GET /api/auth HTTP/1.1" 200 5' + TAIL,
    b'10.0.0.1 - - [26/Nov/2026:12:00:07 +0000] "GET /api/auth HTTP/1.1" 200 5' + TAIL + b"\r",
]

#: lines with eight quotes that the strict regex refuses: each field check must catch it
NEAR_MISSES = [
    b'10.0.0.1 x - - [26/Nov/2026:12:00:07 +0000] "GET /api/auth HTTP/1.1" 200 5' + TAIL,
    b'10.0.0.1 - - [26/Nov/2026:12:0x:07 +0000] "GET /api/auth HTTP/1.1" 200 5' + TAIL,
    b'10.0.0.1 - - [26/Nov/2026:12:00:07 +0000]  "GET /api/auth HTTP/1.1" 200 5' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 2e2 5' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 200 -5' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 6' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-"  "ua" 0.010 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 1e3 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" .5 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 5. "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010 "python auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010 " python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010 "a ,python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010 "a,  python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 1.2.3 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 1..2 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua"  0.010 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010  "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" - "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1"  200 5' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 20 5' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 2000 5' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 200 ' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-"x"ua" 0.010 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5' + TAIL + b" x",
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5' + TAIL + b"\r\r",
    b'1"0 - - [26/Nov/2026:12:00:07 +0000] "GET /api/auth HTTP/1.1" 200 5' + TAIL,
    b"",
    b"\xff\xfe\x00garbage",
    b"A" * 70_000,
]


def _strict(fmt: LogFormat = NGINX) -> LogFormat:
    return fmt.strict()


def _ingest(fmt, plan: Plan, block: bytes) -> tuple[list[RollupDelta], dict, list]:
    aggregate, rejects = Aggregate(), Rejects()
    mapper = Mapper(plan, fmt)
    ing = Ingestor(fmt=fmt, mapper=mapper, aggregate=aggregate, rejects=rejects)
    ing.feed(block, file="f", lines=block.count(b"\n") + 1)
    deltas = sorted(aggregate.deltas(mapper.slots), key=lambda d: (d.service, d.variant,
                                                                    d.minute))
    sketches = [(d.service, d.variant, d.minute, d.requests, d.errors, d.bytes_sent,
                 sorted(d.sketch.counts.items()), d.sketch.total_ms) for d in deltas]
    return sketches, dict(rejects.counts), sorted(rejects.samples.items())


def _same_lines(plan: Plan, fmt: LogFormat, block: bytes) -> Columns:
    """Line by line, the compiled reading equals the strict one: positions, reasons,
    numbers, the minute of each time key, the slot each (path, upstream) maps to."""
    mapper = Mapper(plan, fmt)
    fast = fmt.parse(block, path_cuts=mapper.path_cuts)
    strict = fmt.strict().parse(block)
    assert [(i, r, line) for i, r, line in fast.bad] == \
        [(i, r, line) for i, r, line in strict.bad]
    assert fast.index.tolist() == strict.index.tolist()
    for name in ("status", "size", "latency_ms"):
        assert getattr(fast, name).tolist() == getattr(strict, name).tolist(), name
    kind = fmt.time_kind
    assert [minute_of(kind, t) for t in fast.ts] == [minute_of(kind, t) for t in strict.ts]
    assert mapper.slot_ids(fast.path, fast.upstream, fast.route).tolist() == \
        mapper.slot_ids(strict.path, strict.upstream, strict.route).tolist()
    return fast


def _clean(n: int = 400) -> list[bytes]:
    return [nginx(r).encode() for r in requests(n)]


def test_clean_and_unusual_lines_take_the_compiled_path_with_the_strict_result(
        plan: Plan) -> None:
    lines = _clean()
    for i, extra in enumerate(UNUSUAL):
        lines.insert(37 * i + 5, extra)
    block = b"\n".join(lines)
    cols = _same_lines(plan, NGINX, block)
    assert cols.bad == [] and cols.scanned == len(lines)      # no line left to the regex
    fast = _ingest(NGINX, plan, block)
    assert fast == _ingest(_strict(), plan, block)
    assert fast[0] and sum(r[3] for r in fast[0]) > 300
    assert fast[1].get(("f", "bad-time")) == 1


@pytest.mark.parametrize("bad", NEAR_MISSES, ids=range(len(NEAR_MISSES)))
def test_a_near_miss_line_anywhere_gives_the_strict_result(plan: Plan, bad: bytes) -> None:
    for where in (0, 123, 400):
        lines = _clean()
        lines.insert(where, bad)
        block = b"\n".join(lines)
        cols = _same_lines(plan, NGINX, block)
        assert cols.scanned >= len(lines) - 1          # that line at most went to the regex
        fast = _ingest(NGINX, plan, block)
        strict = _ingest(_strict(), plan, block)
        assert fast == strict
        assert sum(fast[1].values()) >= 1


def test_the_compiled_numbers_equal_python_floats(plan: Plan) -> None:
    rnd = np.random.default_rng(3)
    lat = [f"{x:.{d}f}" for x, d in zip(rnd.lognormal(0, 3, 500), rnd.integers(0, 9, 500),
                                         strict=True)]
    lat += ["0", "0.0", "000123.4500", "9007199254740993", "123456789012345.6",
            "1.0000000000000002", "0.1", "99999999999999999999"]
    lines = [HEAD + f'"GET /a HTTP/1.1" {200 + i % 300} {i * 7919} "-" "ua" {v} "u"'.encode()
             for i, v in enumerate(lat)]
    lines.append(HEAD + b'"GET /a HTTP/1.1" 200 123456789012345678901234 "-" "ua" 1 "u"')
    block = b"\n".join(lines)
    fast = _same_lines(plan, NGINX, block)
    assert fast.scanned >= 500


def test_json_compiled_path_gives_the_orjson_rollups(plan: Plan) -> None:
    fmt = JsonFormat()
    lines = [json_line(r).encode() for r in requests(400)]
    block = b"\n".join(lines)
    assert _same_lines(plan, fmt, block).scanned == 400
    assert _ingest(fmt, plan, block) == _ingest(fmt.strict(), plan, block)
    hostile = b"\n".join([*lines[:200], b'{"time": 5}', b"[1]", *lines[200:]])
    assert _same_lines(plan, fmt, hostile).scanned == 400
    assert _ingest(fmt, plan, hostile) == _ingest(fmt.strict(), plan, hostile)
    # absent bytes (read as 0 by both) and a null upstream ("" by both)
    sparse = [orjson.loads(x) for x in lines]
    for doc in sparse[::3]:
        del doc["bytes"]
    for doc in sparse[1::3]:
        doc["upstream"] = None
    block = b"\n".join(map(orjson.dumps, sparse))
    assert _same_lines(plan, fmt, block).scanned == 400
    assert _ingest(fmt, plan, block) == _ingest(fmt.strict(), plan, block)


def test_json_times_zones_routes_escapes_and_nesting(plan: Plan) -> None:
    """What the scanner reads itself (numeric times in s and ms, zones, routes, nested
    values it skips, escapes in fields it skips) and what it leaves (escapes in the
    fields it reads, text beyond ASCII, duplicate keys, odd types), against orjson."""
    fmt = JsonFormat()
    reqs = requests(300)
    docs = [orjson.loads(json_line(r)) for r in reqs]
    for i, doc in enumerate(docs):
        at = reqs[i].at.timestamp()
        edits = {
            1: ("time", at),                                     # epoch seconds, float
            2: ("time", int(at * 1000)),                         # epoch milliseconds
            3: ("time", doc["time"].replace("Z", "+01:30")),
            4: ("route", "nanopore-auth"),
            5: ("headers", {"a": [1, 2.5e3, None, True, {"b": "\u00e9\n"}]}),
            6: ("agent", 'say "hi" \\ \t'),
            7: ("path", doc["path"].replace("/", "\\/", 1)),    # left: escaped
            8: ("agent", "caf\u00e9"),                          # left: beyond ASCII
            9: ("status", str(doc["status"])),                   # left: text status
            10: ("time", doc["time"][:19]),                      # no zone: UTC
        }
        if i % 12 in edits:
            key, value = edits[i % 12]
            doc[key] = value
    lines = [orjson.dumps(d) for d in docs]
    lines[11] = lines[11].replace(b'"latency_ms":', b'"latency_ms":1.5e1,"x":', 1)
    lines[23] = lines[23][:-1] + b',"status":404}'             # a duplicate key: left
    lines.append(b'  {"time":"2026-11-26T12:00:00Z" , "path":"/api/auth","status":200,'
                 b'"latency_ms":3,"upstream":"python-auth"}\r')
    # times that a cut at the minute would make look valid: both readers refuse them
    for bad in ("2026-11-26T12403:15.000Z", "2026-11-26T12:00:60Z", "2026-11-26T1209:21Z"):
        lines.append(lines[0].replace(b"2026-11-26T12:00:00.000Z", bad.encode()))
    block = b"\n".join(lines)
    cols = _same_lines(plan, fmt, block)
    assert 150 < cols.scanned < len(lines)
    fast = _ingest(fmt, plan, block)
    assert fast == _ingest(fmt.strict(), plan, block)
    assert fast[1][("f", "bad-time")] == 3


_ALPHABET = b' "[]/:.,-+0123456789Zz{}\\?#x\r\t\x00\xff\xc3\xa9'


def _mutants(lines: list[bytes], n: int, seed: int) -> list[bytes]:
    """``n`` lines, each a random line with one to three random edits (insert, delete,
    replace) from an alphabet of the characters formats care about."""
    rnd = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        line = bytearray(lines[int(rnd.integers(len(lines)))])
        for _ in range(int(rnd.integers(1, 4))):
            at = int(rnd.integers(len(line) + 1))
            c = _ALPHABET[int(rnd.integers(len(_ALPHABET)))]
            end = at + int(rnd.integers(2))          # insert (at == end) or replace
            line[at:end] = b"" if rnd.integers(3) == 0 else bytes([c])
        out.append(bytes(line))
    return out


@pytest.mark.parametrize("template", [
    "nginx", INGRESS_TEMPLATE,
    '$remote_addr [$time_iso8601] "$request_method $request_uri" $status $bytes_sent '
    '$upstream_response_time $upstream_addr',
    "$msec $uri $status $request_time $upstream_addr",
])
def test_mutated_lines_read_the_same_in_every_template(plan: Plan, template: str) -> None:
    """Thousands of randomly damaged lines of each template: line by line, the compiled
    reading is the strict one (or the line went to the strict parser)."""
    fmt = NGINX if template == "nginx" else compile_nginx_template(template)
    assert fmt.strict() is not fmt
    good = [_template_line(template, r).encode() for r in requests(300)]
    lines = good + _mutants(good, 3000, seed=len(template))
    block = b"\n".join(lines)
    cols = _same_lines(plan, fmt, block)
    assert cols.scanned > len(good)                # clean and harmless edits: compiled
    assert len(cols.bad) > 100                     # and the damaged ones were caught
    assert _ingest(fmt, plan, block) == _ingest(fmt.strict(), plan, block)


def _template_line(template: str, r) -> str:
    if template == "nginx":
        return nginx(r)
    t = r.at
    values = {
        "remote_addr": "10.0.0.1", "remote_user": "-", "time_local":
        t.strftime("%d/%b/%Y:%H:%M:%S +0000"), "time_iso8601":
        t.strftime("%Y-%m-%dT%H:%M:%S+00:00"), "msec": f"{t.timestamp():.3f}",
        "request": f"GET {r.path} HTTP/1.1", "request_method": "GET",
        "request_uri": r.path, "uri": r.path.split("?")[0], "status": str(r.status),
        "body_bytes_sent": str(r.size), "bytes_sent": str(r.size + 200),
        "http_referer": "-", "http_user_agent": "curl/8", "request_length": "120",
        "request_time": f"{r.latency_ms / 1000:.3f}", "proxy_upstream_name":
        r.upstream, "proxy_alternative_upstream_name": "", "upstream_addr":
        f"10.0.0.9:8080, {r.upstream}", "upstream_response_length": str(r.size),
        "upstream_response_time": f"{r.latency_ms / 1000:.3f}", "upstream_status":
        str(r.status), "req_id": "abc123",
    }
    import re
    return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], template)


def _router_lines(kind: str) -> list[bytes]:
    reqs = requests(300)
    if kind == "haproxy":    # the OpenShift router: syslog prefix or not, headers or not
        good = [haproxy(r) for r in reqs]
        good += [haproxy(r).split(": ", 1)[1] for r in reqs[:50]]
        good += [haproxy(r).replace(" --NI 5/5/0/0/0 0/0", " --NI 5/5/0/0/0 0/0 {a|b} {}")
                 for r in reqs[:50]]
    else:                    # Envoy: fraction digits, no "Z", fields after the last
        good = [envoy(r) for r in reqs]
        good += [envoy(r).replace(".", ".123456", 1).replace("Z]", "]", 1) for r in reqs[:50]]
        good += [envoy(r) + ' "extra" 5' for r in reqs[:50]]
    return [line.encode() for line in good]


@pytest.mark.parametrize("kind", ["haproxy", "envoy"])
def test_mutated_router_lines_read_the_same(plan: Plan, kind: str) -> None:
    """HAProxy's and Envoy's lines, clean and damaged: the compiled reading is the
    regex's, line by line."""
    fmt = HAPROXY if kind == "haproxy" else ENVOY
    good = _router_lines(kind)
    lines = good + _mutants(good, 3000, seed=9)
    block = b"\n".join(lines)
    cols = _same_lines(plan, fmt, block)
    assert cols.scanned >= len(good) and len(cols.bad) > 100
    assert _ingest(fmt, plan, block) == _ingest(fmt.strict(), plan, block)


def test_mutated_json_lines_read_the_same(plan: Plan) -> None:
    fmt = JsonFormat()
    good = [json_line(r).encode() for r in requests(300)]
    lines = good + _mutants(good, 3000, seed=5)
    block = b"\n".join(lines)
    cols = _same_lines(plan, fmt, block)
    assert cols.scanned > len(good) and len(cols.bad) > 100
    assert _ingest(fmt, plan, block) == _ingest(fmt.strict(), plan, block)


def test_bad_lines_in_a_big_block_keep_their_positions(plan: Plan) -> None:
    lines = _clean(4000)
    for k, where in enumerate((0, 1700, 1701, 3999)):
        lines.insert(where, NEAR_MISSES[k % len(NEAR_MISSES)])
    lines.append(b"\xff\xfe\x00garbage")
    block = b"\n".join(lines)
    cols = _same_lines(plan, NGINX, block)
    assert len(cols.bad) == 5 and cols.scanned == len(lines) - 5
    assert _ingest(NGINX, plan, block) == _ingest(_strict(), plan, block)


def test_path_keys_map_as_the_paths_do(plan: Plan) -> None:
    """The scanner keeps a path's first segments only (as many as the plan's longest
    prefix): every odd shape of path still maps to the slot its whole path maps to."""
    shapes = ["/api/auth", "/api/auth/", "//api//auth/x", "/api/auth?x=/api/files",
              "/api/authors/1", "/api/auth#frag", "/api", "/", "", "api/auth",
              "http://h/api/auth/x", "/api/files/1/2/3?q", "/api/files?/x", "/%2Fapi/auth",
              "/api/auth\u00e9", "/API/AUTH"]
    reqs = requests(len(shapes) * 3)
    lines = [json_line(r).encode() for r in reqs]
    lines = [orjson.dumps({**orjson.loads(line), "path": shapes[i % len(shapes)]})
             for i, line in enumerate(lines)]
    _same_lines(plan, JsonFormat(), b"\n".join(lines))
    lines = [nginx(r).replace(f" {r.path} ", f" {shapes[i % len(shapes)] or '-'} ", 1)
             .encode() for i, r in enumerate(reqs)]
    _same_lines(plan, NGINX, b"\n".join(lines))


@pytest.mark.parametrize("spread", [5, 3000, 1 << 40])
def test_grouping_by_counting_is_np_unique(spread: int) -> None:
    from collectors.logs.ingest import _groups

    key = np.random.default_rng(spread).integers(-spread, spread, 5000) + (1 << 33)
    keys, inv = _groups(key)
    want_keys, want_inv = np.unique(key, return_inverse=True)
    assert keys.tolist() == want_keys.tolist() and inv.tolist() == want_inv.tolist()


def test_the_aggregate_equals_a_line_by_line_count() -> None:
    from slo.sketch import LogSketch

    rnd = np.random.default_rng(5)
    n = 20_000
    slot = rnd.integers(0, 6, n)
    minute = 29_000_000 + rnd.integers(0, 3, n)
    status = rnd.choice([200.0, 404.0, 500.0, 503.0], n)
    size = rnd.integers(0, 10_000, n).astype(np.float64)
    latency = np.concatenate([rnd.lognormal(3, 2, n - 50), np.zeros(50)])   # "0.000" too
    agg = Aggregate()
    agg.add(slot[:7000], minute[:7000], status[:7000], size[:7000], latency[:7000])
    agg.add(slot[7000:], minute[7000:], status[7000:], size[7000:], latency[7000:])
    for (s, m), cell in agg.cells.items():
        sel = (slot == s) & (minute == m)
        assert cell.requests == int(sel.sum())
        assert cell.errors == int((status[sel] >= 500).sum())
        assert cell.size == int(size[sel].sum())
        assert cell.sketch.counts == LogSketch.of(latency[sel].tolist()).counts
    assert sum(c.requests for c in agg.cells.values()) == n == agg.lines


def test_a_log_the_scanner_cannot_read_is_still_read_and_said_so(plan: Plan, tmp_path) -> None:
    """JSON lines whose latency has an exponent all take the strict parser: every line
    is still rolled up, and the run says that the ingest was the slow one."""
    from datetime import UTC, datetime

    from collectors.logs import LogCollector
    from slo.plan import LogSource
    from store.db import make_engine, upgrade
    from tests.collectors.test_logs_support import with_logs

    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    reqs = requests(12_000)
    odd = tmp_path / "odd.log"
    # the latency, written just before the upstream, as 68.0e0
    odd.write_bytes(b"".join(json_line(r).replace(',"upstream"', 'e0,"upstream"', 1)
                             .encode() + b"\n" for r in reqs))
    clean = tmp_path / "clean.log"
    clean.write_bytes(b"".join(json_line(r).encode() + b"\n" for r in reqs))
    runs = {}
    for path in (odd, clean):
        src = LogSource(path=str(path), format="json")
        collector = LogCollector(plan=with_logs(plan, src), engine=engine)
        runs[path.name] = collector.collect(now=datetime.now(UTC))
    assert runs["odd.log"].items == runs["clean.log"].items > 8000
    assert any("took the strict parser" in p for p in runs["odd.log"].problems)
    assert runs["odd.log"].strict >= runs["odd.log"].items and runs["clean.log"].strict == 0
    assert not any("strict parser" in p for p in runs["clean.log"].problems)

"""JSON access logs as gateways write them: field names learned from the lines, and the
compiled scanner reading escapes, text beyond ASCII, nulls and unused fields itself
(exactly as orjson reads them), leaving only what it cannot be sure of."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy.engine import Engine

from collectors.logs import LogCollector
from collectors.logs.formats import COMPILED, JsonFormat
from collectors.logs.jsonfields import guess_json_fields
from slo.errors import ConfigError
from slo.plan import LogSource, Plan
from store.db import session_scope
from store.rollups import get_checkpoint, rollup_totals
from tests.collectors.test_logs_support import T0, expected, json_line, requests, with_logs

NOW = T0 + timedelta(hours=1)


def _docs(names: dict[str, str], n: int = 40, *, seconds: bool = False) -> list[dict]:
    out = []
    for r in requests(n):
        doc = orjson.loads(json_line(r))
        lat = doc.pop("latency_ms")
        doc["latency_ms"] = lat / 1000 if seconds else lat
        out.append({names.get(k, k): v for k, v in doc.items()})
    return out


@pytest.mark.parametrize(("names", "seconds", "fields"), [
    ({}, False, {}),
    ({"time": "ts", "latency_ms": "duration_ms", "upstream": "upstream_addr"}, False,
     {"time": "ts", "latency_ms": "duration_ms", "upstream": "upstream_addr"}),
    ({"time": "@timestamp", "latency_ms": "request_time"}, True,
     {"time": "@timestamp", "latency_s": "request_time"}),
    ({"time": "timestamp", "latency_ms": "latency"}, True,
     {"time": "timestamp", "latency_s": "latency"}),
    ({"latency_ms": "duration", "status": "status_code", "path": "uri"}, False,
     {"latency_ms": "duration", "status": "status_code", "path": "uri"}),
], ids=["defaults", "ts-duration_ms", "request_time-seconds", "bare-seconds", "bare-ms"])
def test_common_names_are_learned(names: dict[str, str], seconds: bool,
                                  fields: dict[str, str]) -> None:
    docs = _docs(names, seconds=seconds)
    if names.get("latency_ms") == "duration":      # whole milliseconds
        for d in docs:
            d["duration"] = int(d["duration"])
    guess = guess_json_fields(docs)
    assert guess.ok, guess.problems
    assert guess.fields == fields


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda d: d.update(ts=d["time"], timestamp=d.pop("time")),
     "more than one time field (ts, timestamp)"),
    (lambda d: d.pop("time"), "no time field"),
    (lambda d: d.update(latency=d.pop("latency_ms") / 200 + 2.5),
     "the latency field 'latency' does not say its unit"),
    (lambda d: d.update(duration_ms=1, request_time=0.001) or d.pop("latency_ms"),
     "more than one latency field (duration_ms, request_time)"),
], ids=["two-times", "no-time", "unit-unclear", "two-latencies"])
def test_unclear_names_say_what_to_write(edit, problem: str) -> None:
    docs = _docs({})
    for d in docs:
        edit(d)
    guess = guess_json_fields(docs)
    assert not guess.ok and any(problem in p for p in guess.problems), guess.problems
    with pytest.raises(ConfigError) as e:
        JsonFormat().learn([orjson.dumps(d) for d in docs])
    assert "fields: {" in str(e.value) and "path" in str(e.value) and problem in str(e.value)


def test_the_collector_reads_a_json_log_by_its_own_names(plan: Plan, engine: Engine,
                                                         tmp_path: Path) -> None:
    reqs = requests(300)
    names = {"time": "ts", "latency_ms": "duration_ms", "upstream": "upstream_addr"}
    path = tmp_path / "access.log"
    path.write_bytes(b"".join(orjson.dumps({names.get(k, k): v for k, v in
                                            orjson.loads(json_line(r)).items()}) + b"\n"
                              for r in reqs))
    src = LogSource(path=str(path), format="json")
    report = LogCollector(plan=with_logs(plan, src), engine=engine).collect(now=NOW)
    assert report.ok, report.problems
    assert any("JSON fields read by their names: time from ts, upstream from "
               "upstream_addr, latency from duration_ms (ms)" in p for p in report.problems)
    with session_scope(engine) as s:
        assert rollup_totals(session=s) == {sv: t["requests"] for sv, t in
                                            expected(reqs).items()}


def test_unclear_names_fail_the_source_and_lose_nothing(plan: Plan, engine: Engine,
                                                        tmp_path: Path) -> None:
    reqs = requests(100)
    path = tmp_path / "access.log"
    docs = [orjson.loads(json_line(r)) for r in reqs]
    for d in docs:
        d["ts"] = d["timestamp"] = d.pop("time")
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    src = LogSource(path=str(path), format="json")
    report = LogCollector(plan=with_logs(plan, src), engine=engine).collect(now=NOW)
    assert not report.ok
    assert any("more than one time field (ts, timestamp)" in p and "fields: {" in p
               for p in report.problems), report.problems
    with session_scope(engine) as s:
        assert rollup_totals(session=s) == {}
        assert get_checkpoint(session=s, source=str(path), stream="file") is None
    named = LogSource(path=str(path), format="json", fields={"time": "ts"})
    again = LogCollector(plan=with_logs(plan, named), engine=engine).collect(now=NOW)
    assert again.ok and again.items == sum(t["requests"] for t in expected(reqs).values())


# -- the compiled scanner on JSON as it comes -----------------------------------------

def _as_they_come(n: int = 300) -> list[bytes]:
    """Lines with everything the scanner now reads itself (and a few it leaves)."""
    lines = []
    for i, r in enumerate(requests(n)):
        doc = orjson.loads(json_line(r))
        doc["user"] = "Zoë Ørsted 日本 😀" if i % 3 == 0 else "ana"
        doc["headers"] = {"accept": "application/json", "trace": [1, -2.5e3, None, True]}
        doc["referer"] = None
        if i % 4 == 0:
            doc["path"] += ("&" if "?" in doc["path"] else "?") + "q=caf%C3%A9&x=%2F"
        if i % 5 == 0:
            doc["upstream"] = None
        if i % 6 == 0:
            doc["bytes"] = None
        if i % 8 == 0:
            doc["route"] = None
        line = orjson.dumps(doc)
        if i % 7 == 0:      # escapes where the scanner reads: the path and the upstream
            line = line.replace(b'"path":"/', b'"path":"\\/', 1).replace(
                b'"upstream":"python', b'"upstream":"\\u0070ython', 1)
        if i % 11 == 0:     # escapes in a skipped field, and a surrogate pair
            line = line.replace(b'"referer":null', b'"referer":"a\\"b\\\\c\\ud83d\\ude00"', 1)
        lines.append(line)
    return lines


#: what the scanner leaves to orjson (which reads them or says why not)
LEFT = [
    b'{"time":"2026-11-26T12:00:00Z","path":"/api/auth\\ud800","status":200,"latency_ms":3}',
    b'{"time":"2026-11-26T12:00:00Z","path":"/api/auth\\udc00x","status":200,"latency_ms":3}',
    b'{"time":"2026-11-26T12:00:00Z","path":"/api/\xc3","status":200,"latency_ms":3}',
    b'{"time":"2026-11-26T12:00:00Z","path":"/api/\xc0\xaf","status":200,"latency_ms":3}',
    b'{"time":"2026-11-26T12:00:00Z","path":"/api/\xed\xa0\x80","status":200,"latency_ms":3}',
    b'{"time":"2026-11-26T12:00:00Z","path":"/api/\xf4\x90\x80\x80","status":200,'
    b'"latency_ms":3}',
    b'{"time":"2026-11-26T12:00:00Z","path":"/a\tb","status":200,"latency_ms":3}',
    b'{"time":"2026-11-26T12:00:00\\u005a","path":"/api/auth","status":200,"latency_ms":3}',
    b'{"time":"2026-11-26T12:00:00Z","path":null,"status":200,"latency_ms":3}',
    b'{"time":"2026-11-26T12:00:00Z","path":"/api/auth","status":null,"latency_ms":3}',
    b'{"time":"2026-11-26T12:00:00Z","path":"/api/auth","status":200,"latency_ms":null}',
    b'{"time":null,"path":"/api/auth","status":200,"latency_ms":3}',
    b'{"time":"2026-11-26T12:00:00Z","path":"/api/auth","status":200,"latency_ms":3,'
    b'"upstream":nul}',
]


@pytest.mark.skipif(not COMPILED, reason="the compiled scanner is not built")
def test_json_as_it_comes_takes_the_compiled_path(plan: Plan) -> None:
    from tests.collectors.test_logs_fastpath import _ingest, _same_lines

    fmt = JsonFormat()
    lines = _as_they_come()
    block = b"\n".join(lines)
    cols = _same_lines(plan, fmt, block)
    assert cols.scanned == len(lines) and cols.bad == []
    assert _ingest(fmt, plan, block) == _ingest(fmt.strict(), plan, block)
    unescaped = [p for p in cols.path if p.startswith("/api")]
    assert unescaped and not any("\\" in p for p in unescaped)
    mixed = lines[:100] + LEFT + lines[100:]
    block = b"\n".join(mixed)
    cols = _same_lines(plan, fmt, block)
    assert cols.scanned == len(lines)          # every line of LEFT took the strict parser
    assert _ingest(fmt, plan, block) == _ingest(fmt.strict(), plan, block)


@pytest.mark.skipif(not COMPILED, reason="the compiled scanner is not built")
def test_text_fields_read_as_orjson_reads_them(plan: Plan) -> None:
    """Every escape JSON has, and UTF-8 of every length, in the fields the scanner
    reads: the text it gives is orjson's."""
    values = ['/a\\"b', "/a\\\\b", "/a\\/b", "/\\b\\f\\n\\r\\t", "/\\u0000\\u001f\\u007f",
              "/\\u00e9\\u20ac\\uFFFF", "/\\ud83d\\ude00\\uD834\\uDD1E", "/é€😀", "/\\u002Fx"]
    lines = [b'{"time":"2026-11-26T12:00:00Z","path":"%s","status":200,"latency_ms":3,'
             b'"upstream":"%s","route":"%s"}' % (v.encode(), v.encode(), v.encode())
             for v in values]
    cols = JsonFormat().parse(b"\n".join(lines))
    assert cols.scanned == len(lines)
    want = [orjson.loads(x)["path"] for x in lines]
    assert list(cols.path) == want and list(cols.upstream) == want and list(cols.route) == want

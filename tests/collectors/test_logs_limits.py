"""Damaged lines: numbers at and past every limit of every field (collectors/logs/
limits.py), in every format, through the whole collector on SQLite and PostgreSQL.

A line past a limit is rejected with its reason and counted nowhere; a line at the
limit is counted; the pass goes on to the end of the file and its checkpoint with it;
the compiled scanner and the strict parsers reject the same lines for the same reasons."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy.engine import Engine

from collectors.logs import LogCollector
from collectors.logs.formats import COMPILED, ENVOY, HAPROXY, NGINX, JsonFormat, LogFormat
from collectors.logs.limits import MAX_BYTES, MAX_LATENCY_MS, MAX_LINE
from slo.plan import LogSource, Plan
from slo.sketch import LogSketch
from store.db import session_scope
from store.rollups import (
    BIGINT_MAX,
    RollupDelta,
    add_rejects,
    get_checkpoint,
    list_rejects,
    log_figures,
    rollup_totals,
    upsert_rollups,
)
from tests.collectors.test_logs_support import (
    T0,
    envoy,
    expected,
    haproxy,
    json_line,
    nginx,
    requests,
    with_logs,
)

NOW = T0 + timedelta(hours=1)
AT = T0 + timedelta(minutes=5)
#: every edge line is a request to auth's candidate when it is counted
SLOT = ("auth", "candidate")


class Edge:
    """One line at or past a limit: its text, the reason it is rejected for (None: it
    is counted) and, when counted, its latency (ms)."""

    def __init__(self, line: str, reason: str | None, latency_ms: float = 5.0):
        self.line, self.reason, self.latency_ms = line, reason, latency_ms


# -- JSON -----------------------------------------------------------------------------

def _json(**fields: object) -> str:
    doc = {"time": AT.isoformat().replace("+00:00", "Z"), "path": "/api/auth/login",
           "status": 200, "bytes": 10, "latency_ms": 5.0, "upstream": "python-auth"}
    doc.update(fields)
    return orjson.dumps(doc).decode()


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _padded(make: Callable[[str], str], length: int) -> str:
    """A line of exactly ``length`` bytes: ``make`` given the padding."""
    return make("x" * (length - len(make(""))))


JSON_EDGES = [
    Edge(_json(status=100), None), Edge(_json(status=599), None),
    Edge(_json(status=99), "bad-status"), Edge(_json(status=600), "bad-status"),
    Edge(_json(status=-1), "bad-status"), Edge(_json(status=1e20), "bad-status"),
    Edge(_json(status="200"), "bad-status"), Edge(_json(status=200.0), "bad-status"),
    Edge(_json(status=True), "bad-status"), Edge(_json(status=None), "bad-status"),
    Edge(_json(latency_ms=0), None, 0.0),
    Edge(_json(latency_ms=MAX_LATENCY_MS), None, MAX_LATENCY_MS),
    Edge(_json(latency_ms=-5), "bad-latency"), Edge(_json(latency_ms=-1e6), "bad-latency"),
    Edge(_json(latency_ms=-0.001), "bad-latency"),
    Edge(_json(latency_ms=MAX_LATENCY_MS + 0.001), "bad-latency"),
    Edge(_json(latency_ms=1e300), "bad-latency"), Edge(_json(latency_ms=-1e300), "bad-latency"),
    Edge(_json(latency_ms="5"), "bad-latency"),
    Edge(_json(bytes=0), None), Edge(_json(bytes=MAX_BYTES), None), Edge(_json(bytes=None), None),
    Edge(_json(bytes=MAX_BYTES + 1), "bad-bytes"), Edge(_json(bytes=-1), "bad-bytes"),
    Edge(_json(bytes=1e30), "bad-bytes"), Edge(_json(bytes=BIGINT_MAX), "bad-bytes"),
    Edge(_json(bytes="10"), "bad-bytes"),
    Edge(_json(time=1e30), "bad-time"), Edge(_json(time=1e15), "bad-time"),
    Edge(_json(time=-1), "bad-time"), Edge(_json(time="0001-01-01T00:00:00Z"), "bad-time"),
    Edge(_json(time="9999-12-31T23:59:59Z"), "future-time"),
    Edge(_json(time=_iso(NOW + timedelta(minutes=11))), "future-time"),
    Edge(_json(time=_iso(NOW + timedelta(minutes=9))), None),
    Edge(_json(time="1970-01-01T00:00:00Z"), "absurd-time"),
    Edge(_json(time=_iso(AT - timedelta(hours=25))), "absurd-time"),
    Edge(_json(time=_iso(AT - timedelta(hours=23))), None),
    Edge(_padded(lambda pad: _json(agent=pad), MAX_LINE), None),
    Edge(_padded(lambda pad: _json(agent=pad), MAX_LINE + 1), "too-long"),
]

# -- nginx, HAProxy, Envoy: the numbers as the lines write them ----------------------

def _nginx(*, t: str = AT.strftime("%d/%b/%Y:%H:%M:%S +0000"), status: str = "200",
           size: str = "10", lat: str = "0.005", agent: str = "ua") -> str:
    return (f'10.1.2.3 - - [{t}] "GET /api/auth/login HTTP/1.1" {status} {size} "-" '
            f'"{agent}" {lat} "python-auth"')


NGINX_EDGES = [
    Edge(_nginx(status="100"), None), Edge(_nginx(status="599"), None),
    Edge(_nginx(status="099"), "bad-status"), Edge(_nginx(status="600"), "bad-status"),
    Edge(_nginx(status="999"), "bad-status"),
    Edge(_nginx(lat="0.000"), None, 0.0), Edge(_nginx(lat="86400.000"), None, MAX_LATENCY_MS),
    Edge(_nginx(lat="86400.001"), "bad-latency"),
    Edge(_nginx(lat="1" + "0" * 400), "bad-latency"),
    Edge(_nginx(size=str(MAX_BYTES)), None), Edge(_nginx(size=str(MAX_BYTES + 1)), "bad-bytes"),
    Edge(_nginx(size="9" * 30), "bad-bytes"),
    Edge(_nginx(t="31/Dec/9999:23:59:59 +0000"), "future-time"),
    Edge(_nginx(t="01/Jan/1970:00:00:00 +0000"), "absurd-time"),
    Edge(_nginx(t="26/Nov/0001:12:00:00 +0000"), "bad-time"),
    Edge(_nginx(t=(AT - timedelta(hours=23)).strftime("%d/%b/%Y:%H:%M:%S +0000")), None),
    Edge(_padded(lambda pad: _nginx(agent=pad), MAX_LINE), None),
    Edge(_padded(lambda pad: _nginx(agent=pad), MAX_LINE + 1), "too-long"),
    Edge(_padded(lambda pad: _nginx(agent=pad), 100_000), "too-long"),
]


def _haproxy(*, t: str = AT.strftime("%d/%b/%Y:%H:%M:%S") + ".000", status: str = "200",
             size: str = "10", lat: str = "5") -> str:
    server = "pod:python-auth-5d9f8-x2x:python-auth:8080-tcp:10.128.2.5:8080"
    return (f"10.0.0.9:51234 [{t}] fe_sni~ be_http:nanopore:nanopore-auth/{server} "
            f'0/0/1/0/{lat} {status} {size} - - --NI 5/5/0/0/0 0/0 "GET /api/auth/login HTTP/1.1"')


HAPROXY_EDGES = [
    Edge(_haproxy(status="100"), None), Edge(_haproxy(status="599"), None),
    Edge(_haproxy(status="099"), "bad-status"), Edge(_haproxy(status="600"), "bad-status"),
    Edge(_haproxy(lat="0"), None, 0.0), Edge(_haproxy(lat="86400000"), None, MAX_LATENCY_MS),
    Edge(_haproxy(lat="86400001"), "bad-latency"),
    Edge(_haproxy(size=str(MAX_BYTES)), None),
    Edge(_haproxy(size=str(MAX_BYTES + 1)), "bad-bytes"),
    Edge(_haproxy(t="31/Dec/9999:23:59:59.000"), "future-time"),
    Edge(_haproxy(t="01/Jan/1970:00:00:00.000"), "absurd-time"),
]


def _envoy(*, t: str = AT.strftime("%Y-%m-%dT%H:%M:%S") + ".000Z", status: str = "200",
           size: str = "10", lat: str = "5") -> str:
    return (f'[{t}] "GET /api/auth/login HTTP/1.1" {status} - 0 {size} {lat} 0 "10.0.0.1" '
            f'"curl/8.0" "id" "app.example.org" "python-auth"')


ENVOY_EDGES = [
    Edge(_envoy(status="100"), None), Edge(_envoy(status="599"), None),
    Edge(_envoy(status="099"), "bad-status"), Edge(_envoy(status="600"), "bad-status"),
    Edge(_envoy(lat="0"), None, 0.0), Edge(_envoy(lat="86400000"), None, MAX_LATENCY_MS),
    Edge(_envoy(lat="86400001"), "bad-latency"),
    Edge(_envoy(size=str(MAX_BYTES)), None), Edge(_envoy(size=str(MAX_BYTES + 1)), "bad-bytes"),
    Edge(_envoy(t="9999-12-31T23:59:59.000Z"), "future-time"),
    Edge(_envoy(t="1970-01-01T00:00:00.000Z"), "absurd-time"),
]

CASES = {
    "json": (JsonFormat(), json_line, JSON_EDGES),
    "nginx": (NGINX, nginx, NGINX_EDGES),
    "haproxy": (HAPROXY, haproxy, HAPROXY_EDGES),
    "envoy": (ENVOY, envoy, ENVOY_EDGES),
}


def _damaged(kind: str) -> tuple[list[str], list[Edge], dict]:
    """Clean lines of known truth with every edge line among them (five clean lines
    between two edge lines, so each one's neighbours are mostly clean)."""
    _, writer, edges = CASES[kind]
    reqs = requests(6 * len(edges) + 10)
    lines = [writer(r) for r in reqs]
    for k, edge in enumerate(edges):
        lines.insert(6 * k + 5, edge.line)
    return lines, edges, expected(reqs)


@pytest.mark.parametrize("kind", list(CASES))
def test_every_limit_of_every_field_through_the_collector(kind: str, plan: Plan,
                                                          engine: Engine,
                                                          tmp_path: Path) -> None:
    lines, edges, truth = _damaged(kind)
    path = tmp_path / "access.log"
    path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    src = LogSource(path=str(path), format=kind)
    report = LogCollector(plan=with_logs(plan, src), engine=engine).collect(now=NOW)
    assert report.ok, report.problems
    counted = [e for e in edges if e.reason is None]
    want = Counter(e.reason for e in edges if e.reason is not None)
    assert report.rejected == sum(want.values())
    with session_scope(engine) as s:
        rejects = list_rejects(session=s, source=str(path))
        totals = rollup_totals(session=s)
        figures = log_figures(session=s, service=SLOT[0], variant=SLOT[1],
                              start=T0 - timedelta(days=2), end=NOW + timedelta(hours=1))
        checkpoint = get_checkpoint(session=s, source=str(path), stream="file")
    got = {r["reason"]: r["count"] for r in rejects
           if r["reason"] not in ("no-service", "unknown-upstream")}
    assert got == dict(want)
    # every sample is the line itself, cut short when long
    for r in rejects:
        for sample in r["samples"]:
            assert any(e.line.startswith(sample[:200]) for e in edges) or r["reason"] in (
                "no-service", "unknown-upstream")
    # the clean lines and the edge lines at the limits, nothing else
    want_totals = {sv: int(t["requests"]) for sv, t in truth.items()}
    want_totals[SLOT] = want_totals.get(SLOT, 0) + len(counted)
    assert totals == want_totals
    auth = truth[SLOT]
    lat_sum = sum(r.latency_ms for r in requests(6 * len(edges) + 10)
                  if (r.path, r.upstream) == ("/api/auth/login", "python-auth"))
    mean = (lat_sum + sum(e.latency_ms for e in counted)) / (auth["requests"] + len(counted))
    assert figures.latency_avg_ms == pytest.approx(mean, rel=1e-9)
    # the pass read the whole file: its checkpoint is at the end
    assert checkpoint is not None and checkpoint.offset == path.stat().st_size
    again = LogCollector(plan=with_logs(plan, src), engine=engine).collect(now=NOW)
    assert again.ok and again.items == 0 and again.rejected == 0


@pytest.mark.skipif(not COMPILED, reason="the compiled scanner is not built")
@pytest.mark.parametrize("kind", list(CASES))
def test_the_compiled_scanner_rejects_what_the_strict_parser_rejects(kind: str,
                                                                     plan: Plan) -> None:
    from tests.collectors.test_logs_fastpath import _ingest, _same_lines

    fmt: LogFormat = CASES[kind][0]
    lines, edges, _ = _damaged(kind)
    block = "\n".join(lines).encode()
    cols = _same_lines(plan, fmt, block)
    reasons = Counter(r for _, r, _ in cols.bad)
    numbers = {"bad-status", "bad-latency", "bad-bytes", "too-long"}
    assert reasons == Counter(e.reason for e in edges if e.reason in numbers)
    assert _ingest(fmt, plan, block) == _ingest(fmt.strict(), plan, block)


def test_the_lines_after_a_checkpoint_have_neighbours_before_it(plan: Plan, engine: Engine,
                                                                tmp_path: Path) -> None:
    """One line appended after a checkpoint, stamped three days early: its only
    neighbours are the lines before the checkpoint, re-read for the purpose."""
    path = tmp_path / "access.log"
    src = LogSource(path=str(path), format="json")
    path.write_text("".join(_json() + "\n" for _ in range(50)), encoding="utf-8")
    collector = LogCollector(plan=with_logs(plan, src), engine=engine)
    assert collector.collect(now=NOW).items == 50
    with path.open("a", encoding="utf-8") as f:
        f.write(_json(time=_iso(AT - timedelta(days=3))) + "\n")
    report = collector.collect(now=NOW)
    assert report.items == 0 and report.rejected == 1
    with path.open("a", encoding="utf-8") as f:
        f.write(_json(time=_iso(AT + timedelta(minutes=2))) + "\n")
    assert collector.collect(now=NOW).items == 1


def test_the_stored_counters_saturate_at_bigint(engine: Engine) -> None:
    """Sums past BIGINT (which PostgreSQL refuses) are stored as BIGINT_MAX."""
    big = 2**62 + 1
    delta = RollupDelta("auth", "candidate", T0, big, big, big, LogSketch.of([5.0]))
    for _ in range(3):
        with session_scope(engine) as s:
            upsert_rollups(session=s, deltas=[delta, delta])
            add_rejects(session=s, source="s", file="f", reason="bad-bytes", count=big,
                        samples=["x"], at=datetime(2026, 11, 26, tzinfo=UTC))
    with session_scope(engine) as s:
        assert rollup_totals(session=s) == {("auth", "candidate"): BIGINT_MAX}
        (row,) = list_rejects(session=s, source="s")
    assert row["count"] == BIGINT_MAX

"""OpenShift router logs as clusters write them: HAProxy log-format templates (the
IngressController's httpLogFormat) behind RFC 3164 and RFC 5424 syslog prefixes, read to
the same truth as the default httplog; damaged lines rejected with their reason; templates
that lack what cutover needs refused by ``plan check``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine

from collectors.logs import LogCollector
from collectors.logs.formats import HAPROXY, minute_of
from collectors.logs.haproxy_template import HTTPLOG_TEMPLATE, compile_haproxy_template
from collectors.logs.registry import format_for
from cutover.cli import main
from slo.errors import ConfigError
from slo.plan import LogSource, LogTemplate, Plan
from store.db import session_scope
from store.rollups import list_rejects, rollup_totals
from tests.collectors.test_logs_formats import _check_truth
from tests.collectors.test_logs_support import (
    ROUTE_OF,
    ROUTES,
    T0,
    Req,
    haproxy,
    json_line,
    nginx,
    requests,
    with_logs,
    write,
)

#: two custom httpLogFormat strings: a host capture after the server name, the request's
#: captured headers, a quoted sample fetch, extra fields at the end; the older %Tq/%Tt
CUSTOM_HOST = ('%ci:%cp [%tr] %ft %b/%s %[capture.req.hdr(0)] %TR/%Tw/%Tc/%Tr/%Ta %ST %B '
               '%CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r %ID')
CUSTOM_OLD = ('%ci:%cp [%t] %f %b/%s %Tq/%Tw/%Tc/%Tr/%Tt %ST %B %tsc %{+Q}r '
              'host=%{+Q}[req.hdr(host)] ua=%{+Q}[req.hdr(user-agent)]')


def _fields(r: Req) -> tuple[str, str, str]:
    sv = {(p, u): sv for p, u, sv in ROUTES}.get((r.path, r.upstream))
    route = ROUTE_OF[sv[0]] if sv else "nanopore-auth"
    t = r.at.strftime("%d/%b/%Y:%H:%M:%S") + f".{r.at.microsecond // 1000:03d}"
    server = f"pod:{r.upstream}-5d9f8-x2x:{r.upstream}:8080-tcp:10.128.2.5:8080"
    return t, f"be_http:nanopore:{route}", server


def custom_host(r: Req) -> str:
    t, backend, server = _fields(r)
    lat = int(r.latency_ms)
    return (f"10.0.0.9:51234 [{t}] fe_sni~ {backend}/{server} app.example.org "
            f"0/0/1/{max(lat - 1, 0)}/{lat} {r.status} {r.size} - - --NI 5/5/0/0/0 0/0 "
            f'{{app.example.org|curl/8.5}} "GET {r.path} HTTP/1.1" 7f3a:{r.size}')


def custom_old(r: Req) -> str:
    t, backend, server = _fields(r)
    lat = int(r.latency_ms)
    return (f"10.0.0.9:51234 [{t}] public {backend}/{server} 0/0/1/{max(lat - 1, 0)}/{lat} "
            f'{r.status} {r.size} --NI "GET {r.path} HTTP/1.1" host="app.example.org" '
            f'ua="Mozilla/5.0 (X11; \\"quoted\\")"')


def rfc3164(line: str) -> str:
    # the prefix's own time is a day off the request's: it must never be taken for it
    return f"Nov 25 03:04:05 router-default-7c9f-abcde haproxy[23034]: {line}"


def rfc5424(line: str) -> str:
    return f'<134>1 2026-11-25T03:04:05.123Z router-2 haproxy 23034 - [meta x="1"] {line}'


def _ingest(plan: Plan, engine: Engine, path: Path, fmt: str | LogTemplate):
    src = LogSource(path=str(path), format=fmt)
    report = LogCollector(plan=with_logs(plan, src), engine=engine).collect(now=T0)
    assert report.ok, report.problems
    return report


@pytest.mark.parametrize("template,writer", [
    (HTTPLOG_TEMPLATE, lambda r: haproxy(r).split(": ", 1)[1]),
    (CUSTOM_HOST, custom_host),
    (CUSTOM_OLD, custom_old),
], ids=["httplog", "host-capture", "old-timers"])
@pytest.mark.parametrize("prefix", [lambda s: s, rfc3164, rfc5424], ids=["bare", "3164", "5424"])
def test_templates_read_the_known_truth(template: str, writer: Callable[[Req], str],
                                        prefix: Callable[[str], str], plan: Plan,
                                        engine: Engine, tmp_path: Path) -> None:
    reqs = requests(1500)
    path = tmp_path / "router.log"
    write(path, [prefix(writer(r)) for r in reqs])
    _ingest(plan, engine, path, LogTemplate(haproxy=template))
    _check_truth(engine, reqs)


def test_the_default_template_reads_what_the_builtin_format_reads() -> None:
    block = "\n".join(haproxy(r) for r in requests(400)).encode()
    ours, builtin = compile_haproxy_template(HTTPLOG_TEMPLATE).parse(block), HAPROXY.parse(block)
    assert len(ours) == len(builtin) == 400 and ours.bad == builtin.bad == []
    assert list(ours.status) == list(builtin.status)
    assert list(ours.latency_ms) == list(builtin.latency_ms)
    assert [bytes(p) for p in ours.path] == [bytes(p) for p in builtin.path]
    assert ([minute_of("clf", t) for t in ours.ts]
            == [minute_of(HAPROXY.time_kind, t) for t in builtin.ts])


def test_the_prefix_time_is_not_the_request_time() -> None:
    fmt = compile_haproxy_template(CUSTOM_HOST)
    r = requests(1)[0]
    for line in (rfc3164(custom_host(r)), rfc5424(custom_host(r))):
        cols = fmt.parse(line.encode())
        assert cols.bad == [] and minute_of(fmt.time_kind, cols.ts[0]) == int(r.at.timestamp()) // 60


def test_damaged_lines_are_rejected_with_their_reason(plan: Plan, sqlite_engine: Engine,
                                                      tmp_path: Path) -> None:
    reqs = requests(50)
    good = [rfc3164(custom_host(r)) for r in reqs]
    line = custom_host(reqs[0])
    damaged = [
        line[: len(line) // 2],                                  # cut off mid-line
        line.replace(f" {reqs[0].status} ", " OK "),              # status as text
        line.replace("0/0/1/", "0/0/"),                          # a timer missing
        line.replace("[26/Nov", "[31/Foo"),                      # no such month
        "Nov 25 03:04:05 router-1 haproxy[1]: ",                # a prefix and nothing else
    ]
    path = tmp_path / "router.log"
    write(path, good[:25] + damaged + good[25:])
    _ingest(plan, sqlite_engine, path, LogTemplate(haproxy=CUSTOM_HOST))
    with session_scope(sqlite_engine) as s:
        known = {(p, u) for p, u, sv in ROUTES if sv}
        assert sum(rollup_totals(session=s).values()) == sum(
            (r.path, r.upstream) in known for r in reqs)
        rejects = list_rejects(session=s)
    by_reason = {r["reason"]: r["count"] for r in rejects}
    assert by_reason.pop("unknown-upstream") == sum(not sv for p, u, sv in ROUTES
                                                    for r in reqs if (r.path, r.upstream) == (p, u))
    assert by_reason == {"malformed": 4, "bad-time": 1}


@pytest.mark.parametrize("template,missing", [
    ("%ci [%tr] %b/%s %TR/%Tw/%Tc/%Tr/%Ta %{+Q}r", "the status (%ST)"),
    ("%ci %b/%s %Ta %ST %{+Q}r", "the time"),
    ("%ci [%tr] %b/%s %TR/%Tw/%Tc/%Tr %ST %{+Q}r", "the total time (%Ta or %Tt)"),
    ("%ci [%tr] %b/%s %Ta %ST %B", "the request"),
])
def test_a_template_that_lacks_what_cutover_needs_is_refused(template: str, missing: str,
                                                               plan_text: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match=missing.replace("(", r"\(").replace(")", r"\)")):
        format_for(LogTemplate(haproxy=template))
    shipped = "    - {path: /var/log/gateway/access.log, format: json}\n"
    assert shipped in plan_text
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text.replace(
        shipped, f"    - {{path: /tmp/router.log, format: {{haproxy: '{template}'}}}}\n"))
    assert main(["plan", "check", "--plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert "sources.logs[0].format" in err and missing in err


def test_a_bare_string_format_keeps_its_meaning() -> None:
    assert format_for("haproxy") is HAPROXY
    assert format_for("$time_local $request $status $request_time").name == "nginx-template"
    with pytest.raises(ValueError, match="exactly one of 'haproxy' or 'nginx'"):
        LogTemplate()


@pytest.mark.parametrize("writer,label", [
    (lambda r: haproxy(r), "haproxy"),
    (lambda r: rfc5424(custom_host(r).rsplit(" ", 1)[0]),   # without its unique id
     "haproxy template: host capture after the server"),
    (lambda r: json_line(r), "json"),
    (lambda r: nginx(r), "nginx"),
])
def test_suggest_logs_names_the_format_and_prints_a_snippet_that_reads_them(
        writer: Callable[[Req], str], label: str, tmp_path: Path, plan_text: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    reqs = requests(30)
    lines = [writer(r) for r in reqs] + ["garbage that no format reads"]
    log = tmp_path / "sample.log"
    write(log, lines)
    assert main(["plan", "suggest-logs", str(log)]) == 0
    out, err = capsys.readouterr()
    assert f"best fit: {label};" in out
    assert "1 of 31 lines fit no format" in err
    # the snippet, pasted into the plan, reads the same lines
    snippet = out.split("the plan's log source:\n\n", 1)[1]
    fmt = yaml.safe_load(snippet)["sources"]["logs"][0]["format"]
    src = LogSource(path=str(log), format=fmt)
    assert len(format_for(src.format).parse("\n".join(lines).encode())) == len(reqs)


def test_suggest_logs_says_when_nothing_fits(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "sample.log"
    write(log, ["hello", "world"])
    assert main(["plan", "suggest-logs", str(log)]) == 1
    assert "no known format reads these lines" in capsys.readouterr().err

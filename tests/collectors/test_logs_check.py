"""``read_lines``: each line read as the collector reads it, or refused for the reason
the collector refuses it for, on generated lines of known truth and on damaged ones."""

from __future__ import annotations

import pytest

from collectors.logs.check import read_lines
from collectors.logs.registry import format_for
from slo.plan import Plan
from tests.collectors.test_logs_limits import CASES, NOW, _damaged
from tests.collectors.test_logs_support import ROUTES, envoy, haproxy, json_line, nginx, requests

WRITERS = {"json": json_line, "nginx": nginx, "haproxy": haproxy, "envoy": envoy}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_each_line_is_read_with_its_fields_and_its_service(kind: str, plan: Plan) -> None:
    reqs = requests(70)
    fmt = format_for(kind)
    verdicts, summary = read_lines(fmt, [WRITERS[kind](r).encode() for r in reqs],
                                   plan=plan, now=NOW)
    where = {(p, u): sv for p, u, sv in ROUTES}
    assert [v.number for v in verdicts] == list(range(1, 71))
    for r, v in zip(reqs, verdicts, strict=True):
        assert v.minute == r.at.replace(second=0, microsecond=0)
        assert (v.status, v.bytes, v.latency_ms) == (r.status, r.size, r.latency_ms)
        assert v.path == r.path
        sv = where[(r.path, r.upstream)]
        assert (v.service, v.variant) == (sv if sv else (None, None))
        assert v.reason == ("" if sv else "unknown-upstream")
    assert summary.lines == 70 and summary.fits
    assert summary.counted == sum(1 for r in reqs if where[(r.path, r.upstream)])
    assert summary.reasons == {"unknown-upstream": 70 - summary.counted}


@pytest.mark.parametrize("kind", list(CASES))
def test_damaged_lines_are_refused_for_the_collectors_reasons(kind: str, plan: Plan) -> None:
    lines, edges, _ = _damaged(kind)
    verdicts, summary = read_lines(CASES[kind][0], [x.encode() for x in lines], plan=plan,
                                   now=NOW)
    by_text = {v.text: v for v in verdicts}
    for edge in edges:
        v = by_text[edge.line]
        assert v.reason == (edge.reason or ""), edge.line[:120]
        if edge.reason is None:
            assert (v.service, v.variant) == ("auth", "candidate")
    assert summary.fits


def test_a_format_that_does_not_fit_says_so(plan: Plan) -> None:
    lines = [nginx(r).encode() for r in requests(10)]
    verdicts, summary = read_lines(format_for("json"), lines, plan=plan, now=NOW)
    assert not summary.fits and summary.counted == 0
    assert {v.reason for v in verdicts} == {"not-json"}
    assert read_lines(format_for("nginx"), [], plan=plan, now=NOW)[1].lines == 0

"""``kind: http``: an endpoint answers with the expected status, body text or JSON value,
within a latency limit ("all Python services healthy and responding", week 1)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from collectors.probes.base import (
    Outcome,
    ProbeContext,
    ProbeUnreachable,
    describe_error,
    http_client,
    secret,
)
from slo.probe_specs import HttpProbe
from slo.verdict import Verdict

__all__ = ["json_at", "run"]

_MISSING = object()


def json_at(doc: Any, path: str) -> Any:
    """The value at dotted ``path`` (``checks.0.state``), or a sentinel when absent."""
    node = doc
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _target(spec: HttpProbe, ctx: ProbeContext) -> tuple[str, str]:
    """The URL and how to name it in words (a URL from the environment is not quoted)."""
    if spec.url is not None:
        return spec.url, spec.url
    return secret(ctx, env=spec.url_env, file=None, what=f"probe {spec.name}"), \
        f"the URL in {spec.url_env}"


def run(spec: HttpProbe, ctx: ProbeContext) -> Outcome:
    url, named = _target(spec, ctx)
    auth = (secret(ctx, env=spec.authorization_env, file=None, what=f"probe {spec.name}")
            if spec.authorization_env else None)
    # the clock starts at the request: building the client (its TLS context) is ours
    with http_client(ctx, spec.timeout.total_seconds(), authorization=auth) as http:
        t0 = time.perf_counter()
        try:
            resp = http.request(spec.method, url)
        except httpx.HTTPError as e:
            raise ProbeUnreachable(spec.name, f"{named}: {describe_error(e)}") from None
        ms = 1000 * (time.perf_counter() - t0)
    problems = _problems(spec, resp, ms)
    figures = {"status": resp.status_code, "latency_ms": ms}
    if problems:
        return Outcome(Verdict.FAIL, tuple(f"{named}: {p}" for p in problems), value=ms,
                       limit=spec.max_latency_ms, figures=figures)
    return Outcome(Verdict.PASS, (f"{named} answered {resp.status_code} in {ms:.0f} ms",),
                   value=ms, limit=spec.max_latency_ms, figures=figures)


def _problems(spec: HttpProbe, resp: httpx.Response, ms: float) -> list[str]:
    out = []
    if resp.status_code != spec.expect_status:
        out.append(f"status {resp.status_code}, expected {spec.expect_status}")
    if spec.body_contains is not None and spec.body_contains not in resp.text:
        out.append(f"the body lacks {spec.body_contains!r}")
    if spec.json_path is not None:
        out += _json_problem(spec, resp)
    if spec.max_latency_ms is not None and ms > spec.max_latency_ms:
        out.append(f"answered in {ms:.0f} ms > {spec.max_latency_ms:g} ms")
    return out


def _json_problem(spec: HttpProbe, resp: httpx.Response) -> list[str]:
    assert spec.json_path is not None
    try:
        value = json_at(resp.json(), spec.json_path)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ["the body is not JSON"]
    if value is _MISSING:
        return [f"no {spec.json_path} in the answer"]
    if spec.json_equals is not None and value != spec.json_equals:
        return [f"{spec.json_path} is {_short(value)}, expected {_short(spec.json_equals)}"]
    return []


def _short(value: Any, n: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= n else text[: n - 1] + "…"

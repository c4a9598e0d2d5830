"""``kind: compare``: the same requests sent to the monolith and to the service, the
answers compared (status, then the JSON bodies but for the ignored fields, or the bytes
for other bodies).  Week 4's "CRUD operations working" and "search and filtering
functional", week 5's "AI analysis results accurate"."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Sequence
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
from slo.probe_specs import CompareProbe, CompareRequest
from slo.verdict import Verdict

__all__ = ["differences", "run"]

#: differences named per request, at most
SHOWN = 5


def differences(a: Any, b: Any, *, ignore: Sequence[str] = (), path: str = "") -> Iterator[str]:
    """Where two JSON documents differ, as dotted paths (``items.3.name``); a path that
    matches an ``ignore`` pattern (``*`` for any one key or index) is skipped whole."""
    if path and any(_matches(path, pattern) for pattern in ignore):
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                if not any(_matches(sub, p) for p in ignore):
                    yield f"{sub}: only in the {'monolith' if key in a else 'service'}'s answer"
            else:
                yield from differences(a[key], b[key], ignore=ignore, path=sub)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield f"{path or '(top)'}: {len(a)} items from the monolith, {len(b)} from the service"
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            yield from differences(x, y, ignore=ignore, path=f"{path}.{i}" if path else str(i))
    elif a != b or type(a) is not type(b):
        yield f"{path or '(top)'}: {_short(a)} from the monolith, {_short(b)} from the service"


def _matches(path: str, pattern: str) -> bool:
    parts, want = path.split("."), pattern.split(".")
    return len(parts) == len(want) and all(fnmatch.fnmatchcase(p, w) for p, w in
                                           zip(parts, want, strict=True))


def _short(value: Any, n: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= n else text[: n - 1] + "…"


def _base(ctx: ProbeContext, spec: CompareProbe, side: str) -> str:
    url = getattr(spec, f"{side}_url")
    if url is None:
        url = secret(ctx, env=getattr(spec, f"{side}_url_env"), file=None,
                     what=f"probe {spec.name}")
    return str(url).rstrip("/")


def run(spec: CompareProbe, ctx: ProbeContext) -> Outcome:
    bases = {side: _base(ctx, spec, side) for side in ("baseline", "candidate")}
    auth = (secret(ctx, env=spec.authorization_env, file=None, what=f"probe {spec.name}")
            if spec.authorization_env else None)
    reasons: list[str] = []
    differing = 0
    with http_client(ctx, spec.timeout.total_seconds(), authorization=auth) as http:
        for req in spec.requests:
            found = _compare_one(spec, http, bases, req)
            differing += bool(found)
            reasons += [f"{req.method} {req.path}: {d}" for d in found[:SHOWN]]
            if len(found) > SHOWN:
                reasons.append(f"{req.method} {req.path}: {len(found) - SHOWN} more differences")
    figures = {"requests": len(spec.requests), "differing": differing}
    if differing:
        return Outcome(Verdict.FAIL, tuple(reasons), value=differing, limit=0, figures=figures)
    return Outcome(Verdict.PASS, (f"{len(spec.requests)} requests answered alike by the "
                                  "monolith and the service",), value=0, limit=0,
                   figures=figures)


def _compare_one(spec: CompareProbe, http: httpx.Client, bases: dict[str, str],
                 req: CompareRequest) -> list[str]:
    answers = {}
    for side, base in bases.items():
        try:
            answers[side] = http.request(req.method, base + req.path,
                                         json=req.body if req.body is not None else None)
        except httpx.HTTPError as e:
            who = "monolith" if side == "baseline" else "service"
            raise ProbeUnreachable(spec.name, f"{req.method} {req.path} to the {who}: "
                                   f"{describe_error(e)}") from None
    a, b = answers["baseline"], answers["candidate"]
    if a.status_code != b.status_code:
        return [f"status {a.status_code} from the monolith, {b.status_code} from the service"]
    try:
        return list(differences(a.json(), b.json(), ignore=spec.ignore))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return [] if a.content == b.content else [
            f"bodies differ ({len(a.content)} and {len(b.content)} bytes)"]

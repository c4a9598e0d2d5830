"""``kind: files``: files fetched through the monolith's URL and the new service's (or
read from two directory trees, for the ``migrate-files.py`` step), compared by size and
SHA-256; a mismatch names the file (week 3: "all files accessible through new service",
"no data loss or corruption")."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import httpx

from collectors.probes.base import (
    Outcome,
    ProbeContext,
    ProbeUnreachable,
    describe_error,
    http_client,
    secret,
)
from slo.errors import ConfigError
from slo.probe_specs import FilesProbe
from slo.verdict import Verdict

__all__ = ["Digest", "run"]

SHOWN = 10


class Digest(NamedTuple):
    size: int
    sha256: str


def _digest_file(path: Path) -> Digest | None:
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        return None
    return Digest(path.stat().st_size, h.hexdigest())


def _digest_url(http: httpx.Client, url: str, probe: str, who: str) -> Digest | None:
    h, size = hashlib.sha256(), 0
    try:
        with http.stream("GET", url) as resp:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise ProbeUnreachable(probe, f"the {who} answered {resp.status_code}")
            for chunk in resp.iter_bytes():
                h.update(chunk)
                size += len(chunk)
    except httpx.HTTPError as e:
        raise ProbeUnreachable(probe, f"the {who}: {describe_error(e)}") from None
    return Digest(size, h.hexdigest())


def _manifest(spec: FilesProbe) -> list[str]:
    if spec.manifest:
        return list(spec.manifest)
    if spec.manifest_file:
        try:
            lines = Path(spec.manifest_file).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ConfigError(f"probe {spec.name}: cannot read {spec.manifest_file}: "
                              f"{e.strerror}") from None
        return [x.strip() for x in lines if x.strip() and not x.startswith("#")]
    assert spec.baseline_dir is not None
    root = Path(spec.baseline_dir)
    if not root.is_dir():
        raise ProbeUnreachable(spec.name, f"{root} is not a directory")
    return sorted(str(p.relative_to(root)) for p in _walk(root))


def _walk(root: Path) -> Iterator[Path]:
    for top, _dirs, names in os.walk(root):
        for n in names:
            yield Path(top) / n


def _sample(spec: FilesProbe, ctx: ProbeContext, paths: list[str]) -> list[str]:
    """At most ``sample`` paths, taken in turn over runs so every file is seen."""
    if spec.sample is None or len(paths) <= spec.sample:
        return paths
    start = ctx.state.get(spec.name, 0) % len(paths)
    ctx.state[spec.name] = start + spec.sample
    return [paths[(start + i) % len(paths)] for i in range(spec.sample)]


def run(spec: FilesProbe, ctx: ProbeContext) -> Outcome:
    paths = _sample(spec, ctx, _manifest(spec))
    if not paths:
        return Outcome(Verdict.INCONCLUSIVE, ("no files to compare",), figures={"files": 0})
    problems = list(_compare(spec, ctx, paths))
    figures = {"files": len(paths), "mismatched": len(problems)}
    if problems:
        shown = problems[:SHOWN] + ([f"{len(problems) - SHOWN} more files differ"]
                                    if len(problems) > SHOWN else [])
        return Outcome(Verdict.FAIL, tuple(shown), value=len(problems), limit=0, figures=figures)
    return Outcome(Verdict.PASS, (f"{len(paths)} files match by size and SHA-256",),
                   value=0, limit=0, figures=figures)


def _compare(spec: FilesProbe, ctx: ProbeContext, paths: list[str]) -> Iterator[str]:
    if spec.baseline_dir is not None and spec.candidate_dir is not None:
        a_root, b_root = Path(spec.baseline_dir), Path(spec.candidate_dir)
        for p in paths:
            yield from _judge(p, _digest_file(a_root / p), _digest_file(b_root / p))
        return
    assert spec.baseline_url is not None and spec.candidate_url is not None
    auth = (secret(ctx, env=spec.authorization_env, file=None, what=f"probe {spec.name}")
            if spec.authorization_env else None)
    with http_client(ctx, spec.timeout.total_seconds(), authorization=auth) as http:
        for p in paths:
            rel = quote(p.lstrip("/"))
            a = _digest_url(http, f"{spec.baseline_url.rstrip('/')}/{rel}", spec.name, "monolith")
            b = _digest_url(http, f"{spec.candidate_url.rstrip('/')}/{rel}", spec.name, "service")
            yield from _judge(p, a, b)


def _judge(path: str, a: Digest | None, b: Digest | None) -> Iterator[str]:
    if a is None and b is None:
        yield f"{path}: missing on both sides"
    elif b is None:
        yield f"{path}: missing from the new service"
    elif a is None:
        yield f"{path}: only on the new service"
    elif a.size != b.size:
        yield f"{path}: {b.size} bytes on the new service, {a.size} on the monolith"
    elif a.sha256 != b.sha256:
        yield f"{path}: same size, different SHA-256 (corrupted)"

"""Generated access logs of known truth, shared by the log collector's tests.

Each :class:`Req` is one request; :func:`line` writes it in a format; :func:`truth`
says what the rollups must hold for it.  (No tests here: the generators are exercised
by every test that imports them.)"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from slo.plan import LogSource, Plan, Sources

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

#: (path, upstream as the JSON/nginx line writes it) -> (service, variant) or None
ROUTES = [
    ("/api/auth/login", "python-auth", ("auth", "candidate")),
    ("/api/auth", "nanopore-monolith", ("auth", "baseline")),
    ("/api/files/abc/1?x=1", "python-files", ("files", "candidate")),
    ("/api/samples", "nanopore-monolith", ("samples", "baseline")),
    ("/api/authors", "python-gateway", ("gateway", "candidate")),   # not auth!
    ("/index.html", "nanopore-monolith", ("gateway", "baseline")),
    ("/api/auth/x", "somebody-else", None),                           # unknown upstream
]


@dataclass(frozen=True)
class Req:
    at: datetime           # the time the format writes (end for nginx/JSON, start else)
    path: str
    upstream: str
    status: int
    size: int
    latency_ms: float
    route: str = ""        # the OpenShift route name (HAProxy)


def requests(n: int, *, seed: int = 7, start: datetime = T0, spread_s: float = 600,
             routes: list[tuple[str, str, tuple[str, str] | None]] = ROUTES) -> list[Req]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        path, up, _ = routes[i % len(routes)]
        at = start + timedelta(seconds=spread_s * i / n)
        status = rnd.choice((200, 200, 200, 201, 404, 500, 503)) if i % 3 == 0 else 200
        # milliseconds at nginx's resolution so every format can write them exactly
        lat = max(1.0, round(rnd.lognormvariate(3.2, 0.8)))
        out.append(Req(at, path, up, status, rnd.randint(0, 5000), float(lat)))
    return out


def expected(reqs: list[Req]) -> dict[tuple[str, str], dict[str, float]]:
    """(service, variant) -> requests, errors, bytes, p50/p95/p99 (rank floor(q(n-1)))."""
    by: dict[tuple[str, str], list[Req]] = defaultdict(list)
    table = {(p, u): sv for p, u, sv in ROUTES}
    for r in reqs:
        sv = table.get((r.path, r.upstream))
        if sv is not None:
            by[sv].append(r)
    out = {}
    for sv, rs in by.items():
        lats = sorted(r.latency_ms for r in rs)
        q = {f"p{int(p * 100)}": lats[math.floor(p * (len(lats) - 1))] for p in (.5, .95, .99)}
        out[sv] = {"requests": len(rs), "errors": sum(r.status >= 500 for r in rs),
                   "bytes": sum(r.size for r in rs), **q}
    return out


def nginx(r: Req) -> str:
    t = r.at.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return (f'10.1.2.3 - - [{t}] "GET {r.path} HTTP/1.1" {r.status} {r.size} "-" '
            f'"Mozilla/5.0 (X11) \\x22quoted\\x22" {r.latency_ms / 1000:.3f} "{r.upstream}"')


def json_line(r: Req, names: dict[str, str] | None = None) -> str:
    import orjson

    n = {"time": "time", "path": "path", "status": "status", "bytes": "bytes",
         "latency_ms": "latency_ms", "upstream": "upstream", **(names or {})}
    doc = {n["time"]: r.at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
           n["path"]: r.path, n["status"]: r.status, n["bytes"]: r.size,
           n["latency_ms"]: r.latency_ms, n["upstream"]: r.upstream, "method": "GET"}
    return orjson.dumps(doc).decode()


#: the OpenShift route of each service of plans/nanopore.yaml
ROUTE_OF = {"auth": "nanopore-auth", "files": "nanopore-files", "samples": "nanopore-samples",
            "gateway": "nanopore-app"}


def haproxy(r: Req, *, route: str | None = None) -> str:
    if route is None:
        sv = {(p, u): sv for p, u, sv in ROUTES}.get((r.path, r.upstream))
        route = ROUTE_OF[sv[0]] if sv else "nanopore-auth"
    t = r.at.strftime("%d/%b/%Y:%H:%M:%S") + f".{r.at.microsecond // 1000:03d}"
    lat = int(r.latency_ms)
    server = f"pod:{r.upstream}-5d9f8-x2x:{r.upstream}:8080-tcp:10.128.2.5:8080"
    return (f"Nov 26 12:00:00 router-1 haproxy[42]: 10.0.0.9:51234 [{t}] fe_sni~ "
            f"be_http:nanopore:{route}/{server} 0/0/1/{max(lat - 1, 0)}/{lat} {r.status} "
            f"{r.size} - - --NI 5/5/0/0/0 0/0 \"GET {r.path} HTTP/1.1\"")


def envoy(r: Req) -> str:
    t = r.at.strftime("%Y-%m-%dT%H:%M:%S") + f".{r.at.microsecond // 1000:03d}Z"
    return (f'[{t}] "GET {r.path} HTTP/1.1" {r.status} - 0 {r.size} {int(r.latency_ms)} '
            f'{max(int(r.latency_ms) - 1, 0)} "10.0.0.1" "curl/8.0" '
            f'"6f1c-{r.size}" "app.example.org" "{r.upstream}"')


def write(path: Path, lines: list[str], *, mode: str = "w") -> None:
    with path.open(mode, encoding="utf-8") as f:
        f.write("".join(x + "\n" for x in lines))


def with_logs(plan: Plan, *sources: LogSource) -> Plan:
    return plan.model_copy(update={"sources": Sources(logs=list(sources))})

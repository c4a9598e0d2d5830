"""Which service and which variant a log line belongs to, as the plan says.

Service: by the route the format names (a service's ``route`` or ``logs.route``), else by
``logs.path_prefix`` compared segment by segment (``/api/auth`` takes ``/api/auth`` and
``/api/auth/login``, never ``/api/authors``), the longest prefix winning.  Variant: the
upstream, as the format names it, compared exactly with ``baseline.logs.upstream`` and
the service's ``logs.upstream`` (the Service name of the backend when neither says).

A line maps to a *slot*, an index into :attr:`Mapper.slots` ((service, variant) pairs),
or to a negative code saying why it maps to nothing.  Lookups are cached per distinct
(path, upstream, route), so the per-line cost is one dict lookup."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from collectors.logs.formats import Encoded, LogFormat
from slo.plan import Plan

__all__ = ["NO_SERVICE", "UNKNOWN_UPSTREAM", "Mapper", "path_segments"]

NO_SERVICE = -1
UNKNOWN_UPSTREAM = -2
UNMAPPED_REASONS = {NO_SERVICE: "no-service", UNKNOWN_UPSTREAM: "unknown-upstream"}
#: distinct keys kept before the cache starts over (paths with ids are unbounded)
CACHE_LIMIT = 200_000
UPSTREAM_LIMIT = 10_000


def path_segments(path: str) -> tuple[str, ...] | None:
    """The path's segments, without query or fragment; None when it is not a path."""
    if path.startswith(("http://", "https://")):
        # absolute-form request target (RFC 9112 3.2.2): drop scheme and authority
        rest = path.split("://", 1)[1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    if not path.startswith("/"):
        return None
    path = path.split("?", 1)[0].split("#", 1)[0]
    return tuple(s for s in path.split("/") if s)


class Mapper:
    """Maps (path, upstream, route) to a slot, for one plan and one format."""

    def __init__(self, plan: Plan, fmt: LogFormat):
        self._fmt = fmt
        self.slots: list[tuple[str, str]] = []
        self._slot: dict[tuple[str, str], int] = {}
        self._prefixes: dict[tuple[str, ...], str] = {}
        self._routes: dict[str, str] = {}
        self._candidate: dict[str, set[str]] = {}
        base = plan.baseline
        self._baseline = set(base.logs.upstream if base.logs and base.logs.upstream
                             else [base.backend])
        for svc in plan.services:
            logs = svc.logs
            for variant in ("baseline", "candidate"):
                self._slot[(svc.name, variant)] = len(self.slots)
                self.slots.append((svc.name, variant))
            self._candidate[svc.name] = set(logs.upstream if logs and logs.upstream
                                            else [svc.backend])
            self._routes[svc.route] = svc.name
            if logs and logs.route:
                self._routes[logs.route] = svc.name
            if logs and logs.path_prefix:
                segs = path_segments(logs.path_prefix)
                if segs is not None:
                    self._prefixes[segs] = svc.name
        self._longest = max((len(p) for p in self._prefixes), default=0)
        self._cuts = tuple(sorted({("/" + "/".join(p[:j])).encode() for p in self._prefixes
                                   for j in range(len(p))}))
        self._services = [svc.name for svc in plan.services]
        self._service_index = {name: i for i, name in enumerate(self._services)}
        self._service_cache: dict[Any, int] = {}
        self._upstream_cache: dict[Any, int] = {}
        # per upstream id: its slot for each service (or UNKNOWN_UPSTREAM), as a
        # (services, upstreams) matrix rebuilt when new upstreams appeared
        self._columns: list[np.ndarray] = []
        self._table = np.zeros((len(self._services), 0), dtype=np.int64)

    @property
    def path_cuts(self) -> tuple[bytes, ...]:
        """The path keys that some path prefix goes on from ("/", "/api" for the
        prefix "/api/auth"): a path cut after its first segment whose key is not one
        of these maps to the service the whole path maps to (the compiled scanner
        interns paths so: one key for "/api/files/1" and "/api/files/2")."""
        return self._cuts

    def slot_ids(self, path: Sequence[Any], upstream: Sequence[Any],
                 route: Sequence[Any] | None) -> np.ndarray:
        """Slot per line (negative: unmapped, see UNMAPPED_REASONS).

        The service (from the path, or the route) and the upstream are looked up apart,
        each through a cache of its own distinct values, and put together with numpy:
        paths carry ids and are many, upstreams are few."""
        keys: Sequence[Any] = path if route is None else list(zip(path, route, strict=True))
        service = cached_lookup(keys, self._service_cache, self._service_id,
                                limit=CACHE_LIMIT)
        if len(self._upstream_cache) > UPSTREAM_LIMIT:
            self._upstream_cache.clear()
            self._columns.clear()
        ups = cached_lookup(upstream, self._upstream_cache, self._upstream_id,
                            limit=2 * UPSTREAM_LIMIT)   # cleared above, with the table
        if self._table.shape[1] != len(self._columns):
            self._table = np.hstack(self._columns)
        out = np.full(len(service), NO_SERVICE, dtype=np.int64)
        known = service >= 0
        out[known] = self._table[service[known], ups[known]]
        return out

    def _service_id(self, key: Any) -> int:
        path, route = (key, "") if not isinstance(key, tuple) else key
        text = _str(path)
        if " " in text and not text.startswith("/"):
            # a whole request line ("GET /api/x HTTP/1.1"): its target is the path
            words = text.split(" ")
            text = words[1] if len(words) > 1 else ""
        name = self.service_of(path=text, route=_str(route))
        return -1 if name is None else self._service_index[name]

    def _upstream_id(self, raw: Any) -> int:
        text = _str(raw)
        self._columns.append(np.array([self.slot_of(path="", upstream=text, service=name)
                                       for name in self._services],
                                      dtype=np.int64).reshape(-1, 1))
        return len(self._columns) - 1

    def slot_of(self, *, path: str, upstream: str, route: str = "",
                service: str | None = None) -> int:
        """The slot of one line (``service``, when given, skips the path and route)."""
        service = service or self.service_of(path=path, route=route)
        if service is None:
            return NO_SERVICE
        name = self._fmt.upstream_name(upstream)
        if name in self._baseline:
            return self._slot[(service, "baseline")]
        if name in self._candidate[service]:
            return self._slot[(service, "candidate")]
        return UNKNOWN_UPSTREAM

    def service_of(self, *, path: str, route: str = "") -> str | None:
        if route:
            named = self._fmt.route_name(route)
            if named is not None and named in self._routes:
                return self._routes[named]
        segs = path_segments(path)
        if segs is None:
            return None
        for n in range(min(len(segs), self._longest), -1, -1):
            service = self._prefixes.get(segs[:n])
            if service is not None:
                return service
        return None


def cached_lookup(keys: Sequence[Any], cache: dict[Any, int], compute: Callable[[Any], int],
                  *, limit: int) -> np.ndarray:
    """``compute(k)`` for every key as an int64 array, through ``cache``.

    The common case (every key known) runs in C (``map`` over ``dict.__getitem__``);
    a miss computes each distinct new key once and tries again.  A dictionary-encoded
    column is looked up once per distinct value."""
    if isinstance(keys, Encoded):
        return cached_lookup(keys.values, cache, compute, limit=limit)[keys.codes]
    try:
        return np.fromiter(map(cache.__getitem__, keys), dtype=np.int64, count=len(keys))
    except KeyError:
        pass
    if len(cache) > limit:
        cache.clear()
    for k in set(keys):
        if k not in cache:
            cache[k] = compute(k)
    return np.fromiter(map(cache.__getitem__, keys), dtype=np.int64, count=len(keys))


def _str(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return "" if v is None else str(v)

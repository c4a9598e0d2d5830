"""Access-log formats: a block of complete lines in, columns out.

Every format turns a block of bytes (whole lines, the last one without its newline) into
:class:`Columns`: per good line its timestamp key, path, upstream, route, status, bytes
and latency, plus the lines it could not read with a reason.

Two readers stand behind each format.  The *strict* one is plain Python: one
``re.findall`` over the block for the regex formats (a bad line falls into a catch-all
alternative, so lines stay aligned), ``orjson.loads`` for JSON; it reads every line or
says why it is bad.  The *compiled* one (``_scan.c``: nginx templates, JSON, HAProxy
and Envoy) reads the lines it is sure of in one pass and in C, and hands every other
line to the strict reader; a line it accepts is read exactly as the strict reader reads
it (tests/collectors/test_logs_fastpath.py holds the two to the same rollups).

Timestamps are not parsed per line: each format captures the timestamp *up to the
minute* plus its zone, and :func:`minute_of` turns that key into epoch minutes once per
distinct key (the caller caches it).  Which time a format writes matters: nginx and the
JSON gateway write the end of the request, HAProxy and Envoy its start (ARCHITECTURE.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from operator import itemgetter, methodcaller
from typing import Any, Protocol

import numpy as np
import orjson

from collectors.logs import limits, native
from collectors.logs.limits import MAX_LINE
from collectors.logs.native import scan as _scan
from slo.errors import ConfigError

__all__ = [
    "COMPILED",
    "ENVOY",
    "HAPROXY",
    "INGRESS_NGINX",
    "NGINX",
    "Columns",
    "Encoded",
    "JsonFormat",
    "LogFormat",
    "RegexFormat",
    "classify",
    "count_lines",
    "compile_nginx_template",
]

#: whether the compiled scanner is there (else every line takes the strict parsers)
COMPILED = _scan is not None

# The groups every regex format captures, in this order.
GROUPS = ("ts", "path", "status", "bytes", "latency", "upstream", "route")


@dataclass(frozen=True)
class Encoded(Sequence[Any]):
    """A column as its distinct values and one code per line (dictionary encoding):
    lookups run once per distinct value."""

    values: list[Any]
    codes: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: Any) -> Any:
        return self.values[int(self.codes[i])]


@dataclass
class Columns:
    """Parsed lines of one block, column-wise.  ``index`` is each good line's position
    in the block (0-based); ``bad`` lists (position, reason, raw line); ``scanned``
    counts the lines the compiled scanner read (the rest took the strict parser)."""

    ts: Sequence[Any]
    path: Sequence[Any]
    upstream: Sequence[Any]
    route: Sequence[Any] | None
    status: np.ndarray
    size: np.ndarray
    latency_ms: np.ndarray
    index: np.ndarray
    bad: list[tuple[int, str, bytes]] = field(default_factory=list)
    scanned: int = 0

    @classmethod
    def empty(cls) -> Columns:
        z = np.zeros(0)
        return cls([], [], [], None, z, z, z, np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ts)


class LogFormat(Protocol):
    """One access-log format."""

    name: str
    #: how the timestamp key reads: "clf" (10/Oct/2000:13:55), "iso", "epoch"
    time_kind: str

    def parse(self, block: bytes, *, path_cuts: tuple[bytes, ...] | None = None) -> Columns:
        """Parse a block of complete lines (without the final newline).  With
        ``path_cuts`` (:attr:`Mapper.path_cuts`), a path may come back as a shorter key
        that maps to the same service: cut after its first segment that no path prefix
        of the plan goes on from."""
        ...

    def strict(self) -> LogFormat:
        """The same format read by the strict parser alone."""
        ...

    @property
    def compiled(self) -> bool:
        """Whether the compiled scanner reads this format (else the strict parser)."""
        ...

    def upstream_name(self, raw: str) -> str:
        """The variant's name in what the upstream field holds."""
        ...

    def route_name(self, raw: str) -> str | None:
        """The route a line names, if the format names one."""
        ...


# -- classification of bad lines ------------------------------------------------------

def classify(line: bytes, default: str = "malformed") -> str:
    """Why a line that did not parse is bad, as a short reason."""
    if len(line) > MAX_LINE:
        return "too-long"
    if not line.strip():
        return "empty"
    if b"\x00" in line or _binary_share(line) > 0.1:
        return "binary"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "not-utf8"
    return default


def _binary_share(line: bytes) -> float:
    ctrl = sum(1 for b in line[:512] if b < 9 or 13 < b < 32)
    return ctrl / max(1, min(len(line), 512))


# -- the bounds of limits.py, on either reading ---------------------------------------

def _bounded(cols: Columns, block: bytes, *, lengths: bool = True) -> Columns:
    """The columns without the lines longer than MAX_LINE or with a number out of
    bounds (limits.py), which join ``bad`` with their reason.  Both readers of every
    format end here, so both reject the same lines for the same reasons.  Without
    ``lengths`` the lines' lengths are not looked at: the compiled scanner leaves every
    line longer than MAX_LINE to the strict parser, which looks."""
    drops = limits.out_of_bounds(cols.status, cols.size, cols.latency_ms)
    if lengths and len(block) > MAX_LINE and len(cols):
        # only a block longer than MAX_LINE can hold a line that is
        long = set(np.flatnonzero(_line_lengths(block)[cols.index] > MAX_LINE).tolist())
        if long:
            drops = sorted({**dict(drops), **{i: "too-long" for i in long}}.items())
    if not drops:
        return cols
    at = cols.index[[i for i, _ in drops]].tolist()
    bad = [(line, reason, raw) for (_, reason), line, raw
           in zip(drops, at, lines_at(block, at), strict=True)]
    keep = np.ones(len(cols), dtype=bool)
    keep[[i for i, _ in drops]] = False
    return Columns(
        ts=_take(cols.ts, keep), path=_take(cols.path, keep),
        upstream=_take(cols.upstream, keep),
        route=None if cols.route is None else _take(cols.route, keep),
        status=cols.status[keep], size=cols.size[keep], latency_ms=cols.latency_ms[keep],
        index=cols.index[keep], bad=sorted(cols.bad + bad, key=itemgetter(0)),
        scanned=cols.scanned)


def _take(col: Sequence[Any], keep: np.ndarray) -> Sequence[Any]:
    if isinstance(col, Encoded):
        return Encoded(col.values, col.codes[keep])
    return [v for v, k in zip(col, keep.tolist(), strict=True) if k]


def _line_lengths(block: bytes) -> np.ndarray:
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
    starts = np.concatenate([[0], ends + 1])
    return np.concatenate([ends, [len(block)]]) - starts


def lines_at(block: bytes, which: list[int]) -> list[bytes]:
    """The lines of ``block`` at the (ascending) positions ``which``."""
    if not which:
        return []
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
    starts = np.concatenate([[0], ends + 1]).tolist()
    stops = [*ends.tolist(), len(block)]
    return [block[starts[i]:stops[i]] for i in which]


# -- timestamps -----------------------------------------------------------------------

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))}


def minute_of(kind: str, key: Any) -> int | None:
    """Epoch minute of a timestamp key (None when it is not a time).  ``key`` is what
    the format captured (bytes) for the regex formats, the field's value for JSON."""
    if kind not in ("clf", "iso", "epoch", "json"):
        raise ConfigError(f"unknown time kind {kind!r}")
    try:
        if kind == "clf":
            minute = _clf_minute(_text(key))
        elif kind == "iso":
            minute = _iso_minute(_text(key))
        elif kind == "epoch":
            minute = int(float(_text(key))) // 60
        else:
            minute = _json_minute(key)
    except (ValueError, KeyError, TypeError, IndexError, OverflowError):
        return None
    # a time outside what datetime holds (1e30, year 33658) is no time (limits.py)
    return minute if limits.MIN_MINUTE <= minute <= limits.MAX_MINUTE else None


def _text(v: Any) -> str:
    return v.decode("ascii") if isinstance(v, bytes) else str(v)


def _clf_minute(text: str) -> int:
    # 10/Oct/2000:13:55:36 -0700 (nginx $time_local); HAProxy's 06/Feb/2009:12:14 has
    # no zone (the router runs in UTC)
    stamp, _, zone = text.rstrip("] ").partition(" ")
    day, mon, rest = stamp.split("/")
    year, hh, mm = rest.split(":")[:3]
    dt = datetime(int(year), _MONTHS[mon], int(day), int(hh), int(mm), tzinfo=_zone(zone))
    return int(dt.timestamp()) // 60


def _zone(zone: str) -> timezone:
    if not zone or zone == "Z":
        return UTC
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def _iso_minute(text: str) -> int:
    dt = datetime.fromisoformat(text.replace("z", "Z"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) // 60


def _json_minute(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a time")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value   # epoch ms or s
        return int(seconds) // 60
    return _iso_minute(str(value))


#: the shape of JSON times keyed by their minute: date, hour and minute kept, seconds
#: (0 to 59) and a fraction of up to 6 digits dropped, the zone kept
_ISO_SHAPE = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d)(?::[0-5]\d(?:\.\d{1,6})?)?([Zz]|[+-]\d\d:\d\d)?", re.ASCII)


def json_time_key(value: Any) -> Any:
    """A cache key for a JSON time value that ignores seconds and their fractions, so
    one key covers one minute: the text up to the minute plus its zone.  Only a time of
    the usual shape (_ISO_SHAPE) is cut so; any other value is its own key, so that a
    malformed time stays malformed (a cut could make it read as a time)."""
    if type(value) is str:
        m = _ISO_SHAPE.fullmatch(value)
        if m:
            zone = m.group(2)
            return m.group(1) + ("Z" if zone in ("Z", "z") else zone or "")
    return value


# -- regex formats --------------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    name: str
    pattern: str                 # with the named groups of GROUPS it has
    time_kind: str
    latency_scale: float         # to milliseconds
    upstream: Callable[[str], str] = staticmethod(lambda s: s)  # type: ignore[assignment]
    route: Callable[[str], str | None] = staticmethod(lambda s: None)  # type: ignore[assignment]
    #: the same format as ops of the compiled scanner (empty: the regex alone)
    ops: tuple[tuple[int, int, bytes], ...] = ()


class RegexFormat:
    """A format read by one regular expression with named groups (see GROUPS)."""

    def __init__(self, spec: _Spec):
        self.name = spec.name
        self.time_kind = spec.time_kind
        self._spec = spec
        # no class may run past the end of a line, so one line never eats the next
        pattern = spec.pattern.replace("[^", "[^\\n")
        good = re.compile(pattern.encode())
        missing = [g for g in ("ts", "status", "path", "latency") if g not in good.groupindex]
        if missing:
            raise ConfigError(f"log format {spec.name!r} lacks {', '.join(missing)}: "
                              f"a line must give its time, path, status and latency")
        self._order = good.groupindex
        # Every match ends with its line's newline and a line that does not parse falls
        # into the catch-all group, so findall yields one tuple per line, in order.
        # (No ``^`` with re.M: the engine would try every position of the block.)
        self._block = re.compile(b"(?:" + pattern.encode() + rb"\r?|(?P<_bad>[^\n]*))\n")
        self._bad = self._block.groupindex["_bad"] - 1

    def upstream_name(self, raw: str) -> str:
        return self._spec.upstream(raw)

    def route_name(self, raw: str) -> str | None:
        return self._spec.route(raw)

    def strict(self) -> RegexFormat:
        return RegexFormat(replace(self._spec, ops=()))

    @property
    def compiled(self) -> bool:
        return bool(self._spec.ops) and _scan is not None

    def parse(self, block: bytes, *, path_cuts: tuple[bytes, ...] | None = None) -> Columns:
        if self._spec.ops and _scan is not None:
            raw = _scan.scan_template(block, self._spec.ops, path_cuts)
            return _compiled(raw, block, self._strict_parse, text=False,
                             latency_scale=self._spec.latency_scale)
        return self._strict_parse(block)

    def _strict_parse(self, block: bytes) -> Columns:
        rows = self._block.findall(block + b"\n")
        if not rows:
            return Columns.empty()
        status_i = self._order["status"] - 1
        # one column at a time through itemgetter: three times cheaper than zip(*rows),
        # which makes an iterator per row
        status = list(map(itemgetter(status_i), rows))
        bad: list[tuple[int, str, bytes]] = []
        if b"" in status:
            keep = [i for i, s in enumerate(status) if s]
            bad = [(i, classify(rows[i][self._bad]), rows[i][self._bad])
                   for i, s in enumerate(status) if not s]
            rows = [rows[i] for i in keep]
            index = np.asarray(keep, dtype=np.int64)
        else:
            index = np.arange(len(rows), dtype=np.int64)
        return _bounded(self._columns(rows, index, bad), block)

    def _columns(self, rows: list[tuple[bytes, ...]], index: np.ndarray,
                 bad: list[tuple[int, str, bytes]]) -> Columns:
        g = self._order
        n = len(index)

        def col_of(name: str) -> list[bytes] | None:
            return list(map(itemgetter(g[name] - 1), rows)) if name in g and n else None

        empty = [b""] * n
        latency = _numbers(col_of("latency"), n) * self._spec.latency_scale
        return Columns(
            ts=col_of("ts") or empty,
            path=col_of("path") or empty,
            upstream=col_of("upstream") or empty,
            route=col_of("route"),
            status=_numbers(col_of("status"), n),
            size=_numbers(col_of("bytes"), n),
            latency_ms=latency,
            index=index,
            bad=bad,
        )


def _numbers(col: Sequence[bytes] | None, n: int) -> np.ndarray:
    if col is None:
        return np.zeros(n)
    # float() reads ASCII digits from bytes; the regex already made sure they are numbers
    return np.fromiter(map(float, col), dtype=np.float64, count=n)


# The nginx variables a template may hold, as regex.  A variable not listed here matches
# anything up to the character that follows it in the template.
# nginx writes whole seconds: the timestamp itself is the cache key (60 per minute)
_CLF = r"(?P<ts>\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})"
_ISO = r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:?\d\d)?)"
_REQUEST = r'(?:[^" ]* )?(?P<path>[^" ]*)(?: [^"]*)?'
_NUM = r"\d+(?:\.\d+)?"
_NGINX_VARS: dict[str, tuple[str, str]] = {
    # variable: (group, pattern)
    "time_local": ("ts", _CLF),
    "time_iso8601": ("ts", _ISO),
    "msec": ("ts", r"(?P<ts>\d+)\.\d+"),
    "request": ("path", _REQUEST),
    "request_uri": ("path", r"(?P<path>[^\" ]*)"),
    "uri": ("path", r"(?P<path>[^\" ]*)"),
    "status": ("status", r"(?P<status>\d{3})"),
    "body_bytes_sent": ("bytes", r"(?P<bytes>\d+)"),
    "bytes_sent": ("bytes", r"(?P<bytes>\d+)"),
    "request_time": ("latency", f"(?P<latency>{_NUM})"),
    "upstream_response_time": ("latency", f"(?P<latency>{_NUM})"),
    "proxy_upstream_name": ("upstream", r"(?P<upstream>[^ \"\]]*)"),
    "upstream_addr": ("upstream", r"(?P<upstream>[^ \"]*(?:, [^ \"]*)*)"),
}
_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")

# The compiled scanner's op (by its name in _scan.c, collectors/logs/native.py) for each
# variable: it reads what the variable's regex above reads, taking the regex's first
# choice at every step.
_OPS = {"time_local": "TS_CLF", "time_iso8601": "TS_ISO", "msec": "TS_MSEC",
        "request": "REQUEST", "request_uri": "URI", "uri": "URI", "status": "STATUS",
        "body_bytes_sent": "BYTES", "bytes_sent": "BYTES", "request_time": "NUM",
        "upstream_response_time": "NUM", "proxy_upstream_name": "UP_NAME",
        "upstream_addr": "UP_ADDR"}

#: nginx's ``combined`` plus the request time and the upstream (what we ask users for)
NGINX_TEMPLATE = ('$remote_addr - $remote_user [$time_local] "$request" $status '
                  '$body_bytes_sent "$http_referer" "$http_user_agent" $request_time '
                  '"$upstream_addr"')
#: ingress-nginx's default ``log-format-upstream``
INGRESS_TEMPLATE = ('$remote_addr - $remote_user [$time_local] "$request" $status '
                    '$body_bytes_sent "$http_referer" "$http_user_agent" $request_length '
                    '$request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] '
                    '$upstream_addr $upstream_response_length $upstream_response_time '
                    '$upstream_status $req_id')


def compile_nginx_template(template: str, *, name: str | None = None) -> RegexFormat:
    """A format from an nginx ``log_format`` template, as pasted from nginx.conf.

    Quotes around the template (and nginx's concatenated string pieces) are removed.
    Which variable gives what: ``$time_local``/``$time_iso8601``/``$msec`` the time,
    ``$request``/``$request_uri``/``$uri`` the path, ``$request_time`` (else
    ``$upstream_response_time``) the latency in seconds, ``$proxy_upstream_name``
    (ingress-nginx) else ``$upstream_addr`` the upstream."""
    text = _unquote_template(template)
    vars_in = [m.group(1) or m.group(2) for m in _VAR.finditer(text)]
    chosen = _choose_vars(vars_in)
    parts: list[str] = []
    ops: list[native.Op] = []
    pos = 0
    time_kind = "clf"
    for m in _VAR.finditer(text):
        parts.append(re.escape(text[pos:m.start()]))
        ops.append(("LIT", -1, text[pos:m.start()].encode()))
        var = m.group(1) or m.group(2)
        nxt = text[m.end():m.end() + 1]
        if var in chosen:
            parts.append(_NGINX_VARS[var][1])
            ops.append((_OPS[var], ord(nxt) if nxt else -1, b""))
            if var == "time_iso8601":
                time_kind = "iso"
            elif var == "msec":
                time_kind = "epoch"
        else:
            parts.append(f"[^{re.escape(nxt)}]*" if nxt else ".*")
            ops.append(("SKIP", ord(nxt) if nxt else -1, b""))
        pos = m.end()
    parts.append(re.escape(text[pos:]))
    ops.append(("LIT", -1, text[pos:].encode()))
    # a class "[^c]" of a character beyond ASCII is several bytes: the regex alone
    compiled = all(stop < 128 for _, stop, _ in ops)
    spec = _Spec(name=name or "nginx-template", pattern="".join(parts), time_kind=time_kind,
                 latency_scale=1000.0, upstream=_last_upstream,
                 ops=native.ops(op for op in ops if op != ("LIT", -1, b"")) if compiled else ())
    return RegexFormat(spec)


def _unquote_template(template: str) -> str:
    text = template.strip().rstrip(";").strip()
    if text.startswith("log_format"):
        # log_format name [escape=...] '...' '...';
        text = re.sub(r"^log_format\s+\S+\s+(?:escape=\S+\s+)?", "", text)
    if not text.startswith(("'", '"')):
        return text
    pieces = re.findall(r"'([^']*)'|\"((?:[^\"\\]|\\.)*)\"", text)
    if pieces:
        return "".join(a or b.replace('\\"', '"') for a, b in pieces)
    return text


def _choose_vars(vars_in: list[str]) -> set[str]:
    """One variable per group: the first time, path and bytes; request_time over the
    upstream's time; proxy_upstream_name over upstream_addr."""
    chosen: set[str] = set()
    taken: set[str] = set()
    preferred = sorted(
        (v for v in vars_in if v in _NGINX_VARS),
        key=lambda v: (v == "upstream_response_time", v == "upstream_addr"),
    )
    for var in preferred:
        group = _NGINX_VARS[var][0]
        if group not in taken:
            chosen.add(var)
            taken.add(group)
    return chosen


def _last_upstream(raw: str) -> str:
    # nginx lists every upstream it tried ("a:80, b:80"); the last one answered
    return raw.rsplit(", ", 1)[-1].strip()


def _haproxy_route(backend: str) -> str | None:
    # OpenShift router backends: be_http:<namespace>:<route> (also be_edge_http,
    # be_secure, be_tcp): the route is the last part
    if backend.startswith("be_") and backend.count(":") >= 2:
        return backend.rsplit(":", 1)[-1]
    return None


def _haproxy_service(server: str) -> str:
    # OpenShift router servers: pod:<pod>:<service>:<port name>:<ip>:<port>
    parts = server.split(":")
    if parts[0] == "pod" and len(parts) >= 3:
        return parts[2]
    return server


# HAProxy `option httplog`, optionally behind a syslog prefix, as the OpenShift router
# writes it.  Timers TR/Tw/Tc/Tr/Ta: Ta is the total active time in ms (HAProxy docs
# 8.2.3); its accept date is the start of the request.
_HAPROXY = (
    r"(?:[^\[]*?haproxy\[\d+\]: )?\S+ "
    r"\[(?P<ts>\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d):\d\d(?:\.\d+)?\] "
    r"\S+ (?P<route>[^/ ]+)/(?P<upstream>\S+) "
    r"-?\d+/-?\d+/-?\d+/-?\d+/\+?(?P<latency>\d+) "
    r"(?P<status>\d{3}) \+?(?P<bytes>\d+) \S+ \S+ \S+ \S+ \S+(?: \{[^}]*\})*"
    r' "' + _REQUEST + r'"'
)

# Envoy's default access-log format (docs: "Default format string"): START_TIME,
# request line, code, flags, bytes received and sent, DURATION (ms), upstream service
# time, x-forwarded-for, user agent, request id, authority, UPSTREAM_HOST.
_ENVOY = (
    # START_TIME in the default format is UTC with milliseconds: keep the minute only
    r"\[(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d):\d\d(?:\.\d+)?Z?\] "
    r'"' + _REQUEST + r'" '
    r"(?P<status>\d{3}) \S+ \d+ (?P<bytes>\d+) (?P<latency>\d+) \S+ "
    r'"[^"]*" "[^"]*" "[^"]*" "[^"]*" "(?P<upstream>[^"]*)"[^\n]*?'
)

# -- the compiled scanner and the strict parser together ----------------------------

def _compiled(raw: Any, block: bytes, strict: Callable[[bytes], Columns], *,
              text: bool, latency_scale: float) -> Columns:
    """Columns from what ``_scan`` returned for ``block``; the lines it left go through
    ``strict``, all of them as one block, and take their places in line order."""
    index = np.frombuffer(raw.index, dtype=np.int64)

    def enc(values: list[Any], codes: bytes) -> Encoded:
        return Encoded(values, np.frombuffer(codes, dtype=np.int32))

    ts_values = raw.ts_values
    if text:
        # a JSON time that is a number comes as "\x01<epoch second of its minute>"
        ts_values = [int(v[1:]) if v[:1] == "\x01" else v for v in ts_values]
    fast = _bounded(Columns(
        ts=enc(ts_values, raw.ts_codes), path=enc(raw.path_values, raw.path_codes),
        upstream=enc(raw.up_values, raw.up_codes),
        route=enc(raw.route_values, raw.route_codes) if raw.routes else None,
        status=np.frombuffer(raw.status, dtype=np.float64),
        size=np.frombuffer(raw.size, dtype=np.float64),
        latency_ms=np.frombuffer(raw.latency, dtype=np.float64) * latency_scale,
        index=index), block, lengths=False)
    # lines read by the scanner but out of bounds are bad lines, not scanned ones
    fast.scanned = len(fast)
    if not raw.deferred:
        return fast
    left = np.frombuffer(raw.deferred, dtype=np.int64).reshape(-1, 3)
    other = strict(b"\n".join([block[a:b] for a, b in left[:, 1:].tolist()]))
    lines = left[:, 0]
    other.index = lines[other.index]
    other.bad = [(int(lines[i]), reason, line) for i, reason, line in other.bad]
    if not len(other):
        # the usual case: the lines left were bad ones, and the good ones stay in order
        fast.bad = sorted(fast.bad + other.bad, key=itemgetter(0)) if fast.bad else other.bad
        return fast
    if not len(fast):
        other.bad = sorted(fast.bad + other.bad, key=itemgetter(0))
        other.scanned = 0
        return other
    merged = _merged(fast, other)
    merged.scanned = len(fast)
    return merged


def _merged(a: Columns, b: Columns) -> Columns:
    """The lines of two parses of one block (``index`` counts the block's lines in
    both), in line order."""
    order = np.argsort(np.concatenate([a.index, b.index]), kind="stable")

    def joined(x: Sequence[Any], y: Sequence[Any]) -> Encoded:
        ex, ey = _as_encoded(x), _as_encoded(y)
        codes = np.concatenate([ex.codes, ey.codes + len(ex.values)])
        return Encoded(ex.values + ey.values, codes[order])

    def numbers(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.concatenate([x, y])[order]

    route = None
    if a.route is not None or b.route is not None:
        route = joined(a.route if a.route is not None else [""] * len(a),
                       b.route if b.route is not None else [""] * len(b))
    return Columns(ts=joined(a.ts, b.ts), path=joined(a.path, b.path),
                   upstream=joined(a.upstream, b.upstream), route=route,
                   status=numbers(a.status, b.status), size=numbers(a.size, b.size),
                   latency_ms=numbers(a.latency_ms, b.latency_ms),
                   index=numbers(a.index, b.index).astype(np.int64),
                   bad=sorted(a.bad + b.bad, key=lambda x: x[0]))


def _as_encoded(col: Sequence[Any]) -> Encoded:
    if isinstance(col, Encoded):
        return col
    return Encoded(list(col), np.arange(len(col), dtype=np.int64))


def count_lines(block: bytes) -> int:
    """Lines in a block without its final newline."""
    if _scan is not None:
        return int(_scan.count_lines(block))
    return block.count(b"\n") + 1


NGINX = compile_nginx_template(NGINX_TEMPLATE, name="nginx")
INGRESS_NGINX = compile_nginx_template(INGRESS_TEMPLATE, name="ingress-nginx")
#: the compiled scanner reads an HAProxy or Envoy line whole (match_haproxy, match_envoy)
HAPROXY = RegexFormat(_Spec(name="haproxy", pattern=_HAPROXY, time_kind="clf",
                            latency_scale=1.0, upstream=_haproxy_service,
                            route=_haproxy_route, ops=native.ops([("HAPROXY", -1, b"")])))
ENVOY = RegexFormat(_Spec(name="envoy", pattern=_ENVOY, time_kind="iso", latency_scale=1.0,
                          ops=native.ops([("ENVOY", -1, b"")])))


# -- JSON lines -----------------------------------------------------------------------

#: field names of the FastAPI gateway; a source's ``fields`` renames any of them.
#: Latency is ``latency_ms`` (milliseconds) or, if the source names ``latency_s``, seconds.
JSON_FIELDS = {"time": "time", "path": "path", "status": "status", "bytes": "bytes",
               "latency_ms": "latency_ms", "upstream": "upstream", "route": "route"}
_JSON_KEYS = set(JSON_FIELDS) | {"latency_s"}


class JsonFormat:
    """One JSON object per line (the FastAPI gateway's access log)."""

    name = "json"
    time_kind = "json"

    def __init__(self, fields: dict[str, str] | None = None, *, compiled: bool = True):
        unknown = set(fields or {}) - _JSON_KEYS
        if unknown:
            raise ConfigError(f"unknown JSON log field key(s) {', '.join(sorted(unknown))}; "
                              f"expected some of {', '.join(sorted(_JSON_KEYS))}")
        self.fields = {**JSON_FIELDS, **(fields or {})}
        self.scale = 1.0
        if "latency_s" in (fields or {}):
            self.fields["latency_ms"] = self.fields.pop("latency_s")
            self.scale = 1000.0
        self.fields.pop("latency_s", None)
        self._compiled = compiled and _scan is not None
        #: field -> the key it was read from, when learned from the lines (learn)
        self.learned: dict[str, str] = {}
        self._names = tuple(self.fields[k].encode() for k in
                            ("time", "path", "status", "bytes", "latency_ms", "upstream",
                             "route"))

    def learn(self, lines: Sequence[bytes]) -> JsonFormat:
        """This format with the field names the lines use (jsonfields.py), for a log
        whose source names no ``fields:``; the same format when the default names fit.
        A ConfigError says what the lines hold and which ``fields:`` to write when the
        names are not clear."""
        from collectors.logs.jsonfields import guess_json_fields

        docs = []
        for line in lines:
            try:
                docs.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        if not any(isinstance(d, dict) for d in docs):
            return self         # no JSON object to learn from: the lines say why not
        guess = guess_json_fields(docs)
        if not guess.ok:
            raise ConfigError(f"the JSON log's field names are not clear: {guess.advice()}")
        if not guess.fields:
            return self
        out = JsonFormat(guess.fields, compiled=self._compiled)
        out.learned = guess.found
        return out

    def strict(self) -> JsonFormat:
        out = JsonFormat(compiled=False)
        out.fields, out.scale = dict(self.fields), self.scale
        return out

    @property
    def compiled(self) -> bool:
        return self._compiled

    def upstream_name(self, raw: str) -> str:
        return raw

    def route_name(self, raw: str) -> str | None:
        return raw or None

    def parse(self, block: bytes, *, path_cuts: tuple[bytes, ...] | None = None) -> Columns:
        if not self._compiled:
            return self._orjson_parse(block)
        assert _scan is not None
        raw = _scan.scan_json(block, self._names, path_cuts, self.scale)
        return _compiled(raw, block, self._orjson_parse, text=True, latency_scale=1.0)

    def _orjson_parse(self, block: bytes) -> Columns:
        lines = block.split(b"\n")
        try:
            docs = list(map(orjson.loads, lines))
            cols = self._columns(docs, np.arange(len(docs), dtype=np.int64), [])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            cols = self._line_by_line(lines)
        return _bounded(cols, block)

    def _columns(self, docs: list[Any], index: np.ndarray,
                 bad: list[tuple[int, str, bytes]]) -> Columns:
        f = self.fields
        # Field by field through ``map`` (the loop runs in C).  Each step raises
        # (KeyError, TypeError, ValueError) on a bad document, which sends the block
        # to the line-by-line path.
        ts = list(map(json_time_key, map(itemgetter(f["time"]), docs)))
        paths = list(map(itemgetter(f["path"]), docs))
        status = _numbers_of(list(map(itemgetter(f["status"]), docs)), _INTEGER,
                             limits.BAD_STATUS)
        latency = _numbers_of(list(map(itemgetter(f["latency_ms"]), docs)), _NUMBER,
                              limits.BAD_LATENCY)
        latency *= self.scale
        sizes = list(map(methodcaller("get", f["bytes"], 0), docs))
        if None in sizes:       # a null byte count is none sent
            sizes = [0 if v is None else v for v in sizes]
        size = _numbers_of(sizes, _NUMBER, limits.BAD_BYTES)
        upstream = _texts(list(map(methodcaller("get", f["upstream"], ""), docs)))
        route = _texts(list(map(methodcaller("get", f["route"], ""), docs)))
        if set(map(type, paths)) != {str}:
            raise ValueError("a path that is not text")
        return Columns(ts, paths, upstream, route, status, size, latency, index, bad)

    def _line_by_line(self, lines: list[bytes]) -> Columns:
        docs: list[Any] = []
        keep: list[int] = []
        bad: list[tuple[int, str, bytes]] = []
        for i, line in enumerate(lines):
            reason, doc = self._one(line)
            if reason:
                bad.append((i, reason, line))
            else:
                docs.append(doc)
                keep.append(i)
        if not docs:
            out = Columns.empty()
            out.bad = bad
            return out
        return self._columns(docs, np.asarray(keep, dtype=np.int64), bad)

    def _one(self, line: bytes) -> tuple[str, Any]:
        if len(line) > MAX_LINE:
            return "too-long", None
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            return classify(line, "not-json"), None
        if not isinstance(doc, dict):
            return "not-an-object", None
        try:
            self._columns([doc], np.zeros(1, dtype=np.int64), [])
        except KeyError as e:
            return f"no-{e.args[0]}"[:32], None
        except _BadField as e:
            return e.reason, None
        except (TypeError, ValueError, AttributeError):
            return "bad-field", None
        return "", doc


class _BadField(ValueError):
    """A field of a JSON line of the wrong type; ``reason`` is the rejected line's."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# the JSON types a number field may hold: a status is an integer (never text, nor a
# bool, which Python counts as an int), a latency or a size any number
_INTEGER = frozenset({int})
_NUMBER = frozenset({int, float})


def _numbers_of(values: list[Any], types: frozenset[type], reason: str) -> np.ndarray:
    if not set(map(type, values)) <= types:
        raise _BadField(reason)
    return np.asarray(values, dtype=np.float64)


def _texts(values: list[Any]) -> list[Any]:
    """Text fields that may be absent or null (as ""); anything else is a bad document."""
    kinds = set(map(type, values))
    if kinds <= {str}:
        return values
    if kinds <= {str, type(None)}:
        return [v or "" for v in values]
    raise ValueError("a field that should be text is not")

"""Access-log formats: a block of complete lines in, columns out.

Every format turns a block of bytes (whole lines, the last one without its newline) into
:class:`Columns`: per good line its timestamp key, path, upstream, route, status, bytes
and latency, plus the lines it could not read with a reason.  Work is done per block,
not per line, so that the per-line cost stays inside C: one ``re.findall`` over the
block for the regex formats (a bad line falls into a catch-all alternative, so lines
stay aligned), one ``orjson.loads`` per line through ``map`` for JSON, numpy for the
numbers.  Only a block that holds a bad line takes the slower line-by-line path.

Timestamps are not parsed per line: each format captures the timestamp *up to the
minute* plus its zone, and :func:`minute_of` turns that key into epoch minutes once per
distinct key (the caller caches it).  Which time a format writes matters: nginx and the
JSON gateway write the end of the request, HAProxy and Envoy its start (ARCHITECTURE.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from operator import itemgetter, methodcaller
from typing import Any, Protocol

import numpy as np
import orjson

from slo.errors import ConfigError

__all__ = [
    "ENVOY",
    "FALLBACK_PIECE",
    "FORMATS",
    "HAPROXY",
    "INGRESS_NGINX",
    "NGINX",
    "Columns",
    "Encoded",
    "JsonFormat",
    "LogFormat",
    "NotThisPath",
    "RegexFormat",
    "classify",
    "count_lines",
    "compile_nginx_template",
    "format_for",
    "halving",
]

#: a line longer than this is rejected unread ("too-long"): real access-log lines are
#: far shorter, and this bounds what one line can cost
MAX_LINE = 64 * 1024

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
    in the block (0-based); ``bad`` lists (position, reason, raw line)."""

    ts: Sequence[Any]
    path: Sequence[Any]
    upstream: Sequence[Any]
    route: Sequence[Any] | None
    status: np.ndarray
    size: np.ndarray
    latency_ms: np.ndarray
    index: np.ndarray
    bad: list[tuple[int, str, bytes]] = field(default_factory=list)

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

    def parse(self, block: bytes) -> Columns:
        """Parse a block of complete lines (without the final newline)."""
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


# -- timestamps -----------------------------------------------------------------------

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))}


def minute_of(kind: str, key: Any) -> int | None:
    """Epoch minute of a timestamp key (None when it is not a time).  ``key`` is what
    the format captured (bytes) for the regex formats, the field's value for JSON."""
    try:
        if kind == "clf":
            return _clf_minute(_text(key))
        if kind == "iso":
            return _iso_minute(_text(key))
        if kind == "epoch":
            return int(float(_text(key))) // 60
        if kind == "json":
            return _json_minute(key)
    except (ValueError, KeyError, TypeError, IndexError, OverflowError):
        return None
    raise ConfigError(f"unknown time kind {kind!r}")


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


def json_time_key(value: Any) -> Any:
    """A cache key for a JSON time value that ignores seconds and their fractions, so
    one key covers one minute: the text up to the minute plus what may be a zone."""
    if type(value) is str and len(value) > 16:
        if value[-1] in "Zz":
            return value[:16] + "Z"
        if value[-6] in "+-" and value[-3] == ":":
            return value[:16] + value[-6:]
        return value[:16]
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

    def parse(self, block: bytes) -> Columns:
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
        return self._columns(rows, index, bad)

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
    pos = 0
    time_kind = "clf"
    for m in _VAR.finditer(text):
        parts.append(re.escape(text[pos:m.start()]))
        var = m.group(1) or m.group(2)
        nxt = text[m.end():m.end() + 1]
        if var in chosen:
            parts.append(_NGINX_VARS[var][1])
            if var == "time_iso8601":
                time_kind = "iso"
            elif var == "msec":
                time_kind = "epoch"
        else:
            parts.append(f"[^{re.escape(nxt)}]*" if nxt else ".*")
        pos = m.end()
    parts.append(re.escape(text[pos:]))
    spec = _Spec(name=name or "nginx-template", pattern="".join(parts), time_kind=time_kind,
                 latency_scale=1000.0, upstream=_last_upstream)
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

# -- fast paths and their fallback ----------------------------------------------------

#: a block that a fast path refuses is halved until its pieces pass or are this small,
#: so one bad line costs a few halvings and one small strict parse, not a whole block's
FALLBACK_PIECE = 64 << 10


class NotThisPath(ValueError):
    """A fast path refuses the block for what the whole block is (not for one line in
    it): halving would not help."""


def halving(block: bytes, *, fast: Callable[[bytes], Columns],
            slow: Callable[[bytes], Columns]) -> Columns:
    """``fast(block)``; where it refuses (ValueError, TypeError, KeyError, IndexError:
    pyarrow's ArrowInvalid is a ValueError), each half of the block on its own, down to
    FALLBACK_PIECE, then ``slow``: the strict parser that finds and classifies bad lines.
    The pieces' columns are put back together in line order."""
    try:
        return fast(block)
    except NotThisPath:
        return slow(block)
    except (ValueError, TypeError, KeyError, IndexError):
        pass
    mid = block.find(b"\n", len(block) // 2)
    if len(block) <= FALLBACK_PIECE or mid < 0:
        return slow(block)
    head = block[:mid]
    return _concat(halving(head, fast=fast, slow=slow),
                   halving(block[mid + 1:], fast=fast, slow=slow), count_lines(head))


def _concat(a: Columns, b: Columns, lines_a: int) -> Columns:
    """The columns of two consecutive pieces, the second's positions after the first's
    ``lines_a`` lines."""
    def texts(x: Sequence[Any], y: Sequence[Any]) -> Encoded:
        ex, ey = _as_encoded(x), _as_encoded(y)
        return Encoded(ex.values + ey.values,
                       np.concatenate([ex.codes, ey.codes + len(ex.values)]))

    route = None
    if a.route is not None or b.route is not None:
        route = texts(a.route if a.route is not None else [""] * len(a),
                      b.route if b.route is not None else [""] * len(b))
    return Columns(
        ts=texts(a.ts, b.ts), path=texts(a.path, b.path),
        upstream=texts(a.upstream, b.upstream), route=route,
        status=np.concatenate([a.status, b.status]),
        size=np.concatenate([a.size, b.size]),
        latency_ms=np.concatenate([a.latency_ms, b.latency_ms]),
        index=np.concatenate([a.index, b.index + lines_a]).astype(np.int64),
        bad=a.bad + [(i + lines_a, reason, line) for i, reason, line in b.bad])


def _as_encoded(col: Sequence[Any]) -> Encoded:
    if isinstance(col, Encoded):
        return col
    return Encoded(list(col), np.arange(len(col), dtype=np.int64))


def _bare(pattern: str) -> str:
    """A regex piece without its named groups (RE2 needs none to say yes or no)."""
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


# What the strict regex of NGINX_TEMPLATE demands of each quote-delimited field, for
# RE2 (pyarrow): the part before the request, the status and bytes, the request time,
# the upstream.  Fields hold no newline (the reader splits lines there).
_NGINX_HEAD = rf"^[^ ]* - [^ ]* \[{_bare(_CLF)}\] $"
_NGINX_STATUS_SIZE = r"^ \d{3} \d+ $"
_NGINX_LATENCY = rf"^ {_NUM} $"
_NGINX_UPSTREAM = r'^[^ "]*(?:, [^ "]*)*$'
_SPACE, _DOT, _COMMA = 32, 46, 44


@dataclass(frozen=True)
class _Spans:
    """A pyarrow binary array as numpy: its bytes, each value's [start, end), and
    which values are not null."""

    data: np.ndarray
    start: np.ndarray
    end: np.ndarray
    valid: np.ndarray

    @classmethod
    def of(cls, array: Any) -> _Spans:
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1,
                                offset=array.offset * 4).astype(np.int64)
        data = array.buffers()[2]
        raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        valid = _valid(array) if array.null_count else np.ones(len(array), dtype=bool)
        return cls(raw, offsets[:-1], offsets[1:], valid)

    @property
    def length(self) -> np.ndarray:
        return self.end - self.start

    def at(self, pos: np.ndarray) -> np.ndarray:
        """The byte at each position (0 past the data: callers check lengths too)."""
        if not len(self.data):
            return np.zeros(len(pos), dtype=np.uint8)
        inside = (pos >= 0) & (pos < len(self.data))
        return np.where(inside, self.data[np.clip(pos, 0, len(self.data) - 1)], 0)

    def per_value(self, flags: np.ndarray) -> np.ndarray:
        """How many of each value's bytes are flagged (``flags`` over :meth:`joined`)."""
        total = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
        first = self.start[0] if len(self.start) else 0
        return total[self.end - first] - total[self.start - first]

    def value_of(self, pos: np.ndarray) -> np.ndarray:
        """Which value each byte position belongs to."""
        return np.searchsorted(self.start, pos, side="right") - 1

    @property
    def joined(self) -> np.ndarray:
        """Every value's bytes, back to back."""
        return self.data[self.start[0]:self.end[-1]] if len(self.start) else self.data[:0]

    def are(self, value: bytes) -> np.ndarray:
        ok = self.valid & (self.length == len(value))
        for i, b in enumerate(value):
            ok &= self.at(self.start + i) == b
        return ok


def _digits(b: np.ndarray) -> np.ndarray:
    return (b - 48).astype(np.uint8) < 10     # unsigned: below "0" wraps round


def _status_size_rows(f: _Spans) -> np.ndarray:
    """Which values are _NGINX_STATUS_SIZE: " ddd d+ "."""
    body = f.joined
    space = body == _SPACE
    fixed = (f.valid & (f.length >= 7) & (f.at(f.start) == _SPACE)
             & (f.at(f.start + 4) == _SPACE) & (f.at(f.end - 1) == _SPACE))
    other = ~(space | _digits(body))
    # those three spaces and no other, and nothing but digits besides: counted over
    # the whole column first, value by value only when that fails
    if fixed.all() and not other.any() and int(space.sum()) == 3 * len(fixed):
        return fixed
    return fixed & (f.per_value(space) == 3) & (f.per_value(other) == 0)


def _latency_rows(f: _Spans) -> np.ndarray:
    """Which values are _NGINX_LATENCY: " d+ " or " d+.d+ "."""
    body = f.joined
    space, dot = body == _SPACE, body == _DOT
    fixed = (f.valid & (f.length >= 3) & (f.at(f.start) == _SPACE)
             & (f.at(f.end - 1) == _SPACE))
    other = ~(space | dot | _digits(body))
    dots = np.flatnonzero(dot) + (f.start[0] if len(f.start) else 0)
    # a digit either side of the dot, one dot a value at most
    lonely = ~(_digits(f.at(dots - 1)) & _digits(f.at(dots + 1)))
    row = f.value_of(dots)
    if (fixed.all() and not other.any() and int(space.sum()) == 2 * len(fixed)
            and not lonely.any() and (np.diff(row) > 0).all()):
        return fixed
    ok = fixed & (f.per_value(space) == 2) & (f.per_value(dot) <= 1) & \
        (f.per_value(other) == 0)
    ok[row[lonely]] = False
    return ok


def _upstream_rows(f: _Spans) -> np.ndarray:
    """Which values are _NGINX_UPSTREAM (no quote can be in one): each space follows a
    comma of the same value."""
    ok = f.valid.copy()
    spaces = np.flatnonzero(f.joined == _SPACE) + (f.start[0] if len(f.start) else 0)
    if len(spaces):
        row = f.value_of(spaces)
        stray = (spaces == f.start[row]) | (f.at(spaces - 1) != _COMMA)
        ok[row[stray]] = False
    return ok


def _bools(array: Any) -> np.ndarray:
    """A pyarrow boolean array as numpy (null: False)."""
    bits = np.unpackbits(np.frombuffer(array.buffers()[1], dtype=np.uint8),
                         bitorder="little")[array.offset:array.offset + len(array)]
    out = bits.astype(bool)
    return out & _valid(array) if array.null_count else out


@functools.lru_cache(maxsize=1 << 16)
def _request_path(request: bytes) -> bytes:
    # the regex's (?:[^" ]* )?(?P<path>[^" ]*)(?: [^"]*)? on a field without quotes
    words = request.split(b" ", 2)
    return words[1] if len(words) > 1 else words[0]


def count_lines(block: bytes) -> int:
    """Lines in a block without its final newline (numpy counts twice as fast as
    ``bytes.count``)."""
    return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == 10)) + 1


class NginxFormat(RegexFormat):
    """The ``nginx`` format (NGINX_TEMPLATE), with a faster path for clean blocks.

    nginx writes a ``"`` inside a variable as ``\\x22``, so each line it writes has
    exactly eight quotes, and pyarrow's CSV reader with ``"`` as the delimiter cuts
    every line into the same nine fields, in C++.  Each field is checked against what
    the strict regex demands of it; a block that fails any check goes through the
    regex, which finds and classifies its bad lines (tests/collectors/
    test_logs_fastpath.py holds both to the same rollups)."""

    def parse(self, block: bytes) -> Columns:
        if _arrow is None:  # pragma: no cover - pyarrow is a dependency
            return super().parse(block)
        return halving(block, fast=self._arrow_split, slow=super().parse)

    def _arrow_split(self, block: bytes) -> Columns:
        """The same eight-quote split by pyarrow's CSV reader (C++, ``"`` as the
        delimiter, no quoting): nine fields a line or an error, rows counted against
        lines.  Every field is then checked against what the strict regex demands of it
        (numpy on the column buffers, RE2 for the head), so a line this path accepts is
        read exactly as the regex reads it.

        Lines that do not fit (a count of quotes other than eight, a field the regex
        would refuse) are read again, alone, by the strict regex, which classifies
        them; a block with many of them (or a carriage return, which ends a row for
        the reader) is refused as a whole and :func:`halving` takes it.

        One thread: blocks are a few MiB, and on a busy machine the reader's thread pool
        costs more CPU than it saves (19 ms against 11 ms a 4 MiB block under load,
        the same when idle: measured)."""
        assert _arrow is not None
        pa, _, pc = _arrow
        import pyarrow.csv as pcsv

        if b"\r" in block and (block.count(b"\r") - block.count(b"\r\n")
                               != block.endswith(b"\r")):
            # the reader ends a row at a lone CR too: rows would not be lines
            raise ValueError("a carriage return inside a line")
        n = count_lines(block)
        names = [f"f{i}" for i in range(9)]
        skipped: list[int] = []

        def skip(row: Any) -> str:
            skipped.append(row.number - 1)       # 1-based, counting every row read
            return "skip"

        # the reader hands an odd row over as text: one not UTF-8 would fail there (and
        # say so on stderr), so a block with such bytes has its odd rows refused
        # instead (nginx writes bytes above 126 as \xXX: such a block is odd anyway)

        table = pcsv.read_csv(
            pa.BufferReader(block),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=False,
                                          block_size=len(block) + 1),
            parse_options=pcsv.ParseOptions(delimiter='"', quote_char=False,
                                            escape_char=False, newlines_in_values=False,
                                            ignore_empty_lines=False,
                                            invalid_row_handler=skip if block.isascii()
                                            else None),
            convert_options=pcsv.ConvertOptions(column_types={k: pa.binary() for k in names}),
        )
        line_of_row = (np.delete(np.arange(n), skipped) if skipped
                       else np.arange(n, dtype=np.int64))
        if table.num_rows != len(line_of_row):
            raise ValueError("rows and lines differ")
        f = [table.column(k).combine_chunks() for k in names]
        # the eight quotes are the template's own (a field holding one would make nine:
        # that row was skipped), so each field is the template's piece between two of
        # them: check each whole, by numpy on the column buffers, the head by RE2
        ok = (_status_size_rows(_Spans.of(f[2])) & _latency_rows(_Spans.of(f[6]))
              & _upstream_rows(_Spans.of(f[7])) & _Spans.of(f[4]).are(b" ")
              & _Spans.of(f[8]).are(b"") & _bools(pc.match_substring_regex(f[0], _NGINX_HEAD)))
        odd = np.sort(np.concatenate([np.asarray(skipped, dtype=np.int64),
                                      line_of_row[~ok]]))
        if len(odd) > n // 8:
            raise ValueError("more odd lines than the fast path is worth")
        if not ok.all():
            keep = np.flatnonzero(ok)
            rows = pa.Array.from_buffers(pa.int64(), len(keep), [None, pa.py_buffer(keep)])
            f = [col.take(rows) for col in f]
            line_of_row = line_of_row[keep]
        status = _arrow_numbers(pc.binary_slice(f[2], 1, 4))
        size = _arrow_numbers(pc.binary_slice(f[2], 5, -1))
        latency = _arrow_numbers(pc.binary_slice(f[6], 1, -1))
        # "$request" is "METHOD TARGET PROTOCOL": the regex's path is the second word
        # when there is a space, else the whole; worked out once per distinct request
        requests = f[1].dictionary_encode()
        paths = list(map(_request_path, requests.dictionary.to_pylist()))
        fast = Columns(ts=_encoded(pc.binary_slice(f[0], -28, -2)),
                       path=Encoded(paths, _numpy(requests.indices, np.int32)),
                       upstream=_encoded(f[7]), route=None, status=status, size=size,
                       latency_ms=latency * 1000.0, index=line_of_row.astype(np.int64))
        if not len(odd):
            return fast
        # the odd lines, and only they, go through the strict regex
        strict = RegexFormat.parse(self, b"\n".join(_lines_at(block, odd)))
        strict.index = odd[strict.index]
        strict.bad = [(int(odd[i]), reason, line) for i, reason, line in strict.bad]
        return _merged(fast, strict)


def _lines_at(block: bytes, which: np.ndarray) -> list[bytes]:
    """The lines of ``block`` at the (ascending) positions ``which``."""
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
    starts = np.concatenate([[0], ends + 1])
    ends = np.concatenate([ends, [len(block)]])
    return [block[starts[i]:ends[i]] for i in which.tolist()]


def _merged(a: Columns, b: Columns) -> Columns:
    """The lines of two parses of one block, in line order."""
    both = _concat(a, b, 0)
    order = np.argsort(both.index, kind="stable")

    def pick(col: Sequence[Any]) -> Encoded:
        enc = _as_encoded(col)
        return Encoded(enc.values, enc.codes[order])

    return Columns(ts=pick(both.ts), path=pick(both.path), upstream=pick(both.upstream),
                   route=None if both.route is None else pick(both.route),
                   status=both.status[order], size=both.size[order],
                   latency_ms=both.latency_ms[order], index=both.index[order],
                   bad=sorted(both.bad, key=lambda x: x[0]))


NGINX = NginxFormat(compile_nginx_template(NGINX_TEMPLATE, name="nginx")._spec)
INGRESS_NGINX = compile_nginx_template(INGRESS_TEMPLATE, name="ingress-nginx")
HAPROXY = RegexFormat(_Spec(name="haproxy", pattern=_HAPROXY, time_kind="clf",
                            latency_scale=1.0, upstream=_haproxy_service,
                            route=_haproxy_route))
ENVOY = RegexFormat(_Spec(name="envoy", pattern=_ENVOY, time_kind="iso", latency_scale=1.0))


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

    def __init__(self, fields: dict[str, str] | None = None):
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

    def upstream_name(self, raw: str) -> str:
        return raw

    def route_name(self, raw: str) -> str | None:
        return raw or None

    def parse(self, block: bytes) -> Columns:
        if _arrow is None:  # pragma: no cover - pyarrow is a dependency
            return self._orjson_parse(block)
        return halving(block, fast=self._arrow_parse, slow=self._orjson_parse)

    def _orjson_parse(self, block: bytes) -> Columns:
        lines = block.split(b"\n")
        try:
            docs = list(map(orjson.loads, lines))
            return self._columns(docs, np.arange(len(docs), dtype=np.int64), [])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return self._line_by_line(lines)

    def _columns(self, docs: list[Any], index: np.ndarray,
                 bad: list[tuple[int, str, bytes]]) -> Columns:
        f = self.fields
        # Field by field through ``map`` (the loop runs in C).  Each step raises
        # (KeyError, TypeError, ValueError) on a bad document, which sends the block
        # to the line-by-line path.
        ts = _json_time_keys(list(map(itemgetter(f["time"]), docs)))
        paths = list(map(itemgetter(f["path"]), docs))
        status = np.asarray(list(map(itemgetter(f["status"]), docs)), dtype=np.float64)
        latency = np.asarray(list(map(itemgetter(f["latency_ms"]), docs)), dtype=np.float64)
        latency *= self.scale
        size = np.nan_to_num(np.asarray(list(map(methodcaller("get", f["bytes"], 0), docs)),
                                        dtype=np.float64))
        upstream = _texts(list(map(methodcaller("get", f["upstream"], ""), docs)))
        route = _texts(list(map(methodcaller("get", f["route"], ""), docs)))
        if not (np.isfinite(status).all() and np.isfinite(latency).all()
                and np.isfinite(size).all()):
            raise ValueError("a number that is not finite")
        if set(map(type, paths)) != {str}:
            raise ValueError("a path that is not text")
        return Columns(ts, paths, upstream, route, status, size, latency, index, bad)

    def _arrow_parse(self, block: bytes) -> Columns:
        """The whole block through pyarrow's JSON reader (C++), for blocks where every
        line is one object with the fields in their types and times in UTC; any other
        block raises and takes the orjson path.

        Alignment of rows and lines is proven, not hoped for: every line starts with
        ``{`` (so none is empty), and as many rows as lines came out (so no line held
        two objects)."""
        assert _arrow is not None
        pa, pj, pc = _arrow
        raw = np.frombuffer(block, dtype=np.uint8)
        newline = raw == 10
        n = int(np.count_nonzero(newline)) + 1
        # every newline followed by "{" (numpy: three times faster than bytes.count)
        if not block.startswith(b"{") or \
                np.count_nonzero(newline[:-1] & (raw[1:] == 123)) != n - 1:
            raise ValueError("a line that does not start an object")
        f = self.fields
        text, num = pa.string(), pa.float64()
        names = {"time": text, "path": text, "status": num, "bytes": num, "latency_ms": num,
                 "upstream": text, "route": text}
        schema = pa.schema([(f[k], t) for k, t in names.items()])
        table = pj.read_json(
            pa.BufferReader(block),
            read_options=pj.ReadOptions(use_threads=False, block_size=len(block) + 1),
            parse_options=pj.ParseOptions(explicit_schema=schema,
                                          unexpected_field_behavior="ignore"),
        )
        if table.num_rows != n:
            raise ValueError("rows and lines differ")
        col = {k: table.column(f[k]).combine_chunks() for k in names}
        if any(col[k].null_count for k in ("time", "path", "status", "latency_ms")):
            raise ValueError("a required field is missing")
        if col["route"].null_count != n:
            raise NotThisPath("routes: the orjson path handles them")
        zones = pc.utf8_slice_codeunits(col["time"], -1, 1 << 30).unique().to_pylist()
        if not set(zones) <= {"Z", "z"}:
            raise NotThisPath("times not in UTC: the orjson path reads their zones")
        status = _numpy(col["status"], np.float64)
        latency = _numpy(col["latency_ms"], np.float64) * self.scale
        size = _numpy(col["bytes"], np.float64, fill=0.0)
        if not (np.isfinite(status).all() and np.isfinite(latency).all()
                and np.isfinite(size).all()):
            raise ValueError("a number that is not finite")
        return Columns(
            ts=_encoded(pc.utf8_slice_codeunits(col["time"], 0, 16)),
            path=_encoded(col["path"]),
            upstream=_encoded(col["upstream"], null=""),
            route=None, status=status, size=size, latency_ms=latency,
            index=np.arange(n, dtype=np.int64))

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
        except (TypeError, ValueError, AttributeError):
            return "bad-field", None
        return "", doc


# Arrays leave pyarrow through their buffers, and no Python value goes in as a pyarrow
# scalar: ``to_numpy``, ``pa.scalar`` and ``fill_null(x, 0)`` import pandas, a quarter
# of a second of CPU (measured) that ingestion does not need.

def _encoded(array: Any, *, null: Any = None) -> Encoded:
    """Dictionary encoding; a null (allowed only when ``null`` says what it reads as)
    gets a value of its own."""
    enc = array.dictionary_encode()
    values = enc.dictionary.to_pylist()
    if not enc.indices.null_count:
        return Encoded(values, _numpy(enc.indices, np.int32))
    if null is None:
        raise ValueError("a null value")
    codes = np.where(_valid(enc.indices), _numpy(enc.indices, np.int32, fill=0), len(values))
    return Encoded([*values, null], codes)


def _numpy(array: Any, dtype: Any, *, fill: Any = None) -> np.ndarray:
    """A primitive pyarrow array of ``dtype`` as numpy; nulls read as ``fill``, and
    raise (ValueError) without one."""
    dtype = np.dtype(dtype)
    if str(array.type) != _arrow_type_name(dtype):
        raise TypeError(f"{array.type} is not {dtype}")
    values = np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array),
                           offset=array.offset * dtype.itemsize)
    if not array.null_count:
        return values
    if fill is None:
        raise ValueError("a null value")
    return np.where(_valid(array), values, fill)


def _valid(array: Any) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], dtype=np.uint8),
                         bitorder="little")
    return bits[array.offset:array.offset + len(array)].astype(bool)


def _arrow_type_name(dtype: np.dtype) -> str:
    return {"float64": "double", "int32": "int32", "int64": "int64"}[dtype.name]


def _arrow_numbers(array: Any) -> np.ndarray:
    assert _arrow is not None
    pa, _, pc = _arrow
    return _numpy(pc.cast(pc.cast(array, pa.string()), pa.float64()), np.float64)


def _load_arrow() -> tuple[Any, Any, Any] | None:
    # pyarrow (installed with streamlit) reads JSON lines in C++; without it, orjson
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.json
    except ImportError:  # pragma: no cover - depends on the installation
        return None
    return pyarrow, pyarrow.json, pyarrow.compute


_arrow = _load_arrow()


def _json_time_keys(times: list[Any]) -> list[Any]:
    """:func:`json_time_key` of each, in C when every time is text in UTC ("...Z")."""
    try:
        heads = list(map(itemgetter(slice(0, 16)), times))
        if set(map(itemgetter(-1), times)) <= {"Z", "z"}:
            return heads       # "2026-11-26T12:00" without a zone reads as UTC
    except (TypeError, IndexError):
        pass
    return [json_time_key(t) for t in times]


def _texts(values: list[Any]) -> list[Any]:
    """Text fields that may be absent or null (as ""); anything else is a bad document."""
    kinds = set(map(type, values))
    if kinds <= {str}:
        return values
    if kinds <= {str, type(None)}:
        return [v or "" for v in values]
    raise ValueError("a field that should be text is not")


# -- the registry ---------------------------------------------------------------------

FORMATS: dict[str, LogFormat] = {
    "nginx": NGINX,
    "ingress-nginx": INGRESS_NGINX,
    "haproxy": HAPROXY,
    "envoy": ENVOY,
}


def format_for(name: str, fields: dict[str, str] | None = None) -> LogFormat:
    """The format a log source names: a registered name, ``json``, or an nginx
    ``log_format`` template (anything with a ``$variable``)."""
    if name == "json":
        return JsonFormat(fields)
    if name in FORMATS:
        return FORMATS[name]
    if "$" in name:
        return compile_nginx_template(name)
    raise ConfigError(f"unknown log format {name!r}: expected json, "
                      f"{', '.join(FORMATS)} or an nginx log_format template")

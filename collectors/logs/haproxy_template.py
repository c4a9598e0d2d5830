"""HAProxy ``log-format`` templates, as an OpenShift IngressController's
``spec.logging.access.httpLogFormat`` (or a ``log-format`` line of haproxy.cfg) gives
them, compiled to a reader of the same fields as the default ``httplog``.

Which variable gives what (HAProxy's configuration manual, 8.2.4 "Custom log format"):
the time from ``%tr`` (else ``%t``, ``%trg``, ``%T``, ``%trl``, ``%tl`` or ``%Ts``), the
latency from the total active time ``%Ta`` (else the older total ``%Tt``), the status
``%ST``, the bytes ``%B``, the path from the request line ``%r`` (else ``%HU`` or ``%HP``),
the route from the backend ``%b`` (``be_http:<namespace>:<route>``) and the variant from
the server ``%s`` (``pod:<pod>:<service>:...``).  Every other variable, sample fetch
(``%[capture.req.hdr(0)]``) and captured header block (``%hr``, ``%hs``) is read past.

Lines may carry a syslog prefix (RFC 3164, as rsyslog writes to a file or the router's
``logs`` sidecar prints, or RFC 5424): it is read past, so its time is never taken for the
request's.  Templates are read by the regular expression alone: the compiled scanner
knows the default layout only (benchmarks/router_logs_bench.py gives what that costs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from collectors.logs.formats import _REQUEST, RegexFormat, _haproxy_route, _haproxy_service, _Spec
from slo.errors import ConfigError

#: the OpenShift router's default ``httplog`` layout (HAProxy's ``option httplog``)
HTTPLOG_TEMPLATE = ("%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc "
                    "%ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r")

#: an RFC 3164 prefix (``Jun 22 12:02:53 node2 haproxy[23034]: ``, with or without the
#: ``<PRI>``) or an RFC 5424 one (``<134>1 2026-06-22T12:02:53.123Z node2 haproxy 23034 -
#: - ``); neither is required
SYSLOG_PREFIX = (
    r"(?:<\d{1,3}>)?"
    # rsyslog's RFC 5424 file template keeps the message's own leading space
    r"(?:1 \S+ \S+ \S+ \S+ \S+ (?:-|(?:\[(?:[^\]\\]|\\.)*\])+)  ?"
    r"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ [^\s:\[]+(?:\[\d+\])?: )?"
)

_DATE_MINUTE = r"\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d"
#: variable -> (group, pattern, time kind); the first variable of each group wins, in
#: the order of _PREFERRED
_TIMES = {
    "tr": (f"(?P<ts>{_DATE_MINUTE}):\\d\\d(?:\\.\\d+)?", "clf"),
    "t": (f"(?P<ts>{_DATE_MINUTE}):\\d\\d(?:\\.\\d+)?", "clf"),
    "trg": (f"(?P<ts>{_DATE_MINUTE}:\\d\\d [+-]\\d{{4}})", "clf"),
    "T": (f"(?P<ts>{_DATE_MINUTE}:\\d\\d [+-]\\d{{4}})", "clf"),
    "trl": (f"(?P<ts>{_DATE_MINUTE}:\\d\\d [+-]\\d{{4}})", "clf"),
    "tl": (f"(?P<ts>{_DATE_MINUTE}:\\d\\d [+-]\\d{{4}})", "clf"),
    "Ts": (r"(?P<ts>\d+)", "epoch"),
}
_FIELDS = {
    "Ta": ("latency", r"\+?(?P<latency>\d+)"),
    "Tt": ("latency", r"\+?(?P<latency>\d+)"),
    "ST": ("status", r"(?P<status>\d{3})"),
    "B": ("bytes", r"\+?(?P<bytes>\d+)"),
    "r": ("path", None),
    "HU": ("path", r"(?P<path>[^\s\"]*)"),
    "HP": ("path", r"(?P<path>[^\s\"]*)"),
    "b": ("route", None),
    "s": ("upstream", None),
}
_PREFERRED = ["tr", "t", "trg", "T", "trl", "tl", "Ts", "Ta", "Tt", "ST", "B", "r", "HU",
              "HP", "b", "s"]
_CAPTURES = {"hr", "hs"}
_NEEDED = {"ts": "the time (%tr, %t, %T or %Ts)", "status": "the status (%ST)",
           "latency": "the total time (%Ta or %Tt)", "path": "the request (%r, %HU or %HP)"}

# %% | %{flags}name | %{flags}[sample fetch]
_TOKEN = re.compile(r"%%|%(?:\{(?P<flags>[^}]*)\})?(?:\[(?P<fetch>[^\]]*)\]|(?P<var>[A-Za-z]+))")


@dataclass(frozen=True)
class _Token:
    literal: str = ""
    var: str = ""          # a variable name, or "[...]" for a sample fetch
    quoted: bool = False


def compile_haproxy_template(template: str, *, name: str | None = None) -> RegexFormat:
    """A format from an HAProxy ``log-format`` string (``log-format "..."`` or the bare
    string; backslash-escaped spaces as haproxy.cfg writes them are read as spaces)."""
    tokens = _tokens(_unquote(template))
    chosen = _choose(tokens)
    missing = [why for group, why in _NEEDED.items()
               if group not in {_group_of(v) for v in chosen}]
    if missing:
        raise ConfigError(f"HAProxy log-format {template.strip()!r} lacks {', '.join(missing)}: "
                          f"cutover needs a line's time, request, status and total time")
    parts: list[str] = [SYSLOG_PREFIX]
    time_kind = "clf"
    for i, tok in enumerate(tokens):
        if not tok.var:
            parts.append(re.escape(tok.literal))
            continue
        nxt = tokens[i + 1].literal[:1] if i + 1 < len(tokens) else ""
        if tok.var in chosen:
            parts.append(_chosen_pattern(tok, nxt))
            if tok.var in _TIMES:
                time_kind = _TIMES[tok.var][1]
        elif tok.var in _CAPTURES and nxt == " ":
            # a captured-header block is printed only when captures are set, and HAProxy
            # then drops the separator after it too
            parts.append(r"(?:\{[^}]*\} )?")
            tokens[i + 1] = _Token(literal=tokens[i + 1].literal[1:])
        elif tok.var in _CAPTURES:
            parts.append(r"(?:\{[^}]*\})?")
        else:
            parts.append(_skip(tok, nxt))
    spec = _Spec(name=name or "haproxy-template", pattern="".join(parts), time_kind=time_kind,
                 latency_scale=1.0, upstream=_haproxy_service, route=_haproxy_route)
    return RegexFormat(spec)


def _unquote(template: str) -> str:
    text = template.strip()
    text = re.sub(r"^log-format\s+", "", text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1]
    return text.replace("\\ ", " ").replace('\\"', '"')


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        literal = text[pos:m.start()] + ("%" if m.group(0) == "%%" else "")
        if literal:
            out.append(_Token(literal=literal))
        if m.group(0) != "%%":
            flags = m.group("flags") or ""
            var = f"[{m.group('fetch')}]" if m.group("fetch") is not None else m.group("var")
            out.append(_Token(var=var, quoted="+Q" in flags))
        pos = m.end()
    if text[pos:]:
        out.append(_Token(literal=text[pos:]))
    return _joined(out)


def _joined(tokens: list[_Token]) -> list[_Token]:
    """Adjacent literals as one (a ``%%`` splits them)."""
    out: list[_Token] = []
    for tok in tokens:
        if out and not tok.var and not out[-1].var:
            out[-1] = _Token(literal=out[-1].literal + tok.literal)
        else:
            out.append(tok)
    return out


def _group_of(var: str) -> str:
    return "ts" if var in _TIMES else _FIELDS[var][0]


def _choose(tokens: list[_Token]) -> set[str]:
    present = {t.var for t in tokens if t.var}
    chosen: set[str] = set()
    taken: set[str] = set()
    for var in _PREFERRED:
        if var in present and _group_of(var) not in taken:
            chosen.add(var)
            taken.add(_group_of(var))
    return chosen


def _chosen_pattern(tok: _Token, nxt: str) -> str:
    if tok.var in _TIMES:
        body = _TIMES[tok.var][0]
    elif tok.var == "r":
        body = _REQUEST if tok.quoted else r"(?:[A-Z]+ )?(?P<path>\S*)(?: HTTP/[\d.]+)?"
    elif tok.var == "b":
        body = r"(?P<route>[^\s/\"]+)" if nxt == "/" else r"(?P<route>[^\s\"]+)"
    elif tok.var == "s":
        body = f"(?P<upstream>{_until(nxt)})"
    else:
        body = _FIELDS[tok.var][1] or ""
    return f'"{body}"' if tok.quoted else body


def _skip(tok: _Token, nxt: str) -> str:
    if tok.quoted:
        return r'"(?:[^"\\]|\\.)*"'
    return _until(nxt)


def _until(nxt: str) -> str:
    """Anything up to the next literal character (and never a space: HAProxy escapes the
    spaces of the values it prints, except in the quoted ones)."""
    if nxt and not nxt.isspace():
        return f"[^\\s{re.escape(nxt)}]*"
    return r"\S*"

"""Credentials out of text that came from somewhere else.

A remote answer may echo what it was sent: a Prometheus proxy's 500 that quotes the
``Authorization`` header, a Kubernetes Status that repeats a URL with a password in it, a
webhook that answers with its own URL.  Every such text goes through :func:`redact` where
it enters (the Prometheus client, the routers, the notifiers), before it is stored,
printed, logged or sent on.  Pure: the secrets to hide are passed in.

What is masked, each replaced by ``***``:

- the ``secrets`` given (a token, a webhook URL), wherever they occur;
- ``Bearer``, ``Basic`` and other HTTP auth schemes' credentials (RFC 9110 section 11.4);
- ``Authorization:`` / ``Proxy-Authorization:`` header values, quoted or not;
- ``token=``, ``access_token=``, ``api_key=``, ``password=``, ``secret=`` and the like, in
  query strings, forms, JSON and YAML;
- a URL's password (``https://user:***@host``);
- JSON Web Tokens (Kubernetes service-account tokens) and OpenShift ``sha256~`` tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slo.plan import Plan

__all__ = ["MASK", "known_secrets", "redact"]

MASK = "***"
#: a known secret shorter than this is not searched for (it would mask ordinary words)
MIN_SECRET = 4

_KEYS = (r"(?:access[_-]?token|refresh[_-]?token|id[_-]?token|token|api[_-]?key|apikey"
         r"|client[_-]?secret|secret|password|passwd|pwd|private[_-]?key|sig|signature)")
_Repl = str | Callable[[re.Match[str]], str]


def _header(m: re.Match[str]) -> str:
    scheme = f"{m.group(2)} " if m.group(2) else ""
    return f"{m.group(1)}{scheme}{MASK}"


_PATTERNS: tuple[tuple[re.Pattern[str], _Repl], ...] = (
    # Authorization: Bearer x / "authorization": "Basic x" / authorization=x
    (re.compile(r"(?i)((?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)"
                r"(?:(bearer|basic|token|digest|negotiate)\s+)?[^'\"\s,;}]+"),
     _header),
    # a credential after its scheme in free text: one with a digit or a symbol in it, or
    # long (so "Basic checks" stays, "Bearer 3f9a..." and "Basic dXNlcjpwYXNz" go)
    (re.compile(r"\b(Bearer|bearer|BEARER|Basic|BASIC)\s+"
                r"(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-]|[A-Za-z0-9._~+/=-]{12})"
                r"[A-Za-z0-9._~+/=-]{4,}"), rf"\1 {MASK}"),
    # key=value, key: value, "key": "value"
    (re.compile(rf"(?i)(\b{_KEYS}['\"]?\s*[:=]\s*['\"]?)[^'\"\s&,;}}]+"), rf"\1{MASK}"),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@'\"<>]*:)[^@/\s'\"<>]+@"), rf"\1{MASK}@"),
    # JWTs: header.payload.signature, each base64url; the header starts {"  ->  eyJ
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # OpenShift OAuth access tokens
    (re.compile(r"\bsha256~[A-Za-z0-9_-]{8,}"), MASK),
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given ``secrets`` and anything that looks like a credential
    masked."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET},
                         key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def known_secrets(plan: Plan, env: Mapping[str, str],
                  read: Callable[[str], str | None] = lambda _path: None) -> tuple[str, ...]:
    """The secret values a plan names: the Prometheus token, each channel's webhook URL
    and signing secret.  ``env`` and ``read`` (a file's text, or None) are passed in, so
    this stays free of I/O; a secret that cannot be had is simply not in the list."""
    names: list[str | None] = []
    files: list[str | None] = []
    prom = plan.sources.prometheus
    if prom is not None:
        names.append(prom.bearer_token_env)
        files.append(prom.bearer_token_file)
    for channel in plan.alerts.channels:
        names += [channel.url_env, channel.secret_env]
        files.append(channel.url_file)
    values = [env.get(n) for n in names if n] + [read(f) for f in files if f]
    return tuple(v.strip() for v in values if v and v.strip())

"""Which known log format a few lines fit, and the plan snippet that reads them
(``cutover plan suggest-logs``).

Every registered format, JSON, and the HAProxy templates OpenShift clusters are known to
use are tried on the same lines; a format fits a line when it parses it with no reject
(a time, a path, a status and a latency read).  The best is the one that fits the most
lines; a tie goes to the earlier in :data:`CANDIDATES` (the built-in names first, so a
default ``httplog`` is suggested as ``haproxy``, not as its template)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collectors.logs.formats import LogFormat
from collectors.logs.haproxy_template import HTTPLOG_TEMPLATE
from collectors.logs.registry import format_for
from slo.errors import ConfigError
from slo.plan import LogTemplate

#: the OpenShift router's httplog with a Host capture after the server name, and with the
#: captured headers and a unique id: the two custom httpLogFormat strings seen most
HOST_AFTER_SERVER = ("%ci:%cp [%tr] %ft %b/%s %[capture.req.hdr(0)] %TR/%Tw/%Tc/%Tr/%Ta "
                     "%ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r")
WITH_UNIQUE_ID = HTTPLOG_TEMPLATE + " %ID"

#: (label, what the plan's ``format:`` says)
CANDIDATES: list[tuple[str, str | LogTemplate]] = [
    ("json", "json"),
    ("nginx", "nginx"),
    ("ingress-nginx", "ingress-nginx"),
    ("haproxy", "haproxy"),
    ("envoy", "envoy"),
    ("haproxy template: host capture after the server", LogTemplate(haproxy=HOST_AFTER_SERVER)),
    ("haproxy template: httplog + unique id", LogTemplate(haproxy=WITH_UNIQUE_ID)),
]


@dataclass(frozen=True)
class Fit:
    label: str
    format: str | LogTemplate
    fitted: int
    lines: int

    @property
    def share(self) -> float:
        return self.fitted / self.lines if self.lines else 0.0


def fits(lines: Sequence[bytes]) -> list[Fit]:
    """How many of ``lines`` each candidate reads, best first."""
    lines = [ln.rstrip(b"\r\n") for ln in lines if ln.strip()]
    block = b"\n".join(lines)
    out = []
    for order, (label, spec) in enumerate(CANDIDATES):
        fmt: LogFormat = format_for(spec)
        cols = fmt.parse(block) if lines else None
        fitted = 0 if cols is None else len(cols)
        out.append((-(fitted), order, Fit(label, spec, fitted, len(lines))))
    return [f for *_, f in sorted(out, key=lambda t: (t[0], t[1]))]


def snippet(fit: Fit) -> str:
    """The plan's log source entry for a fit, as YAML."""
    if isinstance(fit.format, LogTemplate):
        server = "haproxy" if fit.format.haproxy is not None else "nginx"
        text = fit.format.haproxy if fit.format.haproxy is not None else fit.format.nginx
        value = "{" + f"{server}: '{(text or '').replace(chr(39), chr(39) * 2)}'" + "}"
    else:
        value = fit.format
    return ("sources:\n  logs:\n    - path: /var/log/router/access.log   # or pods: {...}\n"
            f"      format: {value}\n")


def best(lines: Sequence[bytes]) -> Fit:
    """The best fit; a ConfigError when no candidate reads a single line."""
    ranked = fits(lines)
    if not ranked or ranked[0].fitted == 0:
        raise ConfigError("no known log format reads these lines: paste the server's "
                          "log_format (nginx) or httpLogFormat (HAProxy) as the plan's format")
    return ranked[0]

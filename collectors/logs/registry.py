"""Which format a log source names: the registry of the built-in formats, ``json``, and
the templates (an nginx ``log_format``, or one keyed by its server).

Its own module so that the formats (collectors/logs/formats.py) and the HAProxy template
compiler (collectors/logs/haproxy_template.py, built on them) do not import each other."""

from __future__ import annotations

from collectors.logs.formats import (
    ENVOY,
    HAPROXY,
    INGRESS_NGINX,
    NGINX,
    JsonFormat,
    LogFormat,
    compile_nginx_template,
)
from collectors.logs.haproxy_template import compile_haproxy_template
from slo.errors import ConfigError
from slo.plan import LogTemplate

__all__ = ["FORMATS", "format_for"]

FORMATS: dict[str, LogFormat] = {
    "nginx": NGINX,
    "ingress-nginx": INGRESS_NGINX,
    "haproxy": HAPROXY,
    "envoy": ENVOY,
}


def format_for(name: str | LogTemplate, fields: dict[str, str] | None = None) -> LogFormat:
    """The format a log source names: a registered name, ``json``, an nginx
    ``log_format`` template (anything with a ``$variable``), or a template keyed by its
    server (``{haproxy: ...}``, ``{nginx: ...}``)."""
    if isinstance(name, LogTemplate):
        if name.haproxy is not None:
            return compile_haproxy_template(name.haproxy)
        return compile_nginx_template(name.nginx or "")
    if name == "json":
        return JsonFormat(fields)
    if name in FORMATS:
        return FORMATS[name]
    if "$" in name:
        return compile_nginx_template(name)
    raise ConfigError(f"unknown log format {name!r}: expected json, "
                      f"{', '.join(FORMATS)} or an nginx log_format template")

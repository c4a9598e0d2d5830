"""OpenSLO v1 in and out: SLO and SLI documents as a plan's targets and queries, and a
plan's targets as SLO documents.  Pure: documents (already parsed YAML) in, values out.

What maps (https://github.com/OpenSLO/OpenSLO, v1):

- a ``ratioMetric`` over Prometheus (``good`` or ``bad``, with ``total``) is the error
  share: target ``error_rate: {max: 1 - objective.target}``, and its queries become the
  service's ``error_rps`` (for ``good``: total minus good) and ``rps`` overrides;
- a ``thresholdMetric`` over Prometheus with ``op: lt|lte`` is a ceiling on one figure,
  told by its query: ``histogram_quantile(0.5|0.95|0.99, ...)`` a latency quantile
  (``latency_p95_ms``, ...; ``{quantile}`` put in its place), a ``..._seconds_sum /
  ..._seconds_count`` ratio the average latency, ``process_resident_memory_bytes`` memory,
  ``process_cpu_seconds_total`` CPU; values in seconds or bytes become ms or MiB.

A query's range selectors (``[5m]``) become ``[{window}]``, so the collector runs it per
step.  Anything else (another data source, ``op: gt``, a query that names no figure, a
service the plan lacks, an objective the plan cannot hold) is not mapped, and the
result says which document and why.  Export writes the reverse; a limit relative to the
baseline (``max_ratio_to_baseline``) has no OpenSLO form and is listed as skipped."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from slo.figure_specs import QUANTILE_FIGURES
from slo.plan import Plan
from slo.units import format_duration

__all__ = ["ExportResult", "ImportResult", "OpenSLOError", "export_documents",
           "import_documents"]

API = "openslo/v1"
MIB = 2**20
_RANGE = re.compile(r"\[\s*\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*\s*\]")
_HQ = re.compile(r"histogram_quantile\s*\(\s*(0?\.\d+|1(?:\.0+)?)\s*,")
_QUANTILE_FIGURE = {q: name for name, q in QUANTILE_FIGURES.items()}


class OpenSLOError(ValueError):
    """A document that is not OpenSLO v1 as expected; the message names it."""


@dataclass
class ImportResult:
    #: ``{"services": [{"name", "targets", "prometheus"}]}``: a fragment to merge
    fragment: dict[str, Any] = field(default_factory=dict)
    mapped: list[str] = field(default_factory=list)      # "auth-latency -> auth latency_p95_ms"
    unmapped: list[str] = field(default_factory=list)    # "doc: why"


@dataclass
class ExportResult:
    documents: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# -- import ------------------------------------------------------------------------------

def import_documents(docs: Sequence[Mapping[str, Any]], plan: Plan) -> ImportResult:
    """SLO documents (with their SLIs inline or by ``indicatorRef``) -> targets and queries."""
    slis = {}
    for i, d in enumerate(docs):
        kind = _kind(d, i)
        if kind == "SLI":
            slis[_name(d, i)] = d.get("spec") or {}
    out = ImportResult()
    services: dict[str, dict[str, Any]] = {}
    for i, d in enumerate(docs):
        if _kind(d, i) != "SLO":
            continue
        name = _name(d, i)
        try:
            service, figure, limit, queries = _one_slo(d, slis, plan)
        except _Unmapped as e:
            out.unmapped.append(f"SLO {name}: {e}")
            continue
        entry = services.setdefault(service, {"name": service, "targets": {},
                                              "prometheus": {}})
        entry["targets"][figure] = limit
        entry["prometheus"].update(queries)
        out.mapped.append(f"SLO {name} -> {service} {figure} {_words(limit)}")
    for entry in services.values():
        if not entry["prometheus"]:
            del entry["prometheus"]
    if services:
        out.fragment = {"services": list(services.values())}
    return out


class _Unmapped(Exception):
    pass


def _kind(d: Mapping[str, Any], i: int) -> str:
    if not isinstance(d, Mapping):
        raise OpenSLOError(f"document {i + 1}: expected a mapping, got {type(d).__name__}")
    if d.get("apiVersion") != API:
        raise OpenSLOError(f"document {i + 1}: expected apiVersion {API}, got "
                           f"{d.get('apiVersion')!r}")
    kind = d.get("kind")
    if not isinstance(kind, str):
        raise OpenSLOError(f"document {i + 1}: expected a kind (SLO, SLI, ...)")
    return kind


def _name(d: Mapping[str, Any], i: int) -> str:
    name = (d.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise OpenSLOError(f"document {i + 1} ({d.get('kind')}): expected metadata.name")
    return name


def _one_slo(d: Mapping[str, Any], slis: Mapping[str, Any],
             plan: Plan) -> tuple[str, str, dict[str, float], dict[str, str]]:
    spec = d.get("spec") or {}
    service = spec.get("service")
    names = [s.name for s in plan.services]
    if service not in names:
        raise _Unmapped(f"service {service!r} is not in the plan ({', '.join(names)})")
    indicator = _indicator(spec, slis)
    objectives = spec.get("objectives") or []
    if len(objectives) != 1 or not isinstance(objectives[0], Mapping):
        raise _Unmapped(f"expected one objective, got {len(objectives)}")
    objective = objectives[0]
    if "ratioMetric" in indicator:
        return (service, *_ratio(indicator["ratioMetric"], objective))
    if "thresholdMetric" in indicator:
        return (service, *_threshold(indicator["thresholdMetric"], objective))
    raise _Unmapped("expected a ratioMetric or a thresholdMetric indicator")


def _indicator(spec: Mapping[str, Any], slis: Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(spec.get("indicator"), Mapping):
        return spec["indicator"].get("spec") or {}
    ref = spec.get("indicatorRef")
    if ref is None:
        raise _Unmapped("no indicator and no indicatorRef")
    if ref not in slis:
        raise _Unmapped(f"indicatorRef {ref!r} names no SLI document given")
    found: Mapping[str, Any] = slis[ref]
    return found


def _query(metric: Any, where: str) -> str:
    source = (metric or {}).get("metricSource") or {}
    kind = str(source.get("type", ""))
    if kind.lower() != "prometheus":
        raise _Unmapped(f"{where}: data source {kind or 'unnamed'!r}, expected Prometheus")
    query = (source.get("spec") or {}).get("query")
    if not isinstance(query, str) or not query.strip():
        raise _Unmapped(f"{where}: expected spec.query")
    return _RANGE.sub("[{window}]", query.strip())


def _ratio(ratio: Mapping[str, Any],
           objective: Mapping[str, Any]) -> tuple[str, dict[str, float], dict[str, str]]:
    target = _target(objective)
    total = _query(ratio.get("total"), "ratioMetric.total")
    if ratio.get("bad") is not None:
        errors = _query(ratio["bad"], "ratioMetric.bad")
    elif ratio.get("good") is not None:
        errors = f"({total}) - ({_query(ratio['good'], 'ratioMetric.good')})"
    else:
        raise _Unmapped("ratioMetric: expected good or bad beside total")
    return "error_rate", {"max": round(1 - target, 12)}, {"rps": total, "error_rps": errors}


def _threshold(metric: Mapping[str, Any],
               objective: Mapping[str, Any]) -> tuple[str, dict[str, float], dict[str, str]]:
    query = _query(metric, "thresholdMetric")
    op, value = objective.get("op"), objective.get("value")
    if op not in ("lt", "lte"):
        raise _Unmapped(f"objective op {op!r}: only lt and lte (a ceiling) map to a plan "
                        "target")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _Unmapped(f"objective value {value!r}: expected a number")
    m = _HQ.search(query)
    if m is not None:
        q = float(m.group(1))
        if q not in _QUANTILE_FIGURE:
            *most, last = (f"{k:g}" for k in _QUANTILE_FIGURE)
            raise _Unmapped(f"quantile {q}: the plan judges {', '.join(most)} and {last}")
        templated = query[: m.start(1)] + "{quantile}" + query[m.end(1):]
        return _QUANTILE_FIGURE[q], {"max": _ms(value, query)}, {"latency_quantile": templated}
    if "_sum" in query and "_count" in query and "/" in query:
        return "latency_avg_ms", {"max": _ms(value, query)}, {"latency_avg": query}
    if "process_resident_memory_bytes" in query:
        return "memory_mb", {"max": round(value / MIB, 6)}, {"memory_bytes": query}
    if "process_cpu_seconds_total" in query:
        return "cpu_cores", {"max": float(value)}, {"cpu_cores": query}
    raise _Unmapped("thresholdMetric: its query names no figure the plan judges (a latency "
                    "histogram_quantile or average, memory, CPU)")


def _target(objective: Mapping[str, Any]) -> float:
    t = objective.get("target", objective.get("targetPercent"))
    if "targetPercent" in objective and "target" not in objective and isinstance(t, int | float):
        t = t / 100
    if not isinstance(t, int | float) or isinstance(t, bool) or not 0 < t < 1:
        raise _Unmapped(f"objective target {t!r}: expected a share between 0 and 1")
    return float(t)


def _ms(value: float, query: str) -> float:
    seconds = "_seconds" in query or "milli" not in query
    return round(value * 1000, 6) if seconds else float(value)


def _words(limit: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in limit.items())


# -- export ------------------------------------------------------------------------------

def export_documents(plan: Plan, *, queries: Mapping[tuple[str, str], str]) -> ExportResult:
    """The plan's absolute ceilings as SLO documents, one per service and figure.
    ``queries``: ``(service, figure) -> PromQL`` (the caller renders them: slo has no
    query defaults of its own)."""
    out = ExportResult()
    for svc in plan.services:
        settings = plan.settings(svc.name)
        for figure, spec in settings.targets.items():
            if spec.max_ratio_to_baseline is not None:
                out.skipped.append(f"{svc.name} {figure}: max_ratio_to_baseline "
                                   f"{spec.max_ratio_to_baseline:g} is relative to the "
                                   "baseline; OpenSLO has no such objective")
            if spec.min is not None:
                out.skipped.append(f"{svc.name} {figure}: min {spec.min:g} (a floor) is not "
                                   "exported")
            if spec.max is None:
                continue
            doc = _slo(svc.name, figure, spec.max, settings.window, queries)
            if doc is None:
                out.skipped.append(f"{svc.name} {figure}: no query stands behind it")
            else:
                out.documents.append(doc)
    return out


def _slo(service: str, figure: str, limit: float, window: timedelta,
         queries: Mapping[tuple[str, str], str]) -> dict[str, Any] | None:
    def source(q: str) -> dict[str, Any]:
        return {"metricSource": {"type": "Prometheus", "spec": {"query": q}}}

    w = format_duration(window).replace(" ", "")
    if figure == "error_rate":
        bad, total = queries.get((service, "error_rps")), queries.get((service, "rps"))
        if bad is None or total is None:
            return None
        indicator = {"ratioMetric": {"counter": True, "bad": source(bad), "total": source(total)}}
        objective: dict[str, Any] = {"displayName": "error share", "target": round(1 - limit, 12)}
    else:
        q = queries.get((service, figure))
        if q is None:
            return None
        value = limit / 1000 if figure.endswith("_ms") else (
            limit * MIB if figure == "memory_mb" else limit)
        indicator = {"thresholdMetric": source(q)}
        objective = {"displayName": figure, "op": "lte", "value": value, "target": 1}
    return {"apiVersion": API, "kind": "SLO",
            "metadata": {"name": f"{service}-{figure.replace('_', '-')}"},
            "spec": {"service": service,
                     "description": f"cutover target: {figure} at most {limit:g}",
                     "indicator": {"metadata": {"name": f"{service}-{figure.replace('_', '-')}"},
                                   "spec": indicator},
                     "timeWindow": [{"duration": w, "isRolling": True}],
                     "budgetingMethod": "Occurrences", "objectives": [objective]}}

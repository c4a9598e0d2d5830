"""``cutover plan check`` and ``cutover plan schema``."""

from __future__ import annotations

import argparse
import sys

from collectors.logs import suggest
from collectors.logs.registry import format_for
from cutover.context import load_plan
from slo.errors import ConfigError, PlanError
from slo.plan import Plan
from slo.planfile import plan_warnings, schema_json
from slo.units import format_duration


def check(args: argparse.Namespace) -> int:
    try:
        plan, digest = load_plan(args.plan)
    except PlanError as e:
        for problem in e.problems:
            print(f"{e.source}: {problem}", file=sys.stderr)
        return 2
    bad_formats = _format_problems(plan)
    for message in bad_formats:
        print(f"{args.plan}: {message}", file=sys.stderr)
    if bad_formats:
        return 2
    d = plan.defaults
    print(f"{args.plan}: ok ({plan.name}; plan hash {digest})")
    print(f"  baseline {plan.baseline.name} (backend {plan.baseline.backend}); "
          f"router {plan.router.kind}" + (f" in {plan.router.namespace}" if plan.router.namespace else ""))
    print(f"  {len(plan.services)} services, {len(plan.phases)} phases; steps "
          f"{' -> '.join(map(str, d.steps))} %; window {format_duration(d.window)}, "
          f"soak {format_duration(d.min_soak)}, min {d.min_requests} requests")
    for phase in plan.phases:
        names = ", ".join(phase.services) or "(no traffic moves)"
        print(f"  {phase.id}: {phase.name} - {names}")
    sources = (["prometheus"] if plan.sources.prometheus else []) + [
        f"log {s.label} ({s.format})" for s in plan.sources.logs]
    print(f"  sources: {', '.join(sources) or 'none'}; alert channels: "
          f"{', '.join(c.name for c in plan.alerts.channels) or 'none'}")
    for w in plan_warnings(plan):
        print(f"warning: {w}", file=sys.stderr)
    return _live(plan, getattr(args, "at", None)) if getattr(args, "live", False) else 0


def _live(plan: Plan, at_text: str | None) -> int:
    """Every variant's every query asked once (collectors/coverage.py)."""
    from datetime import UTC, datetime

    from collectors.coverage import query_coverage
    from collectors.prometheus import prometheus_connect
    from slo.units import parse_time

    if plan.sources.prometheus is None:
        print("cutover: --live: the plan has no sources.prometheus to ask", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    try:
        at = parse_time(at_text, now=now) if at_text else now
    except ValueError as e:
        raise ConfigError(f"--at: {e}") from None
    prom = prometheus_connect(plan.sources.prometheus)
    if not prom.check_prometheus_connection():
        print(f"cutover: --live: no answer from Prometheus at {plan.sources.prometheus.url}",
              file=sys.stderr)
        return 1
    cov = query_coverage(prom, plan, at)
    for c in cov.checks:
        print(("  ok    " if c.ok else "  FAIL  ") + c.line())
    for variant, interval in cov.coarse:
        print(f"  FAIL  {variant}: the step ({cov.step_seconds:g}s) is below the scrape "
              f"interval (a sample every {interval:g}s): set sources.prometheus.step to at "
              "least that")
    bad = len(cov.missing()) + len(cov.coarse)
    print(f"live: {len(cov.checks) - len(cov.missing())} of {len(cov.checks)} queries answer"
          + (f"; {bad} problem(s)" if bad else ""))
    return 1 if bad else 0


def _format_problems(plan: Plan) -> list[str]:
    """Each log source's format compiled now, so a template that cannot read what cutover
    needs is refused here rather than at the first collection."""
    problems = []
    for i, src in enumerate(plan.sources.logs):
        try:
            format_for(src.format, src.fields)
        except ConfigError as e:
            problems.append(f"sources.logs[{i}].format: {e}")
    return problems


def suggest_logs(args: argparse.Namespace) -> int:
    lines = _first_lines(args.file, args.lines)
    ranked = suggest.fits(lines)
    print(f"{'format':<50}{'lines read':>12}")
    for fit in ranked:
        print(f"{fit.label:<50}{fit.fitted:>7} / {fit.lines}")
    top = ranked[0] if ranked else None
    if top is None or top.fitted == 0:
        print("no known format reads these lines: give the plan the server's own template, "
              "`format: {nginx: '<log_format>'}` or `format: {haproxy: '<httpLogFormat>'}`",
              file=sys.stderr)
        return 1
    if top.fitted < top.lines:
        print(f"warning: {top.lines - top.fitted} of {top.lines} lines fit no format "
              f"(damaged, or another format mixed in): `cutover logs check` names each",
              file=sys.stderr)
    print(f"\nbest fit: {top.label}; the plan's log source:\n")
    print(suggest.snippet(top), end="")
    return 0


def _first_lines(path: str | None, n: int) -> list[bytes]:
    if n < 1:
        raise ConfigError(f"--lines: expected at least 1, got {n}")
    try:
        stream = open(path, "rb") if path else sys.stdin.buffer  # noqa: SIM115
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    with stream:
        return [line for _, line in zip(range(n), stream, strict=False)]


def schema(args: argparse.Namespace) -> int:
    print(schema_json())
    return 0


def import_openslo(args: argparse.Namespace) -> int:
    """OpenSLO documents -> a plan fragment on stdout; what could not be mapped on
    stderr (exit 1 when anything could not)."""
    import yaml

    from slo.openslo import OpenSLOError, import_documents

    plan, _ = load_plan(args.plan)
    docs: list[object] = []
    for path in args.files:
        try:
            with open(path, encoding="utf-8") as f:
                docs += [d for d in yaml.safe_load_all(f) if d is not None]
        except OSError as e:
            raise ConfigError(f"{path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not YAML: {e}") from None
    try:
        result = import_documents(docs, plan)  # type: ignore[arg-type]
    except OpenSLOError as e:
        raise ConfigError(f"{', '.join(args.files)}: {e}") from None
    if result.fragment:
        print("# merge into the plan (cutover plan import-openslo)")
        print(yaml.safe_dump(result.fragment, sort_keys=False, allow_unicode=True), end="")
    for line in result.mapped:
        print(f"mapped: {line}", file=sys.stderr)
    for line in result.unmapped:
        print(f"not mapped: {line}", file=sys.stderr)
    return 1 if result.unmapped else 0


def export_openslo(args: argparse.Namespace) -> int:
    import yaml

    from collectors.explore import base_queries
    from slo.openslo import export_documents

    plan, _ = load_plan(args.plan)
    queries = {}
    for vq in plan.variant_queries():
        if vq.service is not None:
            window = plan.settings(vq.service).window
            for figure, q in base_queries(vq, window=window).items():
                queries[(vq.service, figure)] = q
    result = export_documents(plan, queries=queries)
    text = yaml.safe_dump_all(result.documents, sort_keys=False, allow_unicode=True)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        print(text, end="")
    for line in result.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    print(f"{len(result.documents)} SLO documents", file=sys.stderr)
    return 0

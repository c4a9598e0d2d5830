"""The coverage probe: "100 % of services monitored" as a check the gate weighs.  The
question itself is collectors.coverage.monitoring_coverage (``plan check --live`` asks
its sibling, query_coverage, in the same module)."""

from __future__ import annotations

from collectors.coverage import monitoring_coverage
from collectors.probes.base import Outcome, ProbeContext, ProbeUnreachable
from collectors.prometheus import SourceUnavailable
from slo.probe_specs import CoverageProbe
from slo.verdict import Verdict

__all__ = ["run"]


def run(spec: CoverageProbe, ctx: ProbeContext) -> Outcome:
    if ctx.prom is None:
        raise ProbeUnreachable(spec.name, "the plan has no Prometheus source to ask")
    try:
        coverage = monitoring_coverage(ctx.prom, ctx.plan, ctx.now)
    except SourceUnavailable as e:
        raise ProbeUnreachable(spec.name, f"Prometheus: {e}") from None
    n = len(coverage.variants)
    figures = {"variants": n, "gaps": [g.text() for g in coverage.gaps]}
    if coverage.gaps:
        return Outcome(Verdict.FAIL, tuple(g.text() for g in coverage.gaps),
                       value=len(coverage.gaps), limit=0, figures=figures)
    return Outcome(Verdict.PASS, (f"all {n} variants have live up series and their figures",),
                   value=0, limit=0, figures=figures)

"""The migration-wide success metrics: the plan's ``success_metrics`` against the
candidates' newest figures, summed over services for ``scope: total`` and the worst
service otherwise.  Shared by the dashboard's overview and the phase reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from slo.figure_specs import format_value
from slo.plan import TargetSpec
from slo.probe_results import ProbeRuns

__all__ = ["SuccessResult", "success_metrics", "target_text", "uptime"]


@dataclass(frozen=True)
class SuccessResult:
    figure: str
    target: str
    value: float | None
    met: bool | None        # None: no figures yet (never counted as met)
    basis: str              # how the value was formed, in words

    @property
    def status(self) -> str:
        return "no data" if self.met is None else "met" if self.met else "not met"


def success_metrics(targets: Mapping[str, TargetSpec],
                    candidates: Mapping[str, Mapping[str, float | None]]) -> list[SuccessResult]:
    """One result per target; ``candidates`` maps a service to its figures."""
    out = []
    for figure, spec in targets.items():
        values = {s: v for s, f in candidates.items() if (v := f.get(figure)) is not None}
        value, basis = _aggregate(spec, values)
        out.append(SuccessResult(figure=figure, target=target_text(spec, figure), value=value,
                                 met=None if value is None else meets(spec, value), basis=basis))
    return out


def _aggregate(spec: TargetSpec, values: Mapping[str, float]) -> tuple[float | None, str]:
    if not values:
        return None, "no candidate figures yet"
    if spec.scope == "total":
        return sum(values.values()), f"sum over {len(values)} services"
    pick = min if spec.min is not None and spec.max is None else max
    worst = pick(sorted(values), key=lambda s: values[s])
    return values[worst], f"worst service: {worst}"


def meets(spec: TargetSpec, value: float) -> bool:
    """Within the absolute limits (ratios to a baseline do not apply migration-wide)."""
    return not ((spec.max is not None and value > spec.max)
                or (spec.min is not None and value < spec.min))


def target_text(spec: TargetSpec, figure: str | None = None) -> str:
    """``>= 200 req/s (total)``: the bounds in the figure's own unit (a share in percent,
    as the figure beside it is shown); bare numbers without ``figure``."""
    def bound(v: float) -> str:
        return format_value(figure, v) if figure is not None else f"{v:g}"

    parts = []
    if spec.min is not None:
        parts.append(f">= {bound(spec.min)}")
    if spec.max is not None:
        parts.append(f"<= {bound(spec.max)}")
    if spec.max_ratio_to_baseline is not None:
        parts.append(f"<= {spec.max_ratio_to_baseline:g} x baseline")
    return ", ".join(parts) + (" (total)" if spec.scope == "total" else "")


def uptime(figure: str, spec: TargetSpec, runs: Sequence[ProbeRuns]) -> SuccessResult:
    """A success metric measured by availability probes ("uptime > 99.9 %"): the share of
    the probes' runs that found the service up.  A run that got a wrong answer or no answer
    at all is down; a run that could not look (no credential, a probe error) counts
    neither way; with no run that could look, there is no figure (never a pass)."""
    up = sum(r.passed for r in runs)
    judged = sum(r.judged for r in runs)
    names = ", ".join(r.probe for r in runs)
    unknown = sum(r.unknown for r in runs)
    if not judged:
        return SuccessResult(figure=figure, target=target_text(spec, figure), value=None, met=None,
                             basis=f"no run of {names} could look yet"
                             + (f" ({unknown} could not look)" if unknown else ""))
    share = up / judged
    return SuccessResult(figure=figure, target=target_text(spec, figure), value=share,
                         met=meets(spec, share), basis=_uptime_basis(runs, up, judged, unknown))


def _uptime_basis(runs: Sequence[ProbeRuns], up: int, judged: int, unknown: int) -> str:
    failed = sum(r.failed for r in runs)
    unanswered = sum(r.unanswered for r in runs)
    words = f"{up:,} of {judged:,} runs of {', '.join(r.probe for r in runs)} found it up"
    down = ([f"{failed:,} answered wrongly"] if failed else []) + (
        [f"{unanswered:,} got no answer"] if unanswered else [])
    if down:
        words += f" ({', '.join(down)})"
    firsts = [r.first for r in runs if r.first is not None]
    lasts = [r.last for r in runs if r.last is not None]
    if firsts and lasts:
        words += f", {_when(min(firsts))} to {_when(max(lasts))}"
    if unknown:
        words += f"; {unknown:,} could not look (not counted)"
    return words


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")

"""A phase report as data: built once from the store, rendered into any format.

Everything here is derived from stored evaluations, decisions and events at a stated
moment ``at``; nothing reads a clock, so the same store and ``at`` give the same report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from slo.decommission import Decommission, Standing, decommission
from slo.errors import ReportError
from slo.figure_specs import QUANTILE_FIGURES
from slo.plan import FIGURES, Plan, TargetSpec
from slo.probe_results import ProbeResult, Signoff
from slo.success import SuccessResult, success_metrics, uptime
from store.evaluations import latest_verdict
from store.history import (
    alerts_until,
    applied_steps,
    decisions_until,
    last_applied_until,
    last_fail_since,
    newest_with_traffic,
    rollback_groups,
    step_verdicts,
)
from store.probes import latest_probe_results, probe_runs, signoffs
from store.rollout import get_state
from store.views import evaluation_series

__all__ = ["CriterionResult", "PhaseReport", "RollbackRecord", "ServiceReport", "StepRecord",
           "build_report", "probe_success"]

#: at most this many evaluations per chart (downsampled in the store)
CHART_POINTS = 600
#: figures shown per step, in this order
STEP_FIGURES = (*QUANTILE_FIGURES, "latency_avg_ms", "error_rate", "rps", "requests",
                "memory_mb", "cpu_cores")


@dataclass(frozen=True)
class StepRecord:
    """One traffic step of a service: when it began and ended, what was judged in it."""

    weight: int
    started: datetime
    ended: datetime | None
    verdicts: dict[str, int]               # verdict -> count of evaluations in the step
    closing: dict[str, Any] | None         # the last evaluation in the step (contract shape)
    closing_id: int | None
    closing_at: datetime | None


@dataclass(frozen=True)
class ServiceReport:
    name: str
    title: str
    route: str
    weight: int
    last_step: int
    verdict: str | None
    steps: list[StepRecord]
    targets: dict[str, TargetSpec]
    history: list[tuple[datetime, int]]    # (time, weight) for the step chart
    evaluations: list[tuple[datetime, str, dict[str, Any]]]  # (at, verdict, figures)


@dataclass(frozen=True)
class CriterionResult:
    text: str
    figures: list[str]
    status: str        # met | not met | no data | needs sign-off | signed off
    evidence: str
    probes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PhaseReport:
    plan_name: str
    phase_id: str
    phase_name: str
    starts: str | None
    ends: str | None
    at: datetime
    period_start: datetime | None
    services: list[ServiceReport]
    decisions: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    criteria: list[CriterionResult]
    success: list[SuccessResult]
    ready: bool
    summary: list[str] = field(default_factory=list)
    #: every emergency rollback up to ``at`` (a migration-wide act), oldest first
    rollbacks: list[RollbackRecord] = field(default_factory=list)
    #: the phase decommissions the baseline (``decommission_after``): whether it may
    decommission: Decommission | None = None


@dataclass(frozen=True)
class RollbackRecord:
    """One emergency rollback (a decision group): when, who, why, how it ended, how long
    from the command to every route read back, and what it moved."""

    id: int
    at: datetime
    actor: str
    reason: str
    outcome: str | None      # None: unfinished (its process died; the next one closes it)
    seconds: float | None
    moved: list[str]         # "files 25 -> 0 % applied", one per service it moved

    @property
    def line(self) -> str:
        took = f" in {self.seconds:.2f} s" if self.seconds is not None else ""
        moved = ", ".join(self.moved) or "nothing to move"
        return (f"rollback #{self.id} at {self.at:%Y-%m-%d %H:%M} UTC by {self.actor}: "
                f"{self.outcome or 'unfinished'}{took}; {moved}; why: {self.reason}")


def build_report(*, engine: Engine, plan: Plan, phase_id: str, at: datetime) -> PhaseReport:
    """The report of ``phase_id`` as the store knows it at ``at``."""
    try:
        phase = plan.phase(phase_id)
    except KeyError:
        known = ", ".join(p.id for p in plan.phases)
        raise ReportError(f"no phase {phase_id!r} in the plan; expected one of {known}") from None
    with Session(engine) as session:
        services = [_service_report(session, plan, name, at) for name in phase.services]
        decisions = _decisions(session, phase.services, at)
        alerts = _alerts(session, phase.services, at)
        success = _success_metrics(session, plan, at)
        probed = latest_probe_results(session=session, at=at)
        words = [w for w in signoffs(session=session, phase=phase.id) if w.at <= at]
        rollbacks = _rollbacks(session, plan, at)
        flag = (_decommission(session, plan, rollbacks, phase.decommission_after, at)
                if phase.decommission_after is not None else None)
    criteria = [_criterion(c.text, c.figures, services, probes=c.probes, probed=probed,
                           signed=[w for w in words if w.criterion == c.text])
                for c in phase.criteria]
    starts = [s.steps[0].started for s in services if s.steps]
    ready, summary = _summary(services, decisions, criteria)
    return PhaseReport(
        plan_name=plan.name, phase_id=phase.id, phase_name=phase.name,
        starts=phase.starts.isoformat() if phase.starts else None,
        ends=phase.ends.isoformat() if phase.ends else None,
        at=at, period_start=min(starts) if starts else None, services=services,
        decisions=decisions, alerts=alerts, criteria=criteria, success=success,
        ready=ready, summary=summary, rollbacks=rollbacks, decommission=flag,
    )


# -- per service ----------------------------------------------------------------------

def _service_report(session: Session, plan: Plan, name: str, at: datetime) -> ServiceReport:
    svc = plan.service(name)
    settings = plan.settings(name)
    history = applied_steps(session=session, service=name, at=at)
    state = get_state(session=session, service=name)
    weight = history[-1][1] if history else (state.weight if state else 0)
    latest = latest_verdict(session=session, service=name, at_or_before=at)
    # charts take a downsampled series: six weeks of evaluations stay a few hundred points
    series = evaluation_series(session=session, service=name, end=at, max_points=CHART_POINTS)
    return ServiceReport(
        name=name, title=svc.title or name, route=svc.route, weight=weight,
        last_step=settings.steps[-1], verdict=latest.verdict.value if latest else None,
        steps=_steps(session, name, history, at), targets=settings.targets, history=history,
        evaluations=[(p.at, p.verdict, {"baseline": p.baseline, "candidate": p.candidate})
                     for p in series],
    )


def _steps(session: Session, service: str, history: list[tuple[datetime, int]],
           at: datetime) -> list[StepRecord]:
    out = []
    for i, (started, weight) in enumerate(history):
        ended = history[i + 1][0] if i + 1 < len(history) else None
        until = ended if ended is not None and ended <= at else None
        # an evaluation is filed under the weight it was made at: the one that led to an
        # auto-revert belongs to the step it failed (up to and with the moment it ended),
        # not to the 0 % that followed
        counts, closing = step_verdicts(session=session, service=service, weight=weight,
                                        started=started, until=until, at=at)
        out.append(StepRecord(
            weight=weight, started=started, ended=ended, verdicts=counts,
            closing={"verdict": closing.verdict, "figures": closing.figures,
                     "checks": closing.checks, "reasons": closing.reasons} if closing else None,
            closing_id=closing.id if closing else None,
            closing_at=closing.at if closing else None,
        ))
    return out


def _decisions(session: Session, services: list[str], at: datetime) -> list[dict[str, Any]]:
    return [d.contract() for d in decisions_until(session=session, services=services, at=at)]


def _alerts(session: Session, services: list[str], at: datetime) -> list[dict[str, Any]]:
    return [{"at": e.at, "service": e.service, "kind": e.kind, "severity": e.severity,
             "summary": e.summary,
             "deliveries": "; ".join(e.deliveries) or
             ("no channel takes it" if e.dispatched else "not yet dispatched")}
            for e in alerts_until(session=session, services=services, at=at)]


def _rollbacks(session: Session, plan: Plan, at: datetime) -> list[RollbackRecord]:
    """The rollback groups up to ``at``; what each moved in plan order (its members
    were patched at once, so their ids say nothing)."""
    order = {s.name: i for i, s in enumerate(plan.services)}
    out = []
    for g in rollback_groups(session=session, at=at):
        members = sorted(g.members, key=lambda d: (order.get(d.service, len(order)), d.id))
        out.append(RollbackRecord(
            id=g.id, at=g.at, actor=g.actor, reason=g.reason, outcome=g.outcome,
            seconds=g.seconds,
            moved=[f"{d.service} {d.from_weight} -> {d.to_weight} % {d.state}"
                   for d in members]))
    return out


def _decommission(session: Session, plan: Plan, rollbacks: list[RollbackRecord],
                  soak: timedelta, at: datetime) -> Decommission:
    standings = [_standing(session, plan, svc.name, at) for svc in plan.services]
    return decommission(standings, [(r.at, f"rollback #{r.id} at {r.at:%Y-%m-%d %H:%M} UTC")
                                    for r in rollbacks], soak=soak, at=at)


def _standing(session: Session, plan: Plan, service: str, at: datetime) -> Standing:
    """Where ``service`` stands at ``at``: its weight from the applied decisions, since
    when at its last step, its newest fail there and its newest verdict."""
    last = plan.settings(service).steps[-1]
    applied = last_applied_until(session=session, service=service, at=at)
    weight = applied[1] if applied is not None else 0
    since = applied[0] if applied is not None and weight == last else None
    last_fail = None
    if since is not None:
        last_fail = last_fail_since(session=session, service=service, weight=last,
                                    since=since, at=at)
    latest = latest_verdict(session=session, service=service, at_or_before=at)
    return Standing(service=service, weight=weight, last_step=last, since=since,
                    last_fail=last_fail,
                    latest=latest.verdict.value if latest else None)


# -- criteria, success metrics, summary -------------------------------------------------

def _criterion(text: str, figures: list[str], services: list[ServiceReport], *,
               probes: list[str], probed: dict[str, ProbeResult],
               signed: list[Signoff]) -> CriterionResult:
    """Met, not met or no data from the figures and the probes that give evidence for
    it; with neither, a person's sign-off (or the need for one)."""
    if not figures and not probes:
        if signed:
            return CriterionResult(text, figures, "signed off", "; ".join(
                f"signed off by {w.actor} at {w.at:%Y-%m-%d %H:%M} UTC: {w.note}"
                for w in signed))
        return CriterionResult(text, figures, "needs sign-off",
                               "no figure measures this: a person confirms it")
    parts = [_by_figures(figures, services)] if figures else []
    parts += [_by_probe(name, probed.get(name)) for name in probes]
    statuses = [status for status, _ in parts]
    status = ("not met" if "not met" in statuses else "no data" if "no data" in statuses
              else "met")
    evidence = "; ".join(e for st, e in parts if st == status or status == "met")
    return CriterionResult(text, figures, status, evidence, probes=list(probes))


def _by_probe(name: str, result: ProbeResult | None) -> tuple[str, str]:
    if result is None:
        return "no data", f"probe {name} has not run"
    status = {"pass": "met", "fail": "not met"}.get(result.verdict.value, "no data")
    return status, (f"probe {name} {result.verdict.value} at {result.at:%Y-%m-%d %H:%M} UTC: "
                    + "; ".join(result.reasons[:3]))


def _by_figures(figures: list[str], services: list[ServiceReport]
                ) -> tuple[str, str]:
    verdicts = []
    for svc in services:
        closing = next((s.closing for s in reversed(svc.steps) if s.closing), None)
        if closing is None:
            continue
        for check in closing["checks"]:
            if check["name"] in figures:
                verdicts.append((svc.name, check["name"], check["verdict"], check.get("detail", "")))
    if not verdicts:
        return "no data", "no evaluation checked " + ", ".join(figures)
    bad = [v for v in verdicts if v[2] != "pass"]
    status = "met" if not bad else ("not met" if any(v[2] == "fail" for v in bad) else "no data")
    shown = bad or verdicts
    return status, "; ".join(f"{s} {n}: {v}" + (f" ({d})" if d else "") for s, n, v, d in shown)


def _success_metrics(session: Session, plan: Plan, at: datetime) -> list[SuccessResult]:
    """Against each service's newest evaluation with traffic on the candidate."""
    latest: dict[str, dict[str, Any]] = {}
    for svc in plan.services:
        figures = newest_with_traffic(session=session, service=svc.name, at=at)
        if figures is not None:
            latest[svc.name] = figures.get("candidate", {})
    return success_metrics(plan.success_targets(), latest) + _probe_success(session, plan, at)


def probe_success(*, engine: Engine, plan: Plan, at: datetime) -> list[SuccessResult]:
    """The success metrics probes measure (uptime) as of ``at``, for a page that shows
    the figures' own (``dashboard.status.success_rows``) and wants these beside them."""
    with Session(engine) as session:
        return _probe_success(session, plan, at)


def _probe_success(session: Session, plan: Plan, at: datetime) -> list[SuccessResult]:
    return [uptime(name, spec, probe_runs(session=session, probes=probes, until=at))
            for name, (spec, probes) in plan.success_probes().items()]


def _summary(services: list[ServiceReport], decisions: list[dict[str, Any]],
             criteria: list[CriterionResult]) -> tuple[bool, list[str]]:
    reasons = []
    for s in services:
        if s.weight < s.last_step:
            reasons.append(f"{s.name} is at {s.weight} %, not yet at {s.last_step} %")
        elif s.verdict != "pass":
            reasons.append(f"{s.name} is at {s.weight} % but its latest verdict is "
                           f"{s.verdict or 'missing'}")
    # a refused attempt changed nothing: it is on record, not open
    open_ = [d for d in decisions if d["state"] not in ("applied", "refused")]
    for d in open_:
        reasons.append(f"decision #{d['id']} on {d['service']} is {d['state']}")
    for c in criteria:
        if c.status in ("not met", "no data"):
            reasons.append(f"criterion '{c.text}': {c.status}")
    if not services:
        reasons.append("no traffic moves in this phase: its criteria need a person's sign-off")
    ready = not reasons
    if ready:
        signoff = [c.text for c in criteria if c.status == "needs sign-off"]
        reasons = ["every service of the phase is at its last step with a pass verdict"
                   + (f"; {len(signoff)} criteria need a person's sign-off" if signoff else "")]
    return ready, reasons


assert set(STEP_FIGURES) == set(FIGURES)

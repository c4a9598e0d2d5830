"""An operator's action: what it would change, and doing it through ``rollout``.

A :class:`Proposal` is fixed when the confirmation opens (the weight the operator saw);
:func:`perform` hands that weight to the gate as the decision's ``from_weight``, so a
change made by someone else meanwhile is refused and reported as such (and kept on
record) instead of being stepped over.  A revert to 0 is never refused for that: it goes
back to the baseline from wherever the service is.  The gate checks everything again
(verdict, soak, operator) and has the last word."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Engine

from rollout import baseline, gate, rollback
from rollout.routers import build_router
from rollout.state import DecisionOutcome
from slo.errors import (
    ConfigError,
    ConflictError,
    CutoverError,
    GateError,
    RouterError,
    StaleError,
)
from slo.plan import Plan
from store.views import StateView

__all__ = ["ActionKind", "ActionResult", "Outcome", "Proposal", "baseline_capacity", "perform",
           "propose", "roll_back_all", "rollback_preview", "rollback_row"]

log = logging.getLogger(__name__)


class ActionKind(StrEnum):
    APPROVE = "approve"              # the next step, if the gate allows
    OVERRIDE = "override"            # the next step past a verdict that is not pass
    REVERT = "revert"                # one step back
    REVERT_ALL = "revert-to-0"       # everything back to the baseline


class Outcome(StrEnum):
    APPLIED = "applied"      # the router took the new weight and the store says so
    REFUSED = "refused"      # the gate said no (verdict, soak, operator, ...)
    CHANGED = "changed"      # the service moved under us: nothing was done
    FAILED = "failed"        # the router or the store failed: see the message


@dataclass(frozen=True)
class Proposal:
    kind: ActionKind
    service: str
    route: str
    from_weight: int
    to_weight: int
    version: int = 0     # the state's version when the operator looked

    @property
    def sentence(self) -> str:
        """``auth: 25 % → 50 % on route nanopore-auth``."""
        return (f"{self.service}: {self.from_weight} % → {self.to_weight} % "
                f"on route {self.route}")

    @property
    def verb(self) -> str:
        return {ActionKind.APPROVE: "Approve", ActionKind.OVERRIDE: "Override and approve",
                ActionKind.REVERT: "Revert", ActionKind.REVERT_ALL: "Revert to 0 %"}[self.kind]


@dataclass(frozen=True)
class ActionResult:
    outcome: Outcome
    message: str
    proposal: Proposal
    weight: int | None = None      # the stored weight after the action, if known


def propose(plan: Plan, service: str, state: StateView | None,
            kind: ActionKind) -> Proposal | None:
    """The change ``kind`` would make to ``service`` now, or None when there is none."""
    settings, svc = plan.settings(service), plan.service(service)
    weight = state.weight if state else 0
    if kind in (ActionKind.APPROVE, ActionKind.OVERRIDE):
        to = settings.next_step(weight)
    elif kind is ActionKind.REVERT:
        to = settings.previous_step(weight) if weight > 0 else None
    else:  # also when the store says 0 but the route was moved by hand: put it back
        drifted = state is not None and state.router_weight not in (None, 0)
        to = 0 if weight > 0 or drifted else None
    if to is None:
        return None
    return Proposal(kind=kind, service=service, route=svc.route, from_weight=weight,
                    to_weight=to, version=state.version if state else 0)


def perform(*, engine: Engine, plan: Plan, proposal: Proposal, actor: str, reason: str,
            current: StateView | None, now: datetime,
            actor_source: str = "unknown") -> ActionResult:
    """Do ``proposal`` as ``actor``; the gate refuses it if the step moved since it was
    made (``current``: the state now, for the weight shown after a refusal)."""
    if not reason.strip():
        return ActionResult(Outcome.REFUSED, "a reason is required", proposal)
    shown = current.weight if current else None
    try:
        outcome = _call_gate(engine=engine, plan=plan, proposal=proposal, actor=actor,
                             actor_source=actor_source, reason=reason.strip(), now=now)
    except StaleError as e:
        return ActionResult(Outcome.CHANGED, f"{proposal.service} {e.reason}", proposal,
                            weight=e.current)
    except ConflictError:
        return ActionResult(Outcome.CHANGED, f"{proposal.service} changed under you while "
                            "you were deciding; nothing was done: look again", proposal,
                            weight=shown)
    except GateError as e:
        return ActionResult(Outcome.REFUSED, f"the gate refused: {e.reason}", proposal)
    except ConfigError as e:
        return ActionResult(Outcome.REFUSED, str(e), proposal)
    except RouterError as e:
        return ActionResult(Outcome.FAILED, f"the router failed: {e}", proposal)
    except CutoverError as e:
        return ActionResult(Outcome.FAILED, str(e), proposal)
    return _result(proposal, outcome)


def _call_gate(*, engine: Engine, plan: Plan, proposal: Proposal, actor: str, reason: str,
               now: datetime, actor_source: str) -> DecisionOutcome:
    router = build_router(plan, engine)
    common: dict[str, Any] = dict(engine=engine, plan=plan, router=router,
                                  service=proposal.service, actor=actor, reason=reason,
                                  actor_source=actor_source, now=now)
    if proposal.kind is ActionKind.REVERT_ALL:   # a rollback: from wherever it is now
        return gate.revert(to="0", **common)
    # the weight the operator saw: the gate refuses if the step has moved since
    common["from_weight"] = proposal.from_weight
    if proposal.kind in (ActionKind.APPROVE, ActionKind.OVERRIDE):
        return gate.approve(override=proposal.kind is ActionKind.OVERRIDE, **common)
    return gate.revert(to="previous", **common)


def _result(proposal: Proposal, outcome: DecisionOutcome) -> ActionResult:
    """The gate's answer in the dashboard's words."""
    if outcome.ok:
        weight = outcome.read_back if outcome.read_back is not None else outcome.to_weight
        note = " (recorded as an override)" if outcome.override else ""
        return ActionResult(Outcome.APPLIED, f"applied{note}: the route now sends {weight} % "
                            f"to the candidate (decision #{outcome.decision_id})",
                            proposal, weight=weight)
    return ActionResult(Outcome.FAILED, outcome.message or f"the decision is {outcome.state}",
                        proposal)


# -- the emergency rollback --------------------------------------------------------------

def rollback_preview(*, plan: Plan, engine: Engine) -> rollback.Preview:
    """What "Roll back everything" would move now, and the baseline's capacity."""
    return rollback.preview(plan, engine=engine, router=build_router(plan, engine))


def baseline_capacity(*, plan: Plan, engine: Engine) -> baseline.Capacity | str | None:
    """Can the baseline take 100 % back now: its Deployment's replicas (no route is read).
    None where nothing is read (the dry-run router, or no ``baseline.min_replicas``); the
    reason in words when the cluster cannot even be reached."""
    try:
        return baseline.read(baseline.reader_for(plan, build_router(plan, engine)))
    except CutoverError as e:
        return str(e)


def roll_back_all(*, plan: Plan, engine: Engine, actor: str, reason: str, scale: bool,
                  wait: bool, now: datetime,
                  on_result: Callable[[rollback.ServiceResult], None] | None = None,
                  ) -> rollback.Rollback | str:
    """Every service to 0 % as ``actor``; the rollback, or the refusal in words (not an
    operator, no reason, a store or cluster that cannot be reached)."""
    said: list[str] = []
    try:
        return rollback.emergency(engine=engine, plan=plan, router=build_router(plan, engine),
                                  actor=actor, reason=reason.strip(), now=now,
                                  scale_baseline=scale, wait=wait, say=said.append,
                                  on_result=on_result)
    except GateError as e:
        return f"the gate refused: {e.reason}"
    except CutoverError as e:
        return str(e)


def rollback_row(r: rollback.ServiceResult) -> dict[str, object]:
    """One service's outcome, for a table."""
    return {"service": r.service, "route": r.route, "from": f"{r.from_weight} %",
            "result": r.result.value, "route reads": "-" if r.read_back is None
            else f"{r.read_back} %", "after": f"{r.seconds:.2f} s", "message": r.message}

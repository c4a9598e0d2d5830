"""An operator's action: what it would change, and doing it through ``rollout``.

A :class:`Proposal` is fixed when the confirmation opens (the weight the operator saw);
:func:`perform` checks the store still says so before asking the gate, so a change made
by someone else meanwhile is reported as such instead of being stepped over.  The gate
checks everything again (verdict, soak, operator, version) and has the last word."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Engine

from slo.errors import ConflictError, CutoverError, GateError, RouterError
from slo.plan import Plan
from store.views import StateView

__all__ = ["ActionKind", "ActionResult", "Outcome", "Proposal", "perform", "propose"]

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
    else:
        to = 0 if weight > 0 else None
    if to is None:
        return None
    return Proposal(kind=kind, service=service, route=svc.route, from_weight=weight,
                    to_weight=to)


def perform(*, engine: Engine, plan: Plan, proposal: Proposal, actor: str, reason: str,
            current: StateView | None, now: datetime) -> ActionResult:
    """Do ``proposal`` as ``actor`` unless the store moved since it was made."""
    if not reason.strip():
        return ActionResult(Outcome.REFUSED, "a reason is required", proposal)
    seen = current.weight if current else 0
    if seen != proposal.from_weight:
        return ActionResult(
            Outcome.CHANGED, f"{proposal.service} changed under you: it is at {seen} % now "
            f"(you saw {proposal.from_weight} %); nothing was done", proposal, weight=seen)
    try:
        outcome = _call_gate(engine=engine, plan=plan, proposal=proposal, actor=actor,
                             reason=reason.strip(), now=now)
    except ConflictError as e:
        return ActionResult(Outcome.CHANGED, f"changed under you: {e}; nothing was done",
                            proposal)
    except GateError as e:
        return ActionResult(Outcome.REFUSED, str(e), proposal)
    except RouterError as e:
        return ActionResult(Outcome.FAILED, f"the router failed: {e}", proposal)
    except CutoverError as e:
        return ActionResult(Outcome.FAILED, str(e), proposal)
    except ImportError as e:
        return ActionResult(Outcome.FAILED, f"the rollout package is not available: {e}",
                            proposal)
    return _result(proposal, outcome)


def _call_gate(*, engine: Engine, plan: Plan, proposal: Proposal, actor: str, reason: str,
               now: datetime) -> Any:
    from rollout import gate
    from rollout.routers import build_router

    router = build_router(plan, engine)
    if proposal.kind in (ActionKind.APPROVE, ActionKind.OVERRIDE):
        return gate.approve(engine=engine, plan=plan, router=router, service=proposal.service,
                            actor=actor, reason=reason,
                            override=proposal.kind is ActionKind.OVERRIDE, now=now)
    to = "0" if proposal.kind is ActionKind.REVERT_ALL else "previous"
    return gate.revert(engine=engine, plan=plan, router=router, service=proposal.service,
                       actor=actor, reason=reason, to=to, now=now)


def _result(proposal: Proposal, outcome: Any) -> ActionResult:
    """The gate's answer in the dashboard's words (it says applied, refused or failed)."""
    state = str(getattr(getattr(outcome, "state", None), "value", getattr(outcome, "state", "")))
    message = str(getattr(outcome, "message", "") or getattr(outcome, "reason", "") or "")
    weight = getattr(outcome, "to_weight", None)
    applied = getattr(outcome, "applied", None)
    if applied is True or state == "applied":
        return ActionResult(Outcome.APPLIED, message or f"applied: {proposal.sentence}",
                            proposal, weight=weight if weight is not None else proposal.to_weight)
    if state in ("refused", "") and applied is not True:
        return ActionResult(Outcome.REFUSED, message or "the gate refused", proposal)
    return ActionResult(Outcome.FAILED, message or f"the decision is {state}", proposal)

"""The gate's states and the values it hands back (frozen; the store's rows stay inside
the store).  A decision's action and state, and the record of it, are the store's values
(store/rollout.py), named here too as callers always have."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from slo.units import iso
from store.rollout import Action, DecisionRecord, DecisionState

__all__ = ["Action", "DecisionOutcome", "DecisionRecord", "DecisionState", "RolloutStatus",
           "ServiceStatus", "may_approve"]


class RolloutStatus(StrEnum):
    """Where a service stands at its step (the ``state`` of ``status --json``)."""

    WAITING = "waiting"    # no pass at this step yet, or the step has not soaked
    READY = "ready"        # pass at this step and soaked (or at 0 %): approve may move it
    BLOCKED = "blocked"    # the latest verdict at this step is fail: only override moves it
    PROMOTED = "promoted"  # at the last step: nothing more to approve
    REVERTED = "reverted"  # sent back by a revert; approve starts again from here


def may_approve(status: RolloutStatus, weight: int) -> bool:
    """The approval rule: a step that passed and soaked, or a service reverted to 0 %
    (REVERTED above 0 % still needs its pass and soak like any step)."""
    return status is RolloutStatus.READY or (status is RolloutStatus.REVERTED and weight == 0)


@dataclass(frozen=True)
class ServiceStatus:
    """One row of ``cutover status --json``, plus what the dashboard needs to act."""

    service: str
    phase: str | None
    weight: int
    router_weight: int | None
    drift: bool
    next_weight: int | None
    state: RolloutStatus
    verdict: str | None
    evaluated_at: datetime | None
    why: str                         # the state in words, e.g. "soaking: 4m more of 15m"
    version: int
    step_since: datetime | None = None
    evaluation_id: int | None = None
    router_error: str | None = None
    pending_decision: int | None = None
    #: the current step was reached by an override (a gate said no, an operator went on)
    override: bool = False
    #: the weight and step start the shown verdict was made for
    evaluated_weight: int | None = None
    evaluated_step_since: datetime | None = None

    @property
    def may_approve(self) -> bool:
        return may_approve(self.state, self.weight)

    def contract(self) -> dict[str, Any]:
        return {
            "service": self.service, "phase": self.phase, "weight": self.weight,
            "router_weight": self.router_weight, "drift": self.drift,
            "next_weight": self.next_weight, "state": self.state.value,
            "verdict": self.verdict, "evaluated_at": iso(self.evaluated_at),
            # additions to the contract (it may grow, not break)
            "why": self.why, "version": self.version, "step_since": iso(self.step_since),
            "evaluation_id": self.evaluation_id, "router_error": self.router_error,
            "pending_decision": self.pending_decision, "override": self.override,
            "evaluated_weight": self.evaluated_weight,
            "evaluated_step_since": iso(self.evaluated_step_since),
        }


@dataclass(frozen=True)
class DecisionOutcome:
    """What approve / revert / auto-revert did.  ``decision_id`` is None when nothing was
    recorded (``revert_all`` reports a refused service this way instead of raising)."""

    service: str
    action: Action
    from_weight: int
    to_weight: int
    state: DecisionState
    actor: str
    override: bool = False
    decision_id: int | None = None
    read_back: int | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.state is DecisionState.APPLIED

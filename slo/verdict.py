"""What the judge says: a verdict, the checks behind it, and the reasons in words."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from slo.figures import Figures
from slo.units import iso

__all__ = ["Check", "CheckKind", "Evaluation", "Verdict"]


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - every check holds, with enough data
    FAIL = "fail"                  # a check is broken beyond what noise explains
    INCONCLUSIVE = "inconclusive"  # too little, stale or missing data: never a pass


class CheckKind(StrEnum):
    GATE = "gate"        # enough traffic, soak, data complete and fresh: holds a verdict
    TARGET = "target"    # a figure against the plan's limit or the baseline
    RECENT = "recent"    # the short windows and the regression detectors
    BURN = "burn"        # the error budget's burn-rate pairs


@dataclass(frozen=True)
class Check:
    """One target checked: figure name, its verdict, the numbers and why.  ``kind`` says
    what sort of check it is (the order reasons are shown in); ``wait_seconds``, for an
    inconclusive check, how long until enough data is in at the current traffic.
    Neither is part of the stored contract."""

    name: str
    verdict: Verdict
    baseline: float | None = None
    candidate: float | None = None
    limit: float | None = None
    detail: str = ""
    kind: CheckKind = field(default=CheckKind.TARGET, compare=False)
    wait_seconds: float | None = field(default=None, compare=False)

    def contract(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict.value, "baseline": self.baseline,
                "candidate": self.candidate, "limit": self.limit, "detail": self.detail}


@dataclass(frozen=True)
class Evaluation:
    """A judged service at one time: the ``results[]`` item of ``cutover evaluate --json``."""

    service: str
    phase: str | None
    weight: int
    at: datetime
    verdict: Verdict
    reasons: tuple[str, ...]
    baseline: Figures
    candidate: Figures
    checks: tuple[Check, ...] = ()
    plan_hash: str = ""
    #: seconds until enough data is in at the current traffic, when the judge can say
    wait_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    #: the start of the step the verdict was made for (None: no step has begun);
    #: ``weight`` is that step's weight
    step_since: datetime | None = None

    def contract(self) -> dict[str, Any]:
        return {
            "service": self.service, "phase": self.phase, "weight": self.weight,
            "verdict": self.verdict.value, "reasons": list(self.reasons),
            "figures": {"baseline": self.baseline.contract(),
                        "candidate": self.candidate.contract()},
            "checks": [c.contract() for c in self.checks],
            # second round: the step the verdict was made for (ARCHITECTURE)
            "step_since": iso(self.step_since),
        }

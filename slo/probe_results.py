"""What a probe found: a value, detached from the store (``store.probes`` converts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slo.verdict import Verdict

__all__ = ["ANSWERED", "ProbeResult", "ProbeRuns", "Signoff"]

#: the figure a run stores when its target did not answer at all (refused, timed out):
#: an availability probe counts such a run as down, not as "could not look"
ANSWERED = "answered"


@dataclass(frozen=True)
class ProbeResult:
    """One run of one probe.  ``value`` is the figure the probe is judged on (seconds,
    a share, a count of mismatches) against ``limit``; ``figures`` hold what it
    measured, by name; ``service`` is None for a phase's probe."""

    probe: str
    kind: str
    at: datetime
    verdict: Verdict
    reasons: tuple[str, ...]
    phase: str | None = None
    service: str | None = None
    value: float | None = None
    limit: float | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0      # how long the probe took to run

    def contract(self) -> dict[str, Any]:
        return {"probe": self.probe, "kind": self.kind,
                "at": self.at.isoformat().replace("+00:00", "Z"),
                "phase": self.phase, "service": self.service, "verdict": self.verdict.value,
                "reasons": list(self.reasons), "value": self.value, "limit": self.limit,
                "figures": self.figures, "seconds": self.seconds}


@dataclass(frozen=True)
class Signoff:
    """A person's word on a criterion no probe or figure measures ("team trained")."""

    phase: str
    criterion: str
    actor: str
    at: datetime
    note: str

    def contract(self) -> dict[str, Any]:
        return {"phase": self.phase, "criterion": self.criterion, "actor": self.actor,
                "at": self.at.isoformat().replace("+00:00", "Z"), "note": self.note}


@dataclass(frozen=True)
class ProbeRuns:
    """One probe's runs over a period, by what they found: what an uptime is made of."""

    probe: str
    passed: int = 0       # the target answered as expected
    failed: int = 0       # it answered, wrongly (status, body, too slow)
    unanswered: int = 0   # it did not answer at all: down
    unknown: int = 0      # the probe could not look (not configured, a probe error)
    first: datetime | None = None
    last: datetime | None = None

    @property
    def judged(self) -> int:
        return self.passed + self.failed + self.unanswered

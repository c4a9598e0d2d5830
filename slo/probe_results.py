"""What a probe found: a value, detached from the store (``store.probes`` converts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slo.verdict import Verdict

__all__ = ["ProbeResult", "Signoff"]


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

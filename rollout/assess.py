"""What the gate would say, and no more: pure functions of a service's step and its
newest verdict (rollout.gate acts on them, rollout.status shows them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rollout.state import (
    RolloutStatus,
)
from slo.plan import ServiceSettings
from slo.units import format_duration
from slo.verdict import Verdict

__all__ = ["Seen", "assess", "seen_at_step", "trailing_failures"]


@dataclass(frozen=True)
class Seen:
    """The verdict the gate rests on: the latest evaluation at the current step."""

    id: int
    verdict: Verdict
    at: datetime
    reason: str
    #: the weight and the step start the verdict was made for (always the current step's)
    weight: int = 0
    step_since: datetime | None = None



# -- the pure part ------------------------------------------------------------------

def assess(*, weight: int, stored_status: str, step_since: datetime | None,
           settings: ServiceSettings, seen: Seen | None,
           now: datetime) -> tuple[RolloutStatus, str]:
    """Where a service stands, and why in words.  READY (and REVERTED at 0 %) may be
    approved without an override."""
    nxt = settings.next_step(weight)
    if nxt is None:
        return RolloutStatus.PROMOTED, f"at the last step ({weight} %): nothing to approve"
    if seen is not None and seen.verdict is Verdict.FAIL:
        return RolloutStatus.BLOCKED, f"the latest verdict at {weight} % is fail: {seen.reason}"
    reverted = stored_status == RolloutStatus.REVERTED.value
    if weight == 0:
        # no candidate traffic, nothing to judge: the first step needs no pass
        if reverted:
            return RolloutStatus.REVERTED, f"reverted to the baseline; approve starts again at {nxt} %"
        return RolloutStatus.READY, f"at 0 %: the first step ({nxt} %) needs no verdict"
    waiting = RolloutStatus.REVERTED if reverted else RolloutStatus.WAITING
    if seen is None:
        return waiting, f"no verdict yet at {weight} %: waiting for data"
    if seen.verdict is not Verdict.PASS:
        return waiting, f"the latest verdict at {weight} % is {seen.verdict.value}: {seen.reason}"
    soaked = now - (step_since or now)
    if soaked < settings.min_soak:
        left = format_duration(settings.min_soak - soaked)
        return waiting, (f"pass, but soaking: {left} more of "
                         f"{format_duration(settings.min_soak)} at {weight} %")
    return RolloutStatus.READY, f"pass at {weight} %, soaked {format_duration(soaked)}"


def seen_at_step(*, weight: int, step_since: datetime | None, evaluation_id: int,
                 evaluated_at: datetime, evaluated_weight: int, verdict: Verdict,
                 reasons: Sequence[str], evaluated_step_since: datetime | None = None
                 ) -> Seen | None:
    """The verdict the gate rests on: the latest evaluation if it was made at this
    weight since this step began (one judged before the step, or at another weight by
    an evaluation racing a step, says nothing about it).  An evaluation that names the
    step it was made for (``evaluated_step_since``) must name this one."""
    if evaluated_weight != weight:
        return None
    if step_since is not None and evaluated_at < step_since:
        return None
    if evaluated_step_since is not None and step_since is not None \
            and evaluated_step_since != step_since:
        return None
    return Seen(id=evaluation_id, verdict=verdict, at=evaluated_at,
                reason=reasons[0] if reasons else "no reason given",
                weight=evaluated_weight, step_since=evaluated_step_since or step_since)


def trailing_failures(verdicts: Sequence[Verdict]) -> int:
    """How many fail verdicts end the list (oldest first)."""
    n = 0
    for v in reversed(verdicts):
        if v is not Verdict.FAIL:
            break
        n += 1
    return n

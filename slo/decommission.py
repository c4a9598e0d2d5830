"""May the baseline be decommissioned?  The guide's week 6 deletes the monolith
(``oc delete deployment nanopore-monolith``); after that, a rollback has nowhere to go.
So it is flagged safe only once every service has been at its last step and passing for
the phase's ``decommission_after``, with no emergency rollback in that time.  Pure: the
standings and the rollbacks come in, the time is passed in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from slo.units import format_duration

__all__ = ["Decommission", "Standing", "decommission"]


@dataclass(frozen=True)
class Standing:
    """One service as the decommission check sees it at a moment."""

    service: str
    weight: int
    last_step: int
    #: when it last reached its last step and stayed there (None: not at it)
    since: datetime | None
    #: its newest fail verdict at its last step since ``since`` (None: none)
    last_fail: datetime | None
    #: its newest verdict (None: never judged)
    latest: str | None


@dataclass(frozen=True)
class Decommission:
    safe: bool
    soak: timedelta
    #: when it becomes safe if nothing changes (None: not foreseeable, or already safe)
    earliest: datetime | None
    reasons: tuple[str, ...]

    @property
    def status(self) -> str:
        return "safe" if self.safe else "not yet"


def decommission(standings: Sequence[Standing], rollbacks: Sequence[tuple[datetime, str]],
                 *, soak: timedelta, at: datetime) -> Decommission:
    """``rollbacks``: each emergency rollback's time and how to name it in words."""
    reasons: list[str] = []
    ready_at: list[datetime] = []
    blocked = False
    for s in standings:
        why, when = _standing(s, soak, at)
        if why:
            reasons.append(why)
        if when is None:
            blocked = True
        else:
            ready_at.append(when)
    recent = [(t, words) for t, words in rollbacks if t > at - soak and t <= at]
    for t, words in recent:
        reasons.append(f"{words}: {format_duration(soak)} without a rollback are needed, "
                       f"until {_when(t + soak)}")
        ready_at.append(t + soak)
    if not standings:
        return Decommission(False, soak, None, ("the plan has no services",))
    if not reasons:
        return Decommission(True, soak, None, (
            f"every service has been at its last step and passing for at least "
            f"{format_duration(soak)}, with no rollback",))
    earliest = None if blocked or not ready_at else max(ready_at)
    return Decommission(False, soak, earliest, tuple(reasons))


def _standing(s: Standing, soak: timedelta, at: datetime) -> tuple[str, datetime | None]:
    """What keeps this service from counting (empty: nothing), and when it will count
    if nothing changes (None: not foreseeable)."""
    if s.since is None or s.weight != s.last_step:
        return f"{s.service} is at {s.weight} %, not at its last step {s.last_step} %", None
    if s.latest != "pass":
        return f"{s.service}'s latest verdict is {s.latest or 'missing'}, not pass", None
    start = max(s.since, s.last_fail) if s.last_fail is not None else s.since
    if at - start >= soak:
        return "", start + soak
    if s.last_fail is not None and s.last_fail >= s.since:
        return (f"{s.service} failed at {s.last_step} % at {_when(s.last_fail)}: passing for "
                f"{format_duration(soak)} is needed, until {_when(start + soak)}"), start + soak
    return (f"{s.service} has been at {s.last_step} % for {format_duration(at - s.since)} "
            f"of {format_duration(soak)}, until {_when(start + soak)}"), start + soak


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")

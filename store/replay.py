"""Figures for a replay that moves forward in time (the backtest), read incrementally.

A replay asks, look after look, for windows that overlap the last look's: the anytime
judge reads each step whole from its start, each burn rule's sequence from the start of
its block, and the detectors and short windows the last minutes before the look.
:func:`store.figures.variant_figures` reads every one of them from the store again at
every look, so a look into a day-long step reads the day again.  :class:`ReplayFigures`
reads each stored minute (gateway log rollups) and each Prometheus step once:

- each (service, variant)'s log minutes, and each target's Prometheus steps, are kept
  from the earliest window start the last look asked for up to the look (a later look
  reads only what is newer; what no window reaches any more is dropped);
- the log totals of a window whose start the last look also asked for (a step's whole
  span, a burn block) are carried over and grown by the new minutes, so a long window
  costs its new minutes, not all of them; a window asked for anew is summed from the
  minutes held in memory;
- the outages of each target are read once and filtered per window.

The figures are the same as :func:`~store.figures.variant_figures` gives for the same
store (tests/rollout/test_backtest.py compares them look by look).  It assumes history
does not change under it: a minute written late, inside a span already read, is not
seen by the replay's later looks (a live worker reads every window fresh).  Memory is
what the longest window of a look holds: a step's minutes and steps since it began.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from sqlmodel import Session

from slo.figures import Figures, combine
from store.figures import VARIANTS
from store.rollups import LogRollup, LogTotals, log_rows, totals_figures
from store.series import (
    PromOutage,
    PromStep,
    prom_collected,
    prom_outages,
    prom_steps,
    series_target,
    steps_figures,
)

__all__ = ["ReplayFigures"]

Row = TypeVar("Row", LogRollup, PromStep)


@dataclass
class _Held(Generic[Row]):
    """Rows of one stream held in memory for the span from ``lo`` to ``hi``, oldest
    first: log minutes in ``[lo, hi)`` (``closed_right`` False) or Prometheus steps in
    ``(lo, hi]`` (True), read through ``load(session, lo, hi)`` with the same bounds."""

    load: Callable[[Session, datetime, datetime], Sequence[Row]]
    time_of: Callable[[Row], datetime]
    closed_right: bool
    lo: datetime | None = None
    hi: datetime | None = None
    rows: list[Row] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    read: int = 0

    def window(self, session: Session, start: datetime, end: datetime) -> list[Row]:
        self._cover(session, start, end)
        find = bisect_right if self.closed_right else bisect_left
        return self.rows[find(self.times, start):find(self.times, end)]

    def drop_before(self, start: datetime) -> None:
        """Forget what no window from ``start`` on reads."""
        if self.lo is None or start <= self.lo:
            return
        cut = (bisect_right if self.closed_right else bisect_left)(self.times, start)
        del self.rows[:cut], self.times[:cut]
        self.lo = start

    def _cover(self, session: Session, start: datetime, end: datetime) -> None:
        if self.lo is None or self.hi is None:
            self._put(0, self.load(session, start, end))
            self.lo, self.hi = start, end
            return
        if start < self.lo:
            self._put(0, self.load(session, start, self.lo))
            self.lo = start
        if end > self.hi:
            self._put(len(self.rows), self.load(session, self.hi, end))
            self.hi = end

    def _put(self, at: int, rows: Sequence[Row]) -> None:
        self.rows[at:at] = rows
        self.times[at:at] = [self.time_of(r) for r in rows]
        self.read += len(rows)


@dataclass
class _Run:
    """The log totals of one window start, over ``[start, end)``."""

    end: datetime
    totals: LogTotals


#: (service, variant, window start)
_Key = tuple[str, str, datetime]


@dataclass
class ReplayFigures:
    """A :class:`rollout.evaluation.FiguresFn` for looks in time order (see the module)."""

    _minutes: dict[tuple[str, str], _Held[LogRollup]] = field(default_factory=dict)
    _steps: dict[str, _Held[PromStep]] = field(default_factory=dict)
    _outages: dict[str, list[PromOutage]] = field(default_factory=dict)
    _collected: dict[tuple[str, str], bool] = field(default_factory=dict)
    _runs: dict[_Key, _Run] = field(default_factory=dict)
    _used: set[_Key] = field(default_factory=set)
    #: per (service, variant) and per target, the earliest start this look asked for
    _earliest_minute: dict[tuple[str, str], datetime] = field(default_factory=dict)
    _earliest_step: dict[str, datetime] = field(default_factory=dict)
    _look: datetime | None = None
    #: minutes summed into totals, against the minutes the windows asked for held
    minutes_summed: int = 0
    minutes_asked: int = 0

    @property
    def rows_read(self) -> int:
        """Log minutes and Prometheus steps read from the store so far."""
        return (sum(h.read for h in self._minutes.values())
                + sum(h.read for h in self._steps.values()))

    def __call__(self, *, session: Session, service: str, variant: str, start: datetime,
                 end: datetime) -> Figures:
        if variant not in VARIANTS:
            raise ValueError(f"expected a variant in {VARIANTS}, got {variant!r}")
        self._next_look(end)
        logs = totals_figures(self._totals(session, (service, variant, start), end),
                              service=service, variant=variant, start=start, end=end)
        if not self._prom(session, service, variant):
            return combine(logs, Figures(start=start, end=end))
        target = series_target(service=service, variant=variant)
        rows = self._held_steps(target).window(session, start, end)
        self._earliest_step[target] = min(self._earliest_step.get(target, start), start)
        prom = steps_figures(rows, self._outages_of(session, target), target=target,
                             service=service, start=start, end=end)
        return combine(logs, prom)

    def _next_look(self, end: datetime) -> None:
        if self._look is not None and end <= self._look:
            return
        # a new look: keep what the last one asked for, drop the rest
        self._runs = {k: r for k, r in self._runs.items() if k in self._used}
        self._used = set()
        for key, earliest in self._earliest_minute.items():
            self._minutes[key].drop_before(earliest)
        for target, since in self._earliest_step.items():
            self._steps[target].drop_before(since)
        self._earliest_minute, self._earliest_step = {}, {}
        self._look = end

    def _totals(self, session: Session, key: _Key, end: datetime) -> LogTotals:
        service, variant, start = key
        self._used.add(key)
        # every window is cut at its step's start, and the step's whole span is asked at
        # every look: what lies before the earliest start of this look is not read again
        first = self._earliest_minute.get((service, variant), start)
        self._earliest_minute[(service, variant)] = min(first, start)
        run = self._runs.get(key)
        if run is None or run.end > end:
            run = _Run(start, LogTotals())
        if run.end < end:
            rows = self._held_minutes(service, variant).window(session, run.end, end)
            self.minutes_summed += len(rows)
            run = _Run(end, run.totals.plus(rows))
        self.minutes_asked += int((end - start).total_seconds() // 60)
        self._runs[key] = run
        return run.totals

    def _held_minutes(self, service: str, variant: str) -> _Held[LogRollup]:
        key = (service, variant)
        if key not in self._minutes:
            self._minutes[key] = _Held(
                lambda s, lo, hi: log_rows(session=s, service=service, variant=variant,
                                           start=lo, end=hi),
                lambda r: r.minute, closed_right=False)
        return self._minutes[key]

    def _held_steps(self, target: str) -> _Held[PromStep]:
        if target not in self._steps:
            self._steps[target] = _Held(
                lambda s, lo, hi: prom_steps(session=s, target=target, after=lo, until=hi),
                lambda r: r.at, closed_right=True)
        return self._steps[target]

    def _outages_of(self, session: Session, target: str) -> list[PromOutage]:
        if target not in self._outages:
            self._outages[target] = prom_outages(session=session, target=target)
        return self._outages[target]

    def _prom(self, session: Session, service: str, variant: str) -> bool:
        key = (service, variant)
        if key not in self._collected:
            self._collected[key] = prom_collected(session=session, service=service,
                                                  variant=variant)
        return self._collected[key]

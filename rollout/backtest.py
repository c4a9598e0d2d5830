"""Backtests: the judge replayed over history, as the worker would have judged it.

At each time from ``start`` to ``end`` every ``every``, each service to evaluate (or the
one asked for) is judged on the store's figures with the step it was on then, taken
from a timeline of step changes: the stored decisions, a file of known weight changes
(CSV or YAML rows of service, weight, since), or the split the gateway's logs show
(``observed``).  Nothing is stored unless asked: a plan change (a tolerance, a window,
``min_requests``) can be tried on a month of history before it is used.

It is incremental three ways: results come one time at a time (printed as they come);
each look reads only the log minutes since the look before for the windows it shares
with it (``store.replay``: a step's whole span, a burn rule's block), so a look into a
day-long step does not read the day again; and with ``store`` each evaluation is written
as it is made, so a backtest cut short keeps what it did and one run again skips the
times already stored for the plan.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session

from rollout.evaluation import (
    FiguresFn,
    StepState,
    _FiguresCache,
    _judge_one,
    evidence_settle,
    services_to_evaluate,
)
from slo.errors import ConfigError
from slo.plan import Plan
from slo.units import parse_time
from slo.verdict import Evaluation, Verdict
from store.db import session_scope
from store.evaluations import save_evaluation, verdict_at
from store.replay import ReplayFigures
from store.rollout import applied_steps_all
from store.rollups import minute_requests

__all__ = ["STEP_SOURCES", "StepChange", "Summary", "backtest", "observed_steps", "steps_from",
           "steps_from_decisions", "steps_from_file", "summarise"]

#: where a backtest's step timeline comes from (or a file's path)
STEP_SOURCES = ("decisions", "observed")
#: the observed split is read over this many minutes at a time
OBSERVED_SPAN = timedelta(minutes=10)


@dataclass(frozen=True)
class StepChange:
    """From ``since`` on, ``service`` sent ``weight`` % to its candidate."""

    service: str
    weight: int
    since: datetime


def steps_from(source: str, *, engine: Engine, plan: Plan, start: datetime, end: datetime
               ) -> list[StepChange]:
    """The timeline named by ``--steps``: decisions, observed, or a file's path."""
    if source == "decisions":
        with session_scope(engine) as s:
            return steps_from_decisions(s)
    if source == "observed":
        with session_scope(engine) as s:
            return observed_steps(s, plan, start=start, end=end)
    return steps_from_file(Path(source), plan)


def steps_from_decisions(session: Session) -> list[StepChange]:
    """Every applied decision, as the step it began (at the time it was applied)."""
    return [StepChange(*row) for row in applied_steps_all(session=session)]


def steps_from_file(path: Path, plan: Plan) -> list[StepChange]:
    """Rows of service, weight, since from a CSV (with a header) or YAML (a list of
    mappings) file; a bad row is a ConfigError naming the row and what is wrong."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"--steps: cannot read {path}: {e.strerror}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        rows = yaml.safe_load(text) or []
        if not isinstance(rows, list):
            raise ConfigError(f"--steps {path}: expected a list of {{service, weight, since}}")
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    known = {s.name for s in plan.services}
    out = []
    for i, row in enumerate(rows, start=1):
        out.append(_step_row(row, i, path, known))
    return sorted(out, key=lambda c: c.since)


def _step_row(row: object, i: int, path: Path, known: set[str]) -> StepChange:
    where = f"--steps {path}, row {i}"
    if not isinstance(row, dict) or not {"service", "weight", "since"} <= set(row):
        raise ConfigError(f"{where}: expected service, weight and since")
    service = str(row["service"])
    if service not in known:
        raise ConfigError(f"{where}: unknown service {service!r}")
    try:
        weight = int(row["weight"])
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: weight {row['weight']!r} is not a whole percentage") from None
    if not 0 <= weight <= 100:
        raise ConfigError(f"{where}: weight {weight} is outside 0..100")
    since = row["since"]
    try:
        at = since if isinstance(since, datetime) else parse_time(str(since), now=datetime.min)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    return StepChange(service, weight, parse_time(at.isoformat(), now=at))


def observed_steps(session: Session, plan: Plan, *, start: datetime, end: datetime
                   ) -> list[StepChange]:
    """The steps the gateway's logs show: per 10 minutes, the candidate's share of each
    service's requests, snapped to the nearest of its plan's steps (or 0 %); a change
    is a step.  A team that moved traffic by hand sees what cutover would have said."""
    out: list[StepChange] = []
    for svc in plan.services:
        steps = [0, *plan.settings(svc.name).steps]
        counts = minute_requests(session=session, service=svc.name,
                                 start=start - timedelta(hours=6), end=end)
        spans: dict[datetime, Counter[str]] = {}
        for minute, variant, n in counts:
            key = _floor(minute, OBSERVED_SPAN)
            spans.setdefault(key, Counter())[variant] += n
        last: int | None = None
        for key in sorted(spans):
            c = spans[key]
            total = c["candidate"] + c["baseline"]
            if total <= 0:
                continue
            share = 100 * c["candidate"] / total
            weight = min(steps, key=lambda s: abs(s - share))
            if weight != last:
                out.append(StepChange(svc.name, weight, key))
                last = weight
    return sorted(out, key=lambda c: c.since)


def _floor(t: datetime, span: timedelta) -> datetime:
    secs = int(span.total_seconds())
    epoch = int(t.timestamp())
    return datetime.fromtimestamp(epoch - epoch % secs, tz=t.tzinfo)


def _states(changes: Sequence[StepChange], at: datetime, settle: timedelta
            ) -> dict[str, StepState]:
    out: dict[str, StepState] = {}
    for c in changes:
        if c.since > at:
            break
        out[c.service] = StepState(c.weight, c.since, settle)
    return out


def backtest(*, engine: Engine, plan: Plan, start: datetime, end: datetime, every: timedelta,
             steps: Sequence[StepChange], service: str | None = None, store: bool = False,
             plan_hash: str = "", figures_fn: FiguresFn | None = None
             ) -> Iterator[Evaluation]:
    """Each service's evaluation at each time, oldest first (see the module).  The
    figures are read incrementally (``store.replay.ReplayFigures``) unless
    ``figures_fn`` says otherwise (``store.figures.variant_figures`` reads every window
    whole at every look, as the worker does)."""
    figures_fn = figures_fn or ReplayFigures()
    if every <= timedelta(0):
        raise ConfigError(f"--every must be positive, got {every}")
    if end < start:
        raise ConfigError(f"--to ({end.isoformat()}) is before --from ({start.isoformat()})")
    known = [s.name for s in plan.services]
    if service is not None and service not in known:
        raise ConfigError(f"unknown service {service!r}; expected one of {', '.join(known)}")
    changes = sorted(steps, key=lambda c: c.since)
    settle = evidence_settle(plan)
    passed: set[_StepKey] = set()
    at = start
    while at <= end:
        yield from _one_time(engine, plan, changes, at, settle=settle, service=service,
                             store=store, plan_hash=plan_hash, figures_fn=figures_fn,
                             passed=passed)
        at += every


#: a service's step: (service, weight, since)
_StepKey = tuple[str, int, datetime | None]


def _one_time(engine: Engine, plan: Plan, changes: Sequence[StepChange], at: datetime, *,
              settle: timedelta, service: str | None, store: bool, plan_hash: str,
              figures_fn: FiguresFn, passed: set[_StepKey]) -> Iterator[Evaluation]:
    """The evaluations at ``at``; ``passed`` holds the steps an earlier time passed (as
    the worker reads them from the store), and gains the ones that pass now."""
    states = _states(changes, at, settle)
    names = [service] if service else services_to_evaluate(
        plan, {k: v.weight for k, v in states.items()})
    with session_scope(engine) as session:
        cache = _FiguresCache(session, figures_fn, at, states)
        done = []
        for name in names:
            step = states.get(name, StepState())
            key = (name, step.weight, step.since)
            if store:
                stored = verdict_at(session=session, service=name, at=at)
                if stored is not None and stored.plan_hash == plan_hash:
                    if stored.verdict is Verdict.PASS:
                        passed.add(key)
                    continue   # stored by an earlier run of this backtest: incremental
            evaluation = _judge_one(plan, name, step, cache, at=at, plan_hash=plan_hash,
                                    passed_before=key in passed and step.weight > 0)
            if evaluation.verdict is Verdict.PASS:
                passed.add(key)
            if store:
                # the evaluation only: no verdict events, so a replay of last month
                # never pages anyone
                save_evaluation(session=session, evaluation=evaluation)
            done.append(evaluation)
    yield from done


# -- the summary ----------------------------------------------------------------------

@dataclass
class Summary:
    """What a backtest says about one service."""

    service: str
    verdicts: Counter[str] = field(default_factory=Counter)
    first_fail: datetime | None = None
    #: times the auto-revert policy would have reverted (its run of fails in one step)
    reverts: list[datetime] = field(default_factory=list)
    #: fails a later look of the same step contradicted (a pass followed)
    contradicted: int = 0


def summarise(evaluations: Sequence[Evaluation], plan: Plan) -> list[Summary]:
    out: dict[str, Summary] = {}
    run: dict[str, int] = {}
    pending: dict[str, int] = {}
    step: dict[str, tuple[int, datetime | None]] = {}
    for e in evaluations:
        s = out.setdefault(e.service, Summary(e.service))
        s.verdicts[e.verdict.value] += 1
        key = (e.weight, e.step_since)
        if step.get(e.service) != key:
            step[e.service], run[e.service], pending[e.service] = key, 0, 0
        if e.verdict is Verdict.FAIL:
            s.first_fail = s.first_fail or e.at
            run[e.service] += 1
            pending[e.service] += 1
            policy = plan.settings(e.service).auto_revert
            if policy.enabled and e.weight > 0 and run[e.service] == policy.after_failures:
                s.reverts.append(e.at)
        else:
            run[e.service] = 0
            if e.verdict is Verdict.PASS:
                s.contradicted += pending[e.service]
                pending[e.service] = 0
    return list(out.values())

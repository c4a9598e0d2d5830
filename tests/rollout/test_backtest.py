"""The backtest's replay of the judge carries what the worker reads from the store: a
step that passed at an earlier look (anytime inference keeps that pass)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from rollout.backtest import StepChange, backtest
from slo.figures import Figures
from slo.plan import Plan
from slo.verdict import Verdict
from tests.rollout.test_evaluation import FakeStore, logs_only, with_inference
from tests.slo.judgekit import AT


@dataclass
class DriftStore(FakeStore):
    """3 req/s on the candidate at 0.3 % errors, then 0.48 % from ``drift``: still within
    the limit (0.55 %), but too close to it for the step's sequence to show it."""

    drift: datetime = AT

    def __call__(self, *, session: Session, service: str, variant: str, start: datetime,
                 end: datetime) -> Figures:
        self.error_share[service] = 0.0048 if end > self.drift else 0.003
        return super().__call__(session=session, service=service, variant=variant,
                                start=start, end=end)


def _verdicts(engine: Engine, plan: Plan, *, since: datetime, first: timedelta
              ) -> list[Verdict]:
    store = DriftStore(candidate_rps=3.0, baseline_rps=27.0, latency_cap=20_000,
                       drift=since + timedelta(hours=3))
    return [e.verdict for e in backtest(
        engine=engine, plan=plan, start=since + first, end=since + timedelta(hours=4),
        every=timedelta(minutes=30), steps=[StepChange("auth", 10, since)], service="auth",
        figures_fn=store)]


def test_a_pass_of_the_step_is_carried_to_its_later_looks(engine: Engine, plan: Plan) -> None:
    anytime = with_inference(plan, "anytime")
    since = AT - timedelta(hours=4)
    # passed at 3 h, before the drift: the later looks keep it
    assert _verdicts(engine, anytime, since=since, first=timedelta(hours=3)) == \
        [Verdict.PASS] * 3
    # replayed from after the drift, no look of the step has passed: the same looks
    # cannot tell
    assert _verdicts(engine, anytime, since=since, first=timedelta(hours=3, minutes=30)) == \
        [Verdict.INCONCLUSIVE] * 2


# -- the incremental replay reads what a fresh read reads ----------------------------------

def _rollups(engine: Engine, *, start: datetime, minutes: int) -> None:
    """Auth's log minutes: 10 % on the candidate, at 0.1 % errors (the monolith 0.3 %),
    5 % from minute 150."""
    from store.db import session_scope
    from store.rollups import RollupDelta, upsert_rollups
    from tests.slo.judgekit import sketch

    deltas = []
    for i in range(minutes):
        minute = start + timedelta(minutes=i)
        for variant, n in (("baseline", 2700 + i % 7), ("candidate", 300 + i % 5)):
            share = 0.003 if variant == "baseline" else 0.05 if i >= 150 else 0.001
            deltas.append(RollupDelta(service="auth", variant=variant, minute=minute,
                                      requests=n, errors=round(n * share), bytes_sent=0,
                                      sketch=sketch(n, median_ms=30.0 + i % 3)))
    with session_scope(engine) as s:
        upsert_rollups(session=s, deltas=deltas)


#: three hours of looks every 5 minutes, through a re-approval (a new step resets every
#: window) and a regression late in a step
SINCE = AT - timedelta(hours=3)
STEPS = [StepChange("auth", 10, SINCE), StepChange("auth", 0, SINCE + timedelta(minutes=50)),
         StepChange("auth", 10, SINCE + timedelta(minutes=55))]


def _looks(engine: Engine, plan: Plan, fn: object) -> list[dict]:
    return [e.contract() | {"at": e.at} for e in backtest(
        engine=engine, plan=logs_only(plan), start=SINCE + timedelta(minutes=5), end=AT,
        every=timedelta(minutes=5), steps=STEPS, service="auth",
        figures_fn=fn)]  # type: ignore[arg-type]


def test_the_incremental_replay_gives_what_a_fresh_read_gives(engine: Engine,
                                                              plan: Plan) -> None:
    """Look by look, every result of the replay that reads only the new minutes equals
    the one that reads every window whole (store.figures.variant_figures), through a
    re-approval (a new step resets every window) and a regression late in a step."""
    from store.figures import variant_figures
    from store.replay import ReplayFigures

    _rollups(engine, start=SINCE, minutes=180)
    replay = ReplayFigures()
    fresh, incremental = _looks(engine, plan, variant_figures), _looks(engine, plan, replay)
    assert len(fresh) == 36 and incremental == fresh
    verdicts = [r["verdict"] for r in fresh]
    assert "pass" in verdicts and verdicts[-1] == "fail", verdicts
    # each stored minute read once (two variants, 180 minutes, but the step's first: the
    # minute it began in holds the previous weight's requests too), where the fresh reads
    # read the windows' minutes at every look; the step's long windows grown by the new
    # minutes only
    assert replay.rows_read == 2 * 179
    assert 0 < replay.minutes_summed < replay.minutes_asked * 0.6, (replay.minutes_summed,
                                                                   replay.minutes_asked)


def test_the_replay_and_a_fresh_read_name_the_same_prometheus_outages(engine: Engine,
                                                                       plan: Plan) -> None:
    """The outages predicate is written once (store.series.outages_in): the worker's
    query only narrows to the target's outages not over before the window, the replay
    reads every outage; both give each look the same ones.  One outage of the
    candidate's queries closed inside the span (named by the looks whose windows reach
    it only), one of the whole Prometheus still open (named by looks before it began
    too)."""
    from store.db import session_scope
    from store.figures import variant_figures
    from store.replay import ReplayFigures
    from store.series import SOURCE, close_outages, open_outage, series_target

    _rollups(engine, start=SINCE, minutes=180)
    closed_at = (SINCE + timedelta(minutes=60), SINCE + timedelta(minutes=70))
    with session_scope(engine) as s:
        target = series_target(service="auth", variant="candidate")
        open_outage(session=s, target=target, kind="requests", outcome="timeout",
                    message="closed-outage", at=closed_at[0])
        close_outages(session=s, target=target, at=closed_at[1])
        open_outage(session=s, target=SOURCE, kind="", outcome="down",
                    message="open-outage", at=SINCE + timedelta(minutes=150))
    fresh = _looks(engine, plan, variant_figures)
    assert _looks(engine, plan, ReplayFigures()) == fresh
    assert len(fresh) == 36
    named = {r["at"]: ("closed-outage" in str(r), "open-outage" in str(r)) for r in fresh}
    # the open one: the first look, 2 h 25 m before it began, and the last
    assert named[SINCE + timedelta(minutes=5)][1] and named[AT][1], named
    # the closed one: the looks whose 10-minute window reaches it (10:00 to 10:20), not
    # those before it began nor after their windows moved past its end
    closed = {at for at, (c, _) in named.items() if c}
    assert closed == {closed_at[0] + timedelta(minutes=5 * i) for i in range(5)}, closed

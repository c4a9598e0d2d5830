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
from tests.rollout.test_evaluation import FakeStore
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
    anytime = plan.model_copy(update={"defaults": plan.defaults.model_copy(
        update={"inference": "anytime"})})
    since = AT - timedelta(hours=4)
    # passed at 3 h, before the drift: the later looks keep it
    assert _verdicts(engine, anytime, since=since, first=timedelta(hours=3)) == \
        [Verdict.PASS] * 3
    # replayed from after the drift, no look of the step has passed: the same looks
    # cannot tell
    assert _verdicts(engine, anytime, since=since, first=timedelta(hours=3, minutes=30)) == \
        [Verdict.INCONCLUSIVE] * 2

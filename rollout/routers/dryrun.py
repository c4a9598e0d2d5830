"""The dry-run router: weights kept in the store (table ``dry_run_route``), nothing
changed outside.  The demo uses it; a write to that table by hand plays the part of an
``oc patch`` and shows up as drift like on a real route."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from slo.errors import RouterError
from slo.kinds import RouterKind
from slo.plan import Plan
from store.db import session_scope
from store.rollout import dry_run_weight, set_dry_run_weight

__all__ = ["DryRunRouter"]


class DryRunRouter:
    kind = RouterKind.DRY_RUN

    @classmethod
    def from_plan(cls, plan: Plan, engine: Engine, _api_client: Any) -> DryRunRouter:
        return cls(plan=plan, engine=engine)

    def __init__(self, *, plan: Plan, engine: Engine):
        self._plan = plan
        self._engine = engine

    def read_weight(self, service: str) -> int:
        self._plan.service(service)
        with session_scope(self._engine) as s:
            return dry_run_weight(session=s, service=service)

    def set_weight(self, service: str, weight: int, *, expected: int | None = None) -> int:
        if not 0 <= weight <= 100:
            raise RouterError(service, f"weight {weight} is outside 0..100 (percent)")
        self._plan.service(service)
        with session_scope(self._engine) as s:
            current = dry_run_weight(session=s, service=service)
            if expected is not None and current not in (expected, weight):
                raise RouterError(service, f"changed by someone else: it shows {current} %, "
                                  f"expected {expected} %; not overwriting it", status=409)
            set_dry_run_weight(session=s, service=service, weight=weight,
                               at=datetime.now(UTC))
        return self.read_weight(service)

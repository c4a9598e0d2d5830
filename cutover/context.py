"""Wiring: the plan and the engine a command works with, built once, passed down."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from sqlalchemy.engine import Engine

from slo.errors import ConfigError, PlanError, PlanProblem
from slo.plan import Plan, plan_hash
from slo.planfile import parse_plan
from slo.units import parse_time
from store.db import make_engine, schema_is_current

__all__ = ["Context", "load_plan"]


def load_plan(path: str | os.PathLike[str]) -> tuple[Plan, str]:
    """The plan at ``path`` and its content hash; PlanError names what is wrong."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(str(p), [PlanProblem("", "no such file (set --plan or CUTOVER_PLAN)")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise PlanError(str(p), [PlanProblem("", f"cannot read: {e}")]) from None
    return parse_plan(text, source=str(p)), plan_hash(text)


@dataclass
class Context:
    plan_path: str
    db_url: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Context:
        return cls(plan_path=args.plan, db_url=args.db)

    @cached_property
    def _loaded(self) -> tuple[Plan, str]:
        return load_plan(self.plan_path)

    @property
    def plan(self) -> Plan:
        return self._loaded[0]

    @property
    def plan_hash(self) -> str:
        return self._loaded[1]

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.db_url)

    def ready_engine(self) -> Engine:
        """The engine, after checking the schema is current (else: run db upgrade)."""
        if not schema_is_current(self.engine):
            raise ConfigError(
                f"the store at {_safe_url(self.db_url)} is not at the current schema: "
                "run `cutover db upgrade` first"
            )
        return self.engine

    def time(self, text: str | None) -> datetime:
        if text is None:
            return self.now
        try:
            return parse_time(text, now=self.now)
        except ValueError as e:
            raise ConfigError(str(e)) from None



def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the given database"

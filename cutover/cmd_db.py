"""``cutover db upgrade`` and ``cutover db prune``."""

from __future__ import annotations

import argparse

from cutover.context import Context
from store.db import upgrade as upgrade_schema


def upgrade(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    upgrade_schema(ctx.engine)
    print("store schema is current")
    return 0


def prune(args: argparse.Namespace) -> int:
    from cutover.pending import not_yet

    return not_yet("db prune", issue="production (retention of old rollups)")

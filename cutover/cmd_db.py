"""``cutover db upgrade`` and ``cutover db prune``."""

from __future__ import annotations

import argparse
from datetime import timedelta

from cutover.context import Context
from slo.errors import ConfigError
from slo.units import parse_duration
from store.db import upgrade as upgrade_schema


def upgrade(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    upgrade_schema(ctx.engine)
    print("store schema is current")
    return 0


def prune(args: argparse.Namespace) -> int:
    from store.retention import prune as prune_store

    try:
        older_than = parse_duration(args.older_than)
    except ValueError as e:
        raise ConfigError(f"--older-than: {e}") from None
    if older_than <= timedelta(0):
        raise ConfigError(f"--older-than: expected a positive age like 90d, got {args.older_than!r}")
    ctx = Context.from_args(args)
    counts = prune_store(engine=ctx.ready_engine(), older_than=older_than, now=ctx.now)
    cutoff = (ctx.now - older_than).isoformat(timespec="seconds")
    print(f"pruned rows older than {args.older_than} (before {cutoff}):")
    for table, n in counts.items():
        print(f"  {table}: {n}")
    return 0

"""Figures of a variant over a window, from everything the store holds.

The gateway log rollups are the primary evidence for requests, errors and latency; the
Prometheus series fill in what logs cannot say (memory, CPU) and stand in for the rest
when no log covers the service."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from slo.figures import Figures, combine

__all__ = ["VARIANTS", "variant_figures"]

VARIANTS = ("baseline", "candidate")


def variant_figures(*, session: Session, service: str, variant: str, start: datetime,
                    end: datetime) -> Figures:
    """Figures of ``variant`` ('baseline' or 'candidate') of ``service`` in [start, end)."""
    from store.rollups import log_figures
    from store.series import prom_figures

    if variant not in VARIANTS:
        raise ValueError(f"expected a variant in {VARIANTS}, got {variant!r}")
    logs = log_figures(session=session, service=service, variant=variant, start=start, end=end)
    prom = prom_figures(session=session, service=service, variant=variant, start=start, end=end)
    return combine(logs, prom)

"""Series pulled from Prometheus.  (Placeholder: the Prometheus collector work fills
this in.)"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from slo.figures import Figures


def prom_figures(*, session: Session, service: str, variant: str, start: datetime,
                 end: datetime) -> Figures:
    return Figures(start=start, end=end)

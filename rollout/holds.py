"""Holds: what the cluster's Alertmanager says about a service, as a reason not to step.

An alert firing on a service (recorded by the inbox, alerts/inbox.py) with one of the
inbox's ``hold_severities`` (default critical) holds the service's next approve, with the
alert's name as the reason; ``--override`` goes past it like past a verdict, and says so.
An alert named in the inbox's ``revert_on`` reverts the service to 0 % in the worker's
policy round (actor ``cutover``), whatever its severity.  Reverts are never held."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from slo.plan import Plan
from store.inbox import InboxAlert, firing_alerts

__all__ = ["Hold", "holds", "revert_holds"]


@dataclass(frozen=True)
class Hold:
    service: str
    alertname: str
    severity: str | None
    since: datetime
    revert: bool          # the plan's revert_on names it

    @property
    def reason(self) -> str:
        sev = f" ({self.severity})" if self.severity else ""
        return (f"Alertmanager alert {self.alertname}{sev} firing on {self.service} since "
                f"{self.since.strftime('%Y-%m-%d %H:%M:%S UTC')}")


def _hold(plan: Plan, a: InboxAlert) -> Hold | None:
    inbox = plan.alerts.inbox
    if inbox is None or a.service is None:
        return None
    revert = a.alertname in inbox.revert_on
    if not revert and a.severity not in inbox.hold_severities:
        return None
    return Hold(service=a.service, alertname=a.alertname, severity=a.severity,
                since=a.starts_at, revert=revert)


def holds(*, session: Session, plan: Plan, service: str) -> list[Hold]:
    """What holds ``service``'s next approve now, oldest first."""
    if plan.alerts.inbox is None:
        return []
    found = (_hold(plan, a) for a in firing_alerts(session=session, service=service))
    return [h for h in found if h is not None]


def revert_holds(*, session: Session, plan: Plan) -> dict[str, Hold]:
    """Per service, the oldest firing alert the plan says reverts it."""
    out: dict[str, Hold] = {}
    if plan.alerts.inbox is None or not plan.alerts.inbox.revert_on:
        return out
    for a in firing_alerts(session=session):
        h = _hold(plan, a)
        if h is not None and h.revert:
            out.setdefault(h.service, h)
    return out

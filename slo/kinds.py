"""The kinds of things the plan names and the code switches on, each in one place.

A router kind, a chat channel kind, an event kind: each is a member here.  The plan's
fields are typed with these enums (so ``plan schema`` and validation list them), the
registries (``rollout.routers.ROUTERS``, ``alerts.notifiers.NOTIFIERS``) are keyed by
them, and ``store.events.record_event`` takes an :class:`EventKind`, so a typo is a type
error, not a silent new kind.  tests/test_kinds.py checks every registry against its
enum.  The values are the strings the plan, the store and ``--json`` have always used."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ChannelKind", "EventKind", "RouterKind"]


class RouterKind(StrEnum):
    """``router.kind``: where traffic weights live."""

    OPENSHIFT_ROUTE = "openshift-route"
    GATEWAY_API = "gateway-api"
    DRY_RUN = "dry-run"


class ChannelKind(StrEnum):
    """``alerts.channels[].kind``: where an alert is sent."""

    SLACK = "slack"
    TEAMS = "teams"
    GOOGLE_CHAT = "google-chat"
    DISCORD = "discord"
    MATTERMOST = "mattermost"
    GENERIC = "generic"
    LOG = "log"
    ALERTMANAGER = "alertmanager"


class EventKind(StrEnum):
    """What the event log records (``events.kind``); a channel's ``events`` names them."""

    # acts
    APPROVED = "approved"
    REVERTED = "reverted"
    AUTO_REVERTED = "auto-reverted"
    OVERRIDE = "override"
    ROLLED_BACK = "rolled-back"
    PHASE_COMPLETE = "phase-complete"
    # conditions and their ends (CONDITIONS below)
    VERDICT_FAILED = "verdict-failed"
    VERDICT_RECOVERED = "verdict-recovered"
    DATA_STALE = "data-stale"
    DATA_RECOVERED = "data-recovered"
    SOURCE_DOWN = "source-down"
    SOURCE_RECOVERED = "source-recovered"
    DRIFT = "drift"
    DRIFT_RESOLVED = "drift-resolved"
    BASELINE_DOWN = "baseline-down"
    BASELINE_RECOVERED = "baseline-recovered"
    PROBE_FAILED = "probe-failed"
    PROBE_RECOVERED = "probe-recovered"
    # `cutover alerts test`
    TEST = "test"


#: an ongoing condition -> the event kind that ends it
CONDITIONS: dict[EventKind, EventKind] = {
    EventKind.VERDICT_FAILED: EventKind.VERDICT_RECOVERED,
    EventKind.DATA_STALE: EventKind.DATA_RECOVERED,
    EventKind.SOURCE_DOWN: EventKind.SOURCE_RECOVERED,
    EventKind.DRIFT: EventKind.DRIFT_RESOLVED,
    EventKind.BASELINE_DOWN: EventKind.BASELINE_RECOVERED,
    EventKind.PROBE_FAILED: EventKind.PROBE_RECOVERED,
}

"""Chat notifiers and the outbox that delivers them.

``alerts.outbox.dispatch`` turns recorded events into deliveries, ``alerts.outbox.deliver``
sends them; ``channels_overview`` describes the plan's channels with masked targets."""

from alerts.channels import ChannelInfo, channels_overview

__all__ = ["ChannelInfo", "channels_overview"]

"""Chat notifiers (and Alertmanager) behind one small Protocol, chosen by kind from :data:`NOTIFIERS`.

Adding a platform: a module with a pure ``payload(message) -> dict`` and one entry here."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from alerts.notifiers import alertmanager, discord, generic, google_chat, mattermost, slack, teams
from alerts.notifiers.base import Notifier, WebhookNotifier, parse_retry_after, resolve_url
from alerts.notifiers.log import LogNotifier
from slo.errors import NotifyError
from slo.kinds import ChannelKind
from slo.plan import AlertChannel

__all__ = ["NOTIFIERS", "Notifier", "build_notifier", "parse_retry_after", "resolve_url"]

Builder = Callable[[AlertChannel, Mapping[str, str]], Notifier]


def _webhook(payload: Callable[..., dict]) -> Builder:  # type: ignore[type-arg]
    def build(channel: AlertChannel, env: Mapping[str, str]) -> Notifier:
        return WebhookNotifier(name=channel.name, url=resolve_url(channel, env), payload=payload)
    return build


def _generic(channel: AlertChannel, env: Mapping[str, str]) -> Notifier:
    secret = None
    if channel.secret_env:
        secret = env.get(channel.secret_env) or None
        if secret is None:
            raise NotifyError(channel.name, f"not configured: environment variable "
                                            f"{channel.secret_env} (signing secret) is not set")
    return WebhookNotifier(name=channel.name, url=resolve_url(channel, env),
                           payload=generic.payload, headers=generic.headers_for(secret),
                           secrets=(secret,) if secret else ())


def _log(channel: AlertChannel, env: Mapping[str, str]) -> Notifier:
    return LogNotifier(name=channel.name, path=channel.path)


NOTIFIERS: dict[ChannelKind, Builder] = {
    ChannelKind.SLACK: _webhook(slack.payload),
    ChannelKind.TEAMS: _webhook(teams.payload),
    ChannelKind.GOOGLE_CHAT: _webhook(google_chat.payload),
    ChannelKind.DISCORD: _webhook(discord.payload),
    ChannelKind.MATTERMOST: _webhook(mattermost.payload),
    ChannelKind.GENERIC: _generic,
    ChannelKind.LOG: _log,
    ChannelKind.ALERTMANAGER: alertmanager.build,
}


def build_notifier(channel: AlertChannel, env: Mapping[str, str] | None = None) -> Notifier:
    """The notifier for ``channel``; NotifyError when its URL or secret is missing."""
    try:
        builder = NOTIFIERS[channel.kind]
    except KeyError:
        raise NotifyError(channel.name, f"unknown channel kind {channel.kind!r}; expected one "
                                        f"of {', '.join(NOTIFIERS)}") from None
    return builder(channel, os.environ if env is None else env)

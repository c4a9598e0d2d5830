"""Who is looking at the dashboard, and whether they may operate.

Three ways to know, tried in this order:

1. OIDC through ``st.login`` when ``.streamlit/secrets.toml`` has an ``[auth]`` section:
   ``st.user`` then carries ``is_logged_in`` and the identity provider's claims.
2. Behind an OpenShift oauth-proxy, the forwarded user header (``X-Forwarded-User``,
   the cluster's user name, else ``X-Forwarded-Email``), but only when
   ``CUTOVER_TRUST_FORWARDED_USER=1`` and Streamlit listens on loopback: without a proxy
   in front, anyone could send that header (``cutover dashboard`` refuses the
   combination; this is the second lock).
3. ``CUTOVER_DASHBOARD_OPERATOR``: a local operator name, for development.

Otherwise the viewer is anonymous and the dashboard is read-only.  Controls are enabled
only for the plan's operators; ``rollout`` checks the actor again when it acts."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import streamlit as st

from dashboard.launch import ENV_TRUST_FORWARDED, is_loopback, trusts_forwarded_user
from slo.plan import Plan

__all__ = ["Identity", "Viewer", "current_viewer", "resolve_viewer"]

log = logging.getLogger(__name__)

ENV_LOCAL_OPERATOR = "CUTOVER_DASHBOARD_OPERATOR"
#: the user name first: it is the cluster's name for the person (what SelfSubjectReview
#: says on the command line, so one ``operators`` entry serves both); the e-mail only
#: where a proxy sends no user name
FORWARDED_HEADERS = ("X-Forwarded-User", "X-Forwarded-Email")


class Identity(StrEnum):
    OIDC = "oidc"             # signed in through st.login
    FORWARDED = "forwarded"   # named by the oauth-proxy in front of us
    LOCAL = "local"           # named by CUTOVER_DASHBOARD_OPERATOR (development)
    ANONYMOUS = "anonymous"   # nobody we can name: read-only


@dataclass(frozen=True)
class Viewer:
    name: str | None
    identity: Identity
    may_operate: bool
    #: [auth] is configured but nobody signed in yet: offer st.login
    can_log_in: bool = False

    @property
    def source(self) -> str:
        """Where the name came from, as decisions record it (rollout.identity.Source)."""
        return _SOURCE[self.identity]

    @property
    def label(self) -> str:
        if self.name is None:
            return "not signed in (read-only)"
        role = "operator" if self.may_operate else "read-only: not an operator of this plan"
        return f"{self.name} ({role}, via {_VIA[self.identity]})"


_SOURCE = {Identity.OIDC: "oidc", Identity.FORWARDED: "oauth-proxy",
           Identity.LOCAL: "env", Identity.ANONYMOUS: "unknown"}
_VIA = {Identity.OIDC: "single sign-on", Identity.FORWARDED: "the OpenShift oauth-proxy",
        Identity.LOCAL: "CUTOVER_DASHBOARD_OPERATOR", Identity.ANONYMOUS: "nothing"}


def resolve_viewer(*, plan: Plan, user_info: Mapping[str, Any], headers: Mapping[str, str],
                   env: Mapping[str, str], address: str = "127.0.0.1") -> Viewer:
    """The viewer from what Streamlit and the environment say (pure, for tests).

    ``address`` is where Streamlit listens: off loopback the forwarded header is ignored
    even when trusted, since it may not have come through the proxy."""
    auth_configured = "is_logged_in" in user_info   # Streamlit adds it only with [auth]
    if auth_configured and user_info.get("is_logged_in"):
        name = _first(user_info, ("email", "preferred_username", "name", "sub"))
        if name:
            return _named(plan, name, Identity.OIDC)
    if trusts_forwarded_user(env) and not is_loopback(address):
        log.warning("%s=1 but the dashboard listens on %r, not loopback: the forwarded "
                    "user header is ignored", ENV_TRUST_FORWARDED, address or "every interface")
    elif trusts_forwarded_user(env):
        name = _first({k.lower(): v for k, v in headers.items()},
                      tuple(h.lower() for h in FORWARDED_HEADERS))
        if name:
            return _named(plan, name, Identity.FORWARDED)
    local = (env.get(ENV_LOCAL_OPERATOR) or "").strip()
    if local:
        return _named(plan, local, Identity.LOCAL)
    return Viewer(name=None, identity=Identity.ANONYMOUS, may_operate=False,
                  can_log_in=auth_configured)


def _first(values: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = values.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _named(plan: Plan, name: str, identity: Identity) -> Viewer:
    return Viewer(name=name, identity=identity, may_operate=plan.may_operate(name))


def current_viewer(plan: Plan) -> Viewer:
    """The viewer of this session.  ``st.user.to_dict()`` never raises, unlike
    ``st.user.is_logged_in`` where no ``[auth]`` is configured."""
    try:
        user_info = st.user.to_dict()
    except Exception:  # an older Streamlit or no session: nobody signed in
        log.debug("st.user is not available", exc_info=True)
        user_info = {}
    try:
        headers: Mapping[str, str] = dict(st.context.headers)
    except Exception:  # AppTest and bare runs have no request headers
        headers = {}
    return resolve_viewer(plan=plan, user_info=user_info, headers=headers, env=os.environ,
                          address=str(st.get_option("server.address") or ""))

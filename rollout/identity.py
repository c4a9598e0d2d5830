"""Who is acting, and where that came from.

On a cluster the command line does not take a name on trust: it asks the Kubernetes API
who its credentials belong to (``SelfSubjectReview``, authentication.k8s.io/v1, GA in
Kubernetes 1.28 / OpenShift 4.15; ``TokenReview`` would need cutover to hold someone
else's token and a cluster-wide grant, so it is not used).  The name is
the user name exactly as the cluster gives it (``ana@example.org`` for an OIDC user,
``system:serviceaccount:nanopore:cutover`` for a service account), which is the form the
plan's ``operators`` are written in.  ``--actor`` and ``CUTOVER_ACTOR`` remain for the
dry-run router and local stores; with a cluster router they are refused unless the plan
says ``router.allow_actor: true`` (then the decision records that the name was typed).

Every decision records ``actor_source``, one of :class:`Source`."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from slo.errors import ConfigError, CutoverError
from slo.plan import Plan

__all__ = ["CLUSTER_ROUTERS", "Identity", "IdentityError", "Source", "cli_identity",
           "self_subject_review"]

#: routers that change a real cluster's traffic
CLUSTER_ROUTERS = frozenset({"openshift-route", "gateway-api"})


class Source(StrEnum):
    SELF_SUBJECT_REVIEW = "selfsubjectreview"  # the cluster, for the CLI's own credentials
    OAUTH_PROXY = "oauth-proxy"                # the dashboard behind OpenShift's oauth-proxy
    OIDC = "oidc"                              # the dashboard's own sign-in (st.login)
    FLAG = "flag"                              # typed: --actor
    ENVIRONMENT = "env"                        # typed: CUTOVER_ACTOR or CUTOVER_DASHBOARD_OPERATOR
    OS_USER = "os-user"                        # the local account (dry-run router, local store)
    SYSTEM = "system"                          # cutover itself (auto-revert)

    @property
    def from_cluster(self) -> bool:
        return self in (Source.SELF_SUBJECT_REVIEW, Source.OAUTH_PROXY)


@dataclass(frozen=True)
class Identity:
    name: str
    source: Source


class IdentityError(CutoverError):
    """The cluster could not say who this is (or said: nobody)."""


def self_subject_review(api_client: Any) -> Identity:
    """Who the API client's credentials belong to."""
    from kubernetes import client

    api = client.AuthenticationV1Api(api_client)
    review = _call("SelfSubjectReview", lambda: api.create_self_subject_review(
        client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1",
                                   kind="SelfSubjectReview")))
    user = getattr(getattr(review, "status", None), "user_info", None)
    name = getattr(user, "username", None)
    if not name:
        raise IdentityError("the cluster's SelfSubjectReview named no user")
    return Identity(name=name, source=Source.SELF_SUBJECT_REVIEW)


def _call(what: str, call: Callable[[], Any]) -> Any:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return call()
    except ApiException as e:
        hint = (" (the ClusterRole cutover-identity grants create on authentication.k8s.io "
                "selfsubjectreviews)")
        raise IdentityError(f"the cluster refused a {what}: HTTP {e.status} {e.reason}"
                            + (hint if e.status == 403 else "")) from None
    except (HTTPError, OSError) as e:
        raise IdentityError(f"could not reach the cluster for a {what}: "
                            f"{type(e).__name__}") from None


def cli_identity(plan: Plan, *, flag: str | None, env: Mapping[str, str] | None = None,
                 api_client: Callable[[], Any] | None = None) -> Identity:
    """The command line's actor.  ``api_client`` builds the kubernetes client (the
    router's), called only for a cluster router."""
    env = os.environ if env is None else env
    typed = (Identity(flag, Source.FLAG) if flag else
             Identity(env["CUTOVER_ACTOR"], Source.ENVIRONMENT) if env.get("CUTOVER_ACTOR")
             else None)
    if plan.router.kind not in CLUSTER_ROUTERS:
        return typed or Identity(getpass.getuser(), Source.OS_USER)
    if typed is not None:
        if plan.router.allow_actor:
            return typed
        raise ConfigError(f"{'--actor' if flag else 'CUTOVER_ACTOR'} is refused with the "
                          f"{plan.router.kind} router: who acts on a cluster is who the "
                          "cluster says (SelfSubjectReview); drop it, or set "
                          "router.allow_actor: true in the plan")
    if api_client is None:
        raise ConfigError("no kubernetes client to ask the cluster who is acting")
    return self_subject_review(api_client())

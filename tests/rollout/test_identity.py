"""Who acts: SelfSubjectReview through the real kubernetes client against
the API fake, the command line's rules for typed names, the dashboard's sources."""

from __future__ import annotations

import pytest

from dashboard.auth import resolve_viewer
from rollout.identity import (
    Identity,
    IdentityError,
    Source,
    cli_identity,
    self_subject_review,
)
from rollout.routers import api_client_for
from slo.errors import ConfigError
from slo.plan import Plan
from tests.support.k8s_fake import FakeApiServer

TOKEN = "sa-token-abc"
ANA = "ana@example.org"


@pytest.fixture
def fake():
    with FakeApiServer(token=None) as api:
        yield api


def _cluster(plan: Plan, **router) -> Plan:
    return plan.model_copy(update={"router": plan.router.model_copy(update={
        "kind": "openshift-route", "namespace": "nanopore", **router})})


def _dry(plan: Plan) -> Plan:
    return plan.model_copy(update={"router": plan.router.model_copy(update={"kind": "dry-run"})})


def test_self_subject_review_names_the_credentials_owner(fake):
    fake.users[TOKEN] = ANA
    assert self_subject_review(api_client_for(fake.url, token=TOKEN)) == Identity(
        ANA, Source.SELF_SUBJECT_REVIEW)
    other = self_subject_review(api_client_for(fake.url, token="someone-else"))
    assert other.name == "system:serviceaccount:nanopore:cutover"


def test_a_cluster_that_cannot_be_reached_says_so():
    api = api_client_for("http://127.0.0.1:9", token=TOKEN)
    api.configuration.retries = 0
    with pytest.raises(IdentityError, match="could not reach the cluster"):
        self_subject_review(api)


def test_typed_names_are_for_the_dry_run_router(plan, fake):
    dry = _dry(plan)
    assert cli_identity(dry, flag=ANA, env={}) == Identity(ANA, Source.FLAG)
    assert cli_identity(dry, flag=None, env={"CUTOVER_ACTOR": ANA}) == Identity(
        ANA, Source.ENVIRONMENT)
    assert cli_identity(dry, flag=None, env={}).source is Source.OS_USER
    cluster = _cluster(plan)
    with pytest.raises(ConfigError, match="CUTOVER_ACTOR is refused"):
        cli_identity(cluster, flag=None, env={"CUTOVER_ACTOR": ANA},
                     api_client=lambda: api_client_for(fake.url))
    fake.users[TOKEN] = ANA
    got = cli_identity(cluster, flag=None, env={},
                       api_client=lambda: api_client_for(fake.url, token=TOKEN))
    assert got == Identity(ANA, Source.SELF_SUBJECT_REVIEW) and got.source.from_cluster
    allowed = _cluster(plan, allow_actor=True)
    assert cli_identity(allowed, flag="lee", env={}) == Identity("lee", Source.FLAG)


def test_the_dashboard_takes_the_proxys_user_name_first(plan):
    v = resolve_viewer(plan=plan, user_info={},
                       headers={"X-Forwarded-User": ANA, "X-Forwarded-Email": "ana@cluster.local"},
                       env={"CUTOVER_TRUST_FORWARDED_USER": "1"})
    assert v.name == ANA and v.may_operate and v.source == "oauth-proxy"
    local = resolve_viewer(plan=plan, user_info={}, headers={},
                           env={"CUTOVER_DASHBOARD_OPERATOR": ANA})
    assert local.source == "env"

"""Who the viewer is: OIDC, the oauth-proxy's header (only when trusted), a local
operator, or nobody."""

from __future__ import annotations

from dashboard.auth import Identity, resolve_viewer

ANA, MALLORY = "ana@example.org", "mallory@example.org"


def test_nobody_is_read_only(plan):
    v = resolve_viewer(plan=plan, user_info={}, headers={}, env={})
    assert (v.name, v.identity, v.may_operate, v.can_log_in) == \
        (None, Identity.ANONYMOUS, False, False)


def test_oidc_signed_in_operator(plan):
    v = resolve_viewer(plan=plan, user_info={"is_logged_in": True, "email": ANA},
                       headers={}, env={})
    assert (v.name, v.identity, v.may_operate) == (ANA, Identity.OIDC, True)


def test_oidc_configured_but_not_signed_in_offers_the_login(plan):
    v = resolve_viewer(plan=plan, user_info={"is_logged_in": False}, headers={}, env={})
    assert v.may_operate is False and v.can_log_in is True


def test_a_user_dict_without_auth_configured_is_not_trusted(plan):
    # AppTest and bare runs fill st.user with an email although no [auth] is configured
    v = resolve_viewer(plan=plan, user_info={"email": ANA}, headers={}, env={})
    assert v.identity is Identity.ANONYMOUS and not v.may_operate


def test_forwarded_header_only_when_trusted(plan):
    headers = {"x-forwarded-email": ANA}
    assert resolve_viewer(plan=plan, user_info={}, headers=headers, env={}).name is None
    v = resolve_viewer(plan=plan, user_info={}, headers=headers,
                       env={"CUTOVER_TRUST_FORWARDED_USER": "1"})
    assert (v.name, v.identity, v.may_operate) == (ANA, Identity.FORWARDED, True)


def test_forwarded_user_when_no_email(plan):
    v = resolve_viewer(plan=plan, user_info={}, headers={"X-Forwarded-User": "lee@example.org"},
                       env={"CUTOVER_TRUST_FORWARDED_USER": "1"})
    assert v.name == "lee@example.org" and v.may_operate


def test_local_operator_for_development(plan):
    v = resolve_viewer(plan=plan, user_info={}, headers={},
                       env={"CUTOVER_DASHBOARD_OPERATOR": f" {ANA} "})
    assert (v.name, v.identity, v.may_operate) == (ANA, Identity.LOCAL, True)


def test_a_named_viewer_who_is_not_an_operator_is_read_only(plan):
    v = resolve_viewer(plan=plan, user_info={}, headers={},
                       env={"CUTOVER_DASHBOARD_OPERATOR": MALLORY})
    assert v.name == MALLORY and not v.may_operate
    assert "not an operator" in v.label


def test_without_operators_in_the_plan_anyone_named_operates(plan):
    # only on the dry-run router: a cluster router's plan must name them (or say any)
    open_plan = plan.model_copy(update={"operators": None, "router": plan.router.model_copy(
        update={"kind": "dry-run"})})
    v = resolve_viewer(plan=open_plan, user_info={}, headers={},
                       env={"CUTOVER_DASHBOARD_OPERATOR": MALLORY})
    assert v.may_operate


def test_oidc_wins_over_a_forged_header(plan):
    v = resolve_viewer(plan=plan, user_info={"is_logged_in": True, "email": MALLORY},
                       headers={"X-Forwarded-Email": ANA},
                       env={"CUTOVER_TRUST_FORWARDED_USER": "1"})
    assert v.name == MALLORY and not v.may_operate

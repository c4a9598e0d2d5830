"""``kind: session``: log in through one variant, use the session through the other (the
cookie it set, or its bearer token), and say whether it held (week 2: "user sessions
maintained during transition")."""

from __future__ import annotations

import json

import httpx

from collectors.probes.base import (
    Outcome,
    ProbeContext,
    ProbeUnreachable,
    describe_error,
    http_client,
    secret,
)
from collectors.probes.http_check import json_at
from slo.errors import ConfigError
from slo.probe_specs import SessionProbe
from slo.verdict import Verdict

__all__ = ["run"]


def _credentials(spec: SessionProbe, ctx: ProbeContext) -> object:
    if spec.login_body_env is None and spec.login_body_file is None:
        return None
    text = secret(ctx, env=spec.login_body_env, file=spec.login_body_file,
                  what=f"probe {spec.name}'s login body")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        where = spec.login_body_env or spec.login_body_file
        raise ConfigError(f"probe {spec.name}: the login body in {where} is not JSON") from None


def run(spec: SessionProbe, ctx: ProbeContext) -> Outcome:
    body = _credentials(spec, ctx)
    with http_client(ctx, spec.timeout.total_seconds()) as http:
        try:
            login = http.post(spec.login_url, json=body)
        except httpx.HTTPError as e:
            raise ProbeUnreachable(spec.name, f"login at {spec.login_url}: "
                                   f"{describe_error(e)}") from None
        if login.status_code >= 400:
            raise ProbeUnreachable(spec.name, f"login at {spec.login_url} answered "
                                   f"{login.status_code}")
        headers = _carry(spec, login)
        http.cookies.clear()   # only what _carry hands over crosses to the other variant
        try:
            check = http.get(spec.check_url, headers=headers)
        except httpx.HTTPError as e:
            raise ProbeUnreachable(spec.name, f"{spec.check_url}: {describe_error(e)}") from None
    figures = {"login_status": login.status_code, "check_status": check.status_code}
    if check.status_code != spec.expect_status:
        return Outcome(Verdict.FAIL, (f"a session made at {spec.login_url} was not honoured at "
                                      f"{spec.check_url}: status {check.status_code}, expected "
                                      f"{spec.expect_status}",), figures=figures)
    return Outcome(Verdict.PASS, (f"a session made at {spec.login_url} held at "
                                  f"{spec.check_url}",), figures=figures)


def _carry(spec: SessionProbe, login: httpx.Response) -> dict[str, str]:
    if spec.carry == "cookie":
        if not login.cookies:
            raise ProbeUnreachable(spec.name, f"login at {spec.login_url} set no cookie")
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in login.cookies.items())}
    try:
        token = json_at(login.json(), spec.token_field)
    except (json.JSONDecodeError, UnicodeDecodeError):
        token = None
    if not isinstance(token, str):
        raise ProbeUnreachable(spec.name, f"login at {spec.login_url} gave no "
                               f"{spec.token_field}")
    return {"Authorization": f"Bearer {token}"}

"""The credential scrub applied to every remote answer's text: what it masks, what it
leaves for people to debug with, and the plan's secrets it is handed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slo.planfile import parse_plan
from slo.redact import known_secrets, redact
from tests.conftest import PLAN_PATH


@pytest.mark.parametrize("text, expected", [
    ("HTTP 500: upstream rejected request with Bearer abc.def-123",
     "HTTP 500: upstream rejected request with Bearer ***"),
    ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
    ('{"authorization": "Bearer tok3n"}', '{"authorization": "Bearer ***"}'),
    ("proxy-authorization=xyz123", "proxy-authorization=***"),
    ("rejected Basic dXNlcjpwYXNz", "rejected Basic ***"),
    ("GET /api/v1/query?token=abcd1234&query=up", "GET /api/v1/query?token=***&query=up"),
    ('{"access_token": "abc", "api_key": "k-1"}', '{"access_token": "***", "api_key": "***"}'),
    ("password: hunter2", "password: ***"),
    ("dial postgresql://cutover:hunter2@db:5432/x", "dial postgresql://cutover:***@db:5432/x"),
    ("sa token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl here", "sa token *** here"),
    ("oauth sha256~Xa1b2C3d4E5f6G7h8 expired", "oauth *** expired"),
])
def test_credentials_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "p95 latency 41.2 ms <= 1.10 x baseline 39.8 ms",
    "Basic checks passed", "basic auth is off", "Bearer of bad news",
    "query refused (HTTP 400): parse error at char 12: unexpected '}'",
    "http://prometheus:9090/api/v1/query_range", "the secret sauce", "token bucket empty",
])
def test_ordinary_words_stay(text: str) -> None:
    assert redact(text) == text


def test_known_secrets_are_masked_wherever_they_are_longest_first() -> None:
    url = "https://hooks.slack.com/services/T0/B0/XYZW"
    text = f"no route for {url} (hook XYZW, token tok-1)"
    assert redact(text, [url, "XYZW", "tok-1", None, ""]) == "no route for *** (hook ***, token ***)"
    assert redact("a abc", ["abc"]) == "a abc"   # too short to search for safely


@settings(max_examples=200, deadline=None)
@given(before=st.text(max_size=40), after=st.text(max_size=40),
       secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=4,
                      max_size=40))
def test_a_known_secret_never_survives(before: str, after: str, secret: str) -> None:
    assert secret not in redact(before + secret + after, [secret])


def test_the_plans_secrets_are_read_from_what_it_names(tmp_path) -> None:
    text = PLAN_PATH.read_text()
    plan = parse_plan(text, source=str(PLAN_PATH))
    hook = tmp_path / "hook"
    extra = plan.alerts.channels[0].model_copy(update={"name": "filed", "url_env": None,
                                                       "url_file": str(hook)})
    plan = plan.model_copy(update={"alerts": plan.alerts.model_copy(
        update={"channels": [*plan.alerts.channels, extra]})})
    env = {"PROMETHEUS_TOKEN": " tok-4711\n", "SLACK_WEBHOOK_URL": "https://hooks/x/y",
           "UNRELATED": "nope"}
    files = {str(hook): "https://teams/filed\n"}
    found = known_secrets(plan, env, files.get)
    assert "tok-4711" in found and "https://hooks/x/y" in found
    assert "https://teams/filed" in found and "nope" not in found
    assert known_secrets(plan, {}) == ()

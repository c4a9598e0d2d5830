"""A key said twice in one mapping of a plan is refused with both lines: YAML's loader
would keep the last one silently."""

from __future__ import annotations

import pytest

from slo.errors import PlanError
from slo.planfile import parse_plan
from tests.conftest import PLAN_PATH


def test_a_key_twice_names_both_lines() -> None:
    text = PLAN_PATH.read_text()
    assert "\ninterval: 30s\n" in text, "the shipped plan's interval line moved"
    text = text.replace("\ninterval: 30s\n", "\ninterval: 30s\ninterval: 5m\n", 1)
    line = text[:text.index("interval: 5m")].count("\n") + 1
    with pytest.raises(PlanError) as e:
        parse_plan(text)
    (problem,) = e.value.problems
    assert problem.line == line
    assert f"key 'interval' appears twice in one mapping (lines {line - 1} and {line})" in \
        problem.message


def test_merge_keys_and_the_same_key_in_two_mappings_are_fine() -> None:
    from slo.planyaml import load

    _, data = load("a: &base {x: 1}\nb:\n  <<: *base\n  y: 2\nc: {x: 3}\n")
    assert data == {"a": {"x": 1}, "b": {"x": 1, "y": 2}, "c": {"x": 3}}

"""``cutover plan check`` fuzzed: every input gets exit 0 or exit 2 with a message, and a
plan it accepts is one the rest of cutover can use (its targets merge, its success
metrics build: the report and the overview run that code).

The inputs are the shipped plan with values replaced, keys dropped or added, and its
text cut, spliced and salted with YAML's sharp edges (aliases, cycles, tags, deep
nesting, bad dates).  Each example has a CPU-time budget (SIGPROF counts this
process's CPU seconds, not the wall clock, so a loaded machine cannot fail it): an
input that hangs the check fails the example instead of the suite."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cutover.cli import main
from cutover.context import load_plan
from slo.planfile import plan_warnings
from slo.planyaml import MAX_BYTES, MAX_DEPTH, MAX_VALUES
from tests.conftest import PLAN_PATH

SHIPPED = PLAN_PATH.read_text()
DATA = yaml.safe_load(SHIPPED)
#: CPU seconds one check may take before the example counts as hung (a check takes
#: a few hundredths of a second; the fuzzed attack hung for good)
CPU_BUDGET = 10.0

SHARP = [
    "&a [*a]", "*nowhere", "!!python/object/apply:os.system ['true']", "!!binary AAAA",
    "2026-02-30", "1e400", "-.inf", ".nan", "0x1F", "0o17", "~", "null", "yes", "''",
    "{a: 1, a: 2}", "? [a, b]\n: c", "[" * 80 + "]" * 80, "\t", "\x00", "\ufeff", "%YAML 1.1",
    "---\n---", "...", "|\n  text", ">-\n  text", "'unterminated", '"\\x"', "- - - -",
    "&x {a: &y [*x]}", "<<: *x", "<<: {max: 1}", "{max: fast}", "{min: 5, max: 1}",
    "{max_ratio_to_baseline: -1}", "{scope: everywhere}", "[10, 25, 25]", "[]", "{}",
]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.dates(), st.sampled_from(["10m", "1h30m", "0s", "-5m", "fast", "ai", "auth", "week-2"]))
#: a figure's limits, right or wrong ({max: fast}, {min: 5, max: 1}, {bogus: 1})
limits = st.dictionaries(st.sampled_from(["max", "min", "max_ratio_to_baseline", "scope",
                                          "bogus"]), scalars, max_size=3)
values = st.recursive(scalars | limits, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(DATA) if p]
#: where the holes were (targets and success metrics): drawn as often as all the rest
LIMIT_PATHS = [p for p in PATHS if "targets" in p or p[0] == "success_metrics"]


def _set(data: Any, path: tuple[Any, ...], value: Any, *, drop: bool = False) -> None:
    node = data
    for part in path[:-1]:
        node = node[part]
    if drop:
        del node[path[-1]]
    else:
        node[path[-1]] = value


@st.composite
def structured(draw: st.DrawFn) -> str:
    """The shipped plan with a few values replaced, dropped or added."""
    data = yaml.safe_load(SHIPPED)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS) | st.sampled_from(LIMIT_PATHS))
        try:
            what = draw(st.sampled_from(["replace", "drop", "add"]))
            if what == "drop":
                _set(data, path, None, drop=True)
            elif what == "add" and isinstance(_get(data, path[:-1]), dict):
                _set(data, (*path[:-1], draw(st.text(max_size=12))), draw(values))
            else:
                _set(data, path, draw(values))
        except (KeyError, IndexError, TypeError):
            continue   # an earlier change removed the path: fine, the plan is mutated
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def textual(draw: st.DrawFn) -> str:
    """The shipped plan's text cut, spliced and salted."""
    text = SHIPPED
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        what = draw(st.sampled_from(["insert", "delete", "truncate"]))
        if what == "insert":
            text = text[:at] + draw(st.sampled_from(SHARP) | st.text(max_size=8)) + text[at:]
        elif what == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)):]
        else:
            text = text[:at]
    return text


class CpuBudgetExceeded(Exception):
    pass


@contextmanager
def cpu_budget(seconds: float) -> Iterator[None]:
    def _over(*_: Any) -> None:
        raise CpuBudgetExceeded(f"plan check used more than {seconds:g} CPU seconds")

    previous = signal.signal(signal.SIGPROF, _over)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def check(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    plan = tmp_path / "fuzzed.yaml"
    plan.write_text(text, encoding="utf-8", errors="surrogatepass")
    capsys.readouterr()
    with cpu_budget(CPU_BUDGET):
        code = main(["plan", "check", "--plan", str(plan)])
    out = capsys.readouterr()
    assert code in (0, 2), f"exit {code}: {out.err[-2000:]}"
    if code == 2:
        assert out.err.strip(), "exit 2 without a message"
        assert "Traceback" not in out.err
    else:
        assert "ok (" in out.out
        parsed, _ = load_plan(plan)   # what report and the overview then do with it
        parsed.success_targets()
        for service in parsed.services:
            parsed.settings(service.name)
        plan_warnings(parsed)
    return code, out.err


FUZZ = settings(max_examples=150, deadline=None, derandomize=False, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.slow
@FUZZ
@given(text=st.one_of(structured(), textual()))
def test_every_input_gets_exit_0_or_2_with_a_message(text: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    check(text, tmp_path, capsys)


# -- the attacks that found the holes, as named cases --------------------------------

def _nested_aliases(levels: int = 12, fan: int = 9) -> str:
    lines = ["name: x", "a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, words", [
    (_nested_aliases(), f"aliases expand to more than {MAX_VALUES:,} values"),
    ("name: x\nsteps: " + "[" * 5000 + "]" * 5000 + "\n", f"nested more than {MAX_DEPTH}"),
    ("name: x\nsteps: &s [1, *s]\n", "a cycle"),
    ("name: x\nsteps: [" + ", ".join(["1"] * (MAX_VALUES + 1)) + "]\n",
     f"more than {MAX_VALUES:,} values"),
    ("name: x\n# " + "x" * MAX_BYTES + "\n", "at most 1,048,576 bytes"),
    ("name: x\nphases: [{id: a, name: b, services: [], starts: 2026-02-30}]\n",
     "day is out of range"),
], ids=["nested-aliases", "5000-deep-list", "alias-cycle", "too-many-values", "over-1-MiB",
        "bad-date"])
def test_the_attacks_get_exit_2_and_say_what_is_wrong(text: str, words: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, err = check(text, tmp_path, capsys)
    assert code == 2 and words in err, err


def test_the_shipped_plan_passes_the_same_check(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert check(SHIPPED, tmp_path, capsys)[0] == 0


def test_the_cpu_budget_stops_a_hung_check() -> None:
    with pytest.raises(CpuBudgetExceeded), cpu_budget(0.2):
        while True:
            pass

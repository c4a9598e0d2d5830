"""Parse plan text (YAML) into a :class:`~slo.plan.Plan`, naming the YAML path and line
of every problem.  Pure: the caller reads the file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import ValidationError

from slo import planyaml
from slo.errors import PlanError, PlanProblem
from slo.plan import PROBE_FIGURES, Plan, TargetOverride
from slo.probe_specs import PROBE_KINDS

__all__ = ["parse_plan", "plan_schema", "plan_warnings", "without_probes"]

Path = tuple[str | int, ...]


def parse_plan(text: str, *, source: str = "plan") -> Plan:
    """Validate ``text``; raise :class:`PlanError` listing every problem with its line."""
    try:
        node, data = planyaml.load(text)
    except planyaml.YamlLimitError as e:
        raise PlanError(source, [PlanProblem("", f"refused: {e}", e.line)]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise PlanError(source, [PlanProblem("", f"not valid YAML: {problem}", line)]) from None
    except ValueError as e:   # a scalar YAML's constructor refuses, as 2026-02-30
        raise PlanError(source, [PlanProblem("", f"not valid YAML: {e}")]) from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise PlanError(source, [PlanProblem("", f"expected a mapping at the top, got {got}", 1)])
    lines = dict(_lines(node, ()))
    try:
        plan = Plan.model_validate(data)
    except ValidationError as e:
        raise PlanError(source, [_problem(err, lines) for err in e.errors()]) from None
    problems = [PlanProblem(_dotted(p), msg, _line(p, lines)) for p, msg in _cross_checks(plan)]
    if problems:
        raise PlanError(source, problems)
    return plan


def without_probes(data: dict[str, Any]) -> dict[str, Any]:
    """Plan data (as loaded from YAML) with every ``probes:`` list and every criterion's
    reference to a probe taken out: the same migration judged on its figures alone."""
    out = dict(data)
    out["services"] = [{k: v for k, v in s.items() if k != "probes"}
                       for s in data.get("services") or []]
    out["phases"] = [_phase_without_probes(p) for p in data.get("phases") or []]
    if "success_metrics" in data:
        out["success_metrics"] = {k: v for k, v in (data["success_metrics"] or {}).items()
                                  if not (isinstance(v, dict) and "probes" in v)}
    return out


def _phase_without_probes(phase: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in phase.items() if k != "probes"}
    criteria = []
    for c in phase.get("criteria") or []:
        if isinstance(c, dict) and "probes" in c:
            c = {k: v for k, v in c.items() if k != "probes"}
            c = c["text"] if set(c) == {"text"} else c
        criteria.append(c)
    if "criteria" in phase:
        out["criteria"] = criteria
    return out


def plan_warnings(plan: Plan) -> list[str]:
    """Things that validate but that a reviewer should see."""
    out = []
    if plan.operators is None:
        out.append("no 'operators' list: every actor may approve and revert (on the "
                   "dry-run router only)")
    elif plan.operators == "any":
        out.append("operators: any: every actor may approve and revert")
    in_phase = {s for p in plan.phases for s in p.services}
    for s in plan.services:
        if s.name not in in_phase:
            out.append(f"service {s.name!r} is in no phase: it will never be evaluated")
    if plan.sources.prometheus is None and not plan.sources.logs:
        out.append("no sources: every verdict will be inconclusive")
    return out


def plan_schema() -> dict[str, Any]:
    """The JSON Schema of the plan file, for editors (yaml-language-server)."""
    schema = Plan.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cutover plan"
    return schema


def schema_json() -> str:
    return json.dumps(plan_schema(), indent=2, sort_keys=True)


# -- cross-references pydantic cannot see ---------------------------------------------

def _cross_checks(plan: Plan) -> Iterator[tuple[Path, str]]:
    names = [s.name for s in plan.services]
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            yield ("services", i, "name"), f"service {name!r} is defined twice"
        seen.add(name)
    phase_ids: set[str] = set()
    owner: dict[str, str] = {}
    for i, phase in enumerate(plan.phases):
        if phase.id in phase_ids:
            yield ("phases", i, "id"), f"phase {phase.id!r} is defined twice"
        phase_ids.add(phase.id)
        for j, svc in enumerate(phase.services):
            if svc not in seen:
                yield ("phases", i, "services", j), f"{svc!r} is not a defined service"
            elif svc in owner:
                yield (("phases", i, "services", j),
                       f"{svc!r} is already in phase {owner[svc]!r}; a service moves in one phase")
            else:
                owner[svc] = phase.id
        if phase.starts and phase.ends and phase.ends < phase.starts:
            yield ("phases", i, "ends"), f"ends {phase.ends} before it starts {phase.starts}"
    yield from _check_upstreams(plan)
    yield from _check_channels(plan)
    yield from _check_probes(plan)
    yield from _check_success(plan)
    if plan.operators is None and plan.router.kind != "dry-run":
        yield ("router", "kind"), (
            f"a {plan.router.kind} router changes real traffic: the plan needs "
            "'operators: [...]' (who may approve and revert, as the cluster names them), "
            "or 'operators: any' to let every actor")
    try:   # each figure's limits are checked as read; here, that they make targets
        plan.success_targets()
    except ValueError as e:
        yield ("success_metrics",), f"do not make targets: {_plain(e)}"
    for i, service in enumerate(plan.services):
        try:
            plan.settings(service.name)
        except ValueError as e:
            yield ("services", i), f"targets do not merge: {_plain(e)}"


def _check_upstreams(plan: Plan) -> Iterator[tuple[Path, str]]:
    base = set(plan.baseline.logs.upstream) if plan.baseline.logs else set()
    for i, svc in enumerate(plan.services):
        if not svc.logs:
            continue
        both = base & set(svc.logs.upstream)
        if both:
            yield (("services", i, "logs", "upstream"),
                   f"{sorted(both)} also names the baseline: a line could not be told apart")


def _check_channels(plan: Plan) -> Iterator[tuple[Path, str]]:
    names: set[str] = set()
    services = {s.name for s in plan.services}
    for i, ch in enumerate(plan.alerts.channels):
        if ch.name in names:
            yield ("alerts", "channels", i, "name"), f"channel {ch.name!r} is defined twice"
        names.add(ch.name)
        for j, svc in enumerate(ch.services or []):
            if svc not in services:
                yield ("alerts", "channels", i, "services", j), f"{svc!r} is not a defined service"


def _check_success(plan: Plan) -> Iterator[tuple[Path, str]]:
    kinds = {p.name: p.kind for _, _, p in plan.probes()}
    for key, raw in plan.success_metrics.items():
        if key in PROBE_FIGURES:
            yield from _check_success_probes(key, raw, kinds)
        elif raw is not None and raw.probes is not None:
            yield ("success_metrics", key, "probes"), (
                f"{key} comes from the evaluations, not from probes; 'probes' is for "
                f"{', '.join(PROBE_FIGURES)}")


def _check_success_probes(key: str, raw: TargetOverride | None, kinds: dict[str, str]
                          ) -> Iterator[tuple[Path, str]]:
    wanted = PROBE_FIGURES[key]
    if raw is None or not raw.probes:
        yield (("success_metrics", key), f"{key} needs 'probes: [...]', the "
               f"{' or '.join(wanted)} probes of the plan whose runs measure it")
        return
    for i, name in enumerate(raw.probes):
        if name not in kinds:
            yield ("success_metrics", key, "probes", i), f"{name!r} is not a probe of the plan"
        elif kinds[name] not in wanted:
            yield (("success_metrics", key, "probes", i),
                   f"{name!r} is a {kinds[name]} probe; {key} is measured by "
                   f"{' or '.join(wanted)} probes")
    for field in ("min", "max"):
        value = getattr(raw, field)
        if value is not None and not 0 <= value <= 1:
            yield (("success_metrics", key, field),
                   f"{key} is a share between 0 and 1 (0.999 for 99.9 %), got {value:g}")
    if raw.max_ratio_to_baseline is not None:
        yield (("success_metrics", key, "max_ratio_to_baseline"),
               f"{key} has no baseline to compare with")
    if raw.scope == "total":
        yield ("success_metrics", key, "scope"), f"{key} is a share: it cannot be summed"


def _check_probes(plan: Plan) -> Iterator[tuple[Path, str]]:
    seen: set[str] = set()
    for i, phase in enumerate(plan.phases):
        mine = {p.name for p in phase.probes}
        for j, probe in enumerate(phase.probes):
            if probe.name in seen:
                yield ("phases", i, "probes", j, "name"), f"probe {probe.name!r} is defined twice"
            seen.add(probe.name)
        for member in phase.services:
            if member not in {s.name for s in plan.services}:
                continue
            k = [s.name for s in plan.services].index(member)
            for j, probe in enumerate(plan.services[k].probes):
                if probe.name in seen:
                    yield (("services", k, "probes", j, "name"),
                           f"probe {probe.name!r} is defined twice")
                seen.add(probe.name)
                mine.add(probe.name)
        for c, criterion in enumerate(phase.criteria):
            for j, name in enumerate(criterion.probes):
                if name not in mine:
                    yield (("phases", i, "criteria", c, "probes", j),
                           f"{name!r} is not a probe of phase {phase.id!r} or its services")
    for k, svc in enumerate(plan.services):
        if svc.probes and plan.phase_of(svc.name) is None:
            yield ("services", k, "probes"), f"service {svc.name!r} is in no phase: its probes " \
                "would never run"


def _plain(e: ValueError) -> str:
    """A pydantic error's first message without its banner; any other error's text."""
    errors = getattr(e, "errors", None)
    if callable(errors):
        err = errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ()))
        msg = str(err["msg"]).removeprefix("Value error, ")
        return f"{where}: {msg}" if where else msg
    return str(e)


# -- line numbers ---------------------------------------------------------------------

def _lines(node: yaml.Node | None, path: Path) -> Iterator[tuple[Path, int]]:
    if node is None:
        return
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            yield (*path, k), key.start_mark.line + 1
            yield from ((p, ln) for p, ln in _lines(value, (*path, k)) if p != (*path, k))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _lines(item, (*path, i))


def _line(path: Path, lines: dict[Path, int]) -> int | None:
    """The line of ``path``, or of its nearest ancestor present in the file."""
    p = tuple(path)
    while p:
        if p in lines:
            return lines[p]
        p = p[:-1]
    return lines.get(())


def _problem(err: Any, lines: dict[Path, int]) -> PlanProblem:
    # pydantic adds tagged-union and validator names to loc; keep the YAML keys only
    loc = tuple(x for i, x in enumerate(err["loc"])
                if not (isinstance(x, str) and ("[" in x or x.startswith("function-")))
                and not _probe_tag(err["loc"], i))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "extra_forbidden":
        msg = "is not a known key"
    elif err["type"] in ("literal_error", "enum"):
        msg = f"expected {err['ctx']['expected']}, got {err['input']!r}"
    return PlanProblem(_dotted(loc), msg, _line(loc, lines))


def _probe_tag(loc: tuple[Any, ...], i: int) -> bool:
    """pydantic names the ``kind`` a probe was read as after its index: not a YAML key."""
    return (i >= 2 and loc[i] in PROBE_KINDS and isinstance(loc[i - 1], int)
            and loc[i - 2] == "probes")


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out

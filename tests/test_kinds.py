"""Every kind the code switches on is one enum in slo/kinds.py, and each registry holds
exactly its members: a new kind missed in one place fails here, not in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alerts.messages import _TITLES, CONDITION_SEVERITY, RESOLVES
from alerts.notifiers import NOTIFIERS
from rollout.routers import ROUTERS
from slo.kinds import CONDITIONS, ChannelKind, EventKind, RouterKind
from slo.plan import AlertChannel, RouterConfig


def test_every_router_kind_has_its_router_and_says_its_kind() -> None:
    assert set(ROUTERS) == set(RouterKind)
    assert all(cls.kind is kind for kind, cls in ROUTERS.items())


def test_every_channel_kind_has_its_notifier() -> None:
    assert set(NOTIFIERS) == set(ChannelKind)


def test_every_event_kind_has_a_title_and_every_condition_an_end_and_a_severity() -> None:
    assert set(_TITLES) == set(EventKind)
    assert set(CONDITION_SEVERITY) == set(CONDITIONS)
    assert set(RESOLVES) == set(CONDITIONS.values())
    assert not set(CONDITIONS) & set(RESOLVES)


def test_the_plan_takes_the_kinds_by_their_strings_and_refuses_a_typo() -> None:
    assert RouterConfig.model_validate({"kind": "gateway-api", "namespace": "n"}).kind \
        is RouterKind.GATEWAY_API
    ch = AlertChannel.model_validate({"name": "c", "kind": "log", "events": ["drift"]})
    assert ch.kind is ChannelKind.LOG and ch.events == [EventKind.DRIFT]
    with pytest.raises(ValidationError, match="dry-run"):
        RouterConfig.model_validate({"kind": "dryrun"})
    with pytest.raises(ValidationError, match="verdict-failed"):
        AlertChannel.model_validate({"name": "c", "kind": "log", "events": ["verdict-fail"]})
    schema = RouterConfig.model_json_schema()
    assert set(schema["$defs"]["RouterKind"]["enum"]) == {k.value for k in RouterKind}


def test_every_figure_of_the_specs_has_its_places() -> None:
    """A figure is one entry in slo/figure_specs.py plus where its numbers live: the
    Figures field, and for a latency quantile the Prometheus kind and store column of
    its per-step value.  Everything else (the plan's FIGURES, the promql quantiles, the
    coverage probe's needs, the report's step table, the dashboard's latency lines) is
    derived from the specs; this names what a new entry still lacks."""
    from dataclasses import fields

    from collectors.coverage import FIGURE_KINDS
    from collectors.promql import Kind
    from dashboard.components import _SERIES
    from reports.model import STEP_FIGURES
    from slo.figure_specs import FIGURE_SPECS, QUANTILE_FIGURES, quantile_column
    from slo.figures import Figures
    from slo.plan import FIGURES
    from store.series import VALUE_COLUMNS, PromStep

    evaluated = [s.name for s in FIGURE_SPECS if s.evaluated]
    assert list(FIGURES) == evaluated
    missing = sorted(set(evaluated) - {f.name for f in fields(Figures)})
    assert not missing, f"slo/figures.py Figures needs a field for {missing}"
    assert set(FIGURE_KINDS) == set(evaluated) - {"uptime"}
    for name, q in QUANTILE_FIGURES.items():
        column = quantile_column(q)
        assert column in {k.value for k in Kind}, f"collectors/promql.py Kind needs {column}"
        assert column in PromStep.model_fields, f"store/series.py PromStep needs {column}"
        assert column in VALUE_COLUMNS
        assert name in STEP_FIGURES and name in [s[0] for s in _SERIES]
    assert quantile_column(0.999) == "p999" and quantile_column(0.5) == "p50"
    # the store's value columns are the collector's kinds, each a column of PromStep
    assert set(VALUE_COLUMNS) == {k.value for k in Kind}
    assert set(VALUE_COLUMNS) <= set(PromStep.model_fields)

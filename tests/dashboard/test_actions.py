"""Approve, override and revert through the confirmation, against the real gate and the
dry-run router (its weights live in the store, so the route's answer is checked too)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from rollout import gate
from rollout.routers import build_router
from slo.plan import Plan
from store.db import session_scope
from store.evaluations import EvaluationRow
from store.rollout import Decision, ServiceState, dry_run_weight
from tests.dashboard.helpers import assert_clean, page_text, plain


def _service_page(app, **kw):
    return app(page="screens/service.py", query={"service": "samples"}, **kw)


def _weights(store: Engine) -> tuple[int, int]:
    with session_scope(store) as s:
        state = s.get(ServiceState, "samples")
        return state.weight, dry_run_weight(session=s, service="samples")


def _newest_decision(store: Engine) -> Decision:
    with session_scope(store) as s:
        return s.exec(select(Decision).order_by(col(Decision.id).desc())).first()


def _confirm(at, reason: str, *, sure: bool = False):
    at.text_area(key="action_reason").input(reason).run()
    if sure:
        at.checkbox(key="action_sure").check().run()
    at.button(key="action_confirm").click().run()
    assert_clean(at)
    return at


def _fail_latest(store: Engine) -> None:
    """A fail verdict at the current step, newer than everything else."""
    with session_scope(store) as s:
        s.add(EvaluationRow(service="samples", phase="week-4", at=datetime.now(UTC), weight=25,
                            verdict="fail", reasons=["error rate 3.1 % > 1 %"],
                            figures={"baseline": {}, "candidate": {}},
                            checks=[{"name": "error_rate", "verdict": "fail", "baseline": 0.002,
                                     "candidate": 0.031, "limit": 0.01,
                                     "detail": "3.1 % > 1 %"}]))


def test_approve_states_the_change_and_applies_it(app, seeded, store):
    at = _service_page(app)
    at.button(key="open_approve").click().run()
    assert_clean(at)
    text = page_text(at)
    assert "samples: 25 % → 50 % on route nanopore-samples" in text
    assert "PASS]" in text, "the verdict it rests on"
    assert at.button(key="action_confirm").disabled, "no reason yet"
    _confirm(at, "p95 flat for 2h")
    assert any("APPLIED" in s.value and "now sends 50 %" in plain(s.value) for s in at.success)
    assert _weights(store) == (50, 50)
    d = _newest_decision(store)
    assert (d.action, d.from_weight, d.to_weight, d.actor, d.reason, d.override, d.state) == \
        ("approve", 25, 50, "ana@example.org", "p95 flat for 2h", False, "applied")
    assert [m.value for m in at.metric if m.label == "candidate weight"] == ["50 %"]
    assert "pending_action" not in at.session_state
    at.button(key="open_revert").click().run()   # the next confirmation starts blank
    assert "samples: 50 % → 25 % on route nanopore-samples" in page_text(at)
    assert at.text_area(key="action_reason").value == ""


def test_approve_is_held_while_the_gate_would_refuse_and_says_what_it_needs(app, seeded,
                                                                             store):
    _fail_latest(store)
    at = _service_page(app)
    text = page_text(at)
    assert "FAILED** — blocks 50 %" in text and "FAILED]" in text
    assert at.button(key="open_approve").disabled
    assert "Approve → 50 % is not available yet." in text
    assert "error_rate passing: 3.1 % > 1 %" in text
    assert not at.button(key="open_override").disabled, "the override is the way past it"


def test_a_refused_approve_says_why_and_changes_nothing(app, seeded, store, dry_plan: Plan):
    """A confirmation opened before the verdict turned (the page had not refreshed yet)
    is refused by the gate, which decides again."""
    from dashboard.actions import ActionKind, propose
    from store.views import service_states

    with session_scope(store) as s:
        state = service_states(session=s)["samples"]
    _fail_latest(store)
    at = _service_page(app)
    at.session_state["pending_action"] = propose(dry_plan, "samples", state, ActionKind.APPROVE)
    at.run()
    assert "FAIL]" in page_text(at)
    _confirm(at, "let's go")
    refused = [plain(e.value) for e in at.error if "REFUSED" in e.value]
    assert refused and "the latest verdict at 25 % is fail" in refused[0], refused
    assert _weights(store) == (25, 25)
    d = _newest_decision(store)      # the refused attempt is on record, who and why
    assert (d.state, d.actor, d.from_weight, d.to_weight, d.reason) == (
        "refused", "ana@example.org", 25, 50, "let's go")
    assert "the latest verdict at 25 % is fail" in d.error


def test_override_is_a_separate_marked_path_and_is_recorded(app, seeded, store):
    _fail_latest(store)
    at = _service_page(app)
    at.button(key="open_override").click().run()
    assert any("OVERRIDE" in e.value for e in at.error)
    at.text_area(key="action_reason").input("CAB said go").run()
    assert at.button(key="action_confirm").disabled, "needs the responsibility box"
    _confirm(at, "CAB said go", sure=True)
    assert any("APPLIED" in s.value and "override" in s.value for s in at.success)
    d = _newest_decision(store)
    assert (d.to_weight, d.override, d.reason) == (50, True, "CAB said go")


def test_revert_steps_back_one_step(app, seeded, store):
    at = _service_page(app)
    at.button(key="open_revert").click().run()
    assert "samples: 25 % → 10 % on route nanopore-samples" in page_text(at)
    _confirm(at, "p99 spikes")
    assert _weights(store) == (10, 10)
    assert _newest_decision(store).action == "revert"


def test_revert_to_zero_sends_everything_to_the_baseline(app, seeded, store):
    at = _service_page(app)
    at.button(key="open_revert-to-0").click().run()
    assert "samples: 25 % → 0 % on route nanopore-samples" in page_text(at)
    _confirm(at, "incident")
    assert _weights(store) == (0, 0)


def test_a_change_under_you_is_reported_and_not_stepped_over(app, seeded, store,
                                                             dry_plan: Plan):
    at = _service_page(app)
    at.button(key="open_approve").click().run()
    # meanwhile lee approves the same step from the command line
    gate.approve(engine=store, plan=dry_plan, router=build_router(dry_plan, store),
                 service="samples", actor="lee@example.org", reason="cli",
                 now=datetime.now(UTC))
    _confirm(at, "me too")
    changed = [plain(w.value) for w in at.warning if "CHANGED" in w.value]
    assert changed and "changed under you" in changed[0] and "50 %" in changed[0], changed
    assert "lee@example.org" in changed[0], "the loser is told who moved it"
    assert _weights(store) == (50, 50), "not moved on to 75 %"
    d = _newest_decision(store)
    assert (d.actor, d.state, d.from_weight) == ("ana@example.org", "refused", 50)
    assert "you looked at 25 %" in d.error


def test_cancel_closes_the_confirmation(app, seeded, store):
    at = _service_page(app)
    at.button(key="open_approve").click().run()
    at.button(key="action_cancel").click().run()
    assert "pending_action" not in at.session_state
    assert not at.button.filter(lambda b: b.key == "action_confirm") if hasattr(
        at.button, "filter") else all(b.key != "action_confirm" for b in at.button)
    assert _weights(store) == (25, 25)


def test_a_read_only_viewer_cannot_act_even_with_a_forged_session(app, seeded, store,
                                                                   dry_plan: Plan):
    from dashboard.actions import ActionKind, propose
    from store.views import service_states

    with session_scope(store) as s:
        state = service_states(session=s)["samples"]
    at = _service_page(app, operator="mallory@example.org")
    at.session_state["pending_action"] = propose(dry_plan, "samples", state, ActionKind.APPROVE)
    at.run()
    assert all(b.key != "action_confirm" for b in at.button), "no dialog for a non-operator"
    assert _weights(store) == (25, 25)


def test_the_gate_checks_the_operator_again(store, seeded, dry_plan: Plan):
    from dashboard.actions import ActionKind, Outcome, perform, propose
    from store.views import service_states

    with session_scope(store) as s:
        state = service_states(session=s)["samples"]
    proposal = propose(dry_plan, "samples", state, ActionKind.APPROVE)
    result = perform(engine=store, plan=dry_plan, proposal=proposal, actor="mallory",
                     reason="why not", current=state, now=datetime.now(UTC))
    assert result.outcome is Outcome.REFUSED and "not among the plan's operators" in result.message
    assert _weights(store) == (25, 25)


def test_soak_time_blocks_a_fresh_step(app, store, dry_plan: Plan, seeded):
    with session_scope(store) as s:
        state = s.get(ServiceState, "samples")
        state.step_since = datetime.now(UTC) - timedelta(minutes=3)
        s.add(state)
        s.add(EvaluationRow(service="samples", phase="week-4", at=datetime.now(UTC), weight=25,
                            verdict="pass", reasons=["all checks hold"], figures={},
                            checks=[]))
    at = _service_page(app)
    text = page_text(at)
    assert "PROGRESSING** — blocks 50 %" in text and "soaking" in text, text
    assert "PROGRESSING]" in text and at.button(key="open_approve").disabled
    assert re.search(r"soak: 1[12]m more of 15m at 25 %", text), text
    assert re.search(r"the gate can decide in about 1[12]m", text), text


def test_a_route_moved_by_hand_is_put_back_by_revert_to_zero(app, seeded, store):
    from store.rollout import set_dry_run_weight

    with session_scope(store) as s:   # someone ran `oc patch` on the ai route
        set_dry_run_weight(session=s, service="ai", weight=25, at=datetime.now(UTC))
        s.add(ServiceState(service="ai", phase="week-5", weight=0, router_weight=25,
                           drift_since=datetime.now(UTC)))
    at = app(page="screens/service.py", query={"service": "ai"})
    assert any("DRIFT" in e.value for e in at.error)
    at.button(key="open_revert-to-0").click().run()
    _confirm(at, "undo the hand edit")
    assert any("APPLIED" in s.value for s in at.success), page_text(at)
    with session_scope(store) as s:
        assert dry_run_weight(session=s, service="ai") == 0

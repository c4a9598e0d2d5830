""""Roll back everything" in real Chromium on the dashboard served by ``streamlit run``
(the dry-run router, six services at 100, 100, 25, 0, 0, 0 %): the dialog names what
moves, wants a reason, and every route ends at 0 %; and, by AppTest, a viewer who is not
an operator gets a disabled button and a refusal from the server all the same."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import select

from dashboard import actions
from store.db import session_scope
from store.groups import DecisionGroup
from store.rollout import ServiceState, dry_run_weight
from tests.dashboard.helpers import assert_clean
from tests.dashboard.test_browser import CHROMIUM, CHROMIUM_ARGS, dashboard_url, pytestmark

__all__ = ["dashboard_url", "pytestmark"]


def test_roll_back_everything_in_chromium(dashboard_url: str, store: Engine,  # noqa: F811
                                          tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    keep = os.environ.get("CUTOVER_SCREENSHOTS")
    shots = Path(keep) if keep else tmp_path
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(dashboard_url + "/")
            expect(page.get_by_text("Migration-wide success metrics")).to_be_visible(
                timeout=30_000)
            # the overview's button (the sidebar has the same one)
            button = page.get_by_role("button", name="Roll back everything")
            expect(button).to_have_count(2, timeout=30_000)
            button.last.click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_be_visible(timeout=15_000)
            expect(dialog).to_contain_text("3 of 6 services")
            expect(dialog).to_contain_text("nanopore-samples")
            reason = dialog.get_by_label("Reason (kept in the audit trail and sent to chat)")
            reason.fill("incident 4711: errors on every service")
            reason.press("Control+Enter")
            confirm = dialog.get_by_role("button", name="Roll back 3 services")
            expect(confirm).to_be_enabled(timeout=15_000)
            if keep:
                page.screenshot(path=str(shots / "rollback-dialog.png"))
            confirm.click()
            expect(page.get_by_text("Rollback #1: applied").first).to_be_visible(timeout=30_000)
            expect(dialog).to_be_hidden()
            if keep:
                page.screenshot(path=str(shots / "rollback-done.png"))
        finally:
            browser.close()
    with session_scope(store) as s:
        for state in s.exec(select(ServiceState)).all():
            assert state.weight == 0
            assert dry_run_weight(session=s, service=state.service) == 0
        (group,) = s.exec(select(DecisionGroup)).all()
        assert (group.actor, group.outcome) == ("ana@example.org", "applied")


def test_not_an_operator_gets_a_disabled_button_and_a_refusal(app, seeded, dry_plan,
                                                             store: Engine) -> None:
    at = app(operator=None)
    assert_clean(at)
    assert at.button(key="rollback_sidebar").disabled
    assert at.button(key="rollback_overview").disabled
    # a click forged past the page is refused where it counts, in rollout
    said = actions.roll_back_all(plan=dry_plan, engine=store, actor="mallory@example.org",
                                 reason="prank", scale=False, wait=False,
                                 now=seeded.now)
    assert isinstance(said, str) and "not among the plan's operators" in said
    with session_scope(store) as s:
        assert s.exec(select(DecisionGroup)).all() == []


def test_operator_gets_the_buttons_and_the_preview_names_what_moves(app, seeded, dry_plan,
                                                                   store: Engine) -> None:
    at = app()
    assert_clean(at)
    assert not at.button(key="rollback_sidebar").disabled
    assert not at.button(key="rollback_overview").disabled
    # what the dialog lists (AppTest does not keep a dialog's content: Chromium checks it)
    p = actions.rollback_preview(plan=dry_plan, engine=store)
    assert [(r.service, r.weight, r.router_weight) for r in p.moving] == [
        ("auth", 100, 100), ("files", 100, 100), ("samples", 25, 25)]
    assert p.baseline is None          # the dry-run router has no cluster to read

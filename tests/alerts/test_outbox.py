"""The outbox on SQLite and PostgreSQL: dispatch, dedup, retries, 429, hangs, pacing,
claims, give-up, and the read side."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from alerts.outbox import (
    RetryPolicy,
    condition_key,
    deliver,
    dispatch,
    pending_counts,
    recent_deliveries,
    should_send,
)
from store import alerts as store
from store.alerts import AlertDelivery, AlertEvent, DeliveryState
from store.db import session_scope
from store.events import EventRow
from tests.alerts.conftest import NOW, Answer, FakeClock, channel, env_for, record, with_channels

FAST = RetryPolicy(min_interval=0.0, timeout=5.0)


def _rows(engine) -> list[AlertDelivery]:
    with session_scope(engine) as s:
        return list(s.exec(select(AlertDelivery).order_by(AlertDelivery.id)).all())


# -- dispatch ------------------------------------------------------------------------------

def test_dispatch_filters_by_event_and_service_and_marks_events(engine, plan):
    everything = channel("all", "slack")
    cab = channel("cab", "teams", events=["approved", "reverted"])
    files_only = channel("files", "discord", services=["files"])
    p = with_channels(plan, everything, cab, files_only)
    record(engine, "approved", service="auth")
    record(engine, "verdict-failed", service="files")
    record(engine, "source-down", service=None)
    assert dispatch(engine=engine, plan=p, now=NOW) == 6
    pairs = {(r.event_id, r.channel) for r in _rows(engine)}
    assert pairs == {(1, "all"), (1, "cab"), (2, "all"), (2, "files"), (3, "all"), (3, "files")}
    with session_scope(engine) as s:
        assert all(e.dispatched for e in s.exec(select(EventRow)).all())
    assert dispatch(engine=engine, plan=p, now=NOW) == 0   # nothing dispatched twice


def test_event_matching_no_channel_is_still_marked_dispatched(engine, plan):
    p = with_channels(plan, channel("cab", "teams", events=["approved"]))
    record(engine, "drift")
    assert dispatch(engine=engine, plan=p, now=NOW) == 0
    with session_scope(engine) as s:
        assert store.undispatched_events(session=s) == []


def test_repeat_of_an_active_condition_waits_for_repeat_interval(engine, plan):
    p = with_channels(plan, channel("all", "slack"), repeat_interval="4h")
    record(engine, "verdict-failed", at=NOW)
    assert dispatch(engine=engine, plan=p, now=NOW) == 1
    record(engine, "verdict-failed", at=NOW + timedelta(minutes=1))
    assert dispatch(engine=engine, plan=p, now=NOW + timedelta(minutes=1)) == 0
    record(engine, "verdict-failed", at=NOW + timedelta(hours=3, minutes=59))
    assert dispatch(engine=engine, plan=p, now=NOW + timedelta(hours=3, minutes=59)) == 0
    record(engine, "verdict-failed", at=NOW + timedelta(hours=4))
    assert dispatch(engine=engine, plan=p, now=NOW + timedelta(hours=4)) == 1


def test_resolved_resets_the_condition_and_is_sent_once(engine, plan):
    p = with_channels(plan, channel("all", "slack"))
    steps = [("verdict-failed", 1), ("verdict-recovered", 1), ("verdict-recovered", 0),
             ("verdict-failed", 1), ("verdict-failed", 0), ("verdict-recovered", 1)]
    for i, (kind, expected) in enumerate(steps):
        record(engine, kind, at=NOW + timedelta(minutes=i))
        assert dispatch(engine=engine, plan=p, now=NOW + timedelta(minutes=i)) == expected, (i, kind)


def test_acts_are_never_deduplicated(engine, plan):
    p = with_channels(plan, channel("all", "slack"))
    record(engine, "approved", data={"from_weight": 10, "to_weight": 25})
    record(engine, "approved", data={"from_weight": 25, "to_weight": 50})
    assert dispatch(engine=engine, plan=p, now=NOW) == 2


def test_conditions_of_different_services_are_separate(engine, plan):
    p = with_channels(plan, channel("all", "slack"))
    record(engine, "drift", service="auth")
    record(engine, "drift", service="files")
    assert dispatch(engine=engine, plan=p, now=NOW) == 2


def test_condition_key_pairs_resolved_with_its_condition():
    def ev(kind, key, data=None):
        return AlertEvent(id=1, at=NOW, kind=kind, service="auth", severity="info",
                          dedup_key=key, summary="", data=data or {})
    assert condition_key(ev("verdict-recovered", "verdict-recovered:auth")) == "verdict-failed:auth"
    assert condition_key(ev("drift-resolved", "drift:auth")) == "drift:auth"
    assert condition_key(ev("source-recovered", "x", {"resolves": "prom"})) == "prom"
    assert condition_key(ev("approved", "approved:auth")) is None


def test_should_send_never_seen_resolution_is_sent():
    assert should_send(kind="data-recovered", active=None, last_sent_at=None, now=NOW,
                       repeat_interval=timedelta(hours=4))


# -- deliver -------------------------------------------------------------------------------

def test_delivers_each_once_and_counts(engine, plan, receiver):
    ch = channel("all", "slack")
    p = with_channels(plan, ch)
    for _ in range(3):
        record(engine, "approved")
    dispatch(engine=engine, plan=p, now=NOW)
    assert pending_counts(engine=engine) == {"pending": 3, "failed": 0, "sent": 0}
    report = deliver(engine=engine, plan=p, now=NOW, env=env_for(receiver, ch), policy=FAST)
    assert (report.sent, report.retrying, report.failed) == (3, 0, 0)
    again = deliver(engine=engine, plan=p, now=NOW + timedelta(hours=1), env=env_for(receiver, ch),
                    policy=FAST)
    assert again.sent == 0 and len(receiver.arrivals) == 3
    assert pending_counts(engine=engine) == {"pending": 0, "failed": 0, "sent": 3}
    recent = recent_deliveries(engine=engine, limit=2)
    assert [r.id for r in recent] == [3, 2] and recent[0].state is DeliveryState.SENT
    assert recent[0].event.kind == "approved" and recent[0].sent_at is not None


def test_5xx_is_retried_with_exponential_backoff(engine, plan, receiver):
    ch = channel("all", "slack")
    p = with_channels(plan, ch)
    env = env_for(receiver, ch)
    record(engine, "approved")
    dispatch(engine=engine, plan=p, now=NOW)
    receiver.script = [Answer(500, body=b"boom"), Answer(503, body=b"busy"), Answer(200)]
    r1 = deliver(engine=engine, plan=p, now=NOW, env=env, policy=FAST)
    assert r1.retrying == 1
    [row] = _rows(engine)
    assert row.state == "pending" and row.attempts == 1 and row.last_status == 500
    assert row.next_attempt_at == NOW + timedelta(seconds=10) or \
        abs((row.next_attempt_at - NOW - timedelta(seconds=10)).total_seconds()) < 2
    assert deliver(engine=engine, plan=p, now=NOW + timedelta(seconds=5), env=env,
                   policy=FAST).sent == 0          # not due yet: nothing sent
    deliver(engine=engine, plan=p, now=NOW + timedelta(seconds=11), env=env, policy=FAST)
    [row] = _rows(engine)
    assert row.attempts == 2 and row.last_status == 503
    wait = (row.next_attempt_at - NOW - timedelta(seconds=11)).total_seconds()
    assert 19 <= wait <= 22                        # 10 s, then 20 s
    r3 = deliver(engine=engine, plan=p, now=NOW + timedelta(seconds=40), env=env, policy=FAST)
    assert r3.sent == 1 and len(receiver.arrivals) == 3
    [row] = _rows(engine)
    assert row.state == "sent" and row.last_error is None


def test_429_holds_the_channel_for_retry_after_without_spending_attempts(engine, plan, receiver):
    ch, other = channel("all", "slack"), channel("other", "discord")
    p = with_channels(plan, ch, other)
    env = env_for(receiver, ch, other)
    for _ in range(3):
        record(engine, "approved")
    dispatch(engine=engine, plan=p, now=NOW)
    receiver.script = [Answer(429, {"Retry-After": "30"}, b"rate_limited")]
    report = deliver(engine=engine, plan=p, now=NOW, env=env, policy=FAST)
    # the first slack message got 429; the other slack ones were held without a request;
    # discord, a different destination, went on
    assert len(receiver.to("all")) == 1 and len(receiver.to("other")) == 3
    assert report.deferred == 3 and report.sent == 3
    slack_rows = [r for r in _rows(engine) if r.channel == "all"]
    assert all(r.state == "pending" and r.attempts == 0 for r in slack_rows)
    assert all((r.next_attempt_at - NOW).total_seconds() >= 30 for r in slack_rows)
    assert deliver(engine=engine, plan=p, now=NOW + timedelta(seconds=29), env=env,
                   policy=FAST).sent == 0
    assert deliver(engine=engine, plan=p, now=NOW + timedelta(seconds=31), env=env,
                   policy=FAST).sent == 3
    assert len(receiver.to("all")) == 4


def test_a_hanging_channel_times_out_and_is_retried(sqlite_engine, plan, receiver):
    ch = channel("all", "slack")
    p = with_channels(plan, ch)
    record(sqlite_engine, "approved")
    dispatch(engine=sqlite_engine, plan=p, now=NOW)
    receiver.script = [Answer(200, hang=5.0)]
    report = deliver(engine=sqlite_engine, plan=p, now=NOW, env=env_for(receiver, ch),
                     policy=RetryPolicy(min_interval=0, timeout=0.3))
    assert report.retrying == 1
    [row] = _rows(sqlite_engine)
    assert row.state == "pending" and "no answer in time" in (row.last_error or "")
    assert deliver(engine=sqlite_engine, plan=p, now=NOW + timedelta(seconds=11),
                   env=env_for(receiver, ch), policy=FAST).sent == 1


def test_gives_up_after_max_attempts_and_keeps_the_row(engine, plan, receiver):
    ch = channel("all", "slack")
    p = with_channels(plan, ch)
    record(engine, "approved")
    dispatch(engine=engine, plan=p, now=NOW)
    receiver.default = Answer(502, body=b"bad gateway")
    policy = RetryPolicy(min_interval=0, timeout=5, max_attempts=3)
    t = NOW
    for _ in range(3):
        deliver(engine=engine, plan=p, now=t, env=env_for(receiver, ch), policy=policy)
        t += timedelta(hours=1)
    [row] = _rows(engine)
    assert row.state == "failed" and row.attempts == 3
    assert "gave up after 3 attempts" in (row.last_error or "")
    assert pending_counts(engine=engine) == {"pending": 0, "failed": 1, "sent": 0}
    deliver(engine=engine, plan=p, now=t, env=env_for(receiver, ch), policy=policy)
    assert len(receiver.arrivals) == 3


def test_a_4xx_refusal_fails_at_once(sqlite_engine, plan, receiver):
    ch = channel("all", "slack")
    p = with_channels(plan, ch)
    record(sqlite_engine, "approved")
    dispatch(engine=sqlite_engine, plan=p, now=NOW)
    receiver.default = Answer(404, body=b"no_service")
    assert deliver(engine=sqlite_engine, plan=p, now=NOW, env=env_for(receiver, ch), policy=FAST).failed == 1
    [row] = _rows(sqlite_engine)
    assert row.state == "failed" and row.last_status == 404 and "refused" in row.last_error


def test_unconfigured_channel_is_retried_not_lost(sqlite_engine, plan):
    p = with_channels(plan, channel("all", "slack"))
    record(sqlite_engine, "approved")
    dispatch(engine=sqlite_engine, plan=p, now=NOW)
    report = deliver(engine=sqlite_engine, plan=p, now=NOW, env={}, policy=FAST)
    assert report.retrying == 1
    [row] = _rows(sqlite_engine)
    assert row.state == "pending" and "HOOK_ALL is not set" in (row.last_error or "")


def test_channel_removed_from_plan_fails_visibly(sqlite_engine, plan):
    record(sqlite_engine, "approved")
    dispatch(engine=sqlite_engine, plan=with_channels(plan, channel("gone", "slack")), now=NOW)
    deliver(engine=sqlite_engine, plan=with_channels(plan), now=NOW, env={}, policy=FAST)
    [row] = _rows(sqlite_engine)
    assert row.state == "failed" and "no longer in the plan" in (row.last_error or "")


def test_a_claimed_row_cannot_be_claimed_again_until_its_lease_ends(engine, plan):
    p = with_channels(plan, channel("all", "slack"))
    record(engine, "approved")
    dispatch(engine=engine, plan=p, now=NOW)
    until = NOW + timedelta(minutes=2)
    with session_scope(engine) as s:
        assert store.claim_delivery(session=s, delivery_id=1, token="a" * 32, now=NOW, until=until)
    with session_scope(engine) as s:
        assert not store.claim_delivery(session=s, delivery_id=1, token="b" * 32, now=NOW,
                                        until=until)
        assert store.due_deliveries(session=s, now=NOW + timedelta(minutes=1)) == []
        assert len(store.due_deliveries(session=s, now=until)) == 1
    with session_scope(engine) as s:   # the first worker's lease is over: its mark is refused
        assert store.claim_delivery(session=s, delivery_id=1, token="b" * 32, now=until,
                                    until=until + timedelta(minutes=2))
        assert not store.mark_sent(session=s, delivery_id=1, token="a" * 32, now=until, status=200)
        assert store.mark_sent(session=s, delivery_id=1, token="b" * 32, now=until, status=200)


def test_the_same_event_and_channel_never_get_two_rows(engine, plan):
    from sqlalchemy.exc import IntegrityError
    record(engine, "approved")
    with session_scope(engine) as s:
        [event] = store.undispatched_events(session=s)
    with pytest.raises(IntegrityError), session_scope(engine) as s:
        for _ in range(2):
            store.add_delivery(session=s, event=event, channel="all", channel_kind="slack",
                               now=NOW, idempotency_key="k")
            s.flush()


def test_one_message_per_second_per_destination(sqlite_engine, plan, receiver):
    slack, disc = channel("all", "slack"), channel("other", "discord")
    p = with_channels(plan, slack, disc)
    for _ in range(3):
        record(sqlite_engine, "approved")
    dispatch(engine=sqlite_engine, plan=p, now=NOW)
    clock = receiver.clock = FakeClock()
    start = clock()
    report = deliver(engine=sqlite_engine, plan=p, now=NOW, env=env_for(receiver, slack, disc),
                     policy=RetryPolicy(min_interval=0.5, timeout=5), clock=clock,
                     sleep=clock.sleep)
    assert report.sent == 6
    for name in ("all", "other"):
        times = [a.at for a in receiver.to(name)]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert len(times) == 3 and all(g >= 0.5 for g in gaps), gaps
    # the two destinations were interleaved, not one after the other: each waited for
    # its own pace only, 1 s in all, not 2.5 s
    assert [a.path.rsplit("/", 1)[1] for a in receiver.arrivals] == ["all", "other"] * 3
    assert clock() - start == pytest.approx(1.0)


def test_a_backlog_stops_at_the_time_budget_and_stays_due(sqlite_engine, plan, receiver):
    ch = channel("all", "slack")
    p = with_channels(plan, ch)
    for _ in range(5):
        record(sqlite_engine, "approved")
    dispatch(engine=sqlite_engine, plan=p, now=NOW)
    clock = FakeClock()
    report = deliver(engine=sqlite_engine, plan=p, now=NOW, env=env_for(receiver, ch),
                     policy=RetryPolicy(min_interval=0.3, timeout=5, budget=0.5),
                     clock=clock, sleep=clock.sleep)
    # paced at 0.3 s, a 0.5 s budget holds three sends (at 0, 0.3 and 0.6 s: the third
    # began inside it); the other two wait for the next round
    assert (report.sent, report.postponed) == (3, 2)
    assert clock.sleeps == pytest.approx([0.3, 0.3])
    assert pending_counts(engine=sqlite_engine)["pending"] == report.postponed
    assert deliver(engine=sqlite_engine, plan=p, now=NOW, env=env_for(receiver, ch),
                   policy=FAST).sent == report.postponed
    assert len(receiver.arrivals) == 5


def test_discord_429_body_retry_after_is_honoured(sqlite_engine, plan, receiver):
    ch = channel("disc", "discord")
    p = with_channels(plan, ch)
    record(sqlite_engine, "approved")
    dispatch(engine=sqlite_engine, plan=p, now=NOW)
    receiver.script = [Answer(429, {"Content-Type": "application/json"},
                              b'{"message": "You are being rate limited.", "retry_after": 42.5}')]
    assert deliver(engine=sqlite_engine, plan=p, now=NOW, env=env_for(receiver, ch),
                   policy=FAST).deferred == 1
    [row] = _rows(sqlite_engine)
    assert 42 <= (row.next_attempt_at - NOW).total_seconds() <= 44


def test_two_workers_at_once_send_each_message_once(engine, plan, receiver):
    import threading
    ch, other = channel("all", "slack"), channel("other", "discord")
    p = with_channels(plan, ch, other)
    for _ in range(4):
        record(engine, "approved")
    dispatch(engine=engine, plan=p, now=NOW)
    receiver.default = Answer(200, hang=0.1)   # slow enough for the workers to overlap
    reports = []

    def work() -> None:
        reports.append(deliver(engine=engine, plan=p, now=NOW, env=env_for(receiver, ch, other),
                               policy=FAST))

    workers = [threading.Thread(target=work) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert len(receiver.arrivals) == 8
    assert sum(r.sent for r in reports) == 8
    assert sum(r.skipped for r in reports) >= 1     # they did contend for the same rows
    assert pending_counts(engine=engine) == {"pending": 0, "failed": 0, "sent": 8}


def test_public_names_are_pinned():
    import alerts
    import alerts.outbox
    assert alerts.__all__ == ["ChannelInfo", "channels_overview"]
    assert {"dispatch", "deliver", "pending_counts", "recent_deliveries", "send_test",
            "DeliveryReport", "RetryPolicy"} <= set(alerts.outbox.__all__)
    for name in alerts.outbox.__all__:
        assert hasattr(alerts.outbox, name), name

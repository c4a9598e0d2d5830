"""The outbox: events become deliveries (``dispatch``), deliveries reach chat (``deliver``).

Why an outbox: an event is committed with its cause (store/events.py), so it exists
exactly when the cause happened.  ``dispatch`` turns it into one delivery row per
matching channel *in one transaction with marking it dispatched*, so a crash leaves
either the undispatched event (dispatched again next round) or its deliveries, never
neither.  ``deliver`` claims one row (a conditional UPDATE: two workers never hold the
same row), sends it, and marks it; a worker that dies holding a row loses its claim when
the lease ends, and the row is sent again.  The one window no outbox can close is a crash
after the far side took the message and before the mark: that message may arrive twice.
The window is one request long (each row is claimed right before its own send), and
generic JSON receivers get a stable ``Idempotency-Key`` to drop the repeat.

Repeats.  Conditions that stay true (verdict-failed, data-stale, source-down, drift) are
recorded again while they hold; like Alertmanager's ``repeat_interval``, a repeat of an
active condition (same dedup key) is only sent once the interval has passed since the
last one.  Its resolved kind (verdict-recovered, ...) ends the condition, so the next
occurrence is sent at once, and is itself sent once per condition.  Every other kind
(approved, reverted, auto-reverted, override, phase-complete, test) is an act, not a
condition, and is always sent.

Pacing and failures.  5xx, 408 and timeouts are retried with exponential backoff (a
Retry-After on them is honoured too); 429 holds the whole channel for its Retry-After and
does not count as an attempt; any other 4xx is a permanent refusal.  After
``max_attempts`` a delivery is *failed*: kept and shown, never deleted.  Within a run each
channel gets at most one message per ``min_interval`` (Slack's incoming webhooks allow
about one per second)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session

from alerts.messages import CONDITIONS, RESOLVES, condition_key, render, test_event
from alerts.notifiers import Notifier, build_notifier
from alerts.redact import guard_logger, scrub
from slo.errors import NotifyError
from slo.plan import AlertChannel, Plan
from store import alerts as store
from store.alerts import AlertEvent, DeliveryRecord, DeliveryState
from store.db import session_scope

__all__ = [
    "CONDITIONS",
    "DeliveryReport",
    "RetryPolicy",
    "TestResult",
    "condition_key",
    "deliver",
    "dispatch",
    "matches",
    "pending_counts",
    "recent_deliveries",
    "send_test",
    "should_send",
]

log = logging.getLogger(__name__)

#: answers that mean "try again later" rather than "never"
RETRYABLE_4XX = frozenset({408, 425})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    backoff_base: timedelta = timedelta(seconds=10)
    backoff_max: timedelta = timedelta(minutes=15)
    timeout: float = 10.0          # seconds per request
    min_interval: float = 1.0      # seconds between two messages to one channel
    lease: timedelta = timedelta(minutes=2)   # a claim outlives any one request
    budget: float = 20.0           # seconds one deliver() may run; the rest waits a round
    #: channel kinds that never give up on an unreachable or failing far side: an alert
    #: for Alertmanager carries its own times, so a late one is still right, and dropping
    #: it would leave a condition unannounced (or never resolved)
    unbounded: frozenset[str] = frozenset({"alertmanager"})

    def backoff(self, attempts: int) -> timedelta:
        """10 s, 20 s, 40 s, ... capped: the wait after the ``attempts``-th failure."""
        factor = 2 ** max(attempts - 1, 0)
        return min(self.backoff_base * factor, self.backoff_max)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0     # failed this time, will be tried again
    failed: int = 0       # given up (kept as failed)
    deferred: int = 0     # held back by a channel's 429
    skipped: int = 0      # another worker had the row
    postponed: int = 0    # due, but this run's time budget was spent (next round)
    refreshed: int = 0    # firing conditions said again to Alertmanager channels
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestResult:
    channel: str
    kind: str
    target: str
    ok: bool
    detail: str


# -- dispatch ----------------------------------------------------------------------------

def matches(channel: AlertChannel, event: AlertEvent) -> bool:
    """Channel filters: ``events`` by kind; ``services`` by service.  An event about no
    service in particular (a source down for all) passes every service filter.  On an
    Alertmanager channel a condition's end passes wherever its start does: a firing alert
    must be told to resolve."""
    kinds = channel.events
    if kinds is not None and event.kind not in kinds and not (
            channel.kind == "alertmanager" and RESOLVES.get(event.kind) in kinds):
        return False
    return channel.services is None or event.service is None or event.service in channel.services


def should_send(*, kind: str, active: bool | None, last_sent_at: datetime | None,
                now: datetime, repeat_interval: timedelta) -> bool:
    """Pure throttle decision; ``active`` is None when the condition was never seen."""
    if kind in RESOLVES:
        return active is not False          # announce each end once
    if kind in CONDITIONS:
        if not active or last_sent_at is None:
            return True                     # new, or back after a resolution
        return now - last_sent_at >= repeat_interval
    return True


def dispatch(*, engine: Engine, plan: Plan, now: datetime, limit: int = 500) -> int:
    """Undispatched events -> deliveries (one per matching channel); the number created."""
    created = 0
    with session_scope(engine) as session:
        events = store.undispatched_events(session=session, limit=limit)
        for event in events:
            channels = [c for c in plan.alerts.channels if matches(c, event)]
            if not channels or not _throttle(session, event, now, plan.alerts.repeat_interval):
                continue
            for ch in channels:
                store.add_delivery(session=session, event=event, channel=ch.name,
                                   channel_kind=ch.kind, now=now,
                                   idempotency_key=uuid.uuid4().hex)
                created += 1
        store.mark_dispatched(session=session, event_ids=[e.id for e in events])
    if events:
        log.info("dispatched %d events into %d deliveries", len(events), created)
    return created


def _throttle(session: Session, event: AlertEvent, now: datetime, repeat: timedelta) -> bool:
    key = condition_key(event)
    if key is None:
        return True
    state = store.condition_state(session=session, dedup_key=key)
    send = should_send(kind=event.kind, active=state.active if state else None,
                       last_sent_at=state.last_sent_at if state else None, now=now,
                       repeat_interval=repeat)
    if send:
        store.save_condition(session=session, dedup_key=key,
                             active=event.kind in CONDITIONS, now=now, event_id=event.id)
    else:
        log.debug("event %d (%s) repeats an active condition: not sent again yet",
                  event.id, event.kind)
    return send


# -- deliver -----------------------------------------------------------------------------

@dataclass
class _Run:
    """One deliver() call's state: its clock, pacing, held channels and tally."""

    engine: Engine
    plan: Plan
    policy: RetryPolicy
    env: Mapping[str, str] | None
    client: httpx.Client
    start: datetime
    clock: Callable[[], float] = time.monotonic    # seconds, for pacing and the budget
    sleep: Callable[[float], None] = time.sleep
    started: float = 0.0
    last_send: dict[str, float] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    notifiers: dict[str, Notifier | NotifyError] = field(default_factory=dict)
    tally: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def now(self) -> datetime:
        # the caller's `now`, advanced by the real time this run has taken
        return self.start + timedelta(seconds=self.clock() - self.started)

    def count(self, what: str) -> None:
        self.tally[what] = self.tally.get(what, 0) + 1

    def pace(self, channel: str) -> None:
        last = self.last_send.get(channel)
        if last is not None:
            wait = self.policy.min_interval - (self.clock() - last)
            if wait > 0:
                self.sleep(wait)
        self.last_send[channel] = self.clock()

    def notifier(self, channel: AlertChannel) -> Notifier:
        found = self.notifiers.get(channel.name)
        if found is None:
            try:
                found = build_notifier(channel, self.env)
            except NotifyError as e:
                found = e
            self.notifiers[channel.name] = found
        if isinstance(found, NotifyError):
            raise found
        return found


def deliver(*, engine: Engine, plan: Plan, now: datetime,
            transport: httpx.BaseTransport | None = None, env: Mapping[str, str] | None = None,
            policy: RetryPolicy | None = None, limit: int = 100,
            clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> DeliveryReport:
    """Send the due deliveries (up to ``limit``) and record each outcome.  ``clock`` and
    ``sleep`` pace the sends and keep the time budget (tests give theirs)."""
    entered = clock()   # `now` is this moment: the run's clock counts from here
    guard_logger("httpx")
    policy = policy or RetryPolicy()
    with session_scope(engine) as session:
        due = store.due_deliveries(session=session, now=now, limit=limit)
    refreshing = [c for c in plan.alerts.channels if c.kind == "alertmanager"]
    if not due and not refreshing:
        return DeliveryReport()
    with httpx.Client(transport=transport, timeout=policy.timeout,
                      follow_redirects=False) as client:
        run = _Run(engine=engine, plan=plan, policy=policy, env=env, client=client, start=now,
                   clock=clock, sleep=sleep, started=entered)
        for d in _interleave(due):
            if d.channel in run.held:
                run.count("deferred")
            elif clock() - run.started > policy.budget:
                # pacing a backlog must not stall the worker's round: the rest stays due
                run.count("postponed")
            else:
                _attempt(run, d)
        for channel in refreshing:
            _refresh(run, channel)
    t = run.tally
    return DeliveryReport(sent=t.get("sent", 0), retrying=t.get("retrying", 0),
                          failed=t.get("failed", 0), deferred=t.get("deferred", 0),
                          skipped=t.get("skipped", 0), postponed=t.get("postponed", 0),
                          refreshed=t.get("refreshed", 0), errors=tuple(run.errors))


def _refresh(run: _Run, channel: AlertChannel) -> None:
    """Say every condition still firing on ``channel`` again, with a new ``endsAt``
    (alerts/notifiers/alertmanager.py).  Best effort: the condition's own delivery row
    carried the guarantee; a miss here is retried next round."""
    if channel.name in run.held:
        return
    with session_scope(run.engine) as session:
        firing = store.firing_events(session=session, channel=channel.name)
    if not firing:
        return
    try:
        notifier = run.notifier(channel)
        notifier.post(run.client, [render(e, run.plan) for e in firing],  # type: ignore[attr-defined]
                      now=datetime.now(UTC))
    except NotifyError as e:
        run.errors.append(str(e))
        log.warning("%s: could not say %d firing conditions again: %s", channel.name,
                    len(firing), e)
        return
    run.tally["refreshed"] = run.tally.get("refreshed", 0) + len(firing)


def _interleave(rows: list[DeliveryRecord]) -> Iterator[DeliveryRecord]:
    """Round-robin over channels, so one slow or paced channel does not hold the others."""
    queues: dict[str, list[DeliveryRecord]] = {}
    for r in rows:
        queues.setdefault(r.channel, []).append(r)
    while queues:
        for name in list(queues):
            yield queues[name].pop(0)
            if not queues[name]:
                del queues[name]


def _attempt(run: _Run, d: DeliveryRecord) -> None:
    token = uuid.uuid4().hex
    at = run.now()
    with session_scope(run.engine) as session:
        if not store.claim_delivery(session=session, delivery_id=d.id, token=token, now=at,
                                    until=at + run.policy.lease):
            run.count("skipped")
            return
    attempts = d.attempts + 1
    channel = next((c for c in run.plan.alerts.channels if c.name == d.channel), None)
    if channel is None:
        _fail(run, d, token, None, f"channel {d.channel}: no longer in the plan")
        return
    run.pace(d.channel)
    try:
        status = run.notifier(channel).send(render(d.event, run.plan), client=run.client,
                                            idempotency_key=d.idempotency_key)
    except NotifyError as e:
        _failed_attempt(run, d, token, e, attempts)
        return
    except Exception as e:  # a bug must not lose the alert: retried, and visible
        _failed_attempt(run, d, token, NotifyError(d.channel, scrub(f"{type(e).__name__}: {e}")),
                        attempts)
        return
    with session_scope(run.engine) as session:
        ok = store.mark_sent(session=session, delivery_id=d.id, token=token, now=run.now(),
                             status=status)
    if not ok:  # our lease ran out and another worker took the row: it may send it too
        log.warning("delivery %d to %s: sent, but its claim had expired", d.id, d.channel)
    run.count("sent")
    log.info("alert %s (event %d) sent to %s", d.event.kind, d.event.id, d.channel)


def _failed_attempt(run: _Run, d: DeliveryRecord, token: str, e: NotifyError,
                    attempts: int) -> None:
    at, error = run.now(), str(e)
    if e.status == 429:
        until = at + (timedelta(seconds=e.retry_after) if e.retry_after is not None
                      else run.policy.backoff(attempts))
        with session_scope(run.engine) as session:
            store.mark_retry(session=session, delivery_id=d.id, token=token, next_at=until,
                             status=429, error=error, count_attempt=False)
            store.defer_channel(session=session, channel=d.channel, until=until)
        run.held.add(d.channel)
        run.count("deferred")
        log.warning("%s: rate limited; holding the channel until %s", e, until.isoformat())
        return
    permanent = e.status is not None and 400 <= e.status < 500 and e.status not in RETRYABLE_4XX
    spent = attempts >= run.policy.max_attempts and d.channel_kind not in run.policy.unbounded
    if permanent or spent:
        why = "refused" if permanent else f"gave up after {attempts} attempts"
        _fail(run, d, token, e.status, f"{why}: {error}")
        return
    wait = max(run.policy.backoff(attempts), timedelta(seconds=e.retry_after or 0))
    with session_scope(run.engine) as session:
        store.mark_retry(session=session, delivery_id=d.id, token=token, next_at=at + wait,
                         status=e.status, error=error)
    run.count("retrying")
    run.errors.append(error)
    log.warning("%s (attempt %d); next try in %ds", error, attempts, int(wait.total_seconds()))


def _fail(run: _Run, d: DeliveryRecord, token: str, status: int | None, error: str) -> None:
    with session_scope(run.engine) as session:
        store.mark_failed(session=session, delivery_id=d.id, token=token, status=status,
                          error=error)
    run.count("failed")
    run.errors.append(error)
    log.error("alert %s (event %d) to %s failed for good: %s", d.event.kind, d.event.id,
              d.channel, error)


# -- reading, and the test message ---------------------------------------------------------

def pending_counts(*, engine: Engine) -> dict[str, int]:
    """``{"pending": n, "failed": n, "sent": n}``; rows being sent count as pending."""
    with session_scope(engine) as session:
        raw = store.delivery_counts(session=session)
    return {"pending": raw.get(DeliveryState.PENDING, 0) + raw.get(DeliveryState.SENDING, 0),
            "failed": raw.get(DeliveryState.FAILED, 0), "sent": raw.get(DeliveryState.SENT, 0)}


def recent_deliveries(*, engine: Engine, limit: int = 50) -> list[DeliveryRecord]:
    """Newest first, each with its event (for the dashboard's Alerts page)."""
    with session_scope(engine) as session:
        return store.recent_deliveries(session=session, limit=limit)


def send_test(*, plan: Plan, now: datetime, transport: httpx.BaseTransport | None = None,
              env: Mapping[str, str] | None = None, timeout: float = 10.0) -> list[TestResult]:
    """Send a test message to every channel at once (no outbox, no filters, no retries)."""
    guard_logger("httpx")
    message = render(test_event(now=now), plan)
    results = []
    with httpx.Client(transport=transport, timeout=timeout, follow_redirects=False) as client:
        for ch in plan.alerts.channels:
            try:
                notifier = build_notifier(ch, env)
            except NotifyError as e:
                results.append(TestResult(ch.name, ch.kind, "-", False, str(e)))
                continue
            try:
                status = notifier.send(message, client=client, idempotency_key=uuid.uuid4().hex)
            except NotifyError as e:
                results.append(TestResult(ch.name, ch.kind, notifier.target, False, str(e)))
                continue
            detail = f"sent (HTTP {status})" if status is not None else "written"
            results.append(TestResult(ch.name, ch.kind, notifier.target, True, detail))
    return results

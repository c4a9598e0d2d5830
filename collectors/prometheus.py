"""Pull what Prometheus (or Thanos Querier, or Mimir) knows about each variant.

Each pass runs, per variant, the range queries of :func:`collectors.promql.step_queries`
at the plan's step, from each query's checkpoint (or ``start``) up to ``end`` (or now),
in chunks under Prometheus' limit of 11,000 points per series, and upserts the per-step
increases and gauges into the store (``store.series``).  Steps sit on the step grid
(multiples of the step since the epoch), so a re-pull lands on the same rows.

A Prometheus that is down, slow, refusing or answering errors ends the pass as a failed
report; the outage is recorded (``prom_outage``) with a ``source-down`` event in the same
transaction, logged once, and retried next pass from the unchanged checkpoint, so
nothing is lost.  One query that fails (a bad override) or answers no series is recorded
against its variant and the other queries go on.

Failure states (:class:`PullOutcome`)::

    ok           answered with data
    empty        answered, but no series matched (nothing scraped yet, or a selector typo)
    query-error  refused this query (400 bad_data, 422 execution error)
    down         no connection (refused, DNS, TLS)
    slow         no answer within the timeout, or Prometheus' own query timeout
    http-error   a 5xx, or an answer that is not Prometheus' JSON
    refused      401 / 403: the token is missing, wrong or lacks rights
"""

from __future__ import annotations

import gc
import logging
import math
import os
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from sqlalchemy.engine import Engine
from sqlmodel import Session

from collectors.base import CollectReport
from collectors.promql import INCREASES, MAY_BE_EMPTY, Kind, StepQuery, step_queries
from slo.errors import ConfigError, SourceError
from slo.kinds import EventKind
from slo.plan import Plan, PrometheusSource
from slo.redact import known_secrets, redact
from slo.units import format_duration
from store.db import session_scope
from store.events import record_event
from store.series import (
    BASELINE,
    SOURCE,
    close_outages,
    load_checkpoints,
    open_outage,
    save_checkpoint,
    upsert_columns,
)

__all__ = ["MAX_POINTS", "PromClient", "PrometheusCollector", "PullOutcome", "QueryFailed",
           "SourceUnavailable", "build_http_client", "parse_answer", "prometheus_connect"]

log = logging.getLogger(__name__)

#: Prometheus refuses a range query of more than 11,000 points per series; stay under.
MAX_POINTS = 10_800
#: Steps re-pulled from before the checkpoint, so a scrape that landed late is taken in.
OVERLAP_STEPS = 2
SOURCE_NAME = "prometheus"
#: outage kinds of the whole source (store.series.SOURCE): it does not answer usably, or
#: it answers every query of the plan with no series at all
WHOLE, NO_DATA = "", "no-data"
NO_DATA_TEXT = ("Prometheus answered every query of the plan with no series: check the "
                "selectors and that Prometheus scrapes the services (or the time range)")

Progress = Callable[[int, int], None]


class PullOutcome(StrEnum):
    OK = "ok"
    EMPTY = "empty"
    QUERY_ERROR = "query-error"
    DOWN = "down"
    SLOW = "slow"
    HTTP_ERROR = "http-error"
    REFUSED = "refused"


class SourceUnavailable(SourceError):
    """Prometheus as a whole did not answer usably: the pass stops, retried next time."""

    def __init__(self, outcome: PullOutcome, message: str):
        self.outcome = outcome
        super().__init__(SOURCE_NAME, message)


class QueryFailed(SourceError):
    """Prometheus answered, but refused this one query."""

    def __init__(self, outcome: PullOutcome, expr: str, message: str):
        self.outcome = outcome
        self.expr = expr
        self.detail = message
        super().__init__(SOURCE_NAME, message)


# -- the HTTP side ------------------------------------------------------------------

def _token(src: PrometheusSource, env: Mapping[str, str]) -> str | None:
    """The bearer token, read at each pass (mounted service-account tokens rotate)."""
    if src.bearer_token_env and env.get(src.bearer_token_env):
        return env[src.bearer_token_env].strip()
    if src.bearer_token_file:
        try:
            return Path(src.bearer_token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"cannot read the Prometheus token file "
                              f"{src.bearer_token_file}: {e.strerror}") from None
    return None


def _read_secret(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return None   # said where it is needed (the token, the channel), not here


def _verify(src: PrometheusSource) -> ssl.SSLContext | bool:
    if not src.verify_tls:
        return False
    if src.ca_file:
        try:
            return ssl.create_default_context(cafile=src.ca_file)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"cannot load the Prometheus CA file {src.ca_file}: {e}") from None
    return True


def prometheus_connect(src: PrometheusSource, *,
                       env: Mapping[str, str] | None = None) -> Any:
    """``prometheus-api-client``'s ``PrometheusConnect`` for ``src`` (token, CA file or
    no verification, extra headers): what ``plan check --live`` and the Explore page
    ask through."""
    import requests
    from prometheus_api_client import PrometheusConnect

    headers = dict(src.headers)
    token = _token(src, os.environ if env is None else env)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    session = requests.Session()
    session.verify = src.ca_file or src.verify_tls
    return PrometheusConnect(url=src.url, headers=headers, session=session,
                             disable_ssl=not src.verify_tls,
                             timeout=int(src.timeout.total_seconds()))


def build_http_client(src: PrometheusSource, *,
                      env: Mapping[str, str] | None = None) -> httpx.Client:
    """An httpx client for ``src``: base URL with its path prefix (Thanos, Mimir), bearer
    token, CA file or no verification, timeouts, extra headers (e.g. X-Scope-OrgID)."""
    headers = dict(src.headers)
    token = _token(src, os.environ if env is None else env)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    secs = src.timeout.total_seconds()
    return httpx.Client(base_url=src.url + "/", headers=headers, verify=_verify(src),
                        timeout=httpx.Timeout(secs, connect=min(secs, 10.0)))


@dataclass(frozen=True)
class Series:
    """One answered series: its labels, and its points as arrays (NaN and Inf dropped)."""

    labels: dict[str, str]
    ts: np.ndarray       # unix seconds, float64
    values: np.ndarray   # float64

    def __len__(self) -> int:
        return int(self.ts.size)


class PromClient:
    """``/api/v1/query_range`` over an httpx client, errors sorted into outcomes.

    ``secrets`` (the token, the plan's webhook URLs) are masked, with anything else that
    looks like a credential, in every message made from an answer: a proxy's error body
    may quote the request's Authorization header."""

    def __init__(self, http: httpx.Client, secrets: Sequence[str] = ()):
        self.http = http
        self.secrets = tuple(secrets)

    def query_range(self, expr: str, *, start: datetime, end: datetime,
                    step_seconds: float) -> list[Series]:
        return parse_answer(self.fetch(expr, start=start, end=end, step_seconds=step_seconds),
                            expr, self.secrets)

    def fetch(self, expr: str, *, start: datetime, end: datetime,
              step_seconds: float) -> httpx.Response:
        """The raw answer (safe to call from several threads: httpx clients are)."""
        form = {"query": expr, "start": _ts(start), "end": _ts(end), "step": f"{step_seconds:g}"}
        try:
            return self.http.post("api/v1/query_range", data=form)
        except httpx.TimeoutException as e:
            raise SourceUnavailable(PullOutcome.SLOW, f"no answer in time ({type(e).__name__})"
                                    ) from None
        except httpx.TransportError as e:
            raise SourceUnavailable(PullOutcome.DOWN, "cannot connect: "
                                    + redact(_short(str(e)), self.secrets)) from None


def _ts(t: datetime) -> str:
    return f"{t.timestamp():.3f}"


def _short(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "..."


def parse_answer(resp: httpx.Response, expr: str, secrets: Sequence[str] = ()) -> list[Series]:
    # a week of points is millions of small lists: the cyclic GC would walk the growing
    # heap again and again while they are made, and none of them can form a cycle
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_body(resp, expr, secrets)
    finally:
        if enabled:
            gc.enable()


def _parse_body(resp: httpx.Response, expr: str, secrets: Sequence[str]) -> list[Series]:
    body = _json(resp)
    error = redact(_short(str(body.get("error", ""))), secrets) if isinstance(body, dict) else ""
    code = resp.status_code
    if code in (401, 403):
        raise SourceUnavailable(PullOutcome.REFUSED, f"HTTP {code}: check the bearer token")
    if code in (400, 422):
        raise QueryFailed(PullOutcome.QUERY_ERROR, expr, f"query refused (HTTP {code}): {error}")
    if code == 503 and isinstance(body, dict) and body.get("errorType") == "timeout":
        raise SourceUnavailable(PullOutcome.SLOW, f"query timed out in Prometheus: {error}")
    if code != 200 or not isinstance(body, dict):
        raise SourceUnavailable(PullOutcome.HTTP_ERROR,
                                f"HTTP {code}: {error or 'not a Prometheus API answer'}")
    if body.get("status") != "success":
        raise QueryFailed(PullOutcome.QUERY_ERROR, expr, f"query failed: {error}")
    data = body.get("data") or {}
    if data.get("resultType") != "matrix":
        raise QueryFailed(PullOutcome.QUERY_ERROR, expr,
                          f"expected a matrix, got {data.get('resultType')!r}")
    return [_series(s) for s in data.get("result", [])]


def _json(resp: httpx.Response) -> Any:
    try:
        return orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return None


def _series(raw: Mapping[str, Any]) -> Series:
    points = raw.get("values", [])
    # numpy parses Prometheus' value strings ("1.5", "NaN", "+Inf") in C: weeks of
    # history are millions of points
    ts = np.array([p[0] for p in points], dtype=np.float64)
    vs = np.array([p[1] for p in points], dtype=np.float64)
    ok = np.isfinite(vs)
    if not ok.all():
        ts, vs = ts[ok], vs[ok]
    return Series(dict(raw.get("metric", {})), ts, vs)


# -- the collector ------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One variant as Prometheus sees it: its store key and its queries."""

    key: str
    service: str | None     # for events; None for the baseline
    queries: tuple[StepQuery, ...]


@dataclass(frozen=True)
class _Fetched:
    answers: dict[Kind, list[Series]]
    failures: dict[Kind, QueryFailed]


@dataclass
class _Chunk:
    points: int = 0
    newest: datetime | None = None
    problems: list[str] = field(default_factory=list)
    failed: bool = False


class PrometheusCollector:
    """Pulls every variant's series into the store; one :meth:`collect` per pass."""

    name = SOURCE_NAME
    #: it records source-down / source-recovered per query itself (collectors.base)
    records_source_events = True

    def __init__(self, *, plan: Plan, engine: Engine, client: httpx.Client | None = None,
                 initial_lookback: timedelta = timedelta(hours=1),
                 max_points: int = MAX_POINTS, progress: Progress | None = None,
                 rate_window: timedelta | None = None):
        if plan.sources.prometheus is None:
            raise ConfigError("the plan has no sources.prometheus: nothing to pull")
        self.plan = plan
        self.source = plan.sources.prometheus
        self.engine = engine
        self.client = client
        self.initial_lookback = initial_lookback
        self.max_points = max_points
        self.progress = progress
        self.step = _step_seconds(self.source.step)
        # rate() needs two samples inside its range: over exactly one step that holds
        # when the scrape interval is at most half the step (or scrapes sit on the step
        # grid, as backfilled data does).  Else widen it; each step's value is then the
        # rate over the wider range (counts are smoothed, no longer exact per step).
        window = rate_window or getattr(self.source, "rate_window", None) or self.source.step
        self.rate_window = format_duration(window)
        self.targets = tuple(_targets(plan, window=self.rate_window))

    def collect(self, *, now: datetime, start: datetime | None = None,
                end: datetime | None = None) -> CollectReport:
        report = CollectReport(source=self.name)
        stop = _floor(end or now, self.step)
        work = [(t, self._chunks(t, start=start, end=stop)) for t in self.targets]
        total, done = sum(len(c) for _, c in work), 0
        http = self.client or build_http_client(self.source)
        prom = PromClient(http, known_secrets(self.plan, os.environ, _read_secret))
        # one chunk is written while the next is fetched and parsed (SQLite and PostgreSQL
        # drivers let go of the GIL while they work); at most two chunks in memory
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prom-store")
        # the same threads for the whole pass: fresh threads per chunk take fresh malloc
        # arenas, and memory would creep with the length of history
        fetcher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="prom-fetch")
        written: Future[_Chunk] | None = None
        down = False
        try:
            for target, chunks in work:
                for lo, hi in chunks:
                    fetched = self._fetch(fetcher, prom, target, lo, hi)
                    if written is not None:
                        previous, written = written, None
                        _merge(report, previous.result())
                    written = writer.submit(self._store, target, hi, fetched, now=now)
                    done += 1
                    if self.progress is not None:
                        self.progress(done, total)
        except SourceUnavailable as e:
            if written is not None:   # what came before the outage is kept
                previous, written = written, None
                _merge(report, previous.result())
            self._source_down(e, now=now)
            down = True
            report.ok = False
            report.problems.append(str(e))
        finally:
            if written is not None:
                previous, written = written, None
                _merge(report, previous.result())
            writer.shutdown()
            fetcher.shutdown(cancel_futures=True)
            if self.client is None:
                http.close()
        if total and not down:
            self._data_state(report, now=now)
        return report

    # -- planning -------------------------------------------------------------------
    def _chunks(self, target: Target, *, start: datetime | None,
                end: datetime) -> list[tuple[datetime, datetime]]:
        first = _ceil(start, self.step) if start is not None else self._resume(target, end)
        return list(chunk_ranges(first, end, step=self.step, max_points=self.max_points))

    def _resume(self, target: Target, end: datetime) -> datetime:
        """The earliest step any query of ``target`` still needs (a checkpoint whose
        query changed counts as none)."""
        with Session(self.engine) as session:
            cps = load_checkpoints(session=session, target=target.key)
        fresh = _floor(end - self.initial_lookback, self.step)
        starts = []
        for q in target.queries:
            cp = cps.get(q.kind.value)
            if cp is None or cp.expr != q.expr:
                starts.append(fresh)
            else:
                starts.append(cp.until - timedelta(seconds=self.step * (OVERLAP_STEPS - 1)))
        return min(starts, default=fresh)

    # -- one chunk ------------------------------------------------------------------
    def _fetch(self, pool: ThreadPoolExecutor, prom: PromClient, target: Target,
               lo: datetime, hi: datetime) -> _Fetched:
        answers: dict[Kind, list[Series]] = {}
        failures: dict[Kind, QueryFailed] = {}
        # the next queries are in flight while this one is parsed: Prometheus evaluates
        # on one core while we parse on the other
        pending = [(q, pool.submit(prom.fetch, q.expr, start=lo, end=hi, step_seconds=self.step))
                   for q in target.queries]
        try:
            for q, answer in pending:
                try:
                    answers[q.kind] = parse_answer(answer.result(), q.expr, prom.secrets)
                except QueryFailed as e:
                    failures[q.kind] = e
        except SourceUnavailable:
            for _, answer in pending:
                answer.cancel()   # Prometheus is gone: do not wait for each in turn
            raise
        return _Fetched(answers, failures)

    def _store(self, target: Target, hi: datetime, fetched: _Fetched, *,
               now: datetime) -> _Chunk:
        """One transaction: the steps, the checkpoints of the queries that answered, the
        outages opened or closed and their events."""
        answers, failures = fetched.answers, fetched.failures
        at, columns = step_columns(answers, step_seconds=self.step)
        with session_scope(self.engine) as session:
            self._source_up(session, now=now)
            close_outages(session=session, target=target.key, at=now, kinds=[WHOLE])
            n = upsert_columns(session=session, target=target.key, step_seconds=self.step,
                               at=at, columns=columns)
            for q in target.queries:
                if q.kind in answers:
                    save_checkpoint(session=session, target=target.key, kind=q.kind.value,
                                    expr=q.expr, until=hi, now=now)
            chunk = self._outcomes(session, target, answers, failures, now=now)
        chunk.points = sum(len(s) for series in answers.values() for s in series)
        chunk.newest = at[-1] if n else None
        return chunk

    def _outcomes(self, session: Session, target: Target, answers: Mapping[Kind, list[Series]],
                  failures: Mapping[Kind, QueryFailed], *, now: datetime) -> _Chunk:
        """Open an outage per failed or empty query, close those that answer again."""
        chunk = _Chunk()
        answered = [k.value for k, series in answers.items() if series or k in MAY_BE_EMPTY]
        for row in close_outages(session=session, target=target.key, at=now, kinds=answered):
            log.info("Prometheus: the %s query of %s answers again", row.kind, target.key)
            if row.outcome != PullOutcome.EMPTY:
                record_event(session=session, at=now, kind=EventKind.SOURCE_RECOVERED,
                             service=target.service, summary=f"Prometheus answers the {row.kind}"
                             f" query of {_label(target)} again",
                             dedup_key=f"source-recovered:prometheus:{target.key}:{row.kind}")
        bad: dict[Kind, tuple[PullOutcome, str]] = {
            k: (e.outcome, e.detail) for k, e in failures.items()}
        bad |= {k: (PullOutcome.EMPTY, "no series matched")
                for k, s in answers.items() if not s and k not in MAY_BE_EMPTY}
        opened = []
        empty = [k.value for k, (o, _) in bad.items() if o == PullOutcome.EMPTY]
        if empty:
            chunk.problems.append(f"{_label(target)}: no series matched ({', '.join(empty)})")
        if Kind.REQUESTS.value in empty and answers.get(Kind.MEMORY):
            chunk.problems.append(
                f"{_label(target)}: gauges answer but rate() over {self.rate_window} does not:"
                f" is the scrape interval longer than half the step? widen rate_window")
        for kind, (outcome, message) in bad.items():
            if outcome != PullOutcome.EMPTY:
                chunk.problems.append(f"{_label(target)} {kind.value}: {message}")
                chunk.failed = True
            _, new = open_outage(session=session, target=target.key, kind=kind.value,
                                 outcome=outcome.value, message=message, at=now)
            if not new:
                continue  # logged and alerted when it began
            opened.append(f"{kind.value} ({message})")
            if outcome != PullOutcome.EMPTY:
                record_event(session=session, at=now, kind=EventKind.SOURCE_DOWN, severity="warning",
                             service=target.service, summary=f"Prometheus refuses the "
                             f"{kind.value} query of {_label(target)}: {message}",
                             dedup_key=f"source-down:prometheus:{target.key}:{kind.value}")
        if opened:
            log.warning("Prometheus: no usable answer for %s: %s", _label(target),
                        "; ".join(opened))
        return chunk

    def _source_up(self, session: Session, *, now: datetime) -> None:
        for row in close_outages(session=session, target=SOURCE, at=now, kinds=[WHOLE]):
            log.warning("Prometheus answers again after %d failed attempt(s) since %s",
                        row.attempts, row.since.isoformat())
            record_event(session=session, at=now, kind=EventKind.SOURCE_RECOVERED,
                         summary=f"Prometheus answers again (down since "
                         f"{row.since:%Y-%m-%d %H:%M}Z, {row.attempts} failed attempts)",
                         dedup_key="source-recovered:prometheus",
                         data={"since": row.since.isoformat(), "attempts": row.attempts})

    def _source_down(self, e: SourceUnavailable, *, now: datetime) -> None:
        with session_scope(self.engine) as session:
            row, new = open_outage(session=session, target=SOURCE, kind=WHOLE,
                                   outcome=e.outcome.value, message=str(e), at=now)
            # a variant never pulled would otherwise look like one the plan does not ask
            # Prometheus about, and its verdict would not say which source is missing
            for target in self.targets:
                if not load_checkpoints(session=session, target=target.key):
                    open_outage(session=session, target=target.key, kind=WHOLE,
                                outcome=e.outcome.value, message=str(e), at=now)
            if new:
                record_event(session=session, at=now, kind=EventKind.SOURCE_DOWN, severity="warning",
                             summary=f"Prometheus is unavailable ({e.outcome.value}): {e}",
                             dedup_key="source-down:prometheus",
                             data={"outcome": e.outcome.value})
        if new:
            log.warning("Prometheus is unavailable (%s): %s; retrying every pass",
                        e.outcome.value, e)
        else:
            log.debug("Prometheus still unavailable (attempt %d): %s", row.attempts, e)


    def _data_state(self, report: CollectReport, *, now: datetime) -> None:
        """A Prometheus that answers every query empty is a source down too (no data):
        recorded and alerted once, and the pass is not ok; data again ends it."""
        empty = report.items == 0
        with session_scope(self.engine) as session:
            if empty:
                _, new = open_outage(session=session, target=SOURCE, kind=NO_DATA,
                                     outcome=PullOutcome.EMPTY.value, message=NO_DATA_TEXT,
                                     at=now)
                if new:
                    record_event(session=session, at=now, kind=EventKind.SOURCE_DOWN,
                                 severity="warning", summary=NO_DATA_TEXT,
                                 dedup_key=f"source-down:prometheus:{NO_DATA}",
                                 data={"outcome": PullOutcome.EMPTY.value})
                    log.warning("%s", NO_DATA_TEXT)
            else:
                for row in close_outages(session=session, target=SOURCE, at=now,
                                         kinds=[NO_DATA]):
                    record_event(session=session, at=now, kind=EventKind.SOURCE_RECOVERED,
                                 summary=f"Prometheus has data again (none since "
                                 f"{row.since:%Y-%m-%d %H:%M}Z)",
                                 dedup_key=f"source-recovered:prometheus:{NO_DATA}")
        if empty:
            report.ok = False
            report.problems.insert(0, NO_DATA_TEXT)


def _merge(report: CollectReport, chunk: _Chunk) -> None:
    report.items += chunk.points
    if chunk.newest is not None and (report.newest is None or chunk.newest > report.newest):
        report.newest = chunk.newest
    for p in chunk.problems:
        if p not in report.problems:
            report.problems.append(p)
    if chunk.failed:
        report.ok = False


def _label(target: Target) -> str:
    return "the baseline" if target.key == BASELINE else f"service {target.key}"


def _targets(plan: Plan, *, window: str) -> Iterator[Target]:
    for vq in plan.variant_queries():
        qs = step_queries(selector=vq.selector, step=window, overrides=vq.templates)
        yield Target(key=vq.service or BASELINE, service=vq.service, queries=tuple(qs))


# -- pure helpers -------------------------------------------------------------------

def _step_seconds(step: timedelta) -> int:
    secs = step.total_seconds()
    if secs < 1 or secs != int(secs):
        raise ConfigError(f"expected a Prometheus step of whole seconds (>= 1s), got "
                          f"{format_duration(step)}")
    return int(secs)


def _floor(t: datetime, step: float) -> datetime:
    return datetime.fromtimestamp(math.floor(t.timestamp() / step) * step, UTC)


def _ceil(t: datetime, step: float) -> datetime:
    return datetime.fromtimestamp(math.ceil(t.timestamp() / step) * step, UTC)


def chunk_ranges(start: datetime, end: datetime, *, step: float,
                 max_points: int = MAX_POINTS) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end]`` (on the step grid) in ranges of at most ``max_points`` steps."""
    span = timedelta(seconds=step * (max_points - 1))
    lo = start
    while lo <= end:
        hi = min(lo + span, end)
        yield lo, hi
        lo = hi + timedelta(seconds=step)


def step_columns(answers: Mapping[Kind, Sequence[Series]], *, step_seconds: float
                 ) -> tuple[list[datetime], dict[str, list[Any]]]:
    """Store columns from the answers of one variant's queries, one entry per step that
    has any value (None where a column has none): rates times the step (increases),
    buckets as ``{le: increase}``, gauges as they are.  Several series of one scalar
    kind add up (an override without ``sum``)."""
    every = [s.ts for series in answers.values() for s in series]
    if not every:
        return [], {}
    keys = np.unique(np.concatenate(every))
    arrays: dict[str, np.ndarray] = {}
    for kind, series in answers.items():
        scale = step_seconds if kind in INCREASES else 1.0
        for s in series:
            if kind is Kind.BUCKETS:
                le = s.labels.get("le")
                if le is None:
                    continue  # a bucket expression must keep `le`; anything else is no bucket
                name = "le:" + le
            else:
                name = kind.value
            col = arrays.setdefault(name, np.full(keys.size, np.nan))
            idx = np.searchsorted(keys, s.ts)
            col[idx] = np.where(np.isnan(col[idx]), 0.0, col[idx]) + s.values * scale
    if not arrays:
        return [], {}
    has = ~np.all(np.isnan(np.vstack(list(arrays.values()))), axis=0)
    keys = keys[has]
    columns: dict[str, list[Any]] = {
        n: _nullable(a[has]) for n, a in arrays.items() if not n.startswith("le:")}
    les = [(n[3:], a[has].tolist()) for n, a in arrays.items() if n.startswith("le:")]
    if les:
        columns["buckets"] = [({le: c[i] for le, c in les if c[i] == c[i]} or None)  # not NaN
                              for i in range(keys.size)]
    return [datetime.fromtimestamp(t, UTC) for t in keys.tolist()], columns


def _nullable(a: np.ndarray) -> list[float | None]:
    out = a.astype(object)
    out[np.isnan(a)] = None
    values: list[float | None] = out.tolist()
    return values

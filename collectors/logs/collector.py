"""The log collector: one pass over every log source of the plan."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from collectors.base import CollectReport
from collectors.logs.formats import JsonFormat, LogFormat
from collectors.logs.ingest import Aggregate, Ingestor, Rejects
from collectors.logs.limits import MAX_LINE
from collectors.logs.mapping import UNMAPPED_REASONS, Mapper
from collectors.logs.podlogs import PodTail, load_core_api
from collectors.logs.registry import format_for
from collectors.logs.tail import FileTail, TailStats, open_log
from slo.errors import CutoverError
from slo.plan import LogSource, Plan
from store.db import session_scope
from store.rollups import (
    Checkpoint,
    add_rejects,
    list_checkpoints,
    save_checkpoint,
    upsert_rollups,
)

__all__ = ["LogCollector"]

log = logging.getLogger(__name__)

#: lines read before the share taking the strict parser is worth a word
SLOW_PATH_MIN = 10_000
BLOCK_SIZE = 4 << 20     # bytes read at once: per-block costs vanish, peak memory stays low
FLUSH_BYTES = 64 << 20   # bytes of log between commits (and at every file's end)


@dataclass
class _Totals:
    bad: int = 0
    unmapped: int = 0
    newest: int | None = None
    reasons: dict[str, int] = field(default_factory=dict)


class LogCollector:
    """Tails the plan's gateway logs into per-minute rollups.

    ``core_api`` is a ``kubernetes.client.CoreV1Api`` for pod-log sources; without one it
    is built from the router's kubeconfig settings the first time a pod source needs it.
    """

    name = "logs"
    records_source_events = False   # the worker records them from the reports

    def __init__(self, *, plan: Plan, engine: Engine, core_api: Any = None,
                 block_size: int = BLOCK_SIZE, flush_bytes: int = FLUSH_BYTES):
        self.plan = plan
        self.engine = engine
        self._core_api = core_api
        self.block_size = block_size
        self.flush_bytes = flush_bytes
        #: per JSON source without ``fields:``, the format learned from its first lines
        self._learned: dict[str, LogFormat] = {}

    def collect(self, *, now: datetime, start: datetime | None = None,
                end: datetime | None = None) -> CollectReport:
        report = CollectReport(source=self.name)
        start_minute = int(start.timestamp()) // 60 if start is not None else None
        end_minute = int(end.timestamp()) // 60 if end is not None else None
        for src in self.plan.sources.logs:
            try:
                self._one(src, report, now=now, start_minute=start_minute,
                          end_minute=end_minute)
            except (CutoverError, OSError) as e:
                # one failing source is recorded, never the end of the others
                log.warning("log source %s failed: %s", src.label, e)
                report.ok = False
                report.problems.append(f"{src.label}: {e}")
        return report

    def _api(self) -> Any:
        if self._core_api is None:
            r = self.plan.router
            self._core_api = load_core_api(kubeconfig=r.kubeconfig, context=r.context,
                                           in_cluster=r.in_cluster)
        return self._core_api

    def _one(self, src: LogSource, report: CollectReport, *, now: datetime,
             start_minute: int | None, end_minute: int | None) -> None:
        fmt = self._format(src, report)
        aggregate, rejects = Aggregate(), Rejects()
        mapper = Mapper(self.plan, fmt)
        ingestor = Ingestor(fmt=fmt, mapper=mapper, aggregate=aggregate, rejects=rejects,
                            now=now)
        with session_scope(self.engine) as s:
            checkpoints = {c.stream: c for c in list_checkpoints(session=s, source=src.label)}
        totals = _Totals()

        def commit(cps: list[Checkpoint]) -> None:
            self._commit(src.label, aggregate, rejects, mapper, cps, now=now, totals=totals)
            for cp in cps:
                checkpoints[cp.stream] = cp

        stats: TailStats
        if src.path is not None:
            stats = FileTail(source=src.label, path=Path(src.path), ingestor=ingestor,
                             commit=commit, checkpoints=checkpoints,
                             block_size=self.block_size, flush_bytes=self.flush_bytes
                             ).run(start_minute=start_minute, end_minute=end_minute)
        else:
            assert src.pods is not None  # LogSource validates: a path or pods
            stats = PodTail(source=src.label, pods=src.pods, api=self._api(),
                            ingestor=ingestor, commit=commit, checkpoints=checkpoints,
                            now=now).run(start_minute=start_minute, end_minute=end_minute)
        report.items += stats.used
        report.rejected += totals.bad
        report.problems += stats.problems
        if totals.bad:
            why = ", ".join(f"{n} {r}" for r, n in sorted(totals.reasons.items())
                            if r not in UNMAPPED_REASONS.values())
            report.problems.append(f"{src.label}: {totals.bad} lines rejected ({why})")
        if totals.unmapped:
            report.problems.append(
                f"{src.label}: {totals.unmapped} lines belong to no service or variant "
                f"of the plan (ignored)")
        slow = ingestor.good - ingestor.scanned
        report.strict += slow
        if fmt.compiled and ingestor.good >= SLOW_PATH_MIN and slow > ingestor.good * 0.1:
            # every line is still read, only slower: worth saying, once a run
            note = (f"{src.label}: {slow} of {ingestor.good} lines took the strict parser, "
                    f"not the compiled scanner (JSON numbers with an exponent or a sign, "
                    f"escaped times, invalid UTF-8; a format unlike its template): ingest is several times slower")
            log.warning("%s", note)
            report.problems.append(note)
        if totals.newest is not None:
            newest = datetime.fromtimestamp(totals.newest * 60, UTC)
            report.newest = max(report.newest, newest) if report.newest else newest

    def _format(self, src: LogSource, report: CollectReport) -> LogFormat:
        """The source's format; for a JSON file without ``fields:``, with the field
        names its first lines use (jsonfields.py), learned once.  Names that are not
        clear fail the source with what to write (nothing is read, nothing lost)."""
        fmt = format_for(src.format, src.fields)
        if not isinstance(fmt, JsonFormat) or src.fields or src.path is None:
            return fmt
        known = self._learned.get(src.label)
        if known is not None:
            return known
        head = _head_lines(Path(src.path))
        if not head:
            return fmt          # nothing written yet: learn from the first lines
        learned = fmt.learn(head)
        if isinstance(learned, JsonFormat) and learned.learned:
            note = (f"{src.label}: JSON fields read by their names: " + ", ".join(
                f"{k} from {v}" for k, v in learned.learned.items() if k != v))
            log.info("%s", note)
            report.problems.append(note)
        self._learned[src.label] = learned
        return learned

    def _commit(self, label: str, aggregate: Aggregate, rejects: Rejects, mapper: Mapper,
                cps: list[Checkpoint], *, now: datetime, totals: _Totals) -> None:
        """Rollups, rejected lines and checkpoints in one transaction: a crash before
        it commits leaves the checkpoint where the rollups are."""
        with session_scope(self.engine) as s:
            upsert_rollups(session=s, deltas=aggregate.deltas(mapper.slots))
            for (file, reason), n in rejects.counts.items():
                add_rejects(session=s, source=label, file=file, reason=reason, count=n,
                            samples=rejects.samples.get((file, reason), []), at=now)
            for cp in cps:
                save_checkpoint(session=s, checkpoint=cp, at=now)
        totals.bad += rejects.bad
        totals.unmapped += rejects.unmapped
        for (_, reason), n in rejects.counts.items():
            totals.reasons[reason] = totals.reasons.get(reason, 0) + n
        if aggregate.newest is not None:
            totals.newest = max(totals.newest or 0, aggregate.newest)
        aggregate.clear()
        rejects.clear()


#: how much of a JSON log's start its field names are learned from
HEAD_BYTES = 4 * MAX_LINE


def _head_lines(path: Path) -> list[bytes]:
    """The complete lines of the file's first HEAD_BYTES (none when it is not there)."""
    try:
        with open_log(path) as f:
            head = f.read(HEAD_BYTES)
    except (OSError, EOFError):
        return []
    return head.split(b"\n")[:-1]

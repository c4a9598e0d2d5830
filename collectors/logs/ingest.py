"""From blocks of lines to per-minute rollups held in memory until the next commit.

:class:`Ingestor` parses a block with its format, maps each line to a slot (service,
variant), turns timestamp keys into minutes (once per distinct key) and adds the block
to an :class:`Aggregate` with numpy: one ``np.unique`` for the (slot, minute) groups,
``bincount`` for the sums, one more ``np.unique`` for the sketch buckets.  Nothing per
line is written to the database: a commit carries one row per (service, variant,
minute) touched, whatever the number of lines behind it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from collectors.logs import native
from collectors.logs.formats import Columns, LogFormat, lines_at, minute_of
from collectors.logs.limits import TimeNeighbours
from collectors.logs.mapping import UNMAPPED_REASONS, Mapper, cached_lookup
from slo.sketch import BUCKET_PARAMS, LogSketch, bucket_indices
from store.rollups import RollupDelta

__all__ = ["Aggregate", "BlockResult", "Ingestor", "Rejects"]

_SAMPLES = 5
_TIME_CACHE_LIMIT = 100_000


@dataclass
class Rejects:
    """Lines not used, per (file, reason), with a few samples each."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    samples: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, file: str, reason: str, line: bytes | None = None, count: int = 1) -> None:
        key = (file, reason)
        self.counts[key] += count
        if line is not None:
            kept = self.samples.setdefault(key, [])
            if len(kept) < _SAMPLES:
                kept.append(line[:2000].decode("utf-8", "replace"))

    def clear(self) -> None:
        self.counts.clear()
        self.samples.clear()

    @property
    def bad(self) -> int:
        return sum(n for (_, r), n in self.counts.items() if r not in _NOT_BAD)

    @property
    def unmapped(self) -> int:
        return sum(n for (_, r), n in self.counts.items() if r in _NOT_BAD)


_NOT_BAD = set(UNMAPPED_REASONS.values())


@dataclass
class _Cell:
    requests: int = 0
    errors: int = 0
    size: int = 0
    sketch: LogSketch = field(default_factory=LogSketch)


class Aggregate:
    """(slot, epoch minute) -> requests, 5xx, bytes, latency sketch."""

    def __init__(self) -> None:
        self._cells: dict[tuple[int, int], _Cell] = {}
        # sketch counts of the compiled path not yet in the cells: (slot, minute,
        # bucket, count) arrays per block, added up once, when the cells are read
        self._pending: list[tuple[np.ndarray, ...]] = []
        self.lines = 0
        self.newest: int | None = None

    @property
    def cells(self) -> dict[tuple[int, int], _Cell]:
        self._settle()
        return self._cells

    def add(self, slot: np.ndarray, minute: np.ndarray, status: np.ndarray,
            size: np.ndarray, latency_ms: np.ndarray) -> None:
        if len(slot) == 0:
            return
        if native.scan is not None:
            self._add_compiled(slot, minute, status, size, latency_ms)
        else:
            self._add_numpy(slot, minute, status, size, latency_ms)
        self.lines += len(slot)
        top = int(minute.max())
        self.newest = top if self.newest is None else max(self.newest, top)

    def _add_compiled(self, slot: np.ndarray, minute: np.ndarray, status: np.ndarray,
                      size: np.ndarray, latency_ms: np.ndarray) -> None:
        """One pass in C (``_scan.rollup``): per (slot, minute) the sums, per (cell,
        bucket) the counts; here only the few cells of the block are merged in."""
        assert native.scan is not None
        f8, i8 = np.float64, np.int64
        rolled = native.scan.rollup(
            np.ascontiguousarray(slot, i8), np.ascontiguousarray(minute, i8),
            np.ascontiguousarray(status, f8), np.ascontiguousarray(size, f8),
            np.ascontiguousarray(latency_ms, f8), *BUCKET_PARAMS)
        key_array = np.frombuffer(rolled.cells, dtype=i8).reshape(-1, 2)
        key_list = key_array.tolist()
        for (slot_, minute_), n, e, b, s in zip(
                key_list, np.frombuffer(rolled.requests, dtype=i8).tolist(),
                np.frombuffer(rolled.errors, dtype=i8).tolist(),
                np.frombuffer(rolled.sizes, dtype=f8).tolist(),
                np.frombuffer(rolled.sums, dtype=f8).tolist(), strict=True):
            cell = self._cells.get((slot_, minute_))
            if cell is None:
                cell = self._cells[(slot_, minute_)] = _Cell()
            cell.requests += n
            cell.errors += e
            cell.size += int(round(b))
            cell.sketch.total_ms += s
        pairs = np.frombuffer(rolled.pairs, dtype=i8).reshape(-1, 2)
        cell_of = key_array[pairs[:, 0]]
        self._pending.append((cell_of[:, 0], cell_of[:, 1], pairs[:, 1],
                              np.frombuffer(rolled.counts, dtype=i8)))

    def _settle(self) -> None:
        """Adds the pending sketch counts up (numpy, one sort for all blocks) and into
        the cells' sketches: one dict update per (cell, bucket), not per block."""
        if not self._pending:
            return
        slot, minute, bucket, count = (np.concatenate(c)
                                       for c in zip(*self._pending, strict=True))
        self._pending.clear()
        order = np.lexsort((bucket, minute, slot))
        slot, minute, bucket, count = slot[order], minute[order], bucket[order], count[order]
        new = np.ones(len(slot), dtype=bool)
        new[1:] = (slot[1:] != slot[:-1]) | (minute[1:] != minute[:-1]) | \
            (bucket[1:] != bucket[:-1])
        starts = np.flatnonzero(new)
        totals = np.add.reduceat(count, starts).tolist()
        slot, minute, bucket = slot[starts], minute[starts], bucket[starts]
        cell_start = np.flatnonzero(np.concatenate(
            [[True], (slot[1:] != slot[:-1]) | (minute[1:] != minute[:-1])]))
        bounds = [*cell_start.tolist(), len(slot)]
        buckets = bucket.tolist()
        for k, a in enumerate(bounds[:-1]):
            z = bounds[k + 1]
            counts = self._cells[(int(slot[a]), int(minute[a]))].sketch.counts
            if counts:
                for i, c in zip(buckets[a:z], totals[a:z], strict=True):
                    counts[i] = counts.get(i, 0) + c
            else:
                counts.update(zip(buckets[a:z], totals[a:z], strict=True))

    def _add_numpy(self, slot: np.ndarray, minute: np.ndarray, status: np.ndarray,
                   size: np.ndarray, latency_ms: np.ndarray) -> None:
        # (slot, minute) and (cell, bucket) as dense integers: a block spans a minute
        # or two and a few hundred buckets, so grouping is counting, not sorting
        first, span = int(minute.min()), int(minute.max() - minute.min()) + 1
        keys, inv = _groups(slot * span + (minute - first))
        requests = np.bincount(inv, minlength=len(keys))
        errors = np.bincount(inv, weights=(status >= 500), minlength=len(keys))
        sizes = np.bincount(inv, weights=size, minlength=len(keys))
        sums = np.bincount(inv, weights=latency_ms, minlength=len(keys))
        bucket = bucket_indices(latency_ms)
        low, width = int(bucket.min()), int(bucket.max() - bucket.min()) + 1
        pair_keys, pair_inv = _groups(inv * width + (bucket - low))
        pair_counts = np.bincount(pair_inv, minlength=len(pair_keys))
        cells = []
        for k, n, e, b, s in zip(keys.tolist(), requests.tolist(), errors.tolist(),
                                 sizes.tolist(), sums.tolist(), strict=True):
            key = (k // span, k % span + first)
            cell = self._cells.get(key)
            if cell is None:
                cell = self._cells[key] = _Cell()
            cell.requests += n
            cell.errors += int(round(e))
            cell.size += int(round(b))
            cell.sketch.total_ms += s
            cells.append(cell)
        for p, c in zip(pair_keys.tolist(), pair_counts.tolist(), strict=True):
            counts = cells[p // width].sketch.counts
            i = p % width + low
            counts[i] = counts.get(i, 0) + c

    def deltas(self, slots: list[tuple[str, str]]) -> list[RollupDelta]:
        out = []
        for (slot, minute), c in self.cells.items():
            service, variant = slots[slot]
            out.append(RollupDelta(service, variant, datetime.fromtimestamp(minute * 60, UTC),
                                   c.requests, c.errors, c.size, c.sketch))
        return out

    def clear(self) -> None:
        self._cells.clear()
        self._pending.clear()
        self.lines = 0


#: the widest key range grouped by counting rather than sorting
_DENSE_LIMIT = 1 << 20


def _groups(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys, ascending, and each element's index among them: what
    ``np.unique(key, return_inverse=True)`` gives, by counting when the keys of a block
    span a narrow range (a block holds a minute or two of a few slots: no sort needed),
    else by sorting."""
    lo, hi = int(key.min()), int(key.max())
    if hi - lo >= _DENSE_LIMIT:
        keys, inv = np.unique(key, return_inverse=True)
        return keys, inv.reshape(-1)
    shifted = key - lo
    present = np.bincount(shifted, minlength=hi - lo + 1) > 0
    rank = np.cumsum(present) - 1
    return np.flatnonzero(present) + lo, rank[shifted]


@dataclass(frozen=True)
class BlockResult:
    lines: int          # lines of the block consumed (all of them unless stopped)
    used: int           # lines added to the rollups
    stopped: bool       # a line at or after ``end_minute`` was reached
    skipped: int        # lines before ``start_minute``


class Ingestor:
    """Parses, maps and aggregates blocks of one log source."""

    def __init__(self, *, fmt: LogFormat, mapper: Mapper, aggregate: Aggregate,
                 rejects: Rejects, now: datetime | None = None):
        self.fmt = fmt
        #: the times of the lines just read, to judge the next ones' by (limits.py)
        self.times = TimeNeighbours(
            now_minute=None if now is None else int(now.timestamp()) // 60)
        self.mapper = mapper
        self.aggregate = aggregate
        self.rejects = rejects
        self._minutes: dict[Any, int] = {}
        #: lines read, and of those the compiled scanner's (the rest: the strict parser)
        self.good = 0
        self.scanned = 0

    def parse(self, block: bytes) -> Columns:
        """The block's columns (no state is read or changed: safe in another thread)."""
        return self.fmt.parse(block, path_cuts=self.mapper.path_cuts)

    def feed(self, block: bytes, *, file: str, lines: int,
             start_minute: int | None = None, end_minute: int | None = None,
             parsed: Columns | None = None) -> BlockResult:
        """Take a block of ``lines`` complete lines (no final newline), parsed already
        when ``parsed`` is given.  With ``end_minute``, stop before the first line at or
        after it (that line and those after it are left for a later pass)."""
        cols = self.parse(block) if parsed is None else parsed
        self.good += len(cols)
        self.scanned += cols.scanned
        minute = self._minutes_of(cols.ts)
        bad_time = minute < 0
        # times in the future or far from their neighbours' (limits.py)
        odd = self.times.check(minute)
        out_of_line = odd != ""
        bad_time |= out_of_line
        consumed = lines
        stopped = False
        if end_minute is not None:
            late = np.flatnonzero((minute >= end_minute) & ~bad_time)
            if len(late):
                consumed = int(cols.index[late[0]])
                stopped = True
        for i, reason, line in cols.bad:
            if i < consumed:
                self.rejects.add(file, reason, line)
        keep = cols.index < consumed
        if out_of_line.any():
            for reason in set(odd[out_of_line & keep].tolist()):
                self._reject_lines(block, cols, odd == reason, reason, file)
        self._reject_lines(block, cols, bad_time & ~out_of_line & keep, "bad-time", file)
        keep &= ~bad_time
        skipped = 0
        if start_minute is not None:
            early = keep & (minute < start_minute)
            skipped = int(early.sum())
            keep &= ~early
        used = self._add(cols, minute, keep, file)
        return BlockResult(consumed, used, stopped, skipped)

    def prime(self, block: bytes) -> None:
        """Read the lines before the first to be fed (not counted) for the times they
        hold: the neighbours of the first lines fed (limits.py)."""
        cols = self.parse(block)
        self.times.prime(self._minutes_of(cols.ts))

    def _reject_lines(self, block: bytes, cols: Columns, which: np.ndarray, reason: str,
                      file: str) -> None:
        lines = np.flatnonzero(which)
        if not len(lines):
            return
        # the whole line as the sample (a few of them), the count for all
        at = cols.index[lines[:_SAMPLES]].tolist()
        for line in lines_at(block, at):
            self.rejects.add(file, reason, line)
        if len(lines) > len(at):
            self.rejects.add(file, reason, None, len(lines) - len(at))

    def _add(self, cols: Columns, minute: np.ndarray, keep: np.ndarray, file: str) -> int:
        slot = self.mapper.slot_ids(cols.path, cols.upstream, cols.route)
        for code, reason in UNMAPPED_REASONS.items():
            n = int(((slot == code) & keep).sum())
            if n:
                self.rejects.add(file, reason, None, n)
        keep = keep & (slot >= 0)
        if keep.all():
            self.aggregate.add(slot, minute, cols.status, cols.size, cols.latency_ms)
        else:
            self.aggregate.add(slot[keep], minute[keep], cols.status[keep], cols.size[keep],
                               cols.latency_ms[keep])
        return int(keep.sum())

    def _minutes_of(self, ts: Any) -> np.ndarray:
        kind = self.fmt.time_kind

        def compute(k: Any) -> int:
            m = minute_of(kind, k)
            return -1 if m is None else m

        return cached_lookup(ts, self._minutes, compute, limit=_TIME_CACHE_LIMIT)

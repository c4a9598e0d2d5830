"""Mergeable latency distributions.

:class:`LogSketch` is a log-bucket histogram in the manner of DDSketch (Masson, Rim and
Lee, VLDB 2019): a value x > 0 falls in bucket ceil(log_gamma(x)) with
gamma = (1 + a) / (1 - a), and any quantile read back from the buckets is within a
relative error ``a`` of the true value.  Buckets of equal index add up, so per-minute
sketches merge into any window exactly.  Values are milliseconds.

:class:`BucketHistogram` holds Prometheus-style cumulative ``le`` buckets and reads
quantiles the way PromQL's ``histogram_quantile`` does (linear inside a bucket).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["BUCKET_PARAMS", "RELATIVE_ACCURACY", "BucketHistogram", "LogSketch"]

RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
#: values at or below this (ms) share bucket ``_ZERO`` (a 1 µs latency is "zero")
_MIN_VALUE = 1e-3
_ZERO = -(10**6)
#: what a compiled bucket_index needs: log(gamma), the "zero" threshold and bucket
BUCKET_PARAMS = (_LOG_GAMMA, _MIN_VALUE, _ZERO)


def bucket_index(ms: float) -> int:
    if ms <= _MIN_VALUE:
        return _ZERO
    return math.ceil(math.log(ms) / _LOG_GAMMA)


def bucket_indices(ms: np.ndarray) -> np.ndarray:
    """Vectorised :func:`bucket_index` for a float array of milliseconds."""
    ms = np.asarray(ms, dtype=np.float64)
    out = np.full(ms.shape, _ZERO, dtype=np.int64)
    pos = ms > _MIN_VALUE
    out[pos] = np.ceil(np.log(ms[pos]) / _LOG_GAMMA).astype(np.int64)
    return out


def bucket_value(index: int) -> float:
    """The value that represents bucket ``index``: within 1 % of every value in it."""
    if index == _ZERO:
        return 0.0
    return 2 * _GAMMA**index / (_GAMMA + 1)


@dataclass
class LogSketch:
    """Bucket index -> count.  ``total_ms`` keeps the exact sum for the average."""

    counts: dict[int, int] = field(default_factory=dict)
    total_ms: float = 0.0

    @classmethod
    def of(cls, values_ms: Iterable[float]) -> LogSketch:
        arr = np.fromiter(values_ms, dtype=np.float64)
        sk = cls()
        sk.add_many(arr)
        return sk

    def add(self, ms: float, count: int = 1) -> None:
        i = bucket_index(ms)
        self.counts[i] = self.counts.get(i, 0) + count
        self.total_ms += ms * count

    def add_many(self, values_ms: np.ndarray) -> None:
        if len(values_ms) == 0:
            return
        idx, cnt = np.unique(bucket_indices(values_ms), return_counts=True)
        for i, c in zip(idx.tolist(), cnt.tolist(), strict=True):
            self.counts[i] = self.counts.get(i, 0) + c
        self.total_ms += float(np.sum(values_ms))

    def merge(self, other: LogSketch) -> LogSketch:
        for i, c in other.counts.items():
            self.counts[i] = self.counts.get(i, 0) + c
        self.total_ms += other.total_ms
        return self

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    @property
    def mean(self) -> float | None:
        n = self.count
        return self.total_ms / n if n else None

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0..1) within 1 % relative error, None when empty.

        Rank convention: the value of rank floor(q * (n - 1)) in sorted order, as DDSketch."""
        n = self.count
        if n == 0:
            return None
        rank = math.floor(q * (n - 1))
        seen = 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen > rank:
                return bucket_value(i)
        return bucket_value(max(self.counts))

    def to_bytes(self) -> bytes:
        """Compact, stable encoding: sum as float64, then (index int32, count uint32) pairs."""
        items = sorted(self.counts.items())
        head = struct.pack("<dI", self.total_ms, len(items))
        if not items:
            return head
        pairs = np.array(items, dtype=np.int64)
        if pairs[:, 1].min() < 0 or pairs[:, 1].max() >= 2**32:
            raise ValueError("a bucket count outside uint32")
        out = np.empty(len(items), dtype=[("i", "<i4"), ("c", "<u4")])
        out["i"] = np.maximum(pairs[:, 0], -(2**31))
        out["c"] = pairs[:, 1]
        return head + out.tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes) -> LogSketch:
        total, n = struct.unpack_from("<dI", blob, 0)
        counts: dict[int, int] = {}
        for k in range(n):
            i, c = struct.unpack_from("<iI", blob, 12 + 8 * k)
            counts[_ZERO if i == -(2**31) else i] = c
        return cls(counts=counts, total_ms=total)


@dataclass
class BucketHistogram:
    """Counts per upper bound ``le`` (seconds, cumulative as Prometheus exposes them)."""

    cumulative: dict[float, float] = field(default_factory=dict)
    total_seconds: float = 0.0

    def merge(self, other: BucketHistogram) -> BucketHistogram:
        for le, c in other.cumulative.items():
            self.cumulative[le] = self.cumulative.get(le, 0.0) + c
        self.total_seconds += other.total_seconds
        return self

    @classmethod
    def from_mapping(cls, m: Mapping[float, float], total_seconds: float = 0.0) -> BucketHistogram:
        return cls(dict(m), total_seconds)

    @property
    def count(self) -> float:
        return self.cumulative.get(math.inf, max(self.cumulative.values(), default=0.0))

    @property
    def mean(self) -> float | None:
        n = self.count
        return self.total_seconds * 1000 / n if n else None

    def quantile(self, q: float) -> float | None:
        """Milliseconds, by PromQL's histogram_quantile rule (linear in the bucket)."""
        bounds = sorted(self.cumulative)
        if not bounds or self.count <= 0:
            return None
        rank = q * self.count
        prev_le, prev_c = 0.0, 0.0
        for le in bounds:
            c = self.cumulative[le]
            if c >= rank:
                if math.isinf(le):
                    return prev_le * 1000  # as PromQL: the highest finite bound
                width = c - prev_c
                frac = (rank - prev_c) / width if width > 0 else 1.0
                return (prev_le + (le - prev_le) * frac) * 1000
            prev_le, prev_c = le, c
        return prev_le * 1000

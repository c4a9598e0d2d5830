"""What a log line may say and still be counted: one home for every bound.

A line outside these bounds is not a request the judge should weigh: it is rejected
with its reason (and a sample kept), never counted, and never the end of a pass (the
checkpoint moves past it like past any other line).  The bounds are applied to the
columns a format gives, so the compiled scanner and the strict parsers apply them
identically (formats.py calls :func:`bounded` on both readings, ingest.py
:class:`TimeNeighbours` on the minutes of either).

- **status**: an integer from 100 to 599 (RFC 9110 15: three digits, first 1-5).  A JSON
  status must be an integer, not text (``"200"``) nor a fraction (``200.5``).
- **latency**: from 0 to MAX_LATENCY_MS.  Negative times are clock steps or bugs, and a
  request longer than a day is not one a gateway answered.
- **bytes**: from 0 to MAX_BYTES, so that no sum of a minute comes near PostgreSQL's
  BIGINT; the stored counters saturate at BIGINT_MAX anyway (:func:`saturate`).
- **time**: a time from 1970 to 9999 (what ``datetime`` holds), no more than
  FUTURE_SKEW_MINUTES past the collector's clock, and no more than ABSURD_MINUTES from
  the median of its NEIGHBOURS neighbours on either side in the file (a long upload
  stamped at its start is fine; a line stamped with year 9999 or 1970 among today's
  lines is not).  The neighbours of the first lines read after a checkpoint come from
  re-reading PRIME_BYTES before it.
- **length**: at most MAX_LINE bytes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from store.rollups import BIGINT_MAX, saturate

__all__ = [
    "ABSURD_MINUTES",
    "BIGINT_MAX",
    "FUTURE_SKEW_MINUTES",
    "MAX_BYTES",
    "MAX_LATENCY_MS",
    "MAX_LINE",
    "MAX_MINUTE",
    "MIN_MINUTE",
    "NEIGHBOURS",
    "PRIME_BYTES",
    "STATUS_MAX",
    "STATUS_MIN",
    "TimeNeighbours",
    "out_of_bounds",
    "saturate",
]

#: a line longer than this is rejected unread ("too-long"): real access-log lines are
#: far shorter, and this bounds what one line can cost
MAX_LINE = 64 * 1024
STATUS_MIN, STATUS_MAX = 100, 599
#: a day, in milliseconds
MAX_LATENCY_MS = 86_400_000.0
#: a petabyte in one answer: far past any real one, and a whole minute of such lines
#: still sums within BIGINT (below 9.2e18) up to 9,000 lines
MAX_BYTES = 10**15
#: a time further than this from its neighbours' median is absurd (ROUND2: 24 hours)
ABSURD_MINUTES = 24 * 60
#: lines on either side whose median a time is compared with
NEIGHBOURS = 8
#: bytes re-read before a checkpoint's offset for the neighbours of the next lines
PRIME_BYTES = 16 * 1024
#: a time this far past the collector's clock is still taken (clocks differ a little)
FUTURE_SKEW_MINUTES = 10
#: the epoch minutes a time may have: 1970-01-01 to 9999-12-31 23:59
MIN_MINUTE = 0
MAX_MINUTE = int(datetime(9999, 12, 31, 23, 59, tzinfo=UTC).timestamp()) // 60

# the reasons, as stored with the rejected lines (at most 32 characters)
BAD_STATUS, BAD_LATENCY, BAD_BYTES = "bad-status", "bad-latency", "bad-bytes"
ABSURD_TIME, FUTURE_TIME = "absurd-time", "future-time"


def out_of_bounds(status: np.ndarray, size: np.ndarray,
                  latency_ms: np.ndarray) -> list[tuple[int, str]]:
    """The positions of the values outside their bounds, each with its reason (the
    first field out of bounds, in the order status, latency, bytes).  NaN is out."""
    bad_status = ~((status >= STATUS_MIN) & (status <= STATUS_MAX)
                   & (status == np.floor(status)))
    bad_latency = ~((latency_ms >= 0) & (latency_ms <= MAX_LATENCY_MS))
    bad_size = ~((size >= 0) & (size <= MAX_BYTES))
    if not (bad_status.any() or bad_latency.any() or bad_size.any()):
        return []
    out = []
    for i in np.flatnonzero(bad_status | bad_latency | bad_size).tolist():
        reason = BAD_STATUS if bad_status[i] else BAD_LATENCY if bad_latency[i] else BAD_BYTES
        out.append((i, reason))
    return out


@dataclass
class TimeNeighbours:
    """The minutes of the lines just read, to judge the next lines' times by.

    :meth:`check` takes the epoch minutes of a block's lines in file order (negative:
    no time) and says, per line, whether its time is in the future or absurd.  The
    common case costs a min and a max: when every time of the block and of the lines
    before it lies within ABSURD_MINUTES of every other, no median can be further."""

    now_minute: int | None = None
    recent: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def prime(self, minutes: Sequence[int] | np.ndarray) -> None:
        """Lines before the ones to check (re-read before a checkpoint), in order."""
        m = np.asarray(minutes, dtype=np.int64)
        self.recent = np.concatenate([self.recent, m[m >= 0]])[-NEIGHBOURS:]

    def check(self, minutes: np.ndarray) -> np.ndarray:
        """Per line: "" when its time is fine (or absent), else FUTURE_TIME or
        ABSURD_TIME (an array of str, object dtype only when some line is out)."""
        minutes = np.asarray(minutes, dtype=np.int64)
        timed = minutes >= 0
        future = np.zeros(len(minutes), dtype=bool)
        if self.now_minute is not None:
            future = timed & (minutes > self.now_minute + FUTURE_SKEW_MINUTES)
        valid = minutes[timed]
        seq = np.concatenate([self.recent, valid])
        absurd = np.zeros(len(minutes), dtype=bool)
        if len(seq) and int(seq.max()) - int(seq.min()) > ABSURD_MINUTES:
            far = _far_from_neighbours(seq, len(self.recent))
            absurd[np.flatnonzero(timed)] = far
        self.recent = seq[-NEIGHBOURS:]
        if not (future.any() or absurd.any()):
            return np.zeros(len(minutes), dtype="<U1")
        out = np.zeros(len(minutes), dtype=object)
        out[:] = ""
        out[absurd] = ABSURD_TIME
        out[future] = FUTURE_TIME
        return out


def _far_from_neighbours(seq: np.ndarray, first: int) -> np.ndarray:
    """For seq[first:], whether each value is more than ABSURD_MINUTES from the median
    of the up to NEIGHBOURS values on either side of it in ``seq``."""
    k = NEIGHBOURS
    pad = np.full(k, np.nan)
    padded = np.concatenate([pad, seq.astype(np.float64), pad])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * k + 1)[first:]
    around = np.delete(windows, k, axis=1)
    with warnings.catch_warnings():
        # a line with no neighbour at all (a file of one line) has no median: NaN, and
        # it is judged by the clock alone
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(around, axis=1)
    values = seq[first:].astype(np.float64)
    return np.abs(values - median) > ABSURD_MINUTES

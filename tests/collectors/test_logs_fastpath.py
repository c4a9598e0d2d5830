"""The fast paths (pyarrow) read exactly what the strict parsers read: same rollups, same
rejects, on clean blocks and on blocks with near-miss and hostile lines mixed in."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from collectors.logs.formats import (
    FALLBACK_PIECE,
    NGINX,
    Columns,
    Encoded,
    JsonFormat,
    NotThisPath,
    RegexFormat,
    halving,
)
from collectors.logs.ingest import Aggregate, Ingestor, Rejects
from collectors.logs.mapping import Mapper
from slo.plan import Plan
from store.rollups import RollupDelta
from tests.collectors.test_logs_support import json_line, nginx, requests

HEAD = b'10.0.0.1 - - [26/Nov/2026:12:00:07 +0000] '
TAIL = b' "-" "ua" 0.010 "python-auth"'

#: lines the strict regex reads, though they are not what the generator writes
UNUSUAL = [
    HEAD + b'"GET /api/auth/login HTTP/1.1" 999 5 "-" "ua" 0.010 "python-auth"',
    HEAD + b'"GET /api/auth" 200 5 "-" "ua" 12 "python-auth"',
    HEAD + b'"/api/auth" 503 0 "-" "ua" 0.5 "python-auth"',
    HEAD + b'"GET  /api/auth HTTP/1.1" 200 5' + TAIL,            # two spaces: path ""
    HEAD + b'"/x /api/auth HTTP/1.1" 200 5' + TAIL,              # the path is the 2nd word
    HEAD + b'"GET /api/auth HTTP/1.1" 200 00012 "-" "ua" 0.010 "10.0.0.1:80, python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010 "a,, b, , python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010 ""',
    b'- - me [31/Feb/2026:12:00:07 +0000] "GET /api/auth HTTP/1.1" 200 5' + TAIL,  # bad time
    b'10.0.0.1 - - [26/Nov/2026:12:00:07 -0130] "GET /api/auth HTTP/1.1" 200 5' + TAIL,
    b'10.0.0.1 - - [26/Nov/2026:12:00:07 +0000] "GET /api/auth HTTP/1.1" 200 5' + TAIL + b"\r",
]

#: lines with eight quotes that the strict regex refuses: each field check must catch it
NEAR_MISSES = [
    b'10.0.0.1 x - - [26/Nov/2026:12:00:07 +0000] "GET /api/auth HTTP/1.1" 200 5' + TAIL,
    b'10.0.0.1 - - [26/Nov/2026:12:0x:07 +0000] "GET /api/auth HTTP/1.1" 200 5' + TAIL,
    b'10.0.0.1 - - [26/Nov/2026:12:00:07 +0000]  "GET /api/auth HTTP/1.1" 200 5' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 2e2 5' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 200 -5' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 6' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-"  "ua" 0.010 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 1e3 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" .5 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 5. "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010 "python auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010 " python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010 "a ,python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010 "a,  python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 1.2.3 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 1..2 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua"  0.010 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" 0.010  "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-" "ua" - "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1"  200 5' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 20 5' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 2000 5' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 200 ' + TAIL,
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5 "-"x"ua" 0.010 "python-auth"',
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5' + TAIL + b" x",
    HEAD + b'"GET /api/auth HTTP/1.1" 200 5' + TAIL + b"\r\r",
    b'1"0 - - [26/Nov/2026:12:00:07 +0000] "GET /api/auth HTTP/1.1" 200 5' + TAIL,
    b"",
    b"\xff\xfe\x00garbage",
    b"A" * 70_000,
]


def _strict() -> RegexFormat:
    return RegexFormat(NGINX._spec)


def _ingest(fmt, plan: Plan, block: bytes) -> tuple[list[RollupDelta], dict, list]:
    aggregate, rejects = Aggregate(), Rejects()
    mapper = Mapper(plan, fmt)
    ing = Ingestor(fmt=fmt, mapper=mapper, aggregate=aggregate, rejects=rejects)
    ing.feed(block, file="f", lines=block.count(b"\n") + 1)
    deltas = sorted(aggregate.deltas(mapper.slots), key=lambda d: (d.service, d.variant,
                                                                    d.minute))
    sketches = [(d.service, d.variant, d.minute, d.requests, d.errors, d.bytes_sent,
                 sorted(d.sketch.counts.items()), d.sketch.total_ms) for d in deltas]
    return sketches, dict(rejects.counts), sorted(rejects.samples.items())


def _clean(n: int = 400) -> list[bytes]:
    return [nginx(r).encode() for r in requests(n)]


def test_clean_and_unusual_lines_take_the_fast_path_with_the_strict_result(plan: Plan) -> None:
    lines = _clean()
    for i, extra in enumerate(UNUSUAL):
        lines.insert(37 * i + 5, extra)
    block = b"\n".join(lines)
    cols = NGINX.parse(block)
    assert isinstance(cols.path, Encoded) and cols.bad == []     # pyarrow's path took it
    fast = _ingest(NGINX, plan, block)
    assert fast == _ingest(_strict(), plan, block)
    assert fast[0] and sum(r[3] for r in fast[0]) > 300
    assert fast[1].get(("f", "bad-time")) == 1


@pytest.mark.parametrize("bad", NEAR_MISSES, ids=range(len(NEAR_MISSES)))
def test_a_near_miss_line_anywhere_gives_the_strict_result(plan: Plan, bad: bytes) -> None:
    for where in (0, 123, 400):
        lines = _clean()
        lines.insert(where, bad)
        block = b"\n".join(lines)
        fast = _ingest(NGINX, plan, block)
        strict = _ingest(_strict(), plan, block)
        assert fast == strict
        assert sum(fast[1].values()) >= 1


def test_the_fast_path_numbers_equal_python_floats() -> None:
    rnd = np.random.default_rng(3)
    lat = [f"{x:.{d}f}" for x, d in zip(rnd.lognormal(0, 3, 500), rnd.integers(0, 9, 500),
                                         strict=True)]
    lines = [HEAD + f'"GET /a HTTP/1.1" {200 + i % 300} {i * 7919} "-" "ua" {v} "u"'.encode()
             for i, v in enumerate(lat)]
    block = b"\n".join(lines)
    fast, strict = NGINX.parse(block), _strict().parse(block)
    assert isinstance(fast.path, Encoded)
    for name in ("status", "size", "latency_ms"):
        assert getattr(fast, name).tolist() == getattr(strict, name).tolist(), name
    assert list(fast.path) == list(strict.path) and list(fast.ts) == list(strict.ts)


def test_json_fast_path_gives_the_orjson_rollups(plan: Plan) -> None:
    fmt = JsonFormat()
    lines = [json_line(r).encode() for r in requests(400)]
    block = b"\n".join(lines)
    assert isinstance(fmt.parse(block).path, Encoded)

    class Orjson(JsonFormat):
        def parse(self, block: bytes):  # the orjson path only
            return self._line_by_line(block.split(b"\n"))

    assert _ingest(fmt, plan, block) == _ingest(Orjson(), plan, block)
    hostile = b"\n".join([*lines[:200], b'{"time": 5}', b"[1]", *lines[200:]])
    assert _ingest(fmt, plan, hostile) == _ingest(Orjson(), plan, hostile)
    # absent bytes and a null upstream: still the fast path, read as 0 and ""
    sparse = [orjson.loads(x) for x in lines]
    for doc in sparse[::3]:
        del doc["bytes"]
    for doc in sparse[1::3]:
        doc["upstream"] = None
    block = b"\n".join(map(orjson.dumps, sparse))
    assert isinstance(fmt.parse(block).path, Encoded)
    assert _ingest(fmt, plan, block) == _ingest(Orjson(), plan, block)


def test_bad_lines_in_a_big_block_cost_only_their_piece(plan: Plan) -> None:
    """A block of many pieces (FALLBACK_PIECE) with bad lines here and there: the pieces
    without one still take the fast path, and the whole reads as the strict parser
    reads it, positions and reasons included."""
    lines = _clean(4000)
    assert len(b"\n".join(lines)) > 8 * FALLBACK_PIECE
    for k, where in enumerate((0, 1700, 1701, 3999)):
        lines.insert(where, NEAR_MISSES[k % len(NEAR_MISSES)])
    lines.append(b"\xff\xfe\x00garbage")
    block = b"\n".join(lines)
    cols = NGINX.parse(block)
    strict = _strict().parse(block)
    assert [(i, r) for i, r, _ in cols.bad] == [(i, r) for i, r, _ in strict.bad]
    assert len(cols.bad) == 5
    assert cols.index.tolist() == strict.index.tolist()
    assert list(cols.path) == list(strict.path) and list(cols.ts) == list(strict.ts)
    assert list(cols.upstream) == list(strict.upstream)
    assert _ingest(NGINX, plan, block) == _ingest(_strict(), plan, block)


def test_halving_puts_pieces_back_in_line_order() -> None:
    calls: list[int] = []

    def fast(block: bytes) -> Columns:
        calls.append(len(block))
        if b"bad" in block:
            raise ValueError("a bad line")
        return _strict().parse(block)

    lines = _clean(3000)
    lines[2000] = b"bad"
    block = b"\n".join(lines)
    cols = halving(block, fast=fast, slow=_strict().parse)
    strict = _strict().parse(block)
    assert [(i, r) for i, r, _ in cols.bad] == [(2000, "malformed")]
    assert cols.index.tolist() == strict.index.tolist()
    assert cols.latency_ms.tolist() == strict.latency_ms.tolist()
    assert 1 < len(calls) < 40           # halvings, not a line-by-line walk

    def whole(block: bytes) -> Columns:
        raise NotThisPath("the block as a whole")

    assert halving(block, fast=whole, slow=_strict().parse).index.tolist() == \
        strict.index.tolist()


def test_json_routes_and_zones_take_orjson_with_the_same_rollups(plan: Plan) -> None:
    fmt = JsonFormat()

    class Orjson(JsonFormat):
        def parse(self, block: bytes):  # the orjson path only
            return self._line_by_line(block.split(b"\n"))

    reqs = requests(300)
    lines = [json_line(r).encode() for r in reqs]
    lines[10] = lines[10].replace(b'Z"', b'+01:00"', 1)     # a zone: the whole block
    lines[20] = lines[20][:-1] + b', "route": "auth"}'
    block = b"\n".join([*lines, b"{", *lines[:5]])
    assert _ingest(fmt, plan, block) == _ingest(Orjson(), plan, block)


@pytest.mark.parametrize("spread", [5, 3000, 1 << 40])
def test_grouping_by_counting_is_np_unique(spread: int) -> None:
    from collectors.logs.ingest import _groups

    key = np.random.default_rng(spread).integers(-spread, spread, 5000) + (1 << 33)
    keys, inv = _groups(key)
    want_keys, want_inv = np.unique(key, return_inverse=True)
    assert keys.tolist() == want_keys.tolist() and inv.tolist() == want_inv.tolist()


def test_the_aggregate_equals_a_line_by_line_count() -> None:
    from slo.sketch import LogSketch

    rnd = np.random.default_rng(5)
    n = 20_000
    slot = rnd.integers(0, 6, n)
    minute = 29_000_000 + rnd.integers(0, 3, n)
    status = rnd.choice([200.0, 404.0, 500.0, 503.0], n)
    size = rnd.integers(0, 10_000, n).astype(np.float64)
    latency = np.concatenate([rnd.lognormal(3, 2, n - 50), np.zeros(50)])   # "0.000" too
    agg = Aggregate()
    agg.add(slot[:7000], minute[:7000], status[:7000], size[:7000], latency[:7000])
    agg.add(slot[7000:], minute[7000:], status[7000:], size[7000:], latency[7000:])
    for (s, m), cell in agg.cells.items():
        sel = (slot == s) & (minute == m)
        assert cell.requests == int(sel.sum())
        assert cell.errors == int((status[sel] >= 500).sum())
        assert cell.size == int(size[sel].sum())
        assert cell.sketch.counts == LogSketch.of(latency[sel].tolist()).counts
    assert sum(c.requests for c in agg.cells.values()) == n == agg.lines


def test_odd_lines_alone_go_to_the_strict_regex(plan: Plan) -> None:
    """Odd lines (any quote count, any field the regex refuses, blank) are read again
    alone by the strict regex; the rest of the block stays on the fast path."""
    lines = _clean(2000)
    odd = [b"", b"junk", *NEAR_MISSES[:14], UNUSUAL[0]]
    for k, line in enumerate(odd):
        lines.insert(100 * k + 7, line)
    block = b"\n".join(lines)
    cols = NGINX._arrow_split(block)           # no refusal: the odd lines stay inside
    strict = _strict().parse(block)
    assert [(i, r) for i, r, _ in cols.bad] == [(i, r) for i, r, _ in strict.bad]
    assert len(cols.bad) == len(odd) - 1       # UNUSUAL[0] reads fine
    assert cols.index.tolist() == strict.index.tolist()
    for name in ("status", "size", "latency_ms"):
        assert getattr(cols, name).tolist() == getattr(strict, name).tolist()
    assert list(cols.path) == list(strict.path) and list(cols.ts) == list(strict.ts)
    assert _ingest(NGINX, plan, block) == _ingest(_strict(), plan, block)
    # bytes above 126 (nginx escapes them): the whole block is refused, halving reads it
    with pytest.raises(ValueError):
        NGINX._arrow_split(block + b"\n\xff\xfe\x00")
    binary = block + b"\n\xff\xfe\x00"
    assert _ingest(NGINX, plan, binary) == _ingest(_strict(), plan, binary)


@pytest.mark.parametrize("check,regex", [
    ("_status_size_rows", "_NGINX_STATUS_SIZE"),
    ("_latency_rows", "_NGINX_LATENCY"),
    ("_upstream_rows", "_NGINX_UPSTREAM"),
])
def test_numpy_field_checks_say_what_the_regex_says(check: str, regex: str) -> None:
    """Each numpy check against RE2 running the regex piece it stands for, on random
    values from the alphabet that matters (and nulls)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from collectors.logs import formats

    rnd = np.random.default_rng(11)
    alphabet = np.frombuffer(b" 0123456789.,a-", dtype=np.uint8)
    values: list[bytes | None] = [b" 200 5 ", b" 1.5 ", b"a, b", b"", b" ", None]
    for _ in range(6000):
        n = int(rnd.integers(0, 12))
        values.append(bytes(rnd.choice(alphabet, n).tolist()))
    for _ in range(2000):      # near the shapes that pass
        values.append(b" " + bytes(rnd.choice(alphabet[1:12], int(rnd.integers(1, 6)))
                                   .tolist()) + b" " + bytes(rnd.choice(
                                       alphabet[1:12], int(rnd.integers(0, 4))).tolist())
                      + b" ")
    array = pa.array(values, pa.binary())
    want = pc.match_substring_regex(array, getattr(formats, regex)).to_pylist()
    got = getattr(formats, check)(formats._Spans.of(array)).tolist()
    assert got == [bool(w) for w in want]
    assert any(got) and not all(got)

"""Types of the compiled log scanner (_scan.c)."""

from collections.abc import Sequence

MAX_LINE: int

#: lines, then the good lines' index (int64), status, size, latency (float64), the
#: deferred lines as (line, start, end) int64 triples, then codes (int32) and distinct
#: values of ts, path, upstream and route, and whether any line named a route
Scanned = tuple[int, bytes, bytes, bytes, bytes, bytes, bytes, list[bytes], bytes,
                list[bytes], bytes, list[bytes], bytes, list[bytes], int]
ScannedText = tuple[int, bytes, bytes, bytes, bytes, bytes, bytes, list[str], bytes,
                    list[str], bytes, list[str], bytes, list[str], int]

def scan_template(block: bytes, ops: Sequence[tuple[int, int, bytes]],
                  cuts: Sequence[bytes] | None, /) -> Scanned: ...
def scan_json(block: bytes, fields: Sequence[bytes], cuts: Sequence[bytes] | None,
              scale: float, /) -> ScannedText: ...
def rollup(slot: object, minute: object, status: object, size: object, latency: object,
           log_gamma: float, min_value: float, zero: int, /) -> tuple[bytes, ...]: ...
def count_lines(block: bytes, /) -> int: ...

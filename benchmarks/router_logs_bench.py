"""Router log reading speed: a custom HAProxy log-format template beside the default
``httplog`` layout and beside a plain per-line regex of the same template, in one run.

    python benchmarks/router_logs_bench.py [--lines 1020000] [--repeat 3]

The default size is one hour of the seed's gateway (283 req/s) as the router logs it,
every line behind an RFC 3164 syslog prefix (as rsyslog writes the file).  Each reader
parses the same bytes in blocks of 4 MiB, as the tail does; the figure is lines per CPU
second of the best of ``--repeat`` runs (CPU time, so the machine's other load matters
less).  Readers:

- ``httplog (compiled)``: the built-in ``haproxy`` format on the compiled scanner;
- ``httplog (strict)``: the same format's regular expression, one findall per block;
- ``template``: a custom httpLogFormat (a host capture after the server, captured headers,
  a unique id) compiled by collectors/logs/haproxy_template.py (regex only: the compiled
  scanner knows the default layout alone);
- ``per-line re.match``: the template's own regex applied line by line with
  ``re.match`` and ``groupdict`` (what reading a template without cutover costs).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.logs.formats import COMPILED, HAPROXY  # noqa: E402
from collectors.logs.haproxy_template import compile_haproxy_template  # noqa: E402

TEMPLATE = ("%ci:%cp [%tr] %ft %b/%s %[capture.req.hdr(0)] %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS "
            "%tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r %ID")
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SERVICES = ["auth", "files", "samples", "ai", "audit", "gateway"]
BLOCK = 4 << 20


def _lines(n: int, *, template: bool) -> bytes:
    rnd = random.Random(7)
    out = []
    for i in range(n):
        svc = SERVICES[i % len(SERVICES)]
        at = T0 + timedelta(seconds=i / 283)
        t = at.strftime("%d/%b/%Y:%H:%M:%S") + f".{at.microsecond // 1000:03d}"
        lat = int(rnd.lognormvariate(3.2, 0.8)) + 1
        status = 503 if rnd.random() < 0.003 else 200
        up = f"python-{svc}" if rnd.random() < 0.1 else "nanopore-monolith"
        server = f"pod:{up}-5d9f8-x2x:{up}:8080-tcp:10.128.2.5:8080"
        host = " app.example.org" if template else ""
        tail = f' {{app.example.org|curl/8.5}} "GET /api/{svc}/{i} HTTP/1.1" 7f3a:{i}' if template \
            else f' "GET /api/{svc}/{i} HTTP/1.1"'
        out.append(f"Nov 26 12:00:00 router-default-7c9f haproxy[42]: 10.0.0.9:51234 [{t}] "
                   f"fe_sni~ be_http:nanopore:nanopore-{svc}/{server}{host} "
                   f"0/0/1/{lat - 1}/{lat} {status} {rnd.randint(0, 5000)} - - --NI "
                   f"5/5/0/0/0 0/0{tail}")
    return ("\n".join(out) + "\n").encode()


def _blocks(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        end = data.rfind(b"\n", pos, pos + BLOCK)
        end = len(data) if end < 0 or pos + BLOCK >= len(data) else end
        out.append(data[pos:end].rstrip(b"\n"))
        pos = end + 1
    return out


def _best(parse: Callable[[bytes], int], blocks: list[bytes], repeat: int) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        start = time.process_time()
        rows = sum(parse(b) for b in blocks)
        best = min(best, time.process_time() - start)
    return best, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_020_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    default, custom = _blocks(_lines(args.lines, template=False)), _blocks(_lines(args.lines, template=True))
    fmt = compile_haproxy_template(TEMPLATE)
    pattern = re.compile(fmt._spec.pattern.encode())

    def per_line(block: bytes) -> int:
        return sum(1 for line in block.split(b"\n") if (m := pattern.match(line)) and m.groupdict())

    readers: list[tuple[str, Callable[[bytes], int], list[bytes]]] = [
        ("httplog (compiled)", lambda b: len(HAPROXY.parse(b)), default),
        ("httplog (strict)", lambda b: len(HAPROXY.strict().parse(b)), default),
        ("template", lambda b: len(fmt.parse(b)), custom),
        ("per-line re.match", per_line, custom),
    ]
    print(f"{args.lines:,} router lines (RFC 3164 prefix), best of {args.repeat}; "
          f"compiled scanner {'built' if COMPILED else 'NOT built'}")
    print(f"{'reader':<22}{'rows':>12}{'CPU s':>9}{'lines/s':>13}")
    for name, parse, blocks in readers:
        cpu, rows = _best(parse, blocks, args.repeat)
        print(f"{name:<22}{rows:>12,}{cpu:>9.2f}{rows / cpu:>13,.0f}")


if __name__ == "__main__":
    main()

"""``cutover logs check [FILE] [--format F] [--lines N] [--json]``: how the first lines
of a log are read, line by line (collectors.logs.check), before a plan relies on it.

FILE is a log file (``*.gz`` read decompressed) or ``-`` (the default) for standard
input.  The format is ``--format`` (a name, ``json`` or an nginx ``log_format``) or
else the plan's first log source's.  Exit 0 when the format reads most lines, 1 when
it does not, 2 for bad input."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from collectors.logs.check import CheckSummary, LineVerdict, read_lines
from collectors.logs.formats import JsonFormat, LogFormat
from collectors.logs.limits import MAX_LINE
from collectors.logs.registry import format_for
from collectors.logs.tail import open_log
from cutover.context import Context
from slo.errors import ConfigError
from slo.plan import Plan

__all__ = ["check", "render_text"]

#: the text of a refused line shown, at most
SHOWN = 160


def check(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    plan = ctx.plan
    fmt, named = _format(plan, args.format)
    lines = list(_first_lines(args.file, args.lines))
    if isinstance(fmt, JsonFormat) and not named:
        # as the collector does for a JSON source without fields: (ConfigError: exit 2)
        fmt = fmt.learn(lines)
    verdicts, summary = read_lines(fmt, lines, plan=plan, now=ctx.now)
    name = "standard input" if args.file in (None, "-") else args.file
    if args.json:
        learned = fmt.learned if isinstance(fmt, JsonFormat) else {}
        print(json.dumps({"file": name, "summary": summary.contract(),
                          "fields_learned": learned,
                          "lines": [v.contract() for v in verdicts]}, indent=2))
    else:
        if isinstance(fmt, JsonFormat) and fmt.learned:
            print("JSON fields read by their names: " + ", ".join(
                f"{k} from {v}" for k, v in fmt.learned.items() if k != v))
        print(render_text(name, verdicts, summary))
    return 0 if summary.fits else 1


def _format(plan: Plan, given: str | None) -> tuple[LogFormat, bool]:
    """The format, and whether its JSON field names are given (else: learned)."""
    if given:
        return format_for(given), False
    if not plan.sources.logs:
        raise ConfigError("logs check: the plan has no log source: say which format the "
                          "lines are in with --format (json, nginx, ingress-nginx, haproxy, "
                          "envoy or an nginx log_format)")
    src = plan.sources.logs[0]
    return format_for(src.format, src.fields), bool(src.fields)


def _first_lines(file: str | None, n: int) -> Iterator[bytes]:
    if n < 1:
        raise ConfigError(f"logs check: --lines must be at least 1, not {n}")
    if file in (None, "-"):
        yield from _lines(sys.stdin.buffer, n)
        return
    path = Path(file)  # type: ignore[arg-type]
    try:
        f = open_log(path)
    except OSError as e:
        raise ConfigError(f"logs check: cannot read {path}: {e.strerror or e}") from None
    with f:
        yield from _lines(f, n)


def _lines(f: BinaryIO, n: int) -> Iterator[bytes]:
    """Up to ``n`` lines, none held longer than MAX_LINE + 1 bytes (enough to be
    refused as too long: an endless line costs no memory)."""
    for _ in range(n):
        line = f.readline(MAX_LINE + 2)
        if not line:
            return
        if not line.endswith(b"\n") and len(line) > MAX_LINE:
            while True:             # the rest of the long line, unread
                rest = f.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line.rstrip(b"\n")


def render_text(name: str, verdicts: list[LineVerdict], summary: CheckSummary) -> str:
    out = [_headline(name, summary)]
    width = len(str(len(verdicts)))
    for v in verdicts:
        n = str(v.number).rjust(width)
        if v.minute is None:
            out.append(f"{n}  {v.reason.upper()}: {_shown(v.text)}")
            continue
        where = (f"{v.service}/{v.variant}" if v.service else v.reason)
        read = (f"{v.minute:%Y-%m-%d %H:%M}  {v.status}  {v.latency_ms:g} ms  "
                f"{_shown(v.path or '')}  upstream {_shown(v.upstream or '-')}"
                + (f"  route {_shown(v.route)}" if v.route else ""))
        if v.reason and v.service is None and v.reason in ("no-service", "unknown-upstream"):
            out.append(f"{n}  {read}  -> not counted ({where})")
        elif v.reason:
            out.append(f"{n}  {v.reason.upper()}: {read}")
        else:
            out.append(f"{n}  {read}  -> {where}")
    if not summary.fits and summary.lines:
        out.append(f"{summary.format} does not read most of these lines: try another "
                   f"--format (json, nginx, ingress-nginx, haproxy, envoy, or the "
                   f"log_format of the gateway's configuration)")
    return "\n".join(out)


def _headline(name: str, s: CheckSummary) -> str:
    why = ", ".join(f"{n} {r}" for r, n in sorted(s.reasons.items()))
    slots = ", ".join(f"{n} {svc}/{var}" for (svc, var), n in sorted(s.slots.items()))
    return (f"{name}: {s.lines} lines read as {s.format}: {s.counted} counted"
            + (f" ({slots})" if slots else "") + (f"; not counted: {why}" if why else ""))


def _shown(text: str) -> str:
    """Log text for a terminal: what would not print as itself escaped, and cut."""
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return shown if len(shown) <= SHOWN else shown[:SHOWN] + f"... ({len(text)} chars)"

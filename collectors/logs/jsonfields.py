"""Which keys of a JSON access log hold which field, from the names gateways give them.

A JSON log without a ``fields:`` block in the plan is read by the names it has when
they are common ones and unambiguous (:func:`guess_json_fields` on the first lines):
``ts``, ``timestamp`` or ``@timestamp`` for the time; ``duration_ms`` (milliseconds),
``request_time`` (seconds, as nginx writes it) or a bare ``latency`` or ``duration``
whose unit the values say; ``upstream_addr`` or ``upstream`` for the upstream.  When a
field has no such name, or two of them, or a bare latency whose values could be either
unit, the guess says what it found and the ``fields:`` block to write instead."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FieldGuess", "guess_json_fields"]

#: the names each field goes by, the gateway's own (formats.JSON_FIELDS) first
NAMES: dict[str, tuple[str, ...]] = {
    "time": ("time", "ts", "timestamp", "@timestamp", "datetime", "date"),
    "path": ("path", "uri", "request_uri", "url", "request_path"),
    "status": ("status", "status_code", "statusCode", "response_status", "http_status"),
    "bytes": ("bytes", "bytes_sent", "body_bytes_sent", "response_size", "size"),
    "upstream": ("upstream", "upstream_addr", "upstream_name", "upstream_host", "backend"),
    "route": ("route",),
}
#: latency names that say their unit, and the bare ones whose values must say it
LATENCY_MS = ("latency_ms", "duration_ms", "response_time_ms", "request_time_ms",
              "elapsed_ms", "took_ms")
LATENCY_S = ("latency_s", "duration_s", "request_time", "response_time_s", "elapsed_s",
             "upstream_response_time")
LATENCY_BARE = ("latency", "duration", "response_time", "elapsed", "took")
#: the fields a line cannot do without (formats.JsonFormat)
REQUIRED = ("time", "path", "status", "latency")


@dataclass(frozen=True)
class FieldGuess:
    """``fields`` for formats.JsonFormat (empty: the default names fit), what was
    taken from where (``found``, for people), and the ``problems`` that stop it."""

    fields: dict[str, str] = field(default_factory=dict)
    found: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def advice(self) -> str:
        """The problems, the keys the lines have and a ``fields:`` block to start from."""
        block = ", ".join(f"{k}: {v}" for k, v in self._suggested().items())
        return (f"{'; '.join(self.problems)}. The lines have the keys "
                f"{', '.join(self.keys) or '(none: not JSON objects)'}; say which is which "
                f"in the log source's fields: {{{block}}}")

    def _suggested(self) -> dict[str, str]:
        out = dict(self.fields)
        for name in ("time", "path", "status", "latency_ms"):
            out.setdefault(name, f"<{name} key>")
        return out


def guess_json_fields(docs: Sequence[Any]) -> FieldGuess:
    """The field names of these JSON documents (the first lines of a log)."""
    objects = [d for d in docs if isinstance(d, Mapping)]
    counts = Counter(k for d in objects for k in d)
    # a key counts as present when most lines have it (a field written only sometimes,
    # like an error message, is not the one a field is read from)
    present = {k for k, n in counts.items() if n * 2 > len(objects)}
    keys = sorted(counts, key=lambda k: (-counts[k], k))
    fields: dict[str, str] = {}
    found: dict[str, str] = {}
    problems: list[str] = []
    for name, names in NAMES.items():
        there = [n for n in names if n in present]
        if not there:
            if name in REQUIRED:
                problems.append(f"no {name} field (none of {', '.join(names)})")
            continue
        if names[0] in there or len(there) == 1:
            key = names[0] if names[0] in there else there[0]
        else:
            problems.append(f"more than one {name} field ({', '.join(there)})")
            continue
        found[name] = key
        if key != names[0]:
            fields[name] = key
    latency = _latency(objects, present, found, problems)
    if latency is not None and latency != ("latency_ms", "latency_ms"):
        unit, key = latency
        fields[unit] = key
    return FieldGuess(fields=fields, found=found, problems=problems, keys=keys)


def _latency(objects: Sequence[Mapping[str, Any]], present: set[str], found: dict[str, str],
             problems: list[str]) -> tuple[str, str] | None:
    """(formats.JsonFormat's key: latency_ms or latency_s, the log's key), or None."""
    named = [(k, "latency_ms") for k in LATENCY_MS if k in present] + \
        [(k, "latency_s") for k in LATENCY_S if k in present]
    bare = [k for k in LATENCY_BARE if k in present]
    if "latency_ms" in present:
        named = [("latency_ms", "latency_ms")]
    if len(named) + len(bare) > 1 and not (named and named[0][0] == "latency_ms"):
        problems.append("more than one latency field ("
                        f"{', '.join([k for k, _ in named] + bare)})")
        return None
    if named:
        key, unit = named[0]
    elif bare:
        key = bare[0]
        by_values = _unit_of([d.get(key) for d in objects])
        if by_values is None:
            problems.append(f"the latency field {key!r} does not say its unit and its values "
                            f"could be seconds or milliseconds")
            return None
        unit = by_values
    else:
        problems.append(f"no latency field (none of "
                        f"{', '.join(LATENCY_MS + LATENCY_S + LATENCY_BARE)})")
        return None
    found["latency"] = f"{key} ({'ms' if unit == 'latency_ms' else 's'})"
    return unit, key


def _unit_of(values: Sequence[Any]) -> str | None:
    """Milliseconds or seconds, by the values of a latency whose name does not say:
    whole numbers are milliseconds (no one logs latencies in whole seconds); a median
    under 1 is seconds (no gateway's median answer takes under a millisecond), from
    10 on milliseconds; between the two it could be either."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numbers:
        return None
    if all(isinstance(v, int) or float(v).is_integer() for v in numbers):
        return "latency_ms"
    median = statistics.median(numbers)
    if median < 1:
        return "latency_s"
    if median >= 10:
        return "latency_ms"
    return None

"""The compiled part of the log collector (``_scan.c``), or None where it is not built.

``pip install .`` (or ``-e .``) compiles it where there is a C compiler; the extension is
optional (setup.py), so a machine without one installs all the same and reads every log
through the strict Python parsers and numpy, several times slower.

The module exports its template ops (``OP_*``) and its line limit (``MAX_LINE``); they
are read from it here, never written out again on this side: :func:`ops` turns a
format's ops, by name, into the codes the module takes."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import ModuleType

from collectors.logs.limits import MAX_LINE

__all__ = ["Op", "ops", "scan"]

log = logging.getLogger(__name__)

#: one op of a template, by name: (``"TS_CLF"``, the byte after it or -1, literal bytes)
Op = tuple[str, int, bytes]


def _load() -> ModuleType | None:
    try:
        import collectors.logs._scan as compiled
    except ImportError:  # pragma: no cover - a source tree without `pip install -e .`
        log.warning("the compiled log scanner (collectors/logs/_scan.c) is not built: logs "
                    "are read by the strict Python parsers, several times slower "
                    "(pip install -e . with a C compiler)")
        return None
    if not hasattr(compiled, "OP_LIT"):  # pragma: no cover - built from an older _scan.c
        log.warning("the compiled log scanner is an older build: rebuild it (pip install -e "
                    "., or python setup.py build_ext --inplace); reading with the strict "
                    "parsers")
        return None
    if compiled.MAX_LINE != MAX_LINE:  # pragma: no cover - a stale build
        log.warning("the compiled log scanner was built with MAX_LINE %d, the collector's is "
                    "%d: rebuild it (pip install -e .); reading with the strict parsers",
                    compiled.MAX_LINE, MAX_LINE)
        return None
    return compiled


#: the compiled module, or None
scan = _load()


def ops(named: Iterable[Op]) -> tuple[tuple[int, int, bytes], ...]:
    """``named`` as the module's op codes; () without the module (the regex alone)."""
    if scan is None:
        return ()
    return tuple((int(getattr(scan, f"OP_{name}")), stop, lit) for name, stop, lit in named)

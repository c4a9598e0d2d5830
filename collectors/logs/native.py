"""The compiled part of the log collector (``_scan.c``), or None where it is not built.

``pip install .`` (or ``-e .``) compiles it; a source tree without it still reads every
log, through the strict Python parsers and numpy, several times slower."""

from __future__ import annotations

import logging
from types import ModuleType

__all__ = ["scan"]


def _load() -> ModuleType | None:
    try:
        import collectors.logs._scan as compiled
    except ImportError:  # pragma: no cover - a source tree without `pip install -e .`
        logging.getLogger(__name__).warning(
            "the compiled log scanner (collectors/logs/_scan.c) is not built: logs are "
            "read by the strict Python parsers, several times slower (pip install -e .)")
        return None
    return compiled


#: the compiled module, or None
scan = _load()

"""The dashboard's server process: Streamlit's own command line, after the app's modules.

Streamlit runs ``app.py`` and the page scripts anew for every visit, and the modules they
import are loaded on the first one: about 1.5 s of a page's first load on two cores
(scipy's statistics alone are half a second), paid by whoever opens the dashboard first
after a start, which in a cluster is every pod restart.  Importing them here, before the
server listens, moves that cost to the start.  Which modules: every import of app.py and
the screens, read from their source, so a new page needs no list kept here."""

from __future__ import annotations

import ast
import importlib
import logging
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# run as a file (``python dashboard/serve.py``), like app.py: the repository's root first
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

__all__ = ["main", "page_modules", "warm"]

log = logging.getLogger(__name__)

#: Streamlit warns once per cached function defined before its runtime exists; the cache
#: itself is made at the first call, inside the runtime, so the warning says nothing here
_CACHE_LOGGERS = ("streamlit.runtime.caching.cache_data_api",
                  "streamlit.runtime.caching.cache_resource_api")


def page_modules(folder: Path = _HERE) -> list[str]:
    """The modules that ``app.py`` and ``screens/*.py`` import, in the order first seen."""
    names: dict[str, None] = {}
    for path in [folder / "app.py", *sorted((folder / "screens").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update((a.name, None) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names[node.module] = None
                names.update((f"{node.module}.{a.name}", None) for a in node.names)
    return [n for n in names if n != "__future__"]


def warm(modules: list[str]) -> None:
    """Import ``modules``; a name that is an attribute, not a module, is passed over, and
    a module that fails to import is logged and left to fail where a page imports it."""
    import streamlit  # noqa: F401  (its loggers set their own level when first made)

    loggers = [logging.getLogger(n) for n in _CACHE_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as e:
                if e.name != name:   # ``dashboard.components.md``: md is not a module
                    log.warning("dashboard: cannot import %s ahead: %s", name, e)
            except ImportError as e:
                log.warning("dashboard: cannot import %s ahead: %s", name, e)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def main(argv: list[str]) -> None:
    warm(page_modules())
    from streamlit.web import cli

    sys.argv = ["streamlit", *argv]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])

"""The folder tree is the layer diagram (ARCHITECTURE.md): check every import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("slo", "store", "collectors", "rollout", "alerts", "reports", "dashboard", "cutover")
ALLOWED = {
    "slo": set(),
    "store": {"slo"},
    "collectors": {"store", "slo"},
    "rollout": {"store", "slo"},
    "alerts": {"store", "slo"},
    "reports": {"store", "slo"},
    "dashboard": {"slo", "store", "collectors", "rollout", "alerts", "reports"},
    "cutover": {"slo", "store", "collectors", "rollout", "alerts", "reports", "dashboard"},
}


def _project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out & set(PACKAGES)


def _files(pkg: str) -> list[Path]:
    return sorted(p for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("pkg", PACKAGES)
def test_imports_follow_the_layers(pkg: str) -> None:
    bad = []
    for path in _files(pkg):
        for imported in _project_imports(path) - {pkg}:
            if imported not in ALLOWED[pkg]:
                bad.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert not bad, "\n".join(bad)


def test_nothing_imports_dashboard_except_cutover() -> None:
    offenders = [str(p.relative_to(ROOT)) for pkg in PACKAGES if pkg not in ("dashboard", "cutover")
                 for p in _files(pkg) if "dashboard" in _project_imports(p)]
    assert offenders == []


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import store.db\nfrom rollout import gate\nfrom . import y\n")
    assert _project_imports(bad) == {"store", "rollout"}


# -- the store's edge: SQL on the store's tables is written in store/ only -------------------

#: query builders; whoever imports one outside store/ writes SQL on the store's tables
QUERY_NAMES = {"select", "func", "col", "update", "delete", "insert"}
#: a probe that reads another system's database (the monolith's and a service's, for
#: data consistency) writes its own SQL on their tables, never on the store's
OWN_DATABASES = {"collectors/probes/consistency.py"}


def _table_classes() -> set[str]:
    out = set()
    for path in _files("store"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(k.arg == "table" for k in node.keywords):
                out.add(node.name)
    return out


def _store_edge_violations(path: Path, tables: set[str], root: Path = ROOT) -> list[str]:
    rel = str(path.relative_to(root))
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        names = {a.name for a in node.names}
        if node.module.split(".")[0] in ("sqlmodel", "sqlalchemy") and rel not in OWN_DATABASES:
            bad += [f"{rel} imports {n} from {node.module}" for n in sorted(names & QUERY_NAMES)]
        if node.module.startswith("store"):
            bad += [f"{rel} imports the table {n}" for n in sorted(names & tables)]
    return bad


def test_sql_on_the_store_is_written_in_the_store() -> None:
    tables = _table_classes()
    assert {"Decision", "EvaluationRow", "EventRow", "LogRollup"} <= tables
    bad = [v for pkg in PACKAGES if pkg != "store" for p in _files(pkg)
           for v in _store_edge_violations(p, tables)]
    assert not bad, ("write the query as a keyword-only function in store/ that returns "
                     "values:\n" + "\n".join(bad))


def test_the_store_edge_check_sees_a_query(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from sqlmodel import Session, select\nfrom store.rollout import Decision\n")
    found = _store_edge_violations(bad, {"Decision"}, root=tmp_path)
    assert found == ["x.py imports select from sqlmodel", "x.py imports the table Decision"]


# -- ... and its rows stay there: what crosses the edge is a frozen value ------------------

def _row_returning_functions(tables: set[str], root: Path = ROOT) -> dict[str, set[str]]:
    """Per store module (``store.evaluations``), its public functions whose return
    annotation names a table class: what they return is a row, not a value."""
    out: dict[str, set[str]] = {}
    for path in sorted((root / "store").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
                    and node.returns is not None
                    and tables & {n.id for n in ast.walk(node.returns)
                                  if isinstance(n, ast.Name)}
                    | {n.value for n in ast.walk(node.returns)
                       if isinstance(n, ast.Constant) and isinstance(n.value, str)}):
                out.setdefault(module, set()).add(node.name)
    return out


def _row_leaks(path: Path, rowing: dict[str, set[str]], root: Path = ROOT) -> list[str]:
    rel = str(path.relative_to(root))
    return [f"{rel} imports {a.name} from {node.module}, which returns a table row"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module in rowing
            for a in node.names if a.name in rowing[node.module]]


def test_no_table_row_leaves_the_store() -> None:
    rowing = _row_returning_functions(_table_classes())
    assert rowing, "the check must see store functions that return rows"
    bad = [v for pkg in PACKAGES if pkg != "store" for p in _files(pkg)
           for v in _row_leaks(p, rowing)]
    assert not bad, ("return a frozen value from the store function (store/views.py, "
                     "store/rollout.py do):\n" + "\n".join(bad))


def test_the_row_check_sees_a_function_that_returns_a_row(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "rows.py").write_text(
        "def latest(*, session) -> Decision | None: ...\n"
        "def value(*, session) -> DecisionRecord: ...\n")
    rowing = _row_returning_functions({"Decision"}, root=tmp_path)
    assert rowing == {"store.rows": {"latest"}}
    user = tmp_path / "user.py"
    user.write_text("from store.rows import latest, value\n")
    assert _row_leaks(user, rowing, root=tmp_path) == [
        "user.py imports latest from store.rows, which returns a table row"]

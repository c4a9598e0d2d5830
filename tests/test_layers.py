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

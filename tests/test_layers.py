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

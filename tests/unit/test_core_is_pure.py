"""The core imports neither Twisted nor ``os``: its decisions can run (and be tested) anywhere."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "glusterd_mgr" / "core"
BANNED = ("twisted", "os")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_core_module_imports_twisted_or_os() -> None:
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 3
    for path in files:
        bad = {n for n in _imported(path) if n.split(".")[0] in BANNED}
        assert not bad, f"{path.name} imports {bad}"


def test_importing_the_core_loads_no_twisted() -> None:
    code = "import sys, glusterd_mgr.core.machine; print(sorted(m for m in sys.modules if m.startswith('twisted')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CORE.parents[1])
    assert out.stdout.strip() == "[]"

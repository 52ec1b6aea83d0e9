"""The core imports neither Twisted nor ``os``: its decisions can run (and be tested) anywhere.

"The core" is ``glusterd_mgr/core/`` and every module of the package it imports, followed to
the end: the pure modules it builds on (``mountinfo``, ``mounts``, ``holders``, ``volume``,
``policy``, ``errors``, ...) stay where the design card puts them, so the check follows the
imports rather than a folder.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "glusterd_mgr"
CORE = PACKAGE / "core"
BANNED = ("twisted", "os")


def _module_file(dotted: str) -> Path | None:
    """The file of a ``glusterd_mgr`` module, or None when ``dotted`` names no module of it."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE.name:
        return None
    base = PACKAGE.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _dotted(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved (``from . import x`` as ``pkg.x``)."""
    package = _dotted(path) if path.name == "__init__.py" else _dotted(path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # ``from ..x import y``: up level - 1 packages from this module's own
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*parts, node.module] if node.module else parts)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names if _module_file(f"{module}.{alias.name}"))
    return names


def core_closure() -> dict[Path, set[str]]:
    """The core's modules and every package module they import, each with what it imports."""
    todo = sorted(CORE.glob("*.py"))
    found: dict[Path, set[str]] = {}
    while todo:
        path = todo.pop()
        if path in found:
            continue
        found[path] = _imported(path)
        todo.extend(f for f in map(_module_file, found[path]) if f is not None)
    return found


def test_the_core_and_everything_it_imports_is_free_of_twisted_and_os() -> None:
    closure = core_closure()
    assert len(closure) >= 8, sorted(p.name for p in closure)  # the core's own files and the pure modules
    for path, names in closure.items():
        bad = {n for n in names if n.split(".")[0] in BANNED}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_the_closure_follows_relative_imports() -> None:
    """The check would pass vacuously if it missed ``from .. import x``: the machine's own imports are in it."""
    closure = {_dotted(p) for p in core_closure()}
    assert {
        "glusterd_mgr.core.mountinfo",
        "glusterd_mgr.core.mounts",
        "glusterd_mgr.core.holders",
        "glusterd_mgr.core.volfile_servers",
    } <= closure
    assert "glusterd_mgr.shell.world" not in closure and "glusterd_mgr.shell.driver" not in closure


def test_importing_the_core_loads_no_twisted() -> None:
    code = "import sys, glusterd_mgr.core.machine; print(sorted(m for m in sys.modules if m.startswith('twisted')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent)
    assert out.stdout.strip() == "[]"

"""The folders show the architecture: the pure core in ``core/``, imports that never run upward, public names in ``__all__``.

The core imports neither Twisted nor ``os``, so its decisions run (and are tested) anywhere;
it imports nothing outside its folder, and every module outside it does I/O of some kind.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "glusterd_mgr"
CORE = PACKAGE / "core"
BANNED = ("twisted", "os")
IO = frozenset({"twisted", "os", "socket", "subprocess", "select", "threading", "fcntl", "psutil", "http", "importlib", "ganeti"})
"""Modules that reach outside the process: a module of the package that imports none of them is pure, and belongs in ``core/``."""


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


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (``__main__`` is a script, not a module to import)."""
    return {_dotted(p): p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__main__.py"}


def _ours(names: set[str]) -> set[str]:
    """The package's own modules among ``names`` (a name imported from a module counts as that module)."""
    known = modules()
    return {n if n in known else n.rpartition(".")[0] for n in names if n.startswith(PACKAGE.name)} & set(known)


def test_the_core_and_everything_it_imports_is_free_of_twisted_and_os() -> None:
    closure = core_closure()
    assert len(closure) >= 8, sorted(p.name for p in closure)  # the core's own files and the pure modules
    for path, names in closure.items():
        bad = {n for n in names if n.split(".")[0] in BANNED}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_the_core_imports_nothing_outside_its_folder() -> None:
    for path in sorted(CORE.glob("*.py")):
        outside = {m for m in _ours(_imported(path)) if not m.startswith("glusterd_mgr.core")}
        assert not outside, f"{path.relative_to(PACKAGE)} imports {outside}"


def test_every_pure_module_is_in_the_core() -> None:
    """A module that reaches nothing outside the process, itself or through what it imports, is a decision or a
    vocabulary: it belongs in ``core/`` (a thin entry point reaches the I/O of the module it calls)."""
    found = modules()
    direct = {name: {n.split(".")[0] for n in _imported(path)} & IO for name, path in found.items()}
    imports = {name: _ours(_imported(path)) - {name} for name, path in found.items()}

    def reaches_io(name: str, seen: frozenset[str] = frozenset()) -> bool:
        return bool(direct[name]) or any(reaches_io(m, seen | {name}) for m in imports[name] - seen)

    for name, path in found.items():
        if path.name != "__init__.py" and not path.is_relative_to(CORE):
            assert reaches_io(name), f"{name} is pure (neither it nor what it imports uses any of {sorted(IO)}): move it into core/"


def test_no_import_runs_upward() -> None:
    """A module in a subpackage may use a module of the package root only if that one never imports the subpackage back."""
    graph = {name: _ours(_imported(path)) for name, path in modules().items()}

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    for name, imported in graph.items():
        sub = name.split(".")[:2]
        if len(sub) < 2 or modules()[name].parent == PACKAGE:
            continue
        folder = ".".join(sub)
        for root_module in {m for m in imported if m.count(".") == 1 and not m.startswith(folder)}:
            back = {m for m in reach(root_module) if m.startswith(folder + ".")}
            assert not back, f"{name} imports {root_module}, which imports {back} back"


def test_every_module_names_its_public_names_and_the_package_imports_only_those() -> None:
    for name, path in modules().items():
        if path.name == "__init__.py":
            continue
        module = importlib.import_module(name) if "ganeti_storage" not in name else None
        tree = ast.parse(path.read_text())
        declared = [n for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)]
        assert declared, f"{name} has no __all__"
        if module is None:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            source = ".".join([*parts, node.module] if node.module else parts)
            if source not in modules() or modules()[source].name == "__init__.py":
                continue
            public = set(importlib.import_module(source).__all__)
            hidden = {a.name for a in node.names if a.name not in public and f"{source}.{a.name}" not in modules()}
            assert not hidden, f"{name} imports {hidden} from {source}, which does not list them in __all__"


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

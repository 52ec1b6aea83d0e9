"""The README's API reference is generated from rpc_schema/ and errors.py; it must not drift."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_api_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_api_doc", ROOT / "scripts" / "gen_api_doc.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = (ROOT / "README.md").read_text()
    assert gen.updated(text) == text, "README.md is out of date: run python3 scripts/gen_api_doc.py"
    for method in ("volume.acquire", "volume.release", "volume.statvfs", "disk.create", "disk.remove", "disk.grow", "disk.info", "status"):
        assert f"#### `{method}`" in text

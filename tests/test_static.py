"""Static checks as tests, so CI keeps the package typed (mypy --strict) and lint-clean (ruff)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    if shutil.which("ruff") is None:
        pytest.fail("ruff is missing: it is in the test extra (pip install -e '.[test]')")
    argv = ["ruff", "check", "glusterd_mgr", "bench", "scripts", "lab", "tests"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

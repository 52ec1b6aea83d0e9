"""A tiny run of the benchmark command, so it cannot rot (its numbers mean nothing here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.gluster, pytest.mark.timeout(600)]


def test_bench_smoke_prints_every_figure(gluster: object) -> None:
    env = {**os.environ, "GGMT_PREFIX": "ggmb", "GGMT_SUBNET": "10.231.10"}
    argv = [sys.executable, "-m", "bench", "--smoke"]
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    for figure in (
        "cold acquire",
        "warm acquire + release, new holder",
        "concurrent clients",
        "holders vs 10",
        "10,000-line mountinfo",
        "10 GiB sparse",
        "preallocated",
        "RSS, idle",
        "RSS with",
    ):
        assert figure in table, f"{figure!r} missing from:\n{table}"
    assert table.count("\n| ") >= 11, table

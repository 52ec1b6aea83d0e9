"""A tiny run of the benchmark command, so it cannot rot (its numbers mean nothing here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.datapath import JOBS
from tests.support import glusterlab

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.gluster, pytest.mark.timeout(600)]


def test_bench_smoke_prints_every_figure(gluster: object) -> None:
    env = {**os.environ, **glusterlab.beside("b")}
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
    concurrent = next(row for row in table.splitlines() if "concurrent clients" in row).split("|")
    assert concurrent[4].strip().startswith("the echo, ") and concurrent[5].strip().endswith("×"), "the 32-client figure has no floor"


def test_datapath_smoke_prints_both_volumes_with_every_job_and_ratio(gluster: object) -> None:
    """The data-path benchmark: fio through the daemon's mount, a plain mount, gfapi and the brick, on two volumes."""
    env = {**os.environ, **glusterlab.beside("b")}
    argv = [sys.executable, "-m", "bench", "datapath", "--smoke"]
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    blocks = result.stdout.split("\n\n")
    titles = [b for b in blocks if b in ("One brick, one server", "Replica 3 over three servers, `group virt`")]
    tables = [b.splitlines()[2:] for b in blocks if b.startswith("| job | unit |")]
    profiles = [b.splitlines()[2:] for b in blocks if b.startswith("| job | client |")]
    assert len(titles) == len(tables) == len(profiles) == 2, result.stdout
    for rows in tables:
        assert len(rows) == len(JOBS), rows
        for job, row in zip(JOBS, rows, strict=True):
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert cells[0] == job.name and len(cells) == 11, row
            assert all(float(c.replace(",", "")) > 0 for c in cells[2:6]), f"a target moved no data: {row}"
            assert all(c.endswith("×") for c in cells[6:]), row
    for rows in profiles:
        assert {(r.split("|")[1].strip(), r.split("|")[2].strip()) for r in rows} == {
            (j.name, c) for j in JOBS for c in ("daemon", "plain")
        }
        assert all(float(r.split("|")[-2]) > 0 for r in rows), f"a FUSE client read nothing from /dev/fuse: {rows}"

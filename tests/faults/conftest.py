"""Fixtures of the fault and abuse suite: the figures each test prints (the daemons are the suite's own, tests/conftest.py).

Every test here prints one ``FIGURE name: key=value ...`` line to the terminal
(whatever pytest's capture mode) and appends it to the file named by
``GGMT_FIGURES`` (default ``<lab base>/../<prefix>-figures.txt``, outside the lab
folder, so the lab cleanup at the end of the session keeps it), from which
``docs/development/faults.rst``'s table is made.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from ..support import glusterlab

FIGURES_FILE = os.environ.get("GGMT_FIGURES", os.path.join(os.path.dirname(glusterlab.DEFAULT_BASE), f"{glusterlab.PREFIX}-figures.txt"))
_printed: list[str] = []


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[..., str]:
    """``figure("crash", rounds=200, lost=0)`` prints and records one figure line."""
    reporter = request.config.pluginmanager.getplugin("terminalreporter")

    def emit(name: str, **values: Any) -> str:
        line = f"FIGURE {name}: " + " ".join(f"{k}={v}" for k, v in values.items())
        if reporter is not None:
            reporter.write_line("")
            reporter.write_line(line)
        with open(FIGURES_FILE, "a") as f:
            if not _printed:
                f.write(f"# run of {time.strftime('%Y-%m-%d %H:%M:%S')} (pid {os.getpid()})\n")
            f.write(line + "\n")
        _printed.append(line)
        return line

    return emit


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _printed:
        terminalreporter.section("fault suite figures")
        for line in _printed:
            terminalreporter.write_line(line)

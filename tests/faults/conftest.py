"""Fixtures of the fault and abuse suite: daemons under the lab base, and the figures each test prints.

Every test here prints one ``FIGURE name: key=value ...`` line to the terminal
(whatever pytest's capture mode) and appends it to the file named by
``GGMT_FIGURES`` (default ``<lab base>/../<prefix>-figures.txt``, outside the lab
folder, so the lab cleanup at the end of the session keeps it), from which
``docs/faults.md``'s table is made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .. import glusterlab
from ..daemon_proc import DaemonProcess

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


def unmount_all_under(root: str) -> None:
    for path in sorted(glusterlab.mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", path], check=False)


@pytest.fixture
def daemon_root(gluster: glusterlab.GlusterServer, lab_base: str) -> Iterator[str]:
    root = os.path.join(lab_base, "f-" + uuid.uuid4().hex[:8])
    os.makedirs(root)
    yield root
    unmount_all_under(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_daemon(daemon_root: str) -> Iterator[Callable[..., DaemonProcess]]:
    """Start a daemon in this test's folder (extra flags allowed); killed, and its log shown, at the end."""
    started: list[DaemonProcess] = []

    def make(*extra: str, root: str | None = None, start: bool = True, env: dict[str, str] | None = None) -> DaemonProcess:
        d = DaemonProcess(root or daemon_root, extra=list(extra), env=dict(env or {}))
        started.append(d)
        return d.start() if start else d

    yield make
    for d in started:
        d.kill()
        if os.path.exists(d.log_path):
            print(f"--- daemon log {d.root} (tail) ---\n{d.log()}")


@pytest.fixture
def daemon(make_daemon: Callable[..., DaemonProcess]) -> DaemonProcess:
    return make_daemon()

"""A process that names itself glusterfs and claims a mountpoint is no FUSE client of the daemon's.

Any local user can set a process's name (``prctl(PR_SET_NAME)``) and its last
argument: the daemon, as root, must know a client by what the kernel says of
it (its user, its executable), or a fake would be taken for a dead mount's
living client, protected from the OOM killer, and killed in a cleanup.
"""

from __future__ import annotations

import os
import select
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from glusterd_mgr.shell import procfs

MOUNTPOINT = "/run/ganeti-gluster-test/fake-mount"
FAKE = """
import ctypes, sys
ctypes.CDLL(None).prctl(15, b"glusterfs", 0, 0, 0)  # PR_SET_NAME
print("ready", flush=True)
sys.stdin.read()  # until the test closes it
"""
ARGV = ["--process-name", "fuse", "--volfile-server=127.0.0.1", "--volfile-id=/gv0", MOUNTPOINT]


PYTHON = "/usr/bin/python3"
"""The fake's interpreter: the system's, which the user nobody can run too."""


@contextmanager
def fake_client(*run_as: str) -> Iterator[int]:
    """A process named glusterfs whose last argument is MOUNTPOINT, run by ``run_as`` (a ``setpriv`` prefix), until the end."""
    proc = subprocess.Popen([*run_as, PYTHON, "-c", FAKE, *ARGV], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready and proc.stdout.readline() == "ready\n", "the fake did not start"
        with open(f"/proc/{proc.pid}/comm") as f:
            assert f.read() == "glusterfs\n", "the fake is not named glusterfs"
        yield proc.pid
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=30)


def clients() -> list[int]:
    return [pid for pid, _ in procfs.glusterfs_processes()]


def test_a_fake_that_does_not_run_the_gluster_executable_is_no_client() -> None:
    with fake_client() as pid:
        assert pid not in clients()
        assert procfs.clients_blocking(MOUNTPOINT) == []


NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: runs the fake as root and as the user nobody")
def test_a_fake_of_another_user_is_no_client_even_running_the_gluster_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(procfs, "GLUSTERFS", os.path.realpath(PYTHON))  # the fake then runs "the Gluster executable"
    with fake_client(*NOBODY) as pid:
        assert pid not in clients()
        assert procfs.clients_blocking(MOUNTPOINT) == []
    with fake_client() as pid:  # the same, run by root where the daemon runs: what a client is
        assert pid in clients()
        assert [c.pid for c in procfs.clients_blocking(MOUNTPOINT)] == [pid]

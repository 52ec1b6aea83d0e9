"""The daemon as a real process under a flood on its TCP metrics port: the RPC socket must still answer.

No Gluster needed: the daemon holds nothing; what is measured is its descriptors.
"""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from .support.daemon_proc import DaemonProcess
from .support.glusterlab import poll

pytestmark = pytest.mark.timeout(120)

LIMIT = 256
"""The daemon's RLIMIT_NOFILE for the test: low, so that a flood of a few hundred connections would reach it."""

FLOOD = LIMIT + 64


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(str(tmp_path)).start()
    assert proc.proc is not None
    psutil.Process(proc.proc.pid).rlimit(psutil.RLIMIT_NOFILE, (LIMIT, LIMIT))
    try:
        yield proc
    finally:
        proc.kill()


def accept_queue(port: int) -> int:
    """How many connections wait in the listening socket's accept queue (its rx_queue in /proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"nothing listens on port {port}")


def test_a_flood_of_idle_metrics_connections_never_starves_the_rpc_socket(daemon: DaemonProcess) -> None:
    assert daemon.proc is not None
    flood: list[socket.socket] = []
    try:
        for _ in range(FLOOD):  # all at once, without waiting for the daemon to accept each
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", daemon.metrics_port))
            flood.append(s)
        poll("every flood connection to be established", lambda: all(select.select([], [s], [], 0)[1] for s in flood), deadline=20)
        fds = psutil.Process(daemon.proc.pid)
        # The daemon has dealt with the flood once it accepted every connection, or once it cannot accept any more.
        poll("the daemon to take the flood", lambda: accept_queue(daemon.metrics_port) == 0 or fds.num_fds() >= LIMIT - 2, deadline=20)
        client = daemon.client(timeout=5)
        for _ in range(20):
            assert client.status()["mounts"] == []
        assert fds.num_fds() < LIMIT - 64, "the flood holds few of the daemon's descriptors"
        refused = [s for s in flood if select.select([s], [], [], 0)[0] and s.recv(1) == b""]
        assert len(refused) >= FLOOD - 32, "the connections over the cap were closed at once"
    finally:
        for s in flood:
            s.close()
    assert daemon.terminate() == 0, daemon.log()
    assert "Too many open files" not in daemon.log()

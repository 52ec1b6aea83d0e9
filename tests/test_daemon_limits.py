"""The daemon as a real process under a flood on its TCP metrics port: the RPC socket must still answer.

No Gluster needed: the daemon holds nothing; what is measured is its descriptors.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from glusterd_mgr.app.metrics_port import PER_PEER, RESERVE, TOTAL

from .support.daemon_proc import DaemonProcess
from .support.glusterlab import poll

pytestmark = pytest.mark.timeout(120)

LIMIT = 256
"""The daemon's RLIMIT_NOFILE for the test: low, so that a flood of a few hundred connections would reach it."""

FLOOD = LIMIT + 32
"""More than the limit, and few enough more that today's daemon, out of descriptors, leaves them in its accept queue (50)."""


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(str(tmp_path)).start()
    assert proc.proc is not None
    psutil.Process(proc.proc.pid).rlimit(psutil.RLIMIT_NOFILE, (LIMIT, LIMIT))
    try:
        yield proc
    finally:
        proc.kill()


def closed_by_peer(s: socket.socket) -> bool:
    """Whether the daemon closed this (non-blocking) connection."""
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except BlockingIOError:  # nothing to read: open
        return False


def test_a_flood_of_idle_metrics_connections_never_starves_the_rpc_socket(daemon: DaemonProcess) -> None:
    assert daemon.proc is not None
    fds = psutil.Process(daemon.proc.pid)
    flood: list[socket.socket] = []
    closed: set[socket.socket] = set()

    def settled() -> bool:
        """The daemon has closed all it refuses, or it can take no more (today's daemon, out of descriptors)."""
        closed.update(s for s in flood if s not in closed and closed_by_peer(s))
        return len(closed) >= FLOOD - TOTAL or fds.num_fds() >= LIMIT - 2

    try:
        for i in range(FLOOD):  # from many addresses, as a local user can (the whole of 127/8 is this host)
            s = socket.create_connection(("127.0.0.1", daemon.metrics_port), timeout=5, source_address=(f"127.0.1.{i // PER_PEER}", 0))
            s.setblocking(False)
            flood.append(s)
        poll("the daemon to take the flood", settled, deadline=30)
        client = daemon.client(timeout=5)
        for _ in range(20):
            assert client.status()["mounts"] == []
        assert fds.num_fds() < LIMIT - RESERVE, "the flood holds few of the daemon's descriptors"
        assert len(closed) >= FLOOD - TOTAL, "the connections over the caps were closed"
    finally:
        for s in flood:
            s.close()
    assert daemon.terminate() == 0, daemon.log()
    assert "Too many open files" not in daemon.log()

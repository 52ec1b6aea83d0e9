"""One node's engine with its I/O parts: pools, journal writer, probe loop.

``Node`` is what the daemon (and the integration tests) start and stop; it
owns the threads, so nothing else has to remember to stop them.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ..core.errors import StateError
from ..core.printable import printable
from ..core.volfile_servers import FILE_NAME as SERVERS_FILE
from ..core.volfile_servers import ServerMemory
from .driver import Engine, EngineConfig
from .journal import JournalFile, JournalWriter, read_state
from .pool import FsPool
from .process_exits import ProcessExits
from .state_dir import open_state_dir
from .world import RealWorld

__all__ = ["BOOT_ID", "JOURNAL_NAME", "Node", "NodeOptions", "read_boot_id"]

BOOT_ID = "/proc/sys/kernel/random/boot_id"
JOURNAL_NAME = "holders.journal"
log = Logger()


def read_boot_id(path: str = BOOT_ID) -> str:
    with open(path) as f:
        return f.read().strip()


@dataclass
class NodeOptions:
    state_dir: str
    fs_threads: int = 16
    probe_interval: float = 10.0
    boot_id_path: str = BOOT_ID
    mountinfo_path: str = "/proc/self/mountinfo"


def _lock_state_dir(state_dir: str, dir_fd: int) -> int:
    """Hold an exclusive lock on the state folder: two daemons on one journal would lose holders."""
    fd = os.open("lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateError(f"another ganeti-gluster-mountd is using {state_dir}; refusing to share its holder journal") from None
    return fd


def _load_servers(state_dir: str) -> ServerMemory:
    path = os.path.join(state_dir, SERVERS_FILE)
    data = read_state(path)
    return ServerMemory.from_text(None if data is None else data.decode(), path)


class Node:
    def __init__(self, reactor: Any, config: EngineConfig, options: NodeOptions) -> None:
        self.reactor = reactor
        self.options = options
        self._dir_fd, repaired = open_state_dir(options.state_dir)
        if repaired:
            log.warn("{repaired}: only root may read or change the holder journal", repaired=repaired)
        try:
            self._lock_fd = _lock_state_dir(options.state_dir, self._dir_fd)
        except BaseException:
            os.close(self._dir_fd)
            raise
        journal, dropped = JournalFile.open(os.path.join(options.state_dir, JOURNAL_NAME), read_boot_id(options.boot_id_path))
        for spec, holder in dropped:
            log.warn(
                "node rebooted since {volume} was held by {holder}: dropping that void holder",
                volume=spec.key,
                holder=printable(str(holder)),
            )
        self.dropped = dropped
        self.fs_pool = FsPool(reactor, options.fs_threads, "fs")
        self.misc_pool = FsPool(reactor, 4, "misc")
        self.fs_pool.start()
        self.misc_pool.start()
        self.writer = JournalWriter(reactor, journal)
        self.exits = ProcessExits(reactor, self._release_ended_processes)
        self.world = RealWorld(reactor, self.fs_pool, self.misc_pool, self.writer, self.exits, options.mountinfo_path)
        self.engine = Engine(reactor, self.world, config, journal.table, _load_servers(options.state_dir))
        self._probe_loop: LoopingCall | None = None

    def start(self) -> Deferred[None]:
        """Restore the mounts of held volumes, then probe them periodically."""
        d = ensureDeferred(self.engine.recover())

        def loop(_: object) -> None:
            self._probe_loop = LoopingCall(lambda: ensureDeferred(self.engine.probe_all()))
            self._probe_loop.clock = self.reactor
            self._probe_loop.start(self.options.probe_interval, now=False).addErrback(lambda f: log.failure("probe loop stopped", f))

        return d.addCallback(loop)

    def _release_ended_processes(self) -> None:
        d = ensureDeferred(self.engine.release_ended_processes())
        d.addErrback(lambda f: log.failure("cannot release the holders of ended processes", f))

    def stop(self) -> None:
        """Stop threads and close the journal; mounts stay in place for the next start to adopt."""
        if self._probe_loop is not None and self._probe_loop.running:
            self._probe_loop.stop()
        self.exits.stop()
        self.writer.stop()
        for pool in (self.fs_pool, self.misc_pool):
            if pool.occupancy == 0:  # a thread stuck on a frozen mount cannot be joined
                pool.stop()
        os.close(self._lock_fd)
        os.close(self._dir_fd)

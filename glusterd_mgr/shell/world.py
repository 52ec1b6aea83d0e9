"""The node itself, answering the core's effects: one case per effect, each carried out without blocking the reactor.

Calls that may hang on a FUSE mount run in ``FsPool`` with a deadline; the
/proc readers, name resolution and the like in a second, smaller pool;
helpers as processes of their own.  ``glusterd_mgr.testing.World`` answers the
same effects in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..core import effects as fx
from ..core.errors import MountFailed
from ..core.results import Space
from . import disks
from .helpers import kill, run_helper
from .journal import JournalWriter, write_file_atomically
from .pool import FsPool
from .process_exits import ProcessExits
from .procfs import (
    MOUNTINFO,
    MountinfoCache,
    clients_blocking,
    pids_using_blocking,
    resolve_blocking,
    running,
    set_oom_score_adj_blocking,
    unit_of_pid,
)
from .reactor import NodeReactor
from .statvfs import space_info
from .tcp import tcp_probe

__all__ = ["RealWorld"]

LOG_READ = 256 * 1024
"""At most this much of a client log is read at a time."""


@dataclass
class RealWorld:
    """Answers each effect on this node: a value at once, or a Deferred of it."""

    reactor: NodeReactor
    fs_pool: FsPool
    misc_pool: FsPool
    journal: JournalWriter
    exits: ProcessExits
    mountinfo_path: str = MOUNTINFO
    extra_env: dict[str, str] = field(default_factory=dict)

    systemd_booted: bool = field(default_factory=lambda: os.path.isdir("/run/systemd/system"))
    """sd_booted(3): systemd is PID 1 when this folder exists."""
    own_unit: str = field(default_factory=lambda: unit_of_pid(os.getpid()))

    def __post_init__(self) -> None:
        self.mount_table = MountinfoCache(self.mountinfo_path)

    def answer(self, effect: fx.Effect[Any]) -> Any:
        fs, misc = self.fs_pool, self.misc_pool
        match effect:
            case fx.ReadTable(fresh):
                return self.mount_table.read(fresh)
            case fx.Resolve(host):
                return misc.run("resolve", lambda: resolve_blocking(host), 10.0)
            case fx.Statvfs(mountpoint, timeout, action):
                return fs.run(mountpoint, lambda: _space(mountpoint, action), timeout)
            case fx.MakeMountpoint(path, timeout):
                return fs.run(os.path.dirname(path) or "/", lambda: _make_mountpoint(path), timeout)
            case fx.LogSize(path):
                return fs.run("log", lambda: _size(path), 5.0)
            case fx.LogTail(path, offset):
                return fs.run("log", lambda: _read_from(path, offset), 5.0)
            case fx.Run(argv, cwd, timeout):
                return run_helper(self.reactor, argv, cwd, timeout, self.extra_env)
            case fx.TcpProbe(host, port, timeout):
                return tcp_probe(self.reactor, host, port, timeout)
            case fx.PidsUsing(mountpoint):
                return misc.run(f"pids-using:{mountpoint}", lambda: pids_using_blocking(mountpoint), 10.0)
            case fx.Clients(mountpoint):
                return misc.run(f"clients:{mountpoint}", lambda: clients_blocking(mountpoint), 10.0)
            case fx.LivingProcesses(processes):
                return misc.run("processes", lambda: frozenset(p for p in processes if running(p)), 10.0)
            case fx.WatchProcess(process):
                return self.exits.watch(process)
            case fx.SetOomScore(pid, value):
                return misc.run("oom", lambda: set_oom_score_adj_blocking(pid, value), 10.0)
            case fx.Kill(pids):
                return kill(pids)
            case fx.Systemd():
                return self.systemd_booted, self.own_unit
            case fx.SettleLeftovers(mountpoint, folder, timeout):
                return fs.run(mountpoint, lambda: disks.settle_leftovers(mountpoint, folder), timeout)
            case fx.Disk(mountpoint, params, paths, timeout):
                return fs.run(mountpoint, lambda: disks.run(mountpoint, params, paths), timeout)
            case fx.WriteState(path, data):
                return fs.run("state", lambda: write_file_atomically(path, data), 5.0)
            case fx.WriteJournal(change):
                return self.journal.write(change)
        raise TypeError(f"the node has no answer to {effect!r}: the driver answers it")


def _space(mountpoint: str, action: str) -> Space:
    try:
        return space_info(os.statvfs(mountpoint))
    except OSError as e:
        raise disks.storage_error(action, mountpoint, e) from None


def _make_mountpoint(path: str) -> None:
    if os.path.lexists(path) and not os.path.isdir(path):
        raise MountFailed(f"mountpoint {path} exists but is not a directory; move it away")
    os.makedirs(path, mode=0o755, exist_ok=True)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _read_from(path: str, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(LOG_READ).decode("utf-8", "replace")
    except OSError:
        return ""

"""What /proc and the kernel say: addresses, FUSE clients, processes, PIDs using a mount, the mount table.

Blocking reads, each cheap and never touching a mount's files: the world runs them in a pool."""

from __future__ import annotations

import os
import select
import socket
import threading
from collections.abc import Iterator

import psutil

from ..core.fuse_client import SLICE_CGROUP, ClientStats, cgroup_paths, unit_of_cgroup
from ..core.holders import Process

__all__ = [
    "GLUSTERFS",
    "MOUNTINFO",
    "MountinfoCache",
    "clients_blocking",
    "glusterfs_processes",
    "pids_using_blocking",
    "resolve_blocking",
    "running",
    "set_oom_score_adj_blocking",
    "unit_of_pid",
]

MOUNTINFO = "/proc/self/mountinfo"


def local_addresses() -> frozenset[str]:
    """Every address of this node, loopback included: what an empty or loopback host means."""
    addrs = {"127.0.0.1", "::1"}
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                addrs.add(entry.address.split("%", 1)[0])
    return frozenset(addrs)


def resolve_blocking(host: str) -> frozenset[str]:
    """Addresses of ``host``; every local address for "" and loopback; empty if it does not resolve."""
    if not host or host in ("localhost", "::1") or host.startswith("127."):
        return local_addresses()
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return frozenset()
    return frozenset(str(info[4][0]).split("%", 1)[0] for info in infos)


GLUSTERFS = os.path.realpath("/usr/sbin/glusterfs")
"""The executable every Gluster process runs (``glusterfs`` links to ``glusterfsd``)."""


def glusterfs_processes() -> Iterator[tuple[int, list[str]]]:
    """(pid, argv) of every Gluster client this daemon may take for one: see ``_trusted``.

    Raw /proc reads, the rest only of processes named glusterfs: psutil's
    process_iter costs some 35 ms for 180 processes, and this runs on every mount.
    """
    own_cgroups = _cgroups("self")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm", "rb") as f:
                if f.read() != b"glusterfs\n" or not _trusted(entry.name, own_cgroups):
                    continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                args = [os.fsdecode(a) for a in f.read().rstrip(b"\0").split(b"\0")]
        except OSError:
            continue  # gone meanwhile
        yield int(entry.name), args


def _trusted(pid: str, own_cgroups: list[str]) -> bool:
    """Whether a process named glusterfs is a client, known by what the kernel says rather than by its name or arguments.

    It runs as root, it runs the Gluster executable, and it sits where this
    daemon put it (a scope in its slice, or its own cgroup) or holds a FUSE
    connection (a client mounted by hand, adopted).  Anyone can name a process
    glusterfs and give it a mountpoint as its last argument.
    """
    with open(f"/proc/{pid}/status", "rb") as f:
        uids = next((line.split()[1:] for line in f if line.startswith(b"Uid:")), [])
    if not uids or any(uid != b"0" for uid in uids):
        return False
    if os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)") != GLUSTERFS:  # a package upgrade deletes the old one
        return False
    cgroups = _cgroups(pid)
    return any(path.startswith(SLICE_CGROUP) for path in cgroups) or cgroups == own_cgroups or _holds_fuse(pid)


def _cgroups(pid: str) -> list[str]:
    with open(f"/proc/{pid}/cgroup") as f:
        return cgroup_paths(f.read())


def _holds_fuse(pid: str) -> bool:
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/fuse":
                return True
        except OSError:
            continue
    return False


def unit_of_pid(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return unit_of_cgroup(f.read())
    except OSError:
        return ""


def clients_blocking(mountpoint: str) -> list[ClientStats]:
    """The glusterfs processes whose last argument is ``mountpoint`` (how the client is started), newest first.

    Read from /proc, never from the mount itself; a zombie (exited, not yet reaped) is dead and left out.
    """
    found = []
    for pid, args in glusterfs_processes():
        if args[-1] != mountpoint:
            continue
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                rss, threads, fds, started = proc.memory_info().rss, proc.num_threads(), proc.num_fds(), proc.create_time()
            with open(f"/proc/{pid}/oom_score_adj") as f:
                oom = int(f.read().strip())
        except (psutil.Error, OSError, ValueError):
            continue  # gone meanwhile
        found.append(ClientStats(pid, rss, threads, fds, started, oom, unit_of_pid(pid)))
    return sorted(found, key=lambda c: (c.start_time_seconds, c.pid), reverse=True)


def running(process: Process) -> bool:
    """Whether ``process`` still runs: its PID is there, not a zombie, and started when it did (no PID reuse)."""
    try:
        with open(f"/proc/{process.pid}/stat", "rb") as f:
            return Process.from_stat(process.pid, f.read()) == process
    except OSError:
        return False


def set_oom_score_adj_blocking(pid: int, value: int) -> str | None:
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w") as f:
            f.write(f"{value}\n")
    except PermissionError:
        return "not permitted (lowering it needs CAP_SYS_RESOURCE, which this daemon lacks here)"
    except OSError as e:
        return e.strerror or str(e)
    return None


def pids_using_blocking(mountpoint: str) -> list[int]:
    """PIDs with a cwd, root or open file on the mount (what ``fuser -m`` reports).

    Only ``readlink`` on /proc: it names a file without touching it, where a
    stat of a file on a frozen mount would hang.
    """
    prefix = mountpoint.rstrip("/") + "/"
    me = os.getpid()
    found = []
    for pid in psutil.pids():
        if pid == me:
            continue
        proc = f"/proc/{pid}"
        try:
            links = [os.readlink(f"{proc}/cwd"), os.readlink(f"{proc}/root")]
            for fd in os.listdir(f"{proc}/fd"):
                try:
                    links.append(os.readlink(f"{proc}/fd/{fd}"))
                except OSError:
                    pass
        except OSError:
            continue
        if any(link == mountpoint or link.startswith(prefix) for link in links):
            found.append(pid)
    return sorted(found)


class MountinfoCache:
    """The mount table's text, re-read only after the kernel says it changed.

    A daemon thread blocks in ``poll(POLLPRI)`` on ``/proc/self/mountinfo``
    (the reactor cannot wait for POLLPRI) and bumps a generation counter on
    every change; a read whose cached generation is current costs nothing.
    """

    def __init__(self, path: str = MOUNTINFO) -> None:
        self.path = path
        self._generation = 0
        self._cached: tuple[int, str] | None = None
        threading.Thread(target=self._watch, name="mountinfo-watch", daemon=True).start()

    def _watch(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        poller = select.poll()
        poller.register(fd, select.POLLPRI | select.POLLERR)
        while True:
            poller.poll()
            self._generation += 1

    def read(self, fresh: bool = False) -> str:
        generation = self._generation
        if not fresh and self._cached is not None and self._cached[0] == generation:
            return self._cached[1]
        with open(self.path, encoding="utf-8", errors="surrogateescape", newline="") as f:
            text = f.read()
        self._cached = (generation, text)
        return text

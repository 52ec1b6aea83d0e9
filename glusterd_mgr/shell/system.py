"""The I/O edge: subprocesses, the file-system thread pool, name resolution, TCP probes, PIDs.

Everything the engine needs from the outside world goes through ``System``, a
narrow interface that tests can replace.  Nothing here blocks the reactor:
processes run through Twisted's process API, and calls that may hang on a FUSE
mount run in ``FsPool`` with a deadline.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import psutil
from twisted.internet import error as twisted_error
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.protocol import ClientFactory, ProcessProtocol
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ..core.effects import CreateDisk, DiskInfo, DiskOperation, GrowDisk, ProcessResult, RemoveDisk, RenameDisk
from ..core.errors import MountFailed, OperationTimeout
from ..core.fuse_client import ClientStats, unit_of_cgroup
from ..core.holders import Process
from ..core.results import DiskResult, Space
from . import disks
from .journal import write_file_atomically
from .statvfs import space_info
from .sync import KeyedLock

T = TypeVar("T")
MOUNTINFO = "/proc/self/mountinfo"


class System(Protocol):
    """What the engine needs from the node; the real one is ``RealSystem``."""

    def read_mountinfo(self, fresh: bool = False) -> str:
        """The mount table's text; ``fresh`` bypasses any cache (after our own mount changes)."""
        ...

    def run(self, argv: Sequence[str], cwd: str, timeout: float) -> Deferred[ProcessResult]: ...

    def statvfs(self, mountpoint: str, timeout: float, action: str) -> Deferred[Space]:
        """``space_info`` of the mount; ``StorageError`` (named by ``action``) or ``OperationTimeout`` when it fails."""
        ...

    def make_mountpoint(self, path: str, timeout: float) -> Deferred[None]: ...

    def log_size(self, path: str) -> Deferred[int]: ...

    def log_tail(self, path: str, offset: int) -> Deferred[str]: ...

    def sweep_temps(self, mountpoint: str, folder: tuple[str, ...], timeout: float) -> Deferred[list[str]]: ...

    def disk(self, mountpoint: str, operation: DiskOperation, timeout: float) -> Deferred[DiskResult]: ...

    def write_state(self, path: str, data: bytes) -> Deferred[None]:
        """Replace a file of the daemon's state atomically."""
        ...

    def resolve(self, host: str) -> Deferred[frozenset[str]]: ...

    def tcp_probe(self, host: str, port: int, timeout: float) -> Deferred[str | None]: ...

    def pids_using(self, mountpoint: str) -> Deferred[list[int]]: ...

    def clients(self, mountpoint: str) -> Deferred[list[ClientStats]]:
        """Every living glusterfs FUSE client that claims ``mountpoint``, newest first."""
        ...

    def set_oom_score_adj(self, pid: int, value: int) -> Deferred[str | None]:
        """Set a process's ``oom_score_adj``; None on success, else why not."""
        ...

    def living(self, processes: tuple[Process, ...]) -> Deferred[frozenset[Process]]:
        """Which of ``processes`` still run."""
        ...

    def kill(self, pids: list[int]) -> None: ...

    @property
    def systemd_booted(self) -> bool:
        """Whether systemd is PID 1 here, so each FUSE client can get a scope of its own."""
        ...

    @property
    def own_unit(self) -> str:
        """The systemd unit this daemon runs in (``""`` where none)."""
        ...


KILL_GRACE = 10.0
"""How long a killed helper may take to be reaped before its caller is answered anyway."""


class _Collector(ProcessProtocol):
    """Collects a helper's output and kills its whole process group at the deadline.

    A helper stuck in the kernel may outlive SIGKILL (or a child may keep its
    pipes open); ``done`` then fires ``KILL_GRACE`` seconds after the kill, so
    no caller (and no lock it holds) waits forever.
    """

    def __init__(self, reactor: Any, argv: tuple[str, ...], timeout: float) -> None:
        self.argv = argv
        self.done: Deferred[ProcessResult] = Deferred()
        self._reactor = reactor
        self._chunks: list[bytes] = []
        self._timed_out = False
        self._timer: Any = reactor.callLater(timeout, self._kill)

    def outReceived(self, data: bytes) -> None:
        self._chunks.append(data)

    errReceived = outReceived

    def _kill(self) -> None:
        self._timed_out = True
        pid = self.transport.pid if self.transport is not None else None
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)  # the helper runs as leader of its own group
            except ProcessLookupError:
                pass
        self._timer = self._reactor.callLater(KILL_GRACE, self._finish, None, None, "\n(the helper did not die when killed)")

    def _finish(self, code: int | None, sig: int | None, extra: str = "") -> None:
        if not self.done.called:
            output = b"".join(self._chunks).decode("utf-8", "replace") + extra
            self.done.callback(ProcessResult(self.argv, code, sig, output, self._timed_out))

    def processEnded(self, reason: Failure) -> None:
        if self._timer.active():
            self._timer.cancel()
        self._finish(getattr(reason.value, "exitCode", None), getattr(reason.value, "signal", None))


class FsPool:
    """A bounded thread pool for calls that may hang on a FUSE mount.

    Each call has a deadline, counted from when it was asked for.  A call that
    overruns it keeps its thread (Python cannot kill it) and marks its key (a
    mountpoint) as hung: further calls on that key fail at once with
    ``OperationTimeout`` until the stuck call returns.  At most ``per_key``
    calls of one key hold threads at a time (the rest wait their turn), so a
    frozen server can never use up the pool and starve the other volumes.
    """

    def __init__(self, reactor: Any, max_threads: int = 16, name: str = "fs", per_key: int = 4) -> None:
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=max_threads, name=name)
        self._running: dict[str, dict[int, tuple[float, float]]] = {}  # key -> token -> (started, timeout)
        self._slots = KeyedLock(per_key)
        self._next = 0
        self.per_key = per_key
        self.max_threads = max_threads

    def start(self) -> None:
        self._pool.start()

    def stop(self) -> None:
        self._pool.stop()

    @property
    def occupancy(self) -> int:
        """Calls holding a thread, stuck ones included."""
        return sum(len(calls) for calls in self._running.values())

    def stuck_since(self, key: str) -> float | None:
        """How long the oldest overdue call on ``key`` has run, or None if none is overdue."""
        now = time.monotonic()
        ages = [now - started for started, timeout in self._running.get(key, {}).values() if started and now - started >= timeout]
        return max(ages) if ages else None

    def run(self, key: str, fn: Callable[[], T], timeout: float) -> Deferred[T]:
        stuck = self.stuck_since(key)
        if stuck is not None:
            return fail(OperationTimeout(f"{key} is not answering: a file-system call there has been stuck for {stuck:.0f} s"))
        outer: Deferred[T] = Deferred()
        turn = self._slots.acquire(key)

        def overdue() -> None:
            if not outer.called:
                outer.errback(Failure(OperationTimeout(f"{key} did not answer within {timeout:g} s")))
            turn.cancel()  # still waiting for a slot: give it up

        timer = self._reactor.callLater(timeout, overdue)
        turn.addCallbacks(lambda _: self._start(key, fn, timeout, outer, timer), lambda f: f.trap(CancelledError))
        return outer

    def _start(self, key: str, fn: Callable[[], T], timeout: float, outer: Deferred[T], timer: Any) -> None:
        token = self._next
        self._next += 1
        calls = self._running.setdefault(key, {})
        calls[token] = (0.0, timeout)

        def in_thread() -> T:
            calls[token] = (time.monotonic(), timeout)  # a plain dict store: safe under the GIL
            return fn()

        def finished(result: Any) -> None:
            calls.pop(token, None)
            if not calls and self._running.get(key) is calls:
                del self._running[key]
            self._slots.release(key)
            if timer.active():
                timer.cancel()
            if not outer.called:
                (outer.errback if isinstance(result, Failure) else outer.callback)(result)

        deferToThreadPool(self._reactor, self._pool, in_thread).addBoth(finished)


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


def glusterfs_processes() -> Iterator[tuple[int, list[str]]]:
    """(pid, argv) of every process named glusterfs: the FUSE clients, and bricks' helpers.

    Raw /proc reads, the command line only of processes with that name: psutil's
    process_iter costs some 35 ms for 180 processes, and this runs on every mount.
    """
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm", "rb") as f:
                if f.read() != b"glusterfs\n":
                    continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                args = [os.fsdecode(a) for a in f.read().rstrip(b"\0").split(b"\0")]
        except OSError:
            continue  # gone meanwhile
        yield int(entry.name), args


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
        self.reads = 0
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
        self.reads += 1
        self._cached = (generation, text)
        return text


@dataclass
class RealSystem:
    """The node itself."""

    reactor: Any
    fs_pool: FsPool
    misc_pool: FsPool
    mountinfo_path: str = MOUNTINFO
    extra_env: dict[str, str] = field(default_factory=dict)

    systemd_booted: bool = field(default_factory=lambda: os.path.isdir("/run/systemd/system"))
    """sd_booted(3): systemd is PID 1 when this folder exists."""
    own_unit: str = field(default_factory=lambda: unit_of_pid(os.getpid()))

    def __post_init__(self) -> None:
        self.mount_table = MountinfoCache(self.mountinfo_path)

    def read_mountinfo(self, fresh: bool = False) -> str:
        return self.mount_table.read(fresh)

    def run(self, argv: Sequence[str], cwd: str, timeout: float) -> Deferred[ProcessResult]:
        full = ("setsid", *argv)  # own process group, so a timeout kills the helper and its children
        proto = _Collector(self.reactor, tuple(argv), timeout)
        env = {**os.environ, "LC_ALL": "C", **self.extra_env}
        self.reactor.spawnProcess(proto, "/usr/bin/setsid", full, env=env, path=cwd)
        return proto.done

    def statvfs(self, mountpoint: str, timeout: float, action: str) -> Deferred[Space]:
        def call() -> Space:
            try:
                return space_info(os.statvfs(mountpoint))
            except OSError as e:
                raise disks.storage_error(action, mountpoint, e) from None

        return self.fs_pool.run(mountpoint, call, timeout)

    def make_mountpoint(self, path: str, timeout: float) -> Deferred[None]:
        return self.fs_pool.run(os.path.dirname(path) or "/", lambda: _make_mountpoint(path), timeout)

    def log_size(self, path: str) -> Deferred[int]:
        return self.fs_pool.run("log", lambda: _size(path), 5.0)

    def log_tail(self, path: str, offset: int) -> Deferred[str]:
        return self.fs_pool.run("log", lambda: _read_from(path, offset), 5.0)

    def sweep_temps(self, mountpoint: str, folder: tuple[str, ...], timeout: float) -> Deferred[list[str]]:
        return self.fs_pool.run(mountpoint, lambda: disks.sweep_temps(mountpoint, folder), timeout)

    def disk(self, mountpoint: str, operation: DiskOperation, timeout: float) -> Deferred[DiskResult]:
        return self.fs_pool.run(mountpoint, lambda: run_disk_operation(mountpoint, operation), timeout)

    def write_state(self, path: str, data: bytes) -> Deferred[None]:
        return self.fs_pool.run("state", lambda: write_file_atomically(path, data), 5.0)

    def resolve(self, host: str) -> Deferred[frozenset[str]]:
        return self.misc_pool.run("resolve", lambda: resolve_blocking(host), 10.0)

    def pids_using(self, mountpoint: str) -> Deferred[list[int]]:
        return self.misc_pool.run(f"pids-using:{mountpoint}", lambda: pids_using_blocking(mountpoint), 10.0)

    def clients(self, mountpoint: str) -> Deferred[list[ClientStats]]:
        return self.misc_pool.run(f"clients:{mountpoint}", lambda: clients_blocking(mountpoint), 10.0)

    def set_oom_score_adj(self, pid: int, value: int) -> Deferred[str | None]:
        return self.misc_pool.run("oom", lambda: set_oom_score_adj_blocking(pid, value), 10.0)

    def living(self, processes: tuple[Process, ...]) -> Deferred[frozenset[Process]]:
        return self.misc_pool.run("processes", lambda: frozenset(p for p in processes if running(p)), 10.0)

    def kill(self, pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def tcp_probe(self, host: str, port: int, timeout: float) -> Deferred[str | None]:
        """None when ``host:port`` accepts a TCP connection, else why not."""
        factory = _ProbeFactory()
        self.reactor.connectTCP(host, port, factory, timeout=timeout)

        def why(f: Failure) -> str:
            if f.check(twisted_error.ConnectionRefusedError):
                return "connection refused (glusterd not running there?)"
            if f.check(twisted_error.TimeoutError):
                return f"no answer within {timeout:g} s (host down or firewalled?)"
            if f.check(twisted_error.DNSLookupError):
                return "the host name does not resolve"
            if f.check(twisted_error.NoRouteError):
                return "no route to host"
            value = f.value
            return os.strerror(value.errno) if isinstance(value, OSError) and value.errno else f.getErrorMessage()

        return factory.result.addCallback(lambda failed: None if failed is None else why(failed[0]))


class _Hangup(TwistedProtocol):
    """Connected: that was all the probe wanted to know."""

    def connectionMade(self) -> None:
        assert isinstance(self.factory, _ProbeFactory)
        if not self.factory.result.called:
            self.factory.result.callback(None)
        transport: Any = self.transport
        transport.loseConnection()


class _ProbeFactory(ClientFactory):
    """Fires ``result`` with None on connect, or with the connection's Failure (in a tuple).

    (``reactor.connectTCP`` rather than endpoints: ``twisted.internet.endpoints``
    imports TLS support, which fails where pyOpenSSL is installed without
    service_identity, as it may be on a Ganeti node.)
    """

    protocol = _Hangup

    def __init__(self) -> None:
        # The Failure travels in a tuple: a bare one would turn the callback into an errback.
        self.result: Deferred[tuple[Failure] | None] = Deferred()

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        if not self.result.called:
            self.result.callback((reason,))


def run_disk_operation(root: str, op: DiskOperation) -> DiskResult:
    """Carry out one disk operation in the volume mounted at ``root`` (blocking: runs in the pool)."""
    match op:
        case CreateDisk():
            return disks.create(root, op.disk, op.size_mib, op.preallocate)
        case RemoveDisk():
            return disks.remove(root, op.disk)
        case GrowDisk():
            return disks.grow(root, op.disk, op.amount_mib, op.dryrun, op.backingstore, op.preallocate)
        case RenameDisk():
            return disks.rename(root, op.disk, op.new)
        case DiskInfo():
            return disks.info(root, op.disk)


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
            return f.read(256 * 1024).decode("utf-8", "replace")
    except OSError:
        return ""

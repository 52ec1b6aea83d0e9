"""A node in memory, shipped with the package as Twisted ships ``twisted.internet.testing``.

``World`` answers every effect the way the node would (``shell.world.RealWorld``
is the real one): a mount table, FUSE clients, a journal, processes.  The
core's tests run procedures on it through ``Scheduler``, which interleaves
several of them at every effect so a test picks the order; the driver's and
the front door's tests hand it to the Twisted driver, where ``hold`` keeps the
effects of chosen types unanswered until the test fires their Deferreds.  No
root, no Gluster.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred

from .app.schema import MethodSchema, load
from .core import effects as fx
from .core.errors import OperationTimeout, StateError, StorageError
from .core.fuse_client import DEFAULT_OOM_SCORE_ADJ, ClientStats
from .core.holders import Change, Holder, HolderTable, Process
from .core.machine import Core
from .core.mountinfo import escape
from .core.mounts import CLIENT
from .core.requests import Params
from .core.results import Space
from .core.state import EngineConfig
from .core.volume import VolumeSpec

__all__ = ["MOUNTPOINT", "SPACE", "SPEC", "Mount", "Scheduler", "Task", "World", "client_stats", "config", "new_pid", "request"]

MOUNTPOINT = "/run/ganeti/gluster"
SPEC = VolumeSpec(host="10.0.0.2", port=24007, volume="gv0")
SPACE: Space = {"storage_size": 100, "storage_free": 50, "size_bytes": 100 << 20, "avail_bytes": 50 << 20, "files": 10, "files_free": 5}


def config() -> EngineConfig:
    """The core's settings on a node whose storage dir is ``MOUNTPOINT``."""
    return EngineConfig(storage_dir=MOUNTPOINT, whitelist=["/run/ganeti"], whitelist_file="/etc/ganeti/file-storage-paths")


@functools.cache
def _schemas() -> dict[str, MethodSchema]:
    return load()


def request(method: str, **params: object) -> Params:
    """A call's params as the front door parses them, the schema's defaults included (volumes and holders as objects)."""
    wire = {name: value.to_json() if isinstance(value, VolumeSpec | Holder) else value for name, value in params.items()}
    schema = _schemas()[method]
    return schema.parse(wire)


_pids = iter(range(5000, 1 << 22))


def new_pid() -> int:
    """A process that starts now: later PIDs start later (``client_stats``)."""
    return next(_pids)


@dataclass
class Mount:
    source: str
    fstype: str = "fuse.glusterfs"
    client: str = "ok"
    """"ok"; "dead" (its client is gone: ENOTCONN); "disconnected" (its client lives, reaches no brick: ENOTCONN); "hung"."""
    pid: int = field(default_factory=new_pid)
    """Its FUSE client's."""


def client_stats(pid: int) -> ClientStats:
    """A client's figures as the node would read them (already at the daemon's OOM score)."""
    return ClientStats(pid, 64 << 20, 8, 12, 1_700_000_000.0 + pid, DEFAULT_OOM_SCORE_ADJ, "")


@dataclass
class World:
    """The node as the effects see it."""

    stacks: dict[str, list[Mount]] = field(default_factory=dict)
    busy: bool = False  # a process uses the mount: a plain umount fails
    mount_fails: bool = False
    journal_fails: bool = False
    orphans: list[int] = field(default_factory=list)
    log_text: str = ""  # the client log: all of it is what it gained since any offset the core asks from
    journal: list[Change] = field(default_factory=list)
    done: list[fx.Effect[Any]] = field(default_factory=list)
    clock: float = 0.0
    later: list[fx.After] = field(default_factory=list)
    """What the core put off (``After``), for the test to run when it likes."""
    processes: set[Process] = field(default_factory=set)
    """The processes that run (``process`` holders last as long as theirs)."""
    hold: tuple[type[fx.Effect[Any]], ...] = ()
    """Effect types answered by the test, not the world: each is kept in ``held`` with its Deferred (driver tests only)."""
    held: list[tuple[fx.Effect[Any], Deferred[Any]]] = field(default_factory=list)

    def stack(self, mountpoint: str = MOUNTPOINT) -> list[Mount]:
        return self.stacks.setdefault(mountpoint, [])

    def durable(self, spec: VolumeSpec = SPEC) -> set[Holder]:
        """The holders of ``spec`` the journal would give back after a crash."""
        table = HolderTable()
        for change in self.journal:
            table.apply(change)
        return set(table.of(spec))

    def table(self) -> str:
        """The mount table as /proc/self/mountinfo would show it."""
        lines = []
        for n, (path, stack) in enumerate(sorted(self.stacks.items())):
            for i, m in enumerate(stack):
                lines.append(f"{100 + 10 * n + i} 27 0:{60 + i} / {escape(path)} rw,relatime shared:80 - {m.fstype} {m.source} rw")
        return "".join(line + "\n" for line in lines)

    def of(self, effect: fx.Effect[Any]) -> list[fx.Effect[Any]]:
        """The effects done so far of ``effect``'s type."""
        return [e for e in self.done if type(e) is type(effect)]

    def answer(self, effect: fx.Effect[Any]) -> Any:
        """Carry out an effect that needs no scheduling; raise what the node would raise."""
        self.done.append(effect)
        if isinstance(effect, self.hold):
            waiting: Deferred[Any] = Deferred()
            self.held.append((effect, waiting))
            return waiting
        match effect:
            case fx.ReadTable():
                return self.table()
            case fx.Resolve():
                return frozenset({effect.host})
            case fx.Statvfs():
                stack = self.stack(effect.mountpoint)
                client = stack[-1].client if stack else "ok"
                if client == "hung":
                    raise OperationTimeout(f"{effect.mountpoint} did not answer")
                if client in ("dead", "disconnected"):
                    raise StorageError(f"cannot {effect.action} {effect.mountpoint}: not connected", errno="ENOTCONN")
                return dict(SPACE)
            case fx.Run():
                return self._run(effect)
            case fx.Clients():
                living = [m.pid for m in self.stack(effect.mountpoint) if m.fstype == "fuse.glusterfs" and m.client != "dead"]
                return [client_stats(pid) for pid in sorted([*living, *self.orphans], reverse=True)]
            case fx.Kill():
                self.orphans = [pid for pid in self.orphans if pid not in effect.pids]
                for stacked in self.stacks.values():
                    for m in stacked:
                        if m.pid in effect.pids:
                            m.client = "dead"
                return None
            case fx.PidsUsing():
                return [4242] if self.busy else []
            case fx.LogSize():
                return 0
            case fx.LogTail():
                return self.log_text
            case fx.SettleLeftovers():
                return []
            case fx.SetOomScore() | fx.WriteState() | fx.WatchProcess():
                return None
            case fx.After():
                self.later.append(effect)
                return None
            case fx.LivingProcesses():
                return frozenset(p for p in effect.processes if p in self.processes)
            case fx.Systemd():
                return False, ""
            case fx.TcpProbe() | fx.MakeMountpoint() | fx.Say() | fx.Observe():
                return None
            case fx.Disk():
                stack = self.stack(effect.mountpoint)
                if not stack:
                    raise StorageError("no such file", errno="ENOENT")
                if stack[-1].client in ("dead", "disconnected"):
                    raise StorageError(f"cannot open {effect.mountpoint}: not connected", errno="ENOTCONN")
                return {"done": type(effect.params).__name__}
            case fx.WriteJournal():
                if self.journal_fails:
                    raise StateError("the journal cannot be written")
                self.journal.append(effect.change)
                return None
            case fx.Now():
                self.clock += 0.5
                return self.clock
        raise AssertionError(f"the world cannot answer {effect!r}")

    def _run(self, effect: fx.Run) -> fx.ProcessResult:
        argv = effect.argv
        stack = self.stack(argv[-1])
        if argv[0] == CLIENT:
            if self.mount_fails:
                return fx.ProcessResult(argv, 1, None, "", False)
            [host, *_] = [a.removeprefix("--volfile-server=") for a in argv if a.startswith("--volfile-server=")]
            [volume] = [a.removeprefix("--volfile-id=") for a in argv if a.startswith("--volfile-id=")]
            stack.append(Mount(f"{host}:{volume}"))
        elif "-l" in argv:
            if stack:
                stack.pop()
        elif self.busy:
            return fx.ProcessResult(argv, 32, None, f"umount: {argv[-1]}: target is busy.", False)
        elif stack:
            stack.pop()
        return fx.ProcessResult(argv, 0, None, "", False)


@dataclass
class Task:
    """One procedure in flight: a stack of generators (``Locked`` pushes its inner procedure)."""

    name: str
    frames: list[tuple[fx.Proc[Any], tuple[Hashable, ...]]]
    pending: fx.Effect[Any] | None = None
    outcome: Any = None
    error: Exception | None = None
    finished: bool = False


class Scheduler:
    """Runs procedures side by side against a ``World``; a step answers one task's pending effect.

    Any task may run at any step (but one waiting for a lock someone holds): the order of the
    procedures rests on their locks alone, never on which effects the driver answers at once.
    """

    def __init__(self, world: World, core: Core) -> None:
        self.world = world
        self.core = core
        self.tasks: list[Task] = []
        self.locks: set[Hashable] = set()
        self.on_finish: Callable[[Task], None] = lambda task: None
        """Called the moment a call ends, before any other runs: when its answer would be sent."""

    def start(self, name: str, proc: fx.Proc[Any], pending: Callable[[Task], None] = lambda task: None) -> Task:
        """Start a call; ``pending`` sees its task before it runs (a call may end at once)."""
        task = Task(name, [(proc, ())])
        self.tasks.append(task)
        pending(task)
        self._resume(task, None, None)
        return task

    def runnable(self) -> list[Task]:
        return [t for t in self.tasks if not t.finished and self._can_answer(t)]

    def _can_answer(self, task: Task) -> bool:
        effect = task.pending
        return not isinstance(effect, fx.Locked) or not self.locks & set(effect.keys)

    def step(self, task: Task) -> None:
        """Answer the task's pending effect and run it to its next one."""
        assert task.pending is not None and self._can_answer(task)
        answer, error = self._answer(task)
        self._resume(task, answer, error)

    def advance(self, task: Task, until: type[fx.Effect[Any]] | None = None) -> Task:
        """Step ``task`` alone until it asks for an effect of type ``until``, waits for a lock someone holds, or ends."""
        while not task.finished and self._can_answer(task) and not (until and isinstance(task.pending, until)):
            self.step(task)
        return task

    def _answer(self, task: Task) -> tuple[Any, Exception | None]:
        effect = task.pending
        assert effect is not None
        match effect:
            case fx.Locked():
                self.locks |= set(effect.keys)
                task.frames.append((effect.proc, effect.keys))
            case fx.IsLocked():
                return effect.key in self.locks, None
            case _:
                try:
                    return self.world.answer(effect), None
                except Exception as e:
                    return None, e
        return None, None

    def _resume(self, task: Task, answer: Any, error: Exception | None) -> None:
        while task.frames:
            proc, keys = task.frames[-1]
            try:
                task.pending = proc.send(answer) if error is None else proc.throw(error)
                return
            except StopIteration as stop:
                answer, error = stop.value, None
            except Exception as e:
                answer, error = None, e
            task.frames.pop()
            self.locks -= set(keys)
        task.pending, task.finished, task.outcome, task.error = None, True, answer, error
        self.on_finish(task)

    def run(self, proc: fx.Proc[Any], name: str = "call") -> Task:
        """Start a procedure and step it (alone) to its end."""
        task = self.start(name, proc)
        while not task.finished:
            self.step(task)
        return task

    def drain(self) -> None:
        """Step every task, oldest first, until all are done."""
        while ready := self.runnable():
            self.step(ready[0])
        assert all(t.finished for t in self.tasks), "deadlock: tasks wait forever"

"""What the core asks of the world (effects), each with the type of the answer it expects.

A core procedure is a generator: it yields an effect, the driver carries it out
and sends the answer back (or throws the error the world raised into it), until
the procedure returns its outcome.  Nothing here does I/O; the driver in
``shell/driver.py`` and the fake in the tests are the two ways to run one.
"""

from __future__ import annotations

import enum
from collections.abc import Generator, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from .fuse_client import ClientStats
from .holders import Change, Process
from .policy import DiskPath
from .requests import DiskParams
from .results import DiskResult, Space

__all__ = [
    "After",
    "Clients",
    "Disk",
    "Effect",
    "IsLocked",
    "Kill",
    "Level",
    "LivingProcesses",
    "Locked",
    "LogSize",
    "LogTail",
    "MakeMountpoint",
    "Metric",
    "Now",
    "Observe",
    "PidsUsing",
    "Proc",
    "ProcessResult",
    "ReadTable",
    "Resolve",
    "Run",
    "Say",
    "SetOomScore",
    "SettleLeftovers",
    "Statvfs",
    "Systemd",
    "TcpProbe",
    "WatchProcess",
    "WriteJournal",
    "WriteState",
    "ask",
]

R = TypeVar("R")
T = TypeVar("T")


class Effect(Generic[R]):
    """Something the core wants done; ``R`` is what the driver answers with."""

    __slots__ = ()


Proc = Generator[Effect[Any], Any, T]
"""A core procedure: yields effects, receives their answers, returns a ``T``."""


def ask(effect: Effect[R]) -> Generator[Effect[Any], Any, R]:
    """Yield one effect and return its answer, typed (``answer = yield from ask(effect)``)."""
    return cast(R, (yield effect))


@dataclass(frozen=True)
class ProcessResult:
    """How a helper (``mount``, ``umount``) ended."""

    argv: tuple[str, ...]
    exit_code: int | None
    signal: int | None
    output: str
    timed_out: bool

    @property
    def last_line(self) -> str:
        lines = [ln for ln in self.output.splitlines() if ln.strip()]
        return lines[-1].strip() if lines else ""


# -- the node ------------------------------------------------------------------


@dataclass(frozen=True)
class ReadTable(Effect[str]):
    """The mount table's text; ``fresh`` bypasses any cache (decisions read the kernel afresh)."""

    fresh: bool = True


@dataclass(frozen=True)
class Resolve(Effect[frozenset[str]]):
    """The addresses of a host name (every local address for "" and loopback)."""

    host: str


@dataclass(frozen=True)
class Statvfs(Effect[Space]):
    """The space figures of a mountpoint (``statvfs.space_info``); fails with ``OperationTimeout`` or ``StorageError``."""

    mountpoint: str
    timeout: float
    action: str = "check"


@dataclass(frozen=True)
class MakeMountpoint(Effect[None]):
    """Create the mountpoint folder; fails with ``MountFailed`` when something else is there."""

    path: str
    timeout: float


@dataclass(frozen=True)
class LogSize(Effect[int]):
    """The size of the client log before a mount (0 if there is none)."""

    path: str


@dataclass(frozen=True)
class LogTail(Effect[str]):
    """What the client log gained from ``offset`` on (at most 256 KiB; "" if unreadable)."""

    path: str
    offset: int


@dataclass(frozen=True)
class Run(Effect[ProcessResult]):
    """Run a helper in its own process group; it is killed at ``timeout``."""

    argv: tuple[str, ...]
    cwd: str
    timeout: float


@dataclass(frozen=True)
class TcpProbe(Effect[str | None]):
    """None when ``host:port`` accepts a TCP connection, else why not."""

    host: str
    port: int
    timeout: float


@dataclass(frozen=True)
class PidsUsing(Effect[list[int]]):
    """PIDs with a cwd, root or open file on ``mountpoint``."""

    mountpoint: str


@dataclass(frozen=True)
class Clients(Effect[list[ClientStats]]):
    """Every living glusterfs FUSE client that claims ``mountpoint`` (zombies left out), newest first."""

    mountpoint: str


@dataclass(frozen=True)
class LivingProcesses(Effect[frozenset[Process]]):
    """Which of ``processes`` still run (the same PID and start time)."""

    processes: tuple[Process, ...]


@dataclass(frozen=True)
class WatchProcess(Effect[None]):
    """Let the core know as soon as ``process`` ends (by running ``Core.release_ended_processes``); the probe stays the net."""

    process: Process


@dataclass(frozen=True)
class SetOomScore(Effect[str | None]):
    """Set a process's ``oom_score_adj``; answers None, or why it could not."""

    pid: int
    value: int


@dataclass(frozen=True)
class WriteState(Effect[None]):
    """Replace a file of the daemon's state atomically (written, synced, renamed)."""

    path: str
    data: bytes


@dataclass(frozen=True)
class Systemd(Effect[tuple[bool, str]]):
    """Whether systemd runs the node, and the unit the daemon runs in ("" when none)."""


@dataclass(frozen=True)
class Kill(Effect[None]):
    pids: tuple[int, ...]


@dataclass(frozen=True)
class SettleLeftovers(Effect[list[str]]):
    """Settle what this node's disk calls cut short by a crash left in its private folder; answers what it did."""

    mountpoint: str
    folder: tuple[str, ...]
    timeout: float


# -- disks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Disk(Effect[DiskResult]):
    """One disk call inside the mounted volume at ``mountpoint``: its params as given, ``disks`` its paths checked."""

    mountpoint: str
    params: DiskParams
    disks: tuple[DiskPath, ...]
    timeout: float


# -- holders, order and time ---------------------------------------------------------


@dataclass(frozen=True)
class WriteJournal(Effect[None]):
    """Make a holder change durable; answered once it is on disk."""

    change: Change


@dataclass(frozen=True)
class Locked(Effect[T]):
    """Run ``proc`` holding the locks of ``keys`` (taken in the order given, released in any)."""

    keys: tuple[Hashable, ...]
    proc: Proc[T] = field(compare=False)


@dataclass(frozen=True)
class IsLocked(Effect[bool]):
    """Whether someone holds the lock of ``key`` (a mount change is under way)."""

    key: Hashable


@dataclass(frozen=True)
class After(Effect[None]):
    """Run ``proc`` on its own after ``seconds`` (answered at once; its errors are the driver's to log)."""

    seconds: float
    proc: Proc[None] = field(compare=False)


@dataclass(frozen=True)
class Now(Effect[float]):
    """The clock's seconds."""


# -- what the core reports ---------------------------------------------------------


class Level(enum.Enum):
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class Say(Effect[None]):
    """A log line (``text`` is a format string over ``fields``); ``error`` logs a failure with its traceback."""

    level: Level
    text: str
    fields: dict[str, object] = field(default_factory=dict)
    error: Exception | None = None


class Metric(enum.Enum):
    MOUNT_ATTEMPTS = "mount_attempts"
    MOUNT_FAILURES = "mount_failures"
    UNMOUNT_ATTEMPTS = "unmount_attempts"
    UNMOUNT_BUSY = "unmount_busy"
    RECOVERIES = "dead_mount_recoveries"
    DISCONNECTIONS = "mount_disconnections"
    MOUNT_SECONDS = "mount_duration_seconds"


@dataclass(frozen=True)
class Observe(Effect[None]):
    """A metric observation: a count of one, or a duration for ``MOUNT_SECONDS``."""

    metric: Metric
    volume: str
    value: float = 1.0

"""The FUSE client of a mount: where it runs, how it is watched, and what its death breaks.

The ``glusterfs`` process behind a node's mount carries the disk of every
running instance on that node, so it is treated as a first-class citizen:

- Where systemd is PID 1 it is started in a transient scope unit of its own, in
  ``ganeti-gluster.slice`` (``systemd-run --scope``), never in the daemon's
  service: a stop, restart or crash of the daemon cannot touch it, and the unit
  can keep systemd's default ``KillMode=control-group``.
- It runs with a strongly negative OOM score (set by the daemon after the
  mount), so the kernel kills a guest before the client that carries every
  guest's disk.
- Its memory, threads, descriptors and age are read at every probe, and a
  memory threshold warns before the kernel has to choose.

Pure: names, command lines and thresholds; the daemon runs and reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .results import ClientFigures

__all__ = [
    "DEFAULT_EVENT_THREADS",
    "DEFAULT_OOM_SCORE_ADJ",
    "DEFAULT_READER_THREADS",
    "FULL_RESTART_ADVICE",
    "SLICE",
    "SLICE_CGROUP",
    "ClientStats",
    "adopt_argv",
    "cgroup_paths",
    "client_mount",
    "client_options",
    "describe",
    "over_threshold",
    "scope_unit",
    "scoped_argv",
    "unit_of_cgroup",
]

SLICE = "ganeti-gluster.slice"
SLICE_CGROUP = "/ganeti.slice/ganeti-gluster.slice/"
"""Where the system manager puts the scopes of ``SLICE`` (a dash in a slice's name nests it)."""
DEFAULT_OOM_SCORE_ADJ = -900
"""Strongly negative but not -1000: a client leaking without bound can still be stopped by the kernel."""

DEFAULT_READER_THREADS = 1
"""Threads reading ``/dev/fuse`` (``--reader-thread-count``): the client's own default; 2 and 4 were not
consistently faster over two runs (docs/development/benchmarks.rst, "The guest's disk path").  Safe in a live migration: they only
carry requests, nothing is cached."""
DEFAULT_EVENT_THREADS = 0
"""Network threads of the client (``client.event-threads``); 0 keeps the volume's own setting (2, or 4 with
``group virt``); 4 was not consistently faster.  Safe likewise: concurrency only, no cache."""


def client_options(reader_threads: int, event_threads: int) -> tuple[str, ...]:
    """The FUSE client's arguments for the chosen options, none where the client's or the volume's default stays.

    Options that cache data in one node (``--kernel-writeback-cache``, ``--fopen-keep-cache``) are never offered:
    during a live migration both nodes open the guest's disk, and neither may read what the other has overwritten.
    """
    options = [f"--reader-thread-count={reader_threads}"] if reader_threads != DEFAULT_READER_THREADS else []
    if event_threads:
        options.append(f"--xlator-option=*-client-*.event-threads={event_threads}")
    return tuple(options)


FULL_RESTART_ADVICE = "their guests still use the dead connection: restart each fully (gnt-instance reboot --type=full INSTANCE)"


def _unit_escape(text: str) -> str:
    """systemd's unit-name escaping (``systemd-escape``): ``/`` → ``-``, other odd bytes → ``\\xNN``."""
    out = []
    for i, byte in enumerate(text.encode()):
        ch = chr(byte)
        if ch == "/":
            out.append("-")
        elif ch.isascii() and (ch.isalnum() or ch in ":_" or (ch == "." and i > 0)):
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def scope_unit(volume: str, mountpoint: str, serial: int) -> str:
    """``ganeti-gluster-VOLUME-MOUNTPOINT-SERIAL.scope``; the serial keeps a new scope apart from a dying one."""
    name = f"ganeti-gluster-{_unit_escape(volume)}-{_unit_escape(mountpoint.strip('/'))}-{serial}"
    return name[:240] + ".scope"


def scoped_argv(argv: Sequence[str], unit: str, description: str) -> list[str]:
    """``argv`` run in a transient scope of its own: the FUSE client it forks stays in that scope."""
    return [
        "systemd-run",
        "--scope",
        "--quiet",
        "--collect",
        f"--slice={SLICE}",
        f"--unit={unit}",
        f"--description={description}",
        "--",
        *argv,
    ]


def describe(volume: str, mountpoint: str) -> str:
    """A client's scope as ``systemctl status`` describes it (the daemon's scopes and ``rehome``'s alike)."""
    return f"GlusterFS client of {volume} on {mountpoint}"


def adopt_argv(pid: int, unit: str, description: str) -> list[str]:
    """Move a running client into a new scope (D-Bus ``StartTransientUnit`` with ``PIDs``).

    For clients that a version before scopes started inside the daemon's own
    service: left there, the service's next stop would kill them.
    """
    return [
        "busctl", "call", "--quiet", "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
        "StartTransientUnit", "ssa(sv)a(sa(sv))", unit, "fail",
        "3", "PIDs", "au", "1", str(pid), "Slice", "s", SLICE, "Description", "s", description, "0",
    ]  # fmt: skip


@dataclass(frozen=True)
class ClientStats:
    """One FUSE client process as the probe last saw it."""

    pid: int
    resident_memory_bytes: int
    threads: int
    open_fds: int
    start_time_seconds: float
    """Since the epoch, as Prometheus' ``process_start_time_seconds``."""
    oom_score_adj: int
    unit: str
    """The systemd unit whose cgroup holds it (its scope), or ``""`` where there is none."""

    def to_json(self) -> ClientFigures:
        """As ``status`` shows it: the start time, not an age, so the same state reads the same."""
        return ClientFigures(
            pid=self.pid,
            resident_memory_bytes=self.resident_memory_bytes,
            threads=self.threads,
            open_fds=self.open_fds,
            start_time_seconds=self.start_time_seconds,
            oom_score_adj=self.oom_score_adj,
            unit=self.unit,
        )


def cgroup_paths(cgroup_text: str) -> list[str]:
    """A process's paths in the unified tree and in v1's systemd one, from ``/proc/PID/cgroup``, in its order.

    Either may be missing, and in a container one may be the host's view of it
    (a unified container on a hybrid host sees ``1:name=systemd:/`` first).
    """
    return [
        parts[2]
        for parts in (line.split(":", 2) for line in cgroup_text.splitlines())
        if len(parts) == 3 and parts[1] in ("", "name=systemd")
    ]


def unit_of_cgroup(cgroup_text: str) -> str:
    """The unit of a process from ``/proc/PID/cgroup`` (the last ``.scope``/``.service`` component of any of its paths), or ``""``."""
    for path in cgroup_paths(cgroup_text):
        for part in reversed(path.split("/")):
            if part.endswith((".scope", ".service")):
                return part
    return ""


def over_threshold(stats: ClientStats | None, threshold_bytes: int) -> bool:
    """Whether a client's memory crossed the warning threshold (0 disables it)."""
    return threshold_bytes > 0 and stats is not None and stats.resident_memory_bytes >= threshold_bytes


def client_mount(argv: Sequence[str]) -> tuple[str, str] | None:
    """(volume, mountpoint) of a FUSE client from its command line (``--volfile-id=/VOL ... MOUNTPOINT``), else None."""
    if "fuse" not in argv or not argv[-1].startswith("/"):  # started with --process-name fuse
        return None
    for arg in argv:
        if arg.startswith("--volfile-id="):
            return arg.removeprefix("--volfile-id=").strip("/"), argv[-1]
    return None

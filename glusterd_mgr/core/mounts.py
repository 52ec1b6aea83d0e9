"""Mount decisions (pure): what to do at a mountpoint, the commands, and failure diagnosis.

Given a volume, what the kernel's mount table shows at its mountpoint and, for
a mount of that volume, whether it answers, ``decide`` says what to do; the
machine (``core/machine.py``) yields the effects that carry it out.
"""

from __future__ import annotations

import enum
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .mountinfo import MountRecord
from .volume import VolumeSpec

__all__ = ["CLIENT", "Action", "Decision", "Probe", "UnmountMode", "client_argv", "decide", "diagnose_log", "log_file_for", "umount_argv"]


class UnmountMode(enum.Enum):
    PLAIN = "plain"
    LAZY = "lazy"


class Probe(enum.Enum):
    """What a stat of the mountpoint said."""

    OK = "ok"
    DEAD = "dead"  # ENOTCONN, and the FUSE client is gone
    DISCONNECTED = "disconnected"  # ENOTCONN from a living client: it reaches no brick (a network partition)
    HUNG = "hung"  # no answer before the deadline


class Action(enum.Enum):
    MOUNT = "mount"  # nothing there: mount
    ADOPT = "adopt"  # our volume is there and answers: use it, never mount twice
    RECOVER = "recover"  # our volume is there but dead: detach it lazily, then mount
    CONFLICT = "conflict"  # something else is mounted there: refuse
    WAIT = "wait"  # our volume is there but hung: refuse with a timeout, touch nothing
    UNREACHABLE = "unreachable"  # our volume is there, its client lives but reaches no brick: refuse, touch nothing


@dataclass(frozen=True)
class Decision:
    action: Action
    top: MountRecord | None = None


def decide(stack: Sequence[MountRecord], top_is_ours: bool, probe: Probe | None) -> Decision:
    """Decide for the mount stack at a mountpoint (bottom first): only its top counts, as a lookup sees it.

    ``top_is_ours`` is the caller's finding that the top mount is this volume's (a
    non-glusterfs mount never is); ``probe`` is its liveness, None when not probed
    yet (then ADOPT means "probe, then decide again").
    """
    if not stack:
        return Decision(Action.MOUNT)
    top = stack[-1]
    if not (top.is_glusterfs and top_is_ours):
        return Decision(Action.CONFLICT, top)
    if probe is None or probe is Probe.OK:
        return Decision(Action.ADOPT, top)
    if probe is Probe.DEAD:
        return Decision(Action.RECOVER, top)
    if probe is Probe.DISCONNECTED:
        return Decision(Action.UNREACHABLE, top)
    return Decision(Action.WAIT, top)


CLIENT = "glusterfs"
"""The FUSE client, started directly: ``mount.glusterfs`` is a shell script whose option parsing has broken
between releases (glusterfs #3225), misreads paths named like its arguments, and costs some 50 ms a mount."""


def client_argv(
    spec: VolumeSpec, mountpoint: str, log_file: str, backup_servers: Sequence[str] = (), options: Sequence[str] = ()
) -> list[str]:
    """The FUSE client's command line, as ``mount.glusterfs`` builds it for ``-o server-port=PORT,backup-volfile-servers=...``.

    The named server first, then each backup as a further ``--volfile-server`` (the client tries them in
    order); ``--volfile-id=/VOLUME`` so the kernel names the mount ``HOST:/VOLUME`` as a ``mount -t
    glusterfs`` does; ``options`` (the chosen client options) before the mountpoint, which stays last:
    clients are found by it.  No ``--oom-score-adj``: a client that cannot apply it (no
    CAP_SYS_RESOURCE, as in a container) exits; the daemon sets the score afterwards instead.
    """
    return [
        CLIENT,
        "--process-name",
        "fuse",
        f"--volfile-server={spec.mount_host}",
        f"--volfile-server-port={spec.port}",
        *(f"--volfile-server={server}" for server in backup_servers),
        f"--volfile-id=/{spec.volume}",
        f"--log-file={log_file}",
        *options,
        mountpoint,
    ]


def umount_argv(mountpoint: str, mode: UnmountMode) -> list[str]:
    return ["umount", "-l", mountpoint] if mode is UnmountMode.LAZY else ["umount", mountpoint]


def log_file_for(log_dir: str, mountpoint: str) -> str:
    """The client log of a mountpoint, named as glusterfs names it (``/a/b`` → ``a-b.log``)."""
    return posixpath.join(log_dir, mountpoint.strip("/").replace("/", "-") + ".log")


_LOG_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"failed to fetch volume file|Volume .* does not exist"), "volume {volume!r} does not exist on {host}:{port}"),
    (
        re.compile(r"failed to get the port number for remote subvolume"),
        "volume {volume!r} is not started, or its bricks are down (run 'gluster volume status {volume}' on {host})",
    ),
    (re.compile(r"DNS resolution failed|resolve.*failed"), "the host name {host!r} does not resolve"),
    (re.compile(r"Connection refused"), "{host}:{port} refused the connection (is glusterd running?)"),
    (re.compile(r"Transport endpoint is not connected|connection attempt on .* failed"), "the client could not reach the volume's bricks"),
]


def diagnose_log(spec: VolumeSpec, log_text: str) -> str | None:
    """The first known cause in the client log written during a failed mount."""
    for pattern, template in _LOG_PATTERNS:
        if pattern.search(log_text):
            return template.format(volume=spec.volume, host=spec.mount_host, port=spec.port)
    return None

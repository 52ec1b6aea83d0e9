"""The kernel's view, as the tests check it: one reader of the mount table, one finder of FUSE clients.

The daemon trusts only the mount table, so the tests do too: every assertion about
what is mounted reads it through here (a node namespace passes its init's
``/proc/PID/mountinfo``).
"""

from __future__ import annotations

import psutil

from glusterd_mgr.core.mountinfo import MountRecord, parse, stack_at

SELF = "/proc/self/mountinfo"


def mount_table(source: str = SELF) -> list[MountRecord]:
    with open(source, encoding="utf-8", errors="surrogateescape") as f:
        return parse(f.read())


def stack(path: str, source: str = SELF) -> list[MountRecord]:
    """Every mount stacked at ``path``, bottom first."""
    return stack_at(mount_table(source), path)


def glusterfs_stack(path: str, source: str = SELF) -> list[tuple[int, str]]:
    """The glusterfs mounts stacked at ``path``, bottom first: (mount id, source)."""
    return [(r.mount_id, r.source) for r in stack(path, source) if r.is_glusterfs]


def glusterfs_mounts_of(volume: str, under: str) -> list[str]:
    """Every glusterfs mount of ``volume`` anywhere below ``under`` (stacked ones counted each)."""
    return [
        r.path for r in mount_table()
        if r.is_glusterfs and r.source.endswith("/" + volume) and (r.path == under or r.path.startswith(under + "/"))
    ]  # fmt: skip


def mounts_under(base: str, source: str = SELF) -> list[str]:
    """The mountpoints at or below ``base`` (stacked ones once each)."""
    return [r.path for r in mount_table(source) if r.path == base or r.path.startswith(base + "/")]


def fuse_client_pid(mountpoint: str) -> int:
    """The one FUSE client of ``mountpoint``."""
    pids = fuse_client_pids(mountpoint)
    assert len(pids) == 1, f"{len(pids)} glusterfs clients serve {mountpoint}, not one: {pids}"
    return pids[0]


def fuse_client_pids(mountpoint: str) -> list[int]:
    """The ``glusterfs`` FUSE client processes serving ``mountpoint`` (its last argument)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "glusterfs" and cmdline and cmdline[-1] == mountpoint:
            found.append(proc.pid)
    return found

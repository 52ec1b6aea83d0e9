"""Disk operations inside a volume: under the disks' locks, with the volume mounted for the call if need be."""

from __future__ import annotations

import errno
from typing import cast

from .effects import CreateDisk, Disk, DiskInfo, DiskOperation, GrowDisk, Level, Locked, Proc, RemoveDisk, RenameDisk, Say, Statvfs, ask
from .errors import NotMounted, StorageError
from .health import disconnected, fast, not_connected, ours_in
from .mounting import locked_ensure
from .mounts import Probe
from .policy import DiskPath, check_disk_path, check_storage_dir
from .results import DiskCreated, DiskFacts, DiskGrown, DiskInfoResult, DiskRemoved, DiskRenamed, DiskResult, Space
from .state import UP, NodeState, Phase
from .unmounting import release_if_idle
from .volume import VolumeSpec

__all__ = ["disk_create", "disk_grow", "disk_info", "disk_remove", "disk_rename", "statvfs"]


def _with_mount(node: NodeState, spec: VolumeSpec, what: str, operation: DiskOperation, timeout: float) -> Proc[DiskResult]:
    """Run a disk operation with the volume mounted.

    An unmounted volume is mounted for the call under an ephemeral ``job``
    holder and released after it (one unmount attempt).  A dead mount met
    on the way (ENOTCONN) is recovered and the operation tried once more.
    """
    vs = node.state(spec)
    check_storage_dir(vs.mountpoint, node.config.whitelist, node.config.whitelist_file)
    job = node.next_job(what)
    vs.jobs[job] += 1
    try:
        if not (yield from fast(vs, UP)):
            yield from locked_ensure(node, vs)
        try:
            return (yield from ask(Disk(vs.mountpoint, operation, timeout)))
        except StorageError as e:
            if e.data.get("errno") != errno.errorcode[errno.ENOTCONN]:
                raise
        if (yield from not_connected(vs)) is Probe.DISCONNECTED:
            raise (yield from disconnected(node, vs))
        # The FUSE client died under us: recover the mount (we hold it) and try once more.
        yield Say(Level.WARN, "{volume} on {mountpoint} is dead (ENOTCONN) during {what}: recovering it", {**vs.where(), "what": what})
        vs.enter(Phase.DEAD)
        yield from locked_ensure(node, vs)
        return (yield from ask(Disk(vs.mountpoint, operation, timeout)))
    finally:
        vs.jobs[job] -= 1
        if vs.jobs[job] <= 0:
            del vs.jobs[job]
        yield from release_if_idle(node, vs)


def _disk_call(
    node: NodeState, spec: VolumeSpec, what: str, operation: DiskOperation, disks: list[DiskPath], timeout: float | None = None
) -> Proc[DiskResult]:
    """Run a disk operation holding the disks' locks (in sorted order: two-disk calls cannot deadlock)."""
    keys = tuple(("disk", spec, name) for name in sorted({d.relative for d in disks}))
    label = f"{what}:{disks[0].relative}"
    return (yield from ask(Locked(keys, _with_mount(node, spec, label, operation, timeout or node.config.fs_timeout))))


def _disk(node: NodeState, path: str) -> DiskPath:
    return check_disk_path(path, node.config.disk_folder)


def disk_create(node: NodeState, spec: VolumeSpec, path: str, size: int, preallocate: bool = False) -> Proc[DiskCreated]:
    disk = _disk(node, path)
    # Preallocation may write zeros where the file system cannot fallocate: allow for 64 MiB/s.
    timeout = node.config.fs_timeout + (size / 64 if preallocate else 0)
    return cast(DiskCreated, (yield from _disk_call(node, spec, "create", CreateDisk(disk, size, preallocate), [disk], timeout)))


def disk_remove(node: NodeState, spec: VolumeSpec, path: str) -> Proc[DiskRemoved]:
    disk = _disk(node, path)
    return cast(DiskRemoved, (yield from _disk_call(node, spec, "remove", RemoveDisk(disk), [disk])))


def disk_grow(
    node: NodeState, spec: VolumeSpec, path: str, amount: int, dryrun: bool = False, backingstore: bool = True, preallocate: bool = False
) -> Proc[DiskGrown]:
    disk = _disk(node, path)
    operation = GrowDisk(disk, amount, dryrun, backingstore, preallocate)
    return cast(DiskGrown, (yield from _disk_call(node, spec, "grow", operation, [disk])))


def disk_rename(node: NodeState, spec: VolumeSpec, path: str, new_path: str) -> Proc[DiskRenamed]:
    disk, new = _disk(node, path), _disk(node, new_path)
    return cast(DiskRenamed, (yield from _disk_call(node, spec, "rename", RenameDisk(disk, new), [disk, new])))


def disk_info(node: NodeState, spec: VolumeSpec, path: str) -> Proc[DiskInfoResult]:
    disk = _disk(node, path)
    facts = cast(DiskFacts, (yield from _disk_call(node, spec, "info", DiskInfo(disk), [disk])))
    return {**facts, "uri": spec.uri(path), "mountpoint": node.state(spec).mountpoint}


def statvfs(node: NodeState, spec: VolumeSpec) -> Proc[Space]:
    """Space of a mounted volume; never mounts (a node not using the volume reports a failure)."""
    vs = node.volumes.get(spec)
    mountpoint = vs.mountpoint if vs else node.config.storage_dir
    if not (yield from ours_in(spec, mountpoint)):
        raise NotMounted(f"{spec.key} is not mounted on this node ({mountpoint}): no instance here uses it")
    info = yield from ask(Statvfs(mountpoint, node.config.fs_timeout, "statvfs"))
    if vs is not None:
        vs.space = info
    return info

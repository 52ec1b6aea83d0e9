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
from .requests import DiskCreateParams, DiskGrowParams, DiskInfoParams, DiskParams, DiskRemoveParams, DiskRenameParams
from .results import DiskFacts, DiskInfoResult, DiskResult, Space
from .state import UP, NodeState, Phase
from .unmounting import release_if_idle
from .volume import VolumeSpec

__all__ = ["disk", "statvfs"]


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
    node: NodeState, spec: VolumeSpec, what: str, operation: DiskOperation, disks: list[DiskPath], timeout: float
) -> Proc[DiskResult]:
    """Run a disk operation holding the disks' locks (in sorted order: two-disk calls cannot deadlock)."""
    keys = tuple(("disk", spec, name) for name in sorted({d.relative for d in disks}))
    label = f"{what}:{disks[0].relative}"
    return (yield from ask(Locked(keys, _with_mount(node, spec, label, operation, timeout))))


def disk(node: NodeState, params: DiskParams) -> Proc[DiskResult | DiskInfoResult]:
    """One disk call: its paths checked against the disk folder, run under the disks' locks with the volume mounted."""
    spec, config = params.volume, node.config
    disk = check_disk_path(params.path, config.disk_folder)
    disks, timeout = [disk], config.fs_timeout
    operation: DiskOperation
    match params:
        case DiskCreateParams(size=size, preallocate=preallocate):
            # Preallocation may write zeros where the file system cannot fallocate: allow for 64 MiB/s.
            timeout += size / 64 if preallocate else 0
            what, operation = "create", CreateDisk(disk, size, preallocate)
        case DiskRemoveParams():
            what, operation = "remove", RemoveDisk(disk)
        case DiskGrowParams():
            what, operation = "grow", GrowDisk(disk, params.amount, params.dryrun, params.backingstore, params.preallocate)
        case DiskRenameParams():
            new = check_disk_path(params.new_path, config.disk_folder)
            what, operation, disks = "rename", RenameDisk(disk, new), [disk, new]
        case DiskInfoParams():
            what, operation = "info", DiskInfo(disk)
    result = yield from _disk_call(node, spec, what, operation, disks, timeout)
    if isinstance(params, DiskInfoParams):
        return {**cast(DiskFacts, result), "uri": spec.uri(params.path), "mountpoint": node.state(spec).mountpoint}
    return result


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

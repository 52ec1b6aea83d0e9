"""Disk operations inside a volume: under the disks' locks, with the volume mounted for the call if need be."""

from __future__ import annotations

import errno
from typing import cast

from .effects import Disk, Level, Locked, Proc, Say, Statvfs, ask
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


def _with_mount(node: NodeState, params: DiskParams, disks: tuple[DiskPath, ...], timeout: float, what: str) -> Proc[DiskResult]:
    """Run a disk call with the volume mounted.

    An unmounted volume is mounted for the call under an ephemeral ``job``
    holder and released after it (one unmount attempt).  A dead mount met
    on the way (ENOTCONN) is recovered and the call tried once more.
    """
    vs = node.state(params.volume)
    check_storage_dir(vs.mountpoint, node.config.whitelist, node.config.whitelist_file)
    job = node.next_job(what)
    vs.jobs[job] += 1
    call = Disk(vs.mountpoint, params, disks, timeout)  # held by the job: the mountpoint stays
    try:
        if not (yield from fast(vs, UP)):
            yield from locked_ensure(node, vs)
        try:
            return (yield from ask(call))
        except StorageError as e:
            if e.data.get("errno") != errno.errorcode[errno.ENOTCONN]:
                raise
        if (yield from not_connected(vs)) is Probe.DISCONNECTED:
            raise (yield from disconnected(node, vs))
        # The FUSE client died under us: recover the mount (we hold it) and try once more.
        yield Say(Level.WARN, "{volume} on {mountpoint} is dead (ENOTCONN) during {what}: recovering it", {**vs.where(), "what": what})
        vs.enter(Phase.DEAD)
        yield from locked_ensure(node, vs)
        return (yield from ask(call))
    finally:
        vs.jobs[job] -= 1
        if vs.jobs[job] <= 0:
            del vs.jobs[job]
        yield from release_if_idle(node, vs)


_WHAT = {DiskCreateParams: "create", DiskRemoveParams: "remove", DiskGrowParams: "grow", DiskRenameParams: "rename", DiskInfoParams: "info"}
"""How a disk call names itself in its job holder and its log lines."""


def disk(node: NodeState, params: DiskParams) -> Proc[DiskResult | DiskInfoResult]:
    """One disk call: its paths checked against the disk folder, run under the disks' locks (taken in sorted order, so
    two-disk calls cannot deadlock) with the volume mounted."""
    config = node.config
    paths = [params.path, params.new_path] if isinstance(params, DiskRenameParams) else [params.path]
    disks = tuple(check_disk_path(path, config.disk_folder) for path in paths)
    timeout = config.fs_timeout
    if isinstance(params, DiskCreateParams) and params.preallocate:
        timeout += params.size / 64  # preallocation may write zeros where the file system cannot fallocate: allow for 64 MiB/s
    spec, what = params.volume, _WHAT[type(params)]
    keys = tuple(("disk", spec, name) for name in sorted({d.relative for d in disks}))
    result = yield from ask(Locked(keys, _with_mount(node, params, disks, timeout, f"{what}:{disks[0].relative}")))
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

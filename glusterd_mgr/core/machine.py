"""The core's front: the node's volumes and the procedures the driver runs, each a ``Proc`` with no I/O.

Each method returns a generator that yields ``effects`` and is sent their
answers; the work is in the modules named by their seams: ``health`` (what is
at a mountpoint), ``mounting``, ``unmounting``, ``holding`` (holder changes),
``disk_calls``, ``recovery`` and ``client_care`` (the FUSE client).  The state
they share is ``state.NodeState``.
"""

from __future__ import annotations

from . import client_care, disk_calls, holding, recovery
from .effects import Proc
from .holders import Holder, HolderTable
from .results import AcquireResult, DiskCreated, DiskGrown, DiskInfoResult, DiskRemoved, DiskRenamed, ReleaseResult, Space, VolumeStatus
from .state import EngineConfig, NodeState, VolumeState
from .volfile_servers import ServerMemory
from .volume import VolumeSpec

__all__ = ["Core"]


class Core:
    """The node's volumes and the procedures that change them."""

    def __init__(self, config: EngineConfig, table: HolderTable, servers: ServerMemory | None = None, scope_serial: int = 0) -> None:
        self.node = NodeState(config, table, servers, scope_serial)
        self.config = config
        self.volumes = self.node.volumes
        self.servers = self.node.servers

    def status(self) -> list[VolumeStatus]:
        return self.node.status()

    def acquire(self, spec: VolumeSpec, holder: Holder) -> Proc[AcquireResult]:
        return holding.acquire(self.node, spec, holder)

    def release(self, spec: VolumeSpec, holder: Holder) -> Proc[ReleaseResult]:
        return holding.release(self.node, spec, holder)

    def disk_create(self, spec: VolumeSpec, path: str, size: int, preallocate: bool = False) -> Proc[DiskCreated]:
        return disk_calls.disk_create(self.node, spec, path, size, preallocate)

    def disk_remove(self, spec: VolumeSpec, path: str) -> Proc[DiskRemoved]:
        return disk_calls.disk_remove(self.node, spec, path)

    def disk_grow(
        self, spec: VolumeSpec, path: str, amount: int, dryrun: bool = False, backingstore: bool = True, preallocate: bool = False
    ) -> Proc[DiskGrown]:
        return disk_calls.disk_grow(self.node, spec, path, amount, dryrun, backingstore, preallocate)

    def disk_rename(self, spec: VolumeSpec, path: str, new_path: str) -> Proc[DiskRenamed]:
        return disk_calls.disk_rename(self.node, spec, path, new_path)

    def disk_info(self, spec: VolumeSpec, path: str) -> Proc[DiskInfoResult]:
        return disk_calls.disk_info(self.node, spec, path)

    def statvfs(self, spec: VolumeSpec) -> Proc[Space]:
        return disk_calls.statvfs(self.node, spec)

    def held(self) -> list[VolumeState]:
        """The volumes to restore after a start."""
        return [vs for vs in self.volumes.values() if vs.count() > 0]

    def restore(self, vs: VolumeState) -> Proc[None]:
        return recovery.restore(self.node, vs)

    def probe_all(self) -> Proc[None]:
        return recovery.probe_all(self.node)

    def settle_client(self, vs: VolumeState) -> Proc[None]:
        return client_care.settle_client(self.node, vs)

"""The core's front: the node's volumes and the procedures the driver runs, each a ``Proc`` with no I/O.

Each method returns a generator that yields ``effects`` and is sent their
answers; the work is in the modules named by their seams: ``health`` (what is
at a mountpoint), ``mounting``, ``unmounting``, ``holding`` (holder changes),
``disk_calls``, ``recovery`` and ``client_care`` (the FUSE client).  The state
they share is ``state.NodeState``.
"""

from __future__ import annotations

from typing import Any

from . import client_care, disk_calls, holding, recovery
from .effects import Proc
from .holders import HolderTable
from .requests import AcquireParams, Params, ReleaseParams, StatusParams, StatvfsParams
from .results import VolumeStatus
from .state import EngineConfig, NodeState, VolumeState, VolumeView
from .volfile_servers import ServerMemory

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

    def views(self) -> list[VolumeView]:
        """Every volume as a read-only copy, for the metrics."""
        return [vs.view() for vs in self.volumes.values()]

    def reconfigure(self, whitelist: list[str], storage_dir: str) -> bool:
        """Follow Ganeti's whitelist and storage dir (``NodeState.reconfigure``); whether either changed."""
        return self.node.reconfigure(whitelist, storage_dir)

    def request(self, params: Params) -> Proc[Any]:
        """The procedure of one JSON-RPC call (``status`` excepted: it reads, the front door answers it)."""
        match params:
            case AcquireParams(volume, holder):
                return holding.acquire(self.node, volume, holder)
            case ReleaseParams(volume, holder):
                return holding.release(self.node, volume, holder)
            case StatvfsParams(volume):
                return disk_calls.statvfs(self.node, volume)
            case StatusParams():
                raise TypeError("status is answered from Core.status, not by a procedure")
        return disk_calls.disk(self.node, params)

    def held(self) -> list[VolumeState]:
        """The volumes to restore after a start."""
        return [vs for vs in self.volumes.values() if vs.count() > 0]

    def restore(self, vs: VolumeState) -> Proc[None]:
        return recovery.restore(self.node, vs)

    def probe_all(self) -> Proc[None]:
        return recovery.probe_all(self.node)

    def release_ended_processes(self) -> Proc[None]:
        return recovery.release_ended_processes(self.node)

    def settle_client(self, vs: VolumeState) -> Proc[None]:
        return client_care.settle_client(self.node, vs)

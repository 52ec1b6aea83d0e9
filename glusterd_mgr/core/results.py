"""The answers of the engine's calls, as the JSON-RPC methods return them.

One definition for the core, the RPC layer, ``client.py`` and the Ganeti class
(``rpc_schema/`` says the same to other languages).
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = [
    "AcquireResult",
    "ClientFigures",
    "DiskCreated",
    "DiskFacts",
    "DiskGrown",
    "DiskInfoResult",
    "DiskRemoved",
    "DiskRenamed",
    "DiskResult",
    "ReleaseResult",
    "Space",
    "Status",
    "VolumeStatus",
]


class AcquireResult(TypedDict):
    mountpoint: str
    holders: int
    mounted_now: bool


class ReleaseResult(TypedDict):
    holders: int
    known: bool
    unmounted: bool
    busy: bool


class ClientFigures(TypedDict):
    """A mount's FUSE client as ``status`` shows it (``fuse_client.ClientStats``)."""

    pid: int
    resident_memory_bytes: int
    threads: int
    open_fds: int
    start_time_seconds: float
    oom_score_adj: int
    unit: str


class VolumeStatus(TypedDict):
    volume: dict[str, Any]
    mountpoint: str
    state: str
    holders: list[dict[str, str]]
    last_error: str | None
    busy_pids: list[int]
    broken_holders: list[dict[str, str]]
    action: str | None
    volfile_servers: list[str]
    client: ClientFigures | None
    disconnected_since: float | None
    unreachable_servers: list[str]
    clients_claiming: list[int]


class Status(TypedDict):
    version: str
    mounts: list[VolumeStatus]


class Space(TypedDict):
    """A mounted volume's space: MiB as Ganeti counts it, plus bytes and inodes."""

    storage_size: int
    storage_free: int
    size_bytes: int
    avail_bytes: int
    files: int
    files_free: int


class DiskCreated(TypedDict):
    path: str
    size_bytes: int


class DiskRemoved(TypedDict):
    removed: bool  # False: there was no such disk


class DiskGrown(TypedDict):
    size_bytes: int
    changed: bool


class DiskRenamed(TypedDict):
    path: str
    renamed: bool


class DiskFacts(TypedDict):
    exists: bool
    size_bytes: int
    allocated_bytes: int


class DiskInfoResult(DiskFacts):
    uri: str  # the gluster:// URI for access=userspace
    mountpoint: str


DiskResult = DiskCreated | DiskRemoved | DiskGrown | DiskRenamed | DiskFacts
"""What a disk operation returns inside the volume."""

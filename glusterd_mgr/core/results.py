"""The answers of the engine's calls, as the JSON-RPC methods return them (shared with ``client.py``)."""

from __future__ import annotations

from typing import Any, TypedDict


class AcquireResult(TypedDict):
    mountpoint: str
    holders: int
    mounted_now: bool


class ReleaseResult(TypedDict):
    holders: int
    known: bool
    unmounted: bool
    busy: bool


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
    client: dict[str, object] | None


class Status(TypedDict):
    version: str
    mounts: list[VolumeStatus]

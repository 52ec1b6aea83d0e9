"""One type per JSON-RPC method: its params, parsed once from the request its schema validated.

The defaults of optional params are the schema's (``rpc_schema/``), which
``parse`` is given: no field here has one, so no default is written twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from .holders import Holder
from .volume import VolumeSpec

__all__ = [
    "PARAMS",
    "AcquireParams",
    "DiskCreateParams",
    "DiskGrowParams",
    "DiskInfoParams",
    "DiskParams",
    "DiskRemoveParams",
    "DiskRenameParams",
    "Params",
    "ReleaseParams",
    "StatusParams",
    "StatvfsParams",
    "parse",
]


@dataclass(frozen=True)
class _OnHolder:
    volume: VolumeSpec
    holder: Holder


@dataclass(frozen=True)
class _OnDisk:
    volume: VolumeSpec
    path: str


@dataclass(frozen=True)
class AcquireParams(_OnHolder):
    pass


@dataclass(frozen=True)
class ReleaseParams(_OnHolder):
    pass


@dataclass(frozen=True)
class StatvfsParams:
    volume: VolumeSpec


@dataclass(frozen=True)
class DiskCreateParams(_OnDisk):
    size: int
    preallocate: bool


@dataclass(frozen=True)
class DiskRemoveParams(_OnDisk):
    pass


@dataclass(frozen=True)
class DiskGrowParams(_OnDisk):
    amount: int
    dryrun: bool
    backingstore: bool
    preallocate: bool


@dataclass(frozen=True)
class DiskInfoParams(_OnDisk):
    pass


@dataclass(frozen=True)
class DiskRenameParams(_OnDisk):
    new_path: str


@dataclass(frozen=True)
class StatusParams:
    pass


DiskParams = DiskCreateParams | DiskRemoveParams | DiskGrowParams | DiskInfoParams | DiskRenameParams
Params = AcquireParams | ReleaseParams | StatvfsParams | DiskParams | StatusParams

PARAMS: dict[str, type[Params]] = {
    "volume.acquire": AcquireParams,
    "volume.release": ReleaseParams,
    "volume.statvfs": StatvfsParams,
    "disk.create": DiskCreateParams,
    "disk.remove": DiskRemoveParams,
    "disk.grow": DiskGrowParams,
    "disk.info": DiskInfoParams,
    "disk.rename": DiskRenameParams,
    "status": StatusParams,
}
"""Each method's params type, by the method's name in its schema."""

_READ: dict[str, Callable[[Any], Any]] = {"volume": VolumeSpec.from_json, "holder": Holder.from_json}
"""Params that are objects on the wire; every other one is taken as JSON gives it (the schema checked its type)."""


def parse(method: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> Params:
    """``method``'s validated ``params`` as its type, ``defaults`` (its schema's) filling what the caller left out."""
    kind = PARAMS[method]
    given = {**defaults, **params}
    return kind(**{f.name: _READ.get(f.name, _same)(given[f.name]) for f in fields(kind)})


def _same(value: Any) -> Any:
    return value

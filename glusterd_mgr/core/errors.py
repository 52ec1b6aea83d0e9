"""Errors as values: each type carries its JSON-RPC code and a message a person can act on.

This module is the one table that maps error types to JSON-RPC codes; nothing
else invents codes.  The synchronous client (``client.py``) imports it to map a
code back to the same type, so it must stay free of non-stdlib imports.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ERRORS_BY_CODE",
    "Disconnected",
    "DiskExists",
    "InvalidParams",
    "MountFailed",
    "MountdError",
    "NoSuchDisk",
    "NotMounted",
    "OperationTimeout",
    "PathRefused",
    "StateError",
    "StorageError",
    "VolumeConflict",
]


class MountdError(Exception):
    """Base of every error the daemon reports to a caller."""

    code: ClassVar[int] = -32000
    name: ClassVar[str] = "error"

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        error["data"] = {"type": self.name, **self.data}
        return error


class InvalidParams(MountdError):
    """Params that do not match the method's schema (the `field` names which)."""

    code = -32602
    name = "invalid-params"


class MountFailed(MountdError):
    """The volume could not be mounted; the message carries the diagnosis."""

    code = -32001
    name = "mount-failed"


class NotMounted(MountdError):
    """The volume is not mounted on this node (statvfs never mounts)."""

    code = -32002
    name = "not-mounted"


class PathRefused(MountdError):
    """A disk path or mount directory that policy refuses."""

    code = -32003
    name = "path-refused"


class DiskExists(MountdError):
    """disk.create on a name that exists: nothing is overwritten."""

    code = -32004
    name = "disk-exists"


class NoSuchDisk(MountdError):
    """The disk does not exist."""

    code = -32005
    name = "no-such-disk"


class VolumeConflict(MountdError):
    """Something else is mounted, or held, on the mountpoint."""

    code = -32006
    name = "volume-conflict"


class OperationTimeout(MountdError):
    """The volume or a helper did not answer in time (frozen server?)."""

    code = -32007
    name = "timeout"


class StorageError(MountdError):
    """The file system said no: ENOSPC, EIO, EROFS, ...; `errno` names it."""

    code = -32008
    name = "storage-error"


class StateError(MountdError):
    """The durable holder state cannot be read or written: the daemon refuses to guess."""

    code = -32009
    name = "state-error"


class Disconnected(MountdError):
    """The volume's FUSE client lives but reaches no brick (a network partition): the mount stays; `servers` names them."""

    code = -32010
    name = "disconnected"


ERRORS_BY_CODE: dict[int, type[MountdError]] = {
    cls.code: cls
    for cls in (
        InvalidParams,
        MountFailed,
        NotMounted,
        PathRefused,
        DiskExists,
        NoSuchDisk,
        VolumeConflict,
        OperationTimeout,
        StorageError,
        StateError,
        Disconnected,
    )
}

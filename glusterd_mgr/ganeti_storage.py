"""Ganeti 3.0's Gluster storage class, with every mount decision left to ganeti-gluster-mountd.

A drop-in for ``ganeti.storage.gluster.GlusterStorage``: same constructor and
classmethods, so ``ganeti.storage.bdev.DEV_MAP`` and Ganeti's backend drive it
unchanged.  It never runs ``mount``/``umount`` itself: Ganeti's own class
mounts and unmounts without counting users (``Remove`` of one disk unmounts the
volume under every other disk), so this one asks the node's daemon instead,
holding the volume for ``instance:{instance_uuid}.{disk_index}`` (the name in
the logical id ``ganeti/{instance_uuid}.{disk_index}``) while the disk is in use
on this node.

Which calls hold follows what Ganeti's backend really calls: ``Assemble``
(start, activate-disks) and ``Open`` (start, the target of a migration) take the
holder; ``Shutdown`` (stop, deactivate-disks, failover), ``Close`` (the source
of a live migration, which Ganeti never shuts down) and ``Remove`` give it back.
``Attach`` runs for read-only queries too (``gnt-instance info``, verify-disks),
so it only looks: the daemon mounts an unheld volume for that one call and
unmounts it after.  Two backend functions open a disk only for the request at
hand and never give it back: ``BlockdevCreate`` (it assembles and opens the new
disk, and Ganeti leaves an instance added with ``--no-start`` so) and
``_OpenRealBD`` (the OS scripts, import and export).  What they open is held by
the request's own process instead (a ``process`` holder: Ganeti's node daemon
forks one per request), which the daemon lets go of once that process has ended.

This module imports ``ganeti`` and is meant for a Ganeti node only; nothing
else in ``glusterd_mgr`` imports it.  The socket is
:data:`glusterd_mgr.client.DEFAULT_SOCKET`, or the environment variable
``GANETI_GLUSTER_MOUNTD_SOCKET``, or the class attribute
``GlusterStorage.socket_path`` (the attribute wins).

Installing it (replacing ``ganeti/storage/gluster.py`` by a three-line shim) is
described in docs/install.rst and docs/how-it-works.rst.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NoReturn, TypeVar

from ganeti import constants, errors
from ganeti.storage import base, container

from . import client as mountd_client
from .core.errors import MountdError
from .core.holders import Process
from .core.results import DiskInfoResult, VolumeStatus

SOCKET_ENV = "GANETI_GLUSTER_MOUNTD_SOCKET"
HOLDER_KIND = "instance"
T = TypeVar("T")

__all__ = ["SOCKET_ENV", "GlusterStorage", "GlusterStorageUnit", "as_ganetis_kvm_parses_it", "install", "socket_path"]


def socket_path(override: str | None = None) -> str:
    """The daemon's socket: an explicit override, else the environment, else the daemon's default."""
    return override or os.environ.get(SOCKET_ENV) or mountd_client.DEFAULT_SOCKET


def _throw(text: str) -> NoReturn:
    """Ganeti's ThrowError (logs, raises BlockDeviceError) without %-formatting the daemon's text."""
    base.ThrowError("%s", text)
    raise AssertionError("unreachable")  # ThrowError always raises


def _split_unique_id(unique_id: Any) -> tuple[str, str]:
    """(driver, path) from a logical id, refused like Ganeti's own class refuses it."""
    if not isinstance(unique_id, (tuple, list)) or len(unique_id) != 2:
        raise ValueError(f"Invalid configuration data {unique_id!r}")
    driver, path = unique_id
    return str(driver), str(path)


def _holder(path: str) -> dict[str, str]:
    """The holder a disk's mount is kept for: its name in the in-volume folder, ``{uuid}.{idx}``."""
    folder, sep, name = path.partition("/")
    if not sep or not folder or not name or "/" in name:
        _throw(f"{path!r}: not a Gluster disk name (expected ganeti/{{instance_uuid}}.{{disk_index}})")
    return {"kind": HOLDER_KIND, "id": name}


def _volume(params: Any) -> dict[str, Any]:
    """The volume as the daemon names it, from the disk parameters Ganeti's own class reads."""
    try:
        host = params[constants.GLUSTER_HOST]
        port = params[constants.GLUSTER_PORT]
        volume = params[constants.GLUSTER_VOLUME]
    except (KeyError, TypeError) as err:
        _throw(f"Gluster disk parameters incomplete: missing {err}")
    try:
        port = int(port)
    except (TypeError, ValueError):
        _throw(f"Gluster disk parameter {constants.GLUSTER_PORT}={port!r} is not a port number")
    return {"host": str(host), "port": port, "volume": str(volume)}


def _as_kernel_names(path: str) -> str:
    """``path`` with its parent's symlinks resolved, as the mount table names it (``/var/run`` is ``/run``).

    The last component is left alone: resolving it would stat the FUSE root, which hangs on a frozen server.
    """
    path = os.path.normpath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


_REQUEST_ONLY = frozenset({"BlockdevCreate", "_OpenRealBD"})
"""Ganeti's backend functions (``ganeti.backend``) whose opening of a disk lasts only as long as their request."""


def _for_this_request_only() -> bool:
    """Whether Ganeti opens the disk only for the request being served (a function of ``_REQUEST_ONLY`` calls us)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name in _REQUEST_ONLY and frame.f_globals.get("__name__") == "ganeti.backend":
            return True
        frame = frame.f_back  # type: ignore[assignment]  # the outermost frame's f_back is None
    return False


def _request_holder() -> dict[str, str]:
    """The holder that lasts as long as this process: noded serves each request in a process of its own."""
    pid = os.getpid()
    with open(f"/proc/{pid}/stat", "rb") as f:
        process = Process.from_stat(pid, f.read())
    assert process is not None, "a running process is no zombie"
    return {"kind": "process", "id": str(process)}


def _mib(size: Any) -> int:
    """Ganeti sizes are MiB, sometimes floats; the daemon takes whole MiB (rounded up: never smaller)."""
    return math.ceil(float(size))


class GlusterStorage(base.BlockDev):  # type: ignore[misc]  # ganeti is untyped
    """A disk file on a Gluster volume; the volume is mounted by ganeti-gluster-mountd, never by this class.

    ``unique_id`` is ``(file_driver, "ganeti/{instance_uuid}.{disk_index}")``.
    ``Attach`` (run by the constructor, as Ganeti's own class does) takes the
    disk's holder, so ``dev_path`` is usable as soon as the object exists;
    ``Shutdown`` and ``Remove`` give it back, and the daemon unmounts after the
    last holder of the node.
    """

    socket_path: ClassVar[str | None] = None
    """Overrides the environment and the default socket (tests, or a subclass per daemon)."""
    timeout: ClassVar[float] = mountd_client.DEFAULT_TIMEOUT
    dev_path: str | None  # set by BlockDev.__init__; the file on this node's mount once attached

    def __init__(self, unique_id: Any, children: Any, size: Any, params: Any, dyn_params: Any, **kwargs: Any) -> None:
        if children:
            base.ThrowError("Invalid setup for file device")
        self.driver, self.path = _split_unique_id(unique_id)
        self.volume = _volume(params)
        self.holder = _holder(self.path)
        self.mountpoint: str | None = None
        self.full_path: str | None = None
        super().__init__(unique_id, children, size, params, dyn_params, **kwargs)
        self.Attach()

    # -- the daemon --------------------------------------------------------

    @classmethod
    def _client(cls) -> mountd_client.Client:
        return mountd_client.Client(socket_path(cls.socket_path), timeout=cls.timeout)

    @classmethod
    def _rpc(cls, what: str, call: Callable[[mountd_client.Client], T]) -> T:
        """One daemon call; its error becomes Ganeti's BlockDeviceError carrying the daemon's message."""
        try:
            return call(cls._client())
        except MountdError as err:
            _throw(f"{what}: {err.message}")

    def _acquire(self) -> None:
        """Hold the volume for this disk, or for the request at hand only (see the module's docstring)."""
        holder = _request_holder() if _for_this_request_only() else self.holder
        self._rpc(f"{self.path}: cannot mount the Gluster volume", lambda c: c.acquire(self.volume, holder))

    def _release(self, holder: dict[str, str] | None = None) -> None:
        who = holder or self.holder
        self._rpc(f"{self.path}: cannot release the Gluster volume", lambda c: c.release(self.volume, who))

    def _info(self) -> DiskInfoResult:
        info = self._rpc(f"{self.path}: cannot stat", lambda c: c.disk_info(self.volume, self.path))
        self.mountpoint = info["mountpoint"]
        self.full_path = os.path.join(self.mountpoint, self.path)
        return info

    def _hold(self) -> bool:
        """Hold the volume for this disk and check the file; a missing file is not attached (and not held)."""
        self._acquire()
        return self.Attach()

    def _detach(self) -> None:
        self.dev_path = None
        self.attached = False

    # -- BlockDev ----------------------------------------------------------

    @classmethod
    def Create(
        cls,
        unique_id: Any,
        children: Any,
        size: Any,
        spindles: Any,
        params: Any,
        excl_stor: Any,
        dyn_params: Any,
        **kwargs: Any,
    ) -> GlusterStorage:
        """Create the disk file, the volume held by this request (Ganeti's start assembles the disk, which holds it)."""
        if excl_stor:
            raise errors.ProgrammerError("FileStorage device requested with exclusive_storage")
        _, path = _split_unique_id(unique_id)
        if children:
            base.ThrowError("Invalid setup for file device")
        volume = _volume(params)
        _holder(path)  # a Gluster disk name, or refused
        holder = _request_holder()  # so the volume is mounted once for the create, Assemble and Open that follow
        cls._rpc(f"{path}: cannot mount the Gluster volume", lambda c: c.acquire(volume, holder))
        cls._rpc(f"{path}: can't create", lambda c: c.disk_create(volume, path, _mib(size)))
        return cls(unique_id, children, size, params, dyn_params, **kwargs)

    def Attach(self, **kwargs: Any) -> bool:
        """Find the file without holding the volume (Ganeti attaches for read-only queries too).

        A missing file also gives back a holder this disk may still have: Ganeti
        never shuts down a disk it cannot find.
        """
        if not self._info()["exists"]:
            self._release()
            self._detach()
            return False
        self.dev_path = self.full_path
        self.attached = True
        return True

    def Assemble(self) -> None:
        """Hold the volume for this disk and check the file (idempotent)."""
        if not self._hold():
            base.ThrowError("%s: No such file", self.full_path or self.path)

    def Shutdown(self) -> None:
        """Give the volume back; the daemon unmounts after the node's last holder (a busy mount stays)."""
        self._release()
        self._detach()

    def Open(self, force: bool = False, exclusive: bool = True) -> None:
        """Hold the volume for I/O: the target of a live migration opens its disks without assembling them."""
        if not self._hold():
            base.ThrowError("%s: No such file", self.full_path or self.path)

    def Close(self) -> None:
        """Give the volume back: Ganeti closes the disks on the source of a live migration and never shuts them down."""
        self._release()
        self._detach()

    def Remove(self) -> bool:
        """Remove the file (True if there was one) and give the volume back."""
        result = self._rpc(f"{self.path}: can't remove", lambda c: c.disk_remove(self.volume, self.path))
        self._release()
        self._detach()
        return bool(result["removed"])

    def Rename(self, new_id: Any) -> None:
        """Move the file inside the in-volume folder (never over another disk) and move its holder along, if it has one."""
        _, new_path = _split_unique_id(new_id)
        new_holder = _holder(new_path)
        self._rpc(f"{self.path}: can't rename to {new_path}", lambda c: c.disk_rename(self.volume, self.path, new_path))
        old_holder = self.holder
        # The new name is held before the old one leaves, so a held volume is never unmounted in between.
        self._rpc(f"{new_path}: cannot mount the Gluster volume", lambda c: c.acquire(self.volume, new_holder))
        released = self._rpc(f"{self.path}: cannot release the Gluster volume", lambda c: c.release(self.volume, old_holder))
        if not released["known"]:
            self._release(new_holder)  # the disk was not in use here: neither is its new name
        self.unique_id = new_id
        self.path, self.holder = new_path, new_holder
        if self.mountpoint is not None:
            self.full_path = os.path.join(self.mountpoint, new_path)
            if self.attached:
                self.dev_path = self.full_path

    def Grow(self, amount: Any, dryrun: bool, backingstore: bool, excl_stor: bool) -> None:
        """Grow by ``amount`` MiB; dryrun only checks, backingstore=False changes nothing (as Ganeti's)."""
        if amount < 0:
            base.ThrowError("%s: can't grow by negative amount", self.path)
        if amount == 0:
            if not self._info()["exists"]:
                base.ThrowError("%s: No such file", self.path)
            return
        self._rpc(
            f"{self.path}: can't grow",
            lambda c: c.disk_grow(self.volume, self.path, _mib(amount), dryrun=bool(dryrun), backingstore=bool(backingstore)),
        )

    def GetActualSize(self) -> int:
        """The file's size in bytes, as Ganeti's class returns it."""
        info = self._info()
        if not info["exists"]:
            base.ThrowError("%s: No such file", self.full_path or self.path)
        return int(info["size_bytes"])

    def GetUserspaceAccessUri(self, hypervisor: str) -> str:
        """QEMU's gluster:// URI for KVM (the daemon builds it, brackets for IPv6 included), as this Ganeti's kvm parses it."""
        if hypervisor != constants.HT_KVM:
            base.ThrowError("Hypervisor %s doesn't support Gluster userspace access", hypervisor)
        return as_ganetis_kvm_parses_it(str(self._info()["uri"]))


def as_ganetis_kvm_parses_it(uri: str) -> str:
    """The URI in a form this Ganeti's kvm hypervisor accepts, or a BlockDeviceError that says why there is none.

    Ganeti 3.1 attaches disks with ``-blockdev`` and parses the URI itself
    (``hv_kvm/kvm_utils.py``), knowing lower-case host names and IPv4 addresses
    only: a host name is given in lower case (names are case-blind); an IPv6
    address cannot be expressed there, and the instance would fail to start with
    Ganeti's bare "Unsupported storage URI scheme".  Ganeti 3.0 hands the URI to
    QEMU as it is.
    """
    try:
        from ganeti.hypervisor.hv_kvm import kvm_utils
    except ImportError:  # Ganeti 3.0: no parser
        return uri
    scheme, _, rest = uri.partition("://")
    host, sep, tail = ("", "", rest) if rest.startswith("[") else rest.partition(":")
    candidate = f"{scheme}://{host.lower()}{sep}{tail}"
    try:
        kvm_utils.ParseStorageUriToBlockdevParam(candidate)
    except errors.HypervisorError:
        _throw(
            f"{uri}: Ganeti {constants.RELEASE_VERSION}'s kvm hypervisor cannot parse this gluster:// URI (it knows host names"
            " and IPv4 addresses only, no IPv6 address): name the volume's server by a host name or an IPv4 address in the"
            " gluster disk parameters, or use access=kernelspace"
        )
    return candidate


class GlusterStorageUnit(container._Base):  # type: ignore[misc]
    """``gnt-node list-storage -t gluster``: the space of the volume mounted at the storage dir.

    Built like Ganeti's ``container.FileStorage`` (``paths`` is
    ``[gluster_storage_dir]``, as the master sends it), but the numbers come
    from the daemon's ``volume.statvfs``: a node where the volume is not in use
    fails ("not mounted") instead of reporting its root file system, which is
    what the design accepts.  ``gnt-node list`` and the allocator are not fed:
    Ganeti's ``backend._STORAGE_TYPE_INFO_FN`` keeps ``None`` for gluster.
    """

    socket_path: ClassVar[str | None] = None
    timeout: ClassVar[float] = 30.0

    def __init__(self, paths: Sequence[str]) -> None:
        super().__init__()
        self._paths = list(paths)

    def List(self, name: str | None, fields: Sequence[str]) -> list[list[Any]]:
        client = mountd_client.Client(socket_path(self.socket_path), timeout=self.timeout)
        try:
            mounts = client.status()["mounts"]
        except MountdError as err:
            raise errors.StorageError(f"gluster storage: {err.message}") from None
        return [self._row(client, mounts, path, fields) for path in (self._paths if name is None else [name])]

    @staticmethod
    def _row(client: mountd_client.Client, mounts: list[VolumeStatus], path: str, fields: Sequence[str]) -> list[Any]:
        wanted = _as_kernel_names(path)
        volume = next((m["volume"] for m in mounts if _as_kernel_names(m["mountpoint"]) == wanted), None)
        if volume is None:
            raise errors.StorageError(f"{path}: no Gluster volume is mounted there on this node (not in use here)")
        try:
            space = client.statvfs(volume)
        except MountdError as err:
            raise errors.StorageError(f"{path}: {err.message}") from None
        size, free = int(space["storage_size"]), int(space["storage_free"])
        values: dict[str, Any] = {
            constants.SF_NAME: path,
            constants.SF_SIZE: size,
            constants.SF_FREE: free,
            # Used space of the whole volume: walking the folder (as FileStorage does) stats every disk over the network.
            constants.SF_USED: size - free,
            constants.SF_ALLOCATABLE: True,
        }
        unknown = [field for field in fields if field not in values]
        if unknown:
            raise errors.StorageError(f"Unknown field: {unknown[0]!r}")
        return [values[field] for field in fields]


def install() -> None:
    """Point Ganeti's storage-unit table at GlusterStorageUnit (the shim calls this).

    ``bdev.DEV_MAP`` needs nothing: it takes ``GlusterStorage`` from
    ``ganeti.storage.gluster``, which the shim replaces.
    """
    container._STORAGE_TYPES[constants.ST_GLUSTER] = GlusterStorageUnit

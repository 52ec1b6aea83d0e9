"""Disk files inside a mounted volume (blocking; the daemon runs these in its file-system pool).

Every path is walked from the mount root one component at a time with
``O_NOFOLLOW`` and ``dir_fd``, so a symlink at any component is refused and
nothing can be redirected outside the volume between a check and its use.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.errors import DiskExists, NoSuchDisk, PathRefused, StorageError
from ..core.policy import DiskPath
from ..core.requests import DiskCreateParams, DiskGrowParams, DiskInfoParams, DiskParams, DiskRemoveParams, DiskRenameParams
from ..core.results import DiskCreated, DiskFacts, DiskGrown, DiskRemoved, DiskRenamed, DiskResult
from .statvfs import MIB

__all__ = [
    "NODE",
    "TEMP_MARK",
    "create",
    "grow",
    "info",
    "remove",
    "rename",
    "run",
    "statvfs",
    "storage_error",
    "sweep_temps",
    "temp_name",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def storage_error(action: str, where: str, e: OSError) -> StorageError:
    reason = os.strerror(e.errno) if e.errno else str(e)
    hint = {
        errno.ENOSPC: "; the volume is full: free space or grow the volume",
        errno.EDQUOT: "; a quota is exhausted",
        errno.EIO: "; the Gluster client reported an I/O error: check the volume's bricks",
        errno.ENOTCONN: "; the mount is dead: the daemon will remount it",
        errno.EROFS: "; the volume is read-only",
    }.get(e.errno or 0, "")
    return StorageError(f"cannot {action} {where}: {reason}{hint}", errno=errno.errorcode.get(e.errno or 0, "?"))


@contextmanager
def _folder(root: str, disk: DiskPath, create: bool) -> Iterator[int]:
    """Open the disk's folder as a directory fd, refusing symlinks; create it if asked."""
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError as e:
        raise storage_error("open", root, e) from None
    try:
        walked = []
        for part in disk.folder:
            walked.append(part)
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise NoSuchDisk(f"no disk {disk.relative}: the folder {'/'.join(walked)} does not exist") from None
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                except OSError as e:
                    raise storage_error("create the folder", "/".join(walked), e) from None
                try:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    raise storage_error("open", "/".join(walked), e) from None
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise PathRefused(f"{'/'.join(walked)} inside the volume is a symlink or not a directory") from None
                raise storage_error("open", "/".join(walked), e) from None
            os.close(fd)
            fd = nfd
        yield fd
    finally:
        os.close(fd)


def _regular(dfd: int, disk: DiskPath) -> os.stat_result | None:
    """lstat the disk; None if missing; refuse anything but a regular file."""
    try:
        st = os.stat(disk.name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise storage_error("stat", disk.relative, e) from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise PathRefused(f"disk path {disk.relative} is {kind}; refusing to touch it")
    return st


NODE = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:64] or "node"
TEMP_MARK = ".creating."


def temp_name(name: str, node: str = NODE) -> str:
    """Where this node builds disk ``name`` before it appears under its name.

    One per disk and node: the daemon serializes calls per disk, and two nodes
    creating the same name never share (or sweep) each other's file.
    """
    return f".{name}{TEMP_MARK}{node}"


def sweep_temps(root: str, folder: tuple[str, ...], node: str = NODE) -> list[str]:
    """Remove what creates cut short by a crash of this node's daemon left (run once a mount, before any create)."""
    suffix = TEMP_MARK + node
    try:
        with _folder(root, DiskPath(folder, "x"), create=False) as dfd:
            stale = [n for n in os.listdir(dfd) if n.startswith(".") and n.endswith(suffix)]
            for name in stale:
                _unlink_quietly(dfd, name)
    except NoSuchDisk:
        return []
    return stale


def create(root: str, disk: DiskPath, size_mib: int, preallocate: bool = False) -> DiskCreated:
    """Create a new disk, never overwriting; a failure (or a crash) leaves nothing under its name.

    The file is sized under a temporary name and then hard-linked into place:
    ``link`` fails if the name exists, so even a racing creator is never overwritten.
    """
    size = size_mib * MIB
    temp = temp_name(disk.name)
    with _folder(root, disk, create=True) as dfd:
        if _regular(dfd, disk) is not None:
            raise DiskExists(f"disk {disk.relative} already exists; remove it first or choose another name")
        # A leftover of a crash may be a hard link to a live disk: unlink it, never open it.
        _unlink_quietly(dfd, temp)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        except OSError as e:
            raise storage_error("create", disk.relative, e) from None
        try:
            try:
                if preallocate:
                    os.posix_fallocate(fd, 0, size)
                else:
                    os.ftruncate(fd, size)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.link(temp, disk.name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
        except FileExistsError:
            raise DiskExists(f"disk {disk.relative} already exists; remove it first or choose another name") from None
        except OSError as e:
            raise storage_error("create", disk.relative, e) from None
        finally:
            _unlink_quietly(dfd, temp)
    return {"path": os.path.join(root, disk.relative), "size_bytes": size}


def _unlink_quietly(dfd: int, name: str) -> None:
    """Remove a temporary name if it is there; failing to is no reason to fail the call."""
    try:
        os.unlink(name, dir_fd=dfd)
    except OSError:
        pass


def remove(root: str, disk: DiskPath) -> DiskRemoved:
    """Remove a disk; removing a missing one says so and succeeds."""
    try:
        with _folder(root, disk, create=False) as dfd:
            _unlink_quietly(dfd, temp_name(disk.name))  # what a crashed create may have left
            if _regular(dfd, disk) is None:
                return {"removed": False}
            try:
                os.unlink(disk.name, dir_fd=dfd)
            except FileNotFoundError:
                return {"removed": False}
            except OSError as e:
                raise storage_error("remove", disk.relative, e) from None
    except NoSuchDisk:
        return {"removed": False}
    return {"removed": True}


def grow(
    root: str, disk: DiskPath, amount_mib: int, dryrun: bool = False, backingstore: bool = True, preallocate: bool = False
) -> DiskGrown:
    """Grow by ``amount_mib`` (never shrink), as Ganeti's ``FileDeviceHelper.Grow``.

    ``backingstore=False`` changes nothing (only the logical size grows, which is
    Ganeti's business); ``dryrun`` checks everything and changes nothing;
    ``preallocate`` allocates the new range, so a full volume says so now
    rather than when the guest writes.  A failed grow leaves the old size.
    """
    with _folder(root, disk, create=False) as dfd:
        st = _regular(dfd, disk)
        if st is None:
            raise NoSuchDisk(f"no disk {disk.relative}")
        new_size = st.st_size + amount_mib * MIB
        if dryrun or not backingstore:
            return {"size_bytes": st.st_size if not backingstore else new_size, "changed": False}
        try:
            fd = os.open(disk.name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except OSError as e:
            raise storage_error("open", disk.relative, e) from None
        try:
            if preallocate:
                os.posix_fallocate(fd, st.st_size, new_size - st.st_size)
            else:
                os.ftruncate(fd, new_size)
            os.fsync(fd)
        except OSError as e:
            try:
                os.ftruncate(fd, st.st_size)
            except OSError as e2:
                raise storage_error("grow (and then restore the old size of)", disk.relative, e2) from None
            raise storage_error("grow", disk.relative, e) from None
        finally:
            os.close(fd)
    return {"size_bytes": new_size, "changed": True}


def rename(root: str, disk: DiskPath, new: DiskPath) -> DiskRenamed:
    """Move a disk to a new name in the same folder, never over an existing disk.

    A hard link to the new name then an unlink of the old: ``link`` fails if the
    new name exists, where ``rename`` would silently replace it.
    """
    if new.folder != disk.folder:
        raise PathRefused(f"cannot move {disk.relative} to another folder ({new.relative})")
    with _folder(root, disk, create=False) as dfd:
        if _regular(dfd, disk) is None:
            raise NoSuchDisk(f"no disk {disk.relative}")
        if _regular(dfd, new) is not None:
            raise DiskExists(f"disk {new.relative} already exists; nothing was renamed")
        try:
            os.link(disk.name, new.name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
        except FileExistsError:
            raise DiskExists(f"disk {new.relative} already exists; nothing was renamed") from None
        except OSError as e:
            raise storage_error("rename", disk.relative, e) from None
        try:
            os.unlink(disk.name, dir_fd=dfd)
        except OSError as e:
            _unlink_quietly(dfd, new.name)
            raise storage_error("rename", disk.relative, e) from None
    return {"path": os.path.join(root, new.relative), "renamed": True}


def info(root: str, disk: DiskPath) -> DiskFacts:
    try:
        with _folder(root, disk, create=False) as dfd:
            st = _regular(dfd, disk)
    except NoSuchDisk:
        st = None
    if st is None:
        return {"exists": False, "size_bytes": 0, "allocated_bytes": 0}
    return {"exists": True, "size_bytes": st.st_size, "allocated_bytes": st.st_blocks * 512}


def statvfs(root: str) -> os.statvfs_result:
    try:
        return os.statvfs(root)
    except OSError as e:
        raise storage_error("statvfs", root, e) from None


def run(root: str, params: DiskParams, disks: tuple[DiskPath, ...]) -> DiskResult:
    """Carry out one disk call in the volume mounted at ``root``, on its checked paths (blocking: runs in the pool)."""
    disk = disks[0]
    match params:
        case DiskCreateParams():
            return create(root, disk, params.size, params.preallocate)
        case DiskRemoveParams():
            return remove(root, disk)
        case DiskGrowParams():
            return grow(root, disk, params.amount, params.dryrun, params.backingstore, params.preallocate)
        case DiskRenameParams():
            return rename(root, disk, disks[1])
        case DiskInfoParams():
            return info(root, disk)

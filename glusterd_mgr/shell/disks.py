"""Disk files inside a mounted volume (blocking; the daemon runs these in its file-system pool).

Whoever can write a disk's folder (a tenant of the volume, another client) may
rename, replace or plant anything there at any moment, so every call acts on
what it opened and never on a name twice:

- the folder is walked from the mount root one component at a time with
  ``O_NOFOLLOW`` and ``dir_fd``: a symlink at any component is refused;
- a disk is looked at through an ``O_PATH`` descriptor, which opens nothing (no
  device driver runs, no FIFO blocks), and ``fstat``; only a regular file is
  reopened for writing, through ``/proc/self/fd``, and checked to be the inode
  that was looked at; a size comes from that ``fstat``;
- the names this daemon makes and takes away live in a private folder of its
  own beside the disks (``.gluster-mountd.NODE``, its owner's, mode 0700), where
  nobody else can rename or unlink: a new disk is built there and linked into
  place, and a disk is moved there, checked to be the one looked at, and only
  then unlinked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from ..core.errors import DiskExists, NoSuchDisk, PathRefused, StorageError
from ..core.policy import DiskPath
from ..core.requests import DiskCreateParams, DiskGrowParams, DiskInfoParams, DiskParams, DiskRemoveParams, DiskRenameParams
from ..core.results import DiskCreated, DiskFacts, DiskGrown, DiskRemoved, DiskRenamed, DiskResult
from .statvfs import MIB

__all__ = [
    "CREATING",
    "MAX_FILE_BYTES",
    "NODE",
    "REMOVING",
    "create",
    "grow",
    "info",
    "private_folder",
    "remove",
    "rename",
    "run",
    "settle_leftovers",
    "statvfs",
    "storage_error",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LOOK_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_FILE_BYTES = 2**63 - 1
"""The largest size a file can have (``off_t``): a grow past it is refused, not attempted."""

NODE = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:64] or "node"
CREATING = "new"
"""The private folder's subfolder where a disk is built before it is linked into place."""
REMOVING = "old"
"""The private folder's subfolder where a disk (or a renamed disk's old name) is checked and unlinked."""


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


def private_folder(node: str = NODE) -> str:
    """The name of this node's private folder beside the disks: one per node, so no node settles another's calls."""
    return f".gluster-mountd.{node}"


def _folder_error(where: str, e: OSError) -> PathRefused | StorageError:
    if e.errno in (errno.ELOOP, errno.ENOTDIR):
        return PathRefused(f"{where} inside the volume is a symlink or not a directory")
    return storage_error("open", where, e)


def _open_folder(dfd: int, name: str, where: str) -> int:
    """Open ``name`` under ``dfd`` as a directory, refusing a symlink or anything else."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dfd)
    except OSError as e:
        raise _folder_error(where, e) from None


def _make_folder(dfd: int, name: str, where: str, mode: int) -> int:
    """Create ``name`` under ``dfd`` unless it is there, then open it (a symlink or a file in its place is refused)."""
    try:
        os.mkdir(name, mode, dir_fd=dfd)
    except FileExistsError:
        pass
    except OSError as e:
        raise storage_error("create the folder", where, e) from None
    return _open_folder(dfd, name, where)


def _open_if_there(dfd: int, name: str, where: str) -> int | None:
    """Open ``name`` under ``dfd`` as a directory; None if it is not there."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _folder_error(where, e) from None


@contextmanager
def _folder(root: str, disk: DiskPath, create: bool) -> Iterator[int]:
    """Open the disk's folder as a directory fd, refusing symlinks; create it if asked."""
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError as e:
        raise storage_error("open", root, e) from None
    try:
        for depth, part in enumerate(disk.folder, 1):
            where = "/".join(disk.folder[:depth])
            nfd = _make_folder(fd, part, where, 0o755) if create else _open_if_there(fd, part, where)
            if nfd is None:
                raise NoSuchDisk(f"no disk {disk.relative}: the folder {where} does not exist")
            os.close(fd)
            fd = nfd
        yield fd
    finally:
        os.close(fd)


@contextmanager
def _private(dfd: int, disk: DiskPath, purpose: str) -> Iterator[int]:
    """This node's private folder's ``purpose`` subfolder beside ``disk``, made if missing.

    The private folder must be this daemon's own: one of that name that someone
    else made, or that others may write, is refused, never used.
    """
    name = private_folder()
    where = "/".join((*disk.folder, name))
    pfd = _make_folder(dfd, name, where, 0o700)
    try:
        st = os.fstat(pfd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise PathRefused(
                f"{where} is this daemon's private folder, but it is owned by uid {st.st_uid} with mode {stat.S_IMODE(st.st_mode):04o}: "
                f"someone else made it or opened it up; check what it holds, remove it, and let only root write {'/'.join(disk.folder)}"
            )
        sub = _make_folder(pfd, purpose, f"{where}/{purpose}", 0o700)
    finally:
        os.close(pfd)
    try:
        yield sub
    finally:
        os.close(sub)


class _Looked(NamedTuple):
    """A disk as looked at: an ``O_PATH`` descriptor of it and its ``fstat``."""

    fd: int
    st: os.stat_result

    def same(self, st: os.stat_result) -> bool:
        return (st.st_dev, st.st_ino) == (self.st.st_dev, self.st.st_ino)


def _refuse_unless_regular(st: os.stat_result, relative: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a symlink"
            if stat.S_ISLNK(st.st_mode)
            else "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a device node"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "not a regular file"
        )
        raise PathRefused(f"disk path {relative} is {kind}; refusing to touch it")


@contextmanager
def _look(dfd: int, name: str, relative: str) -> Iterator[_Looked | None]:
    """Look at ``name`` without opening it (``O_PATH``): None if missing; anything but a regular file is refused."""
    try:
        fd = os.open(name, _LOOK_FLAGS, dir_fd=dfd)
    except FileNotFoundError:
        fd = -1
    except OSError as e:
        raise storage_error("look at", relative, e) from None
    if fd < 0:
        yield None
        return
    try:
        st = os.fstat(fd)
        _refuse_unless_regular(st, relative)
        yield _Looked(fd, st)
    finally:
        os.close(fd)


def _reopen_for_writing(looked: _Looked, relative: str) -> tuple[int, os.stat_result]:
    """Open for writing the very inode that was looked at, whatever its name points to by now; with its ``fstat`` now."""
    try:
        fd = os.open(f"/proc/self/fd/{looked.fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise storage_error("open", relative, e) from None
    st = os.fstat(fd)
    if not looked.same(st):  # /proc is not the kernel's procfs here
        os.close(fd)
        raise StorageError(f"cannot open {relative}: /proc/self/fd did not give back the file looked at; is /proc mounted?")
    return fd, st


def _unlink_quietly(dfd: int, name: str) -> None:
    """Remove a name in the private folder if it is there; failing to is no reason to fail the call."""
    try:
        os.unlink(name, dir_fd=dfd)
    except OSError:
        pass


def _changed(disk: DiskPath, action: str, outcome: str) -> PathRefused:
    return PathRefused(
        f"disk {disk.relative} was replaced by another file during {action}; {outcome}. "
        f"Something renames files in {'/'.join(disk.folder)}: only root should be able to write it"
    )
def settle_leftovers(root: str, folder: tuple[str, ...]) -> list[str]:
    """Finish what calls cut short by a crash of this node's daemon left in its private folder (once a mount, before any call).

    A disk being built is removed.  A disk caught between being moved aside and
    unlinked is unlinked if it has another name (a finished rename), and is
    otherwise put back under its name: a removal that never answered did not
    happen, and nothing a user stored is lost.  Answers what it did, a line each.
    """
    disk = DiskPath(folder, "x")
    done: list[str] = []
    try:
        with _folder(root, disk, create=False) as dfd:
            with _private(dfd, disk, CREATING) as building:
                for name in os.listdir(building):
                    _unlink_quietly(building, name)
                    done.append(f"{name}: removed the unfinished new disk")
            with _private(dfd, disk, REMOVING) as aside:
                done.extend(_settle_aside(dfd, aside, folder))
    except NoSuchDisk:
        pass
    return done


def _settle_aside(dfd: int, aside: int, folder: tuple[str, ...]) -> Iterator[str]:
    for name in os.listdir(aside):
        st = os.stat(name, dir_fd=aside, follow_symlinks=False)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            _unlink_quietly(aside, name)
            yield f"{name}: removed the old name of a renamed disk"
            continue
        try:
            os.link(name, name, src_dir_fd=aside, dst_dir_fd=dfd, follow_symlinks=False)
        except OSError as e:
            yield f"{name}: kept in {'/'.join((*folder, private_folder(), REMOVING))}, since it cannot be put back ({e.strerror})"
            continue
        _unlink_quietly(aside, name)
        yield f"{name}: put back, its removal was cut short"


def create(root: str, disk: DiskPath, size_mib: int, preallocate: bool = False) -> DiskCreated:
    """Create a new disk, never overwriting; a failure (or a crash) leaves nothing under its name.

    The file is built in the private folder and then hard-linked into place:
    ``link`` fails if the name exists, so even a racing creator is never overwritten.
    """
    size = size_mib * MIB
    with _folder(root, disk, create=True) as dfd:
        with _look(dfd, disk.name, disk.relative) as existing:
            if existing is not None:
                raise DiskExists(f"disk {disk.relative} already exists; remove it first or choose another name")
        with _private(dfd, disk, CREATING) as building:
            # A leftover of a crash may be a hard link to a live disk: unlink it, never open it.
            _unlink_quietly(building, disk.name)
            try:
                fd = os.open(disk.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=building)
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
                os.link(disk.name, disk.name, src_dir_fd=building, dst_dir_fd=dfd, follow_symlinks=False)
            except FileExistsError:
                raise DiskExists(f"disk {disk.relative} already exists; remove it first or choose another name") from None
            except OSError as e:
                raise storage_error("create", disk.relative, e) from None
            finally:
                _unlink_quietly(building, disk.name)
    return {"path": os.path.join(root, disk.relative), "size_bytes": size}


def _take_away(dfd: int, aside: int, disk: DiskPath, looked: _Looked, action: str) -> None:
    """Unlink ``disk``'s name, provided it still names the file looked at.

    The name is first moved ``aside``, into the private folder where nobody else
    can touch it, and checked there: whatever a concurrent rename put under the
    name instead is put back, never unlinked, and so is the disk when its
    unlink fails.
    """
    if _exists(aside, disk.name):  # kept by an earlier call that could not put it back: never replaced
        kept = "/".join((*disk.folder, private_folder(), REMOVING, disk.name))
        raise PathRefused(f"cannot {action} {disk.relative}: {kept} is in the way, kept from an earlier call; look at it, then remove it")
    try:
        os.rename(disk.name, disk.name, src_dir_fd=dfd, dst_dir_fd=aside)
    except FileNotFoundError:
        raise _changed(disk, action, "it was gone when it was to be unlinked, and nothing was unlinked") from None
    except OSError as e:
        raise storage_error(action, disk.relative, e) from None
    try:
        if looked.same(os.stat(disk.name, dir_fd=aside, follow_symlinks=False)):
            os.unlink(disk.name, dir_fd=aside)
            return
    except OSError as e:
        _put_back(dfd, aside, disk, action)
        raise storage_error(action, disk.relative, e) from None
    _put_back(dfd, aside, disk, action)
    raise _changed(disk, action, "the other file was put back and nothing was unlinked")


def _exists(dfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _put_back(dfd: int, aside: int, disk: DiskPath, action: str) -> None:
    """Link a name moved aside back into the folder, never over what is there now."""
    try:
        os.link(disk.name, disk.name, src_dir_fd=aside, dst_dir_fd=dfd, follow_symlinks=False)
    except OSError:
        kept = "/".join((*disk.folder, private_folder(), REMOVING, disk.name))
        raise _changed(disk, action, f"what it was is kept at {kept}, since it could not be put back under its name") from None
    _unlink_quietly(aside, disk.name)


def remove(root: str, disk: DiskPath) -> DiskRemoved:
    """Remove a disk; removing a missing one says so and succeeds."""
    try:
        with _folder(root, disk, create=False) as dfd, _look(dfd, disk.name, disk.relative) as looked:
            if looked is None:
                return {"removed": False}
            with _private(dfd, disk, REMOVING) as aside:
                _take_away(dfd, aside, disk, looked, "remove")
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
    with _folder(root, disk, create=False) as dfd, _look(dfd, disk.name, disk.relative) as looked:
        if looked is None:
            raise NoSuchDisk(f"no disk {disk.relative}")
        if dryrun or not backingstore:
            return {"size_bytes": _grown(looked.st, amount_mib, disk) if backingstore else looked.st.st_size, "changed": False}
        fd, st = _reopen_for_writing(looked, disk.relative)
        try:
            new_size = _grown(st, amount_mib, disk)
            _resize(fd, st.st_size, new_size, preallocate, disk.relative)
        finally:
            os.close(fd)
    return {"size_bytes": new_size, "changed": True}


def _grown(st: os.stat_result, amount_mib: int, disk: DiskPath) -> int:
    """The size after the grow; a size no file can have is refused here, before anything changes."""
    new_size = st.st_size + amount_mib * MIB
    if new_size > MAX_FILE_BYTES:
        raise StorageError(
            f"cannot grow {disk.relative} by {amount_mib} MiB: it has {st.st_size} bytes, and a file can have at most {MAX_FILE_BYTES}",
            errno="EFBIG",
        )
    return new_size


def _resize(fd: int, old_size: int, new_size: int, preallocate: bool, relative: str) -> None:
    """Make the open file ``new_size`` bytes (larger than ``old_size``); on failure, back to ``old_size``."""
    try:
        if preallocate:
            os.posix_fallocate(fd, old_size, new_size - old_size)
        else:
            os.ftruncate(fd, new_size)
        os.fsync(fd)
    except OSError as e:
        try:
            os.ftruncate(fd, old_size)
        except OSError as e2:
            raise storage_error("grow (and then restore the old size of)", relative, e2) from None
        raise storage_error("grow", relative, e) from None


def rename(root: str, disk: DiskPath, new: DiskPath) -> DiskRenamed:
    """Move a disk to a new name in the same folder, never over an existing disk.

    The file looked at is hard-linked to the new name through its descriptor
    (``link`` fails if the name exists, where ``rename`` would silently replace
    it), then its old name is taken away as ``remove`` takes one.
    """
    if new.folder != disk.folder:
        raise PathRefused(f"cannot move {disk.relative} to another folder ({new.relative})")
    with _folder(root, disk, create=False) as dfd, _look(dfd, disk.name, disk.relative) as looked:
        if looked is None:
            raise NoSuchDisk(f"no disk {disk.relative}")
        with _look(dfd, new.name, new.relative) as taken:
            if taken is not None:
                raise DiskExists(f"disk {new.relative} already exists; nothing was renamed")
        with _private(dfd, disk, REMOVING) as aside:
            try:
                os.link(f"/proc/self/fd/{looked.fd}", new.name, dst_dir_fd=dfd, follow_symlinks=True)
            except FileExistsError:
                raise DiskExists(f"disk {new.relative} already exists; nothing was renamed") from None
            except OSError as e:
                raise storage_error("rename", disk.relative, e) from None
            try:
                _take_away(dfd, aside, disk, looked, "rename")
            except (PathRefused, StorageError):
                _take_back(dfd, aside, new, looked)
                raise
    return {"path": os.path.join(root, new.relative), "renamed": True}


def _take_back(dfd: int, aside: int, new: DiskPath, looked: _Looked) -> None:
    """Undo a rename's link: unlink the new name, provided it still names the disk (else leave it; the error says why)."""
    with contextlib.suppress(PathRefused, StorageError), _look(dfd, new.name, new.relative) as there:
        if there is not None and looked.same(there.st):
            _take_away(dfd, aside, new, there, "rename")


def info(root: str, disk: DiskPath) -> DiskFacts:
    try:
        with _folder(root, disk, create=False) as dfd, _look(dfd, disk.name, disk.relative) as looked:
            if looked is not None:
                st = looked.st
                return {"exists": True, "size_bytes": st.st_size, "allocated_bytes": st.st_blocks * 512}
    except NoSuchDisk:
        pass
    return {"exists": False, "size_bytes": 0, "allocated_bytes": 0}


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

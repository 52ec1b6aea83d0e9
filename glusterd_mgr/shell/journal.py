"""The durable holder table: an append-only journal of holder changes.

Every change is one JSON line, written and ``fdatasync``-ed before the caller
acknowledges it, so its cost does not grow with the number of holders.  When
the file has grown well past the live table it is compacted: a snapshot is
written to a temporary file, synced, and renamed over the journal.

The first line records the kernel's boot id; holders from an earlier boot are
void (their VMs are gone) and are dropped, with a log line each.

``replay`` and ``encode_*`` are pure; ``JournalFile`` does the file I/O and
``JournalWriter`` runs it on one thread of its own with group commit, so the
reactor never waits for the disk.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..core.errors import StateError
from ..core.holders import Change, Holder, HolderTable
from ..core.volume import VolumeSpec

__all__ = [
    "COMPACT_SLACK",
    "FORMAT_VERSION",
    "JournalFile",
    "JournalWriter",
    "Replayed",
    "encode_header",
    "read_state",
    "replay",
    "write_file_atomically",
]

FORMAT_VERSION = 1
COMPACT_SLACK = 1024
log = Logger()


def encode_header(boot_id: str) -> bytes:
    return json.dumps({"journal": FORMAT_VERSION, "boot_id": boot_id}).encode() + b"\n"


@dataclass
class Replayed:
    boot_id: str | None
    table: HolderTable
    records: int
    torn_tail: int = 0
    """Bytes of an incomplete last line (a write cut by a crash; never acknowledged)."""


def _decode(line: bytes) -> Change:
    obj = json.loads(line)
    op = obj["op"]
    if op not in ("acquire", "release"):
        raise ValueError(f"unknown op {op!r}")
    return Change(
        op=op,
        spec=VolumeSpec.from_json(obj["volume"]),
        holder=Holder.from_json(obj["holder"]),
        mountpoint=obj.get("mountpoint", ""),
    )


def replay(data: bytes, path: str = "journal") -> Replayed:
    """Rebuild the holder table from journal bytes.

    Only the last line may be damaged (a crash cut its write, so it was never
    acknowledged); damage anywhere else is refused rather than guessed around.
    """
    table = HolderTable()
    if not data:
        return Replayed(boot_id=None, table=table, records=0)
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: b"" for a clean file
    torn = len(tail)
    if lines:
        try:
            header = json.loads(lines[0])
            boot_id = str(header["boot_id"])
            if header.get("journal") != FORMAT_VERSION:
                raise ValueError(f"journal format {header.get('journal')!r}")
        except (ValueError, KeyError, TypeError) as e:
            raise StateError(f"{path}: line 1 is not a journal header ({e}); move the file aside to start empty") from e
    else:
        return Replayed(boot_id=None, table=table, records=0, torn_tail=torn)
    for number, line in enumerate(lines[1:], start=2):
        try:
            table.apply(_decode(line))
        except Exception as e:
            if number == len(lines) and not tail:
                # A complete-looking but unparsable last line is treated like a torn one.
                torn += len(line) + 1
                break
            raise StateError(f"{path}: line {number} is damaged ({e}); refusing to guess the holder table") from e
    return Replayed(boot_id=boot_id, table=table, records=len(lines) - 1, torn_tail=torn)


def _write_all(fd: int, data: bytes) -> None:
    written = 0
    while written < len(data):
        written += os.write(fd, data[written:])


def _create_synced(path: str, data: bytes) -> int:
    """A new ``path`` holding ``data``, fsync'ed, owner-only; its descriptor, open for appending.

    Whatever is at the name (a crash's leftover, or something planted) is unlinked, never opened, and
    the file is made with ``O_EXCL|O_NOFOLLOW``: should a name reappear meanwhile, this fails rather
    than write through a symlink into another file.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_file_atomically(path: str, data: bytes) -> None:
    """Replace ``path`` by ``data`` durably: a crash leaves the old file or the new one, never a part."""
    tmp = path + ".tmp"
    os.close(_create_synced(tmp, data))
    os.rename(tmp, path)
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def read_state(path: str) -> bytes | None:
    """A state file's bytes, or None when there is none; never through a symlink (one planted is refused, not read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        raise StateError(
            f"{path} is a symbolic link; the daemon reads its state from its own files only: move it away and start again"
        ) from None
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class JournalFile:
    """Blocking journal I/O; call from one thread only."""

    path: str
    boot_id: str
    table: HolderTable = field(default_factory=HolderTable)
    records: int = 0
    broken: str = ""
    _fd: int = -1
    _size: int = 0

    @classmethod
    def open(cls, path: str, boot_id: str) -> tuple[JournalFile, list[tuple[VolumeSpec, Holder]]]:
        """Load the journal, drop the holders of an earlier boot, and compact.

        Returns the journal and the holders dropped because the node rebooted.
        """
        replayed = replay(read_state(path) or b"", path)
        dropped: list[tuple[VolumeSpec, Holder]] = []
        table = replayed.table
        if replayed.boot_id is not None and replayed.boot_id != boot_id:
            dropped = [(spec, holder) for spec, _, holder in table.entries()]
            table = HolderTable()
        journal = cls(path=path, boot_id=boot_id, table=table)
        journal.compact()
        return journal, dropped

    def append(self, changes: Iterable[Change]) -> None:
        """Write changes and make them durable; apply them to the table after.

        On any failure the file is cut back to its last good size, so a
        half-written line can never merge with a later one; if even that
        fails the journal refuses every later change (``broken``).
        """
        if self.broken:
            raise OSError(f"the journal is unusable since: {self.broken}")
        changes = list(changes)
        data = b"".join(c.encode() for c in changes)
        try:
            _write_all(self._fd, data)
            os.fdatasync(self._fd)
        except OSError as e:
            try:
                os.ftruncate(self._fd, self._size)
                os.fdatasync(self._fd)
            except OSError as e2:
                self.broken = f"{e}; then cutting back the journal failed too: {e2}"
            raise
        self._size += len(data)
        for change in changes:
            self.table.apply(change)
        self.records += len(changes)
        if self.records > 2 * self.table.total() + COMPACT_SLACK:
            try:
                self.compact()
            except OSError as e:  # the changes above are durable all the same
                log.error("cannot compact the holder journal {path}: {error}", path=self.path, error=e)

    def compact(self) -> None:
        """Replace the journal by a snapshot of the live table (atomic rename)."""
        tmp = self.path + ".tmp"
        entries = list(self.table.entries())
        data = encode_header(self.boot_id) + b"".join(
            Change("acquire", spec, holder, mountpoint).encode() for spec, mountpoint, holder in entries
        )
        new_fd = _create_synced(tmp, data)
        try:
            os.rename(tmp, self.path)
        except OSError:
            os.close(new_fd)
            raise
        old_fd, self._fd = self._fd, new_fd
        if old_fd >= 0:
            os.close(old_fd)
        self._size = len(data)
        self.records = len(entries)
        try:
            _fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        except OSError as e:
            # The rename may not be durable: until it is, a crash brings back the old file, which
            # lacks what is appended from now on.  Refuse changes rather than lose them.
            self.broken = f"cannot sync the folder of {self.path}: {e}"
            raise

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


_STOP = object()


class JournalWriter:
    """Runs ``JournalFile.append`` on a thread of its own, committing queued changes together.

    Concurrent callers share one ``fdatasync`` (group commit); each caller's
    Deferred fires, on the reactor, once its change is durable.
    """

    def __init__(self, reactor: IReactorFromThreads, journal: JournalFile) -> None:
        self._reactor = reactor
        self._journal = journal
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()
        self.commits = 0

    def write(self, change: Change) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self._queue.put((change, d))
        return d

    def stop(self) -> None:
        """Finish what is queued, then close the file (blocks; call at shutdown)."""
        self._queue.put(_STOP)
        self._thread.join()
        self._journal.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch = []
            stopping = item is _STOP
            if not stopping:
                batch.append(item)
            while not self._queue.empty():
                nxt = self._queue.get()
                if nxt is _STOP:
                    stopping = True
                else:
                    batch.append(nxt)
            if batch:
                self._commit(batch)
            if stopping:
                return

    def _commit(self, batch: list[tuple[Change, Deferred[None]]]) -> None:
        fire: Callable[[Deferred[None], Any], None]
        try:
            self._journal.append(c for c, _ in batch)
        except Exception as e:  # the disk said no: every caller in the batch hears it
            failure = Failure(StateError(f"cannot write the holder journal {self._journal.path}: {e}"))
            fire = Deferred.errback
            result: Any = failure
        else:
            self.commits += 1
            fire = Deferred.callback
            result = None
        for _, d in batch:
            self._reactor.callFromThread(fire, d, result)

"""A tenant who can write a disk's folder and swaps names at the worst moment: right after a call looked at a disk.

Each scenario arranges a folder with the tenant's own disk and a victim's,
makes the swap happen inside the call under test (after its first look at the
disk, so the race shows every time), and checks that nothing of the victim's
was lost.  The unit tests run them on a plain folder; ``tests/test_disk_tenant.py``
on a real FUSE mount of a Gluster volume, beside a tenant looping renames.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from glusterd_mgr.core.errors import PathRefused
from glusterd_mgr.core.policy import DiskPath
from glusterd_mgr.shell import disks
from glusterd_mgr.shell.statvfs import MIB

OWN_MIB, VICTIM_MIB = 1, 20
VICTIM_DATA = b"another instance's data" * 1000


def swap(a: Path, b: Path) -> None:
    """Exchange two names, as a tenant looping ``rename`` does."""
    spare = a.with_name(f".spare-{a.name}")
    os.rename(a, spare)
    os.rename(b, a)
    os.rename(spare, b)


class Folder:
    """A disk folder in a volume, with the tenant's own disk and a victim's (root's, 0600, with data)."""

    def __init__(self, root: Path, name: str) -> None:
        self.root, self.path = root, root / name
        self.own, self.victim = DiskPath((name,), "own.0"), DiskPath((name,), "victim.0")
        disks.create(str(root), self.own, OWN_MIB)
        with open(disks.create(str(root), self.victim, VICTIM_MIB)["path"], "r+b") as f:
            f.write(VICTIM_DATA)

    def victim_intact(self) -> bool:
        """Whether the victim's disk is somewhere in the folder, whole: its size (or more) and its data."""
        for entry in self.path.iterdir():
            if entry.is_file() and entry.stat().st_size >= VICTIM_MIB * MIB:
                with open(entry, "rb") as f:
                    if f.read(len(VICTIM_DATA)) == VICTIM_DATA:
                        return True
        return False

    def files(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.is_file())


def after_first_look(monkeypatch: pytest.MonkeyPatch, disk: Path, act: Callable[[], None]) -> None:
    """Run ``act`` once, right after the call under test first looks at ``disk`` (by ``stat`` or ``fstat``)."""
    target = os.stat(disk, follow_symlinks=False).st_ino
    real_stat, real_fstat = os.stat, os.fstat
    done = threading.Event()

    def then(st: os.stat_result) -> os.stat_result:
        if st.st_ino == target and not done.is_set():
            done.set()
            act()
        return st

    monkeypatch.setattr(os, "stat", lambda *a, **k: then(real_stat(*a, **k)))
    monkeypatch.setattr(os, "fstat", lambda fd: then(real_fstat(fd)))


def grow_swapped_with_the_victim(f: Folder, monkeypatch: pytest.MonkeyPatch) -> None:
    after_first_look(monkeypatch, f.path / "own.0", lambda: swap(f.path / "own.0", f.path / "victim.0"))
    result = disks.grow(str(f.root), f.own, 1)
    monkeypatch.undo()
    assert f.victim_intact(), "the victim's disk was cut"
    assert result == {"size_bytes": (OWN_MIB + 1) * MIB, "changed": True}
    assert (f.path / "victim.0").stat().st_size == (OWN_MIB + 1) * MIB, "the disk looked at (now under the other name) grew"


def grow_swapped_with_a_fifo(f: Folder, monkeypatch: pytest.MonkeyPatch) -> None:
    os.mkfifo(f.path / "trap")
    after_first_look(monkeypatch, f.path / "own.0", lambda: swap(f.path / "own.0", f.path / "trap"))
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(disks.grow(str(f.root), f.own, 1)), daemon=True)
    worker.start()
    worker.join(10)
    blocked = worker.is_alive()
    if blocked:  # free the thread: open the FIFO's other end
        os.close(os.open(f.path / "own.0", os.O_RDONLY | os.O_NONBLOCK))
    monkeypatch.undo()
    assert not blocked, "grow blocked opening a FIFO"
    assert outcome == [{"size_bytes": (OWN_MIB + 1) * MIB, "changed": True}]
    assert stat.S_ISFIFO(os.stat(f.path / "own.0").st_mode) and (f.path / "trap").stat().st_size == (OWN_MIB + 1) * MIB


def grow_swapped_with_a_device_node(f: Folder, monkeypatch: pytest.MonkeyPatch) -> None:
    os.mknod(f.path / "dev", 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    opened: list[str] = []
    real_open = os.open

    def recording_open(path: str, flags: int, *args: object, **kwargs: object) -> int:
        fd = real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]
        if stat.S_ISCHR(os.fstat(fd).st_mode) and not flags & os.O_PATH:
            opened.append(str(path))
        return fd

    after_first_look(monkeypatch, f.path / "own.0", lambda: swap(f.path / "own.0", f.path / "dev"))
    monkeypatch.setattr(os, "open", recording_open)
    result = disks.grow(str(f.root), f.own, 1)
    monkeypatch.undo()
    assert opened == [], "the device node was opened: its driver ran"
    assert result["size_bytes"] == (OWN_MIB + 1) * MIB and (f.path / "dev").stat().st_size == (OWN_MIB + 1) * MIB


def remove_swapped_with_the_victim(f: Folder, monkeypatch: pytest.MonkeyPatch) -> None:
    after_first_look(monkeypatch, f.path / "own.0", lambda: swap(f.path / "own.0", f.path / "victim.0"))
    with pytest.raises(PathRefused, match="replaced by another file during remove; the other file was put back"):
        disks.remove(str(f.root), f.own)
    monkeypatch.undo()
    assert f.victim_intact(), "the victim's disk was unlinked"
    assert (f.path / "own.0").stat().st_size == VICTIM_MIB * MIB, "put back under the name it was found at"


def rename_swapped_with_the_victim(f: Folder, monkeypatch: pytest.MonkeyPatch) -> None:
    new = DiskPath(f.own.folder, "new.0")
    after_first_look(monkeypatch, f.path / "own.0", lambda: swap(f.path / "own.0", f.path / "victim.0"))
    with pytest.raises(PathRefused, match="during rename"):
        disks.rename(str(f.root), f.own, new)
    monkeypatch.undo()
    assert f.victim_intact()
    assert not (f.path / "new.0").exists() or (f.path / "new.0").stat().st_size == OWN_MIB * MIB, "the new name got the other disk"
    assert f.files() == ["own.0", "victim.0"], "nothing renamed, nothing lost"


SCENARIOS: dict[str, Callable[[Folder, pytest.MonkeyPatch], None]] = {
    "grow-victim": grow_swapped_with_the_victim,
    "grow-fifo": grow_swapped_with_a_fifo,
    "grow-device": grow_swapped_with_a_device_node,
    "remove-victim": remove_swapped_with_the_victim,
    "rename-victim": rename_swapped_with_the_victim,
}
NEEDS_ROOT = frozenset({"grow-device"})
"""Only root can make a device node."""

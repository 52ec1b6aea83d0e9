"""A tenant who can write a disk's folder swaps names at the worst moment: right after a call looked at the disk.

Each test makes that moment happen deterministically (the swap runs inside the
call, after its first look at the disk), so each shows the race every time; the
same races run against a real FUSE mount with a tenant looping renames in
``tests/test_disk_tenant.py``.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from glusterd_mgr.core.errors import PathRefused, StorageError
from glusterd_mgr.core.policy import check_disk_path
from glusterd_mgr.shell import disks
from glusterd_mgr.shell.statvfs import MIB

OWN = check_disk_path("ganeti/own.0")
VICTIM = check_disk_path("ganeti/victim.0")
VICTIM_DATA = b"another instance's data" * 1000


def swap(a: Path, b: Path) -> None:
    """Exchange two names, as a tenant looping ``rename`` does."""
    spare = a.with_name(".spare")
    os.rename(a, spare)
    os.rename(b, a)
    os.rename(spare, b)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A volume root with the tenant's own disk (1 MiB) and a victim's disk (root's, 0600, with data)."""
    disks.create(str(tmp_path), OWN, 1)
    victim = disks.create(str(tmp_path), VICTIM, 20)["path"]
    with open(victim, "r+b") as f:
        f.write(VICTIM_DATA)
    return tmp_path / "ganeti"


def victim_intact(folder: Path) -> bool:
    """Whether the victim's disk is somewhere in the folder, whole: its size and its data."""
    for entry in folder.iterdir():
        if entry.is_file() and entry.stat().st_size == 20 * MIB:
            with open(entry, "rb") as f:
                if f.read(len(VICTIM_DATA)) == VICTIM_DATA:
                    return True
    return False


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


def test_a_swap_during_grow_never_truncates_the_other_disk(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    after_first_look(monkeypatch, folder / "own.0", lambda: swap(folder / "own.0", folder / "victim.0"))
    result = disks.grow(str(folder.parent), OWN, 1)
    monkeypatch.undo()
    assert victim_intact(folder), "the victim's disk was cut"
    assert result == {"size_bytes": 2 * MIB, "changed": True}
    assert (folder / "victim.0").stat().st_size == 2 * MIB, "the disk looked at (now under the other name) grew"


def test_a_fifo_swapped_in_during_grow_blocks_nothing(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.mkfifo(folder / "trap")
    after_first_look(monkeypatch, folder / "own.0", lambda: swap(folder / "own.0", folder / "trap"))
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(disks.grow(str(folder.parent), OWN, 1)), daemon=True)
    worker.start()
    worker.join(10)
    blocked = worker.is_alive()
    if blocked:  # free the thread: open the FIFO's other end
        os.close(os.open(folder / "own.0", os.O_RDONLY | os.O_NONBLOCK))
    assert not blocked, "grow blocked opening a FIFO"
    assert outcome == [{"size_bytes": 2 * MIB, "changed": True}]
    assert stat.S_ISFIFO(os.stat(folder / "own.0").st_mode) and (folder / "trap").stat().st_size == 2 * MIB


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: only root can make a device node")
def test_a_device_node_swapped_in_during_grow_is_never_opened(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.mknod(folder / "dev", 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    opened: list[str] = []
    real_open = os.open

    def recording_open(path: str, flags: int, *args: object, **kwargs: object) -> int:
        fd = real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]
        if stat.S_ISCHR(os.fstat(fd).st_mode) and not flags & os.O_PATH:
            opened.append(str(path))
        return fd

    after_first_look(monkeypatch, folder / "own.0", lambda: swap(folder / "own.0", folder / "dev"))
    monkeypatch.setattr(os, "open", recording_open)
    result = disks.grow(str(folder.parent), OWN, 1)
    monkeypatch.undo()
    assert opened == [], "the device node was opened: its driver ran"
    assert result["size_bytes"] == 2 * MIB and (folder / "dev").stat().st_size == 2 * MIB


def test_a_swap_during_remove_never_unlinks_the_other_disk(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    after_first_look(monkeypatch, folder / "own.0", lambda: swap(folder / "own.0", folder / "victim.0"))
    with pytest.raises(PathRefused, match="replaced by another file during remove; the other file was put back"):
        disks.remove(str(folder.parent), OWN)
    monkeypatch.undo()
    assert victim_intact(folder), "the victim's disk was unlinked"
    assert (folder / "own.0").stat().st_size == 20 * MIB, "put back under the name it was found at"


def test_a_swap_during_rename_never_hands_over_the_other_disk(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    new = check_disk_path("ganeti/new.0")
    after_first_look(monkeypatch, folder / "own.0", lambda: swap(folder / "own.0", folder / "victim.0"))
    with pytest.raises(PathRefused, match="during rename"):
        disks.rename(str(folder.parent), OWN, new)
    monkeypatch.undo()
    assert victim_intact(folder)
    assert not (folder / "new.0").exists() or (folder / "new.0").stat().st_size == 1 * MIB, "the new name got the other disk"
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["own.0", "victim.0"], "nothing renamed, nothing lost"


def test_a_private_folder_others_may_write_is_refused_and_left_alone(folder: Path) -> None:
    private = folder / disks.private_folder()
    os.chmod(private, 0o777)  # opened up: anyone may have planted names in it
    calls: list[Callable[[], object]] = [
        lambda: disks.create(str(folder.parent), check_disk_path("ganeti/new.0"), 1),
        lambda: disks.remove(str(folder.parent), OWN),
        lambda: disks.rename(str(folder.parent), OWN, check_disk_path("ganeti/new.0")),
        lambda: disks.settle_leftovers(str(folder.parent), ("ganeti",)),
    ]
    for call in calls:
        with pytest.raises(PathRefused, match=r"private folder, but it is owned by uid .* with mode 0777"):
            call()
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["own.0", "victim.0"]


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    """A folder on tmpfs, where a sparse file can have the largest size there is (2**63 - 1 bytes)."""
    if not os.path.isdir("/dev/shm"):
        pytest.skip("needs /dev/shm (tmpfs) for a file of 8 EiB")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as path:
        yield Path(path)


def test_growing_past_the_largest_file_size_is_a_storage_error(tmpfs: Path) -> None:
    disks.create(str(tmpfs), OWN, 1)
    os.truncate(tmpfs / "ganeti" / "own.0", disks.MAX_FILE_BYTES - MIB // 2)
    for dryrun in (True, False):
        with pytest.raises(StorageError, match="a file can have at most") as caught:
            disks.grow(str(tmpfs), OWN, 1, dryrun=dryrun)
        assert caught.value.data["errno"] == "EFBIG"
    assert os.stat(tmpfs / "ganeti" / "own.0").st_size == disks.MAX_FILE_BYTES - MIB // 2

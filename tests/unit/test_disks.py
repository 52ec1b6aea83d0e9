"""``disks`` on a temporary folder as the volume root: the decisions of the real-Gluster tests, without FUSE."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from glusterd_mgr.core.errors import DiskExists, NoSuchDisk, PathRefused, StorageError
from glusterd_mgr.core.policy import DiskPath, check_disk_path
from glusterd_mgr.shell import disks
from glusterd_mgr.shell.statvfs import MIB

D = check_disk_path("ganeti/i1.0")
OTHER = check_disk_path("ganeti/i2.0")


def names(folder: Path) -> list[str]:
    """The folder's entries, this node's private folder left out."""
    return sorted(n for n in os.listdir(folder) if n != disks.private_folder())


def leftovers(folder: Path) -> list[str]:
    """What the calls left in this node's private folder beside ``folder``'s disks."""
    private = folder / disks.private_folder()
    return sorted(f"{sub}/{n}" for sub in (disks.CREATING, disks.REMOVING) if (private / sub).is_dir() for n in os.listdir(private / sub))


def private(folder: Path, sub: str) -> Path:
    """This node's private folder's ``sub``, made as the daemon makes it."""
    path = folder / disks.private_folder() / sub
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    return path


def test_create_makes_the_folder_and_a_sparse_disk_of_the_size(tmp_path: Path) -> None:
    created = disks.create(str(tmp_path), D, 10)
    assert created == {"path": str(tmp_path / "ganeti" / "i1.0"), "size_bytes": 10 * MIB}
    st = os.stat(created["path"])
    assert st.st_size == 10 * MIB and st.st_blocks * 512 < 10 * MIB, "sparse by default"
    assert names(tmp_path / "ganeti") == ["i1.0"] and leftovers(tmp_path / "ganeti") == [], "no temporary name left"
    assert (st.st_mode & 0o777) == 0o600


def test_create_preallocates_when_asked(tmp_path: Path) -> None:
    disks.create(str(tmp_path), D, 4, preallocate=True)
    info = disks.info(str(tmp_path), D)
    assert info["size_bytes"] == 4 * MIB and info["allocated_bytes"] >= 4 * MIB


def test_create_never_overwrites(tmp_path: Path) -> None:
    path = disks.create(str(tmp_path), D, 2)["path"]
    Path(path).write_bytes(b"live data")
    with pytest.raises(DiskExists, match="already exists"):
        disks.create(str(tmp_path), D, 5)
    assert Path(path).read_bytes() == b"live data"
    assert names(tmp_path / "ganeti") == ["i1.0"]


def test_create_racing_another_creator_loses_at_link_and_overwrites_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = disks.create(str(tmp_path), D, 2)["path"]
    Path(path).write_bytes(b"theirs")

    @contextmanager
    def nothing_there(dfd: int, name: str, relative: str) -> Iterator[None]:
        yield None  # the look came before the other creator linked

    monkeypatch.setattr(disks, "_look", nothing_there)
    with pytest.raises(DiskExists):
        disks.create(str(tmp_path), D, 1)
    assert Path(path).read_bytes() == b"theirs"
    assert names(tmp_path / "ganeti") == ["i1.0"] and leftovers(tmp_path / "ganeti") == [], "the temporary name is gone"


def test_create_never_truncates_through_a_stale_temp_link(tmp_path: Path) -> None:
    live = disks.create(str(tmp_path), D, 2)["path"]
    Path(live).write_bytes(b"live data")
    stale = private(tmp_path / "ganeti", disks.CREATING) / OTHER.name
    os.link(live, stale)  # a crash between link and unlink
    disks.create(str(tmp_path), OTHER, 1)
    assert Path(live).read_bytes() == b"live data"
    assert not stale.exists() and names(tmp_path / "ganeti") == ["i1.0", "i2.0"]


def test_a_failed_create_leaves_nothing_under_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(StorageError, match="volume is full") as caught:
        disks.create(str(tmp_path), D, 4, preallocate=True)
    assert caught.value.data["errno"] == "ENOSPC" and caught.value.code == -32008
    assert names(tmp_path / "ganeti") == [] and leftovers(tmp_path / "ganeti") == []


def test_grow_adds_never_shrinks_and_dryrun_changes_nothing(tmp_path: Path) -> None:
    root = str(tmp_path)
    disks.create(root, D, 10)
    assert disks.grow(root, D, 5, dryrun=True) == {"size_bytes": 15 * MIB, "changed": False}
    assert disks.info(root, D)["size_bytes"] == 10 * MIB
    assert disks.grow(root, D, 5) == {"size_bytes": 15 * MIB, "changed": True}
    assert disks.info(root, D)["size_bytes"] == 15 * MIB
    assert disks.grow(root, D, 0) == {"size_bytes": 15 * MIB, "changed": True}
    assert disks.info(root, D)["size_bytes"] == 15 * MIB


def test_grow_without_backingstore_reports_the_current_size_and_changes_nothing(tmp_path: Path) -> None:
    root = str(tmp_path)
    disks.create(root, D, 3)
    assert disks.grow(root, D, 5, backingstore=False) == {"size_bytes": 3 * MIB, "changed": False}
    assert disks.info(root, D)["size_bytes"] == 3 * MIB


def test_grow_preallocates_the_new_range(tmp_path: Path) -> None:
    root = str(tmp_path)
    disks.create(root, D, 1)
    disks.grow(root, D, 4, preallocate=True)
    info = disks.info(root, D)
    assert info["size_bytes"] == 5 * MIB and info["allocated_bytes"] >= 4 * MIB


def test_a_failed_grow_leaves_the_old_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(tmp_path)
    disks.create(root, D, 2)

    def full(fd: int, offset: int, length: int) -> None:
        os.ftruncate(fd, offset + length)  # a partial allocation that moved the end
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(StorageError, match="volume is full"):
        disks.grow(root, D, 8, preallocate=True)
    assert disks.info(root, D)["size_bytes"] == 2 * MIB


def test_grow_of_a_missing_disk_or_folder_is_no_such_disk(tmp_path: Path) -> None:
    with pytest.raises(NoSuchDisk):
        disks.grow(str(tmp_path), D, 1)  # no folder yet
    (tmp_path / "ganeti").mkdir()
    with pytest.raises(NoSuchDisk):
        disks.grow(str(tmp_path), D, 1)
    assert names(tmp_path / "ganeti") == []


def test_remove_says_whether_it_removed(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert disks.remove(root, D) == {"removed": False}, "no folder"
    disks.create(root, D, 1)
    disks.create(root, OTHER, 1)
    assert disks.remove(root, D) == {"removed": True}
    assert disks.remove(root, D) == {"removed": False}
    assert names(tmp_path / "ganeti") == ["i2.0"]


def test_rename_moves_and_never_replaces_an_existing_disk(tmp_path: Path) -> None:
    root = str(tmp_path)
    a, b, c = (check_disk_path(f"ganeti/{n}") for n in "abc")
    disks.create(root, a, 1)
    disks.create(root, b, 2)
    with pytest.raises(DiskExists, match="nothing was renamed"):
        disks.rename(root, a, b)
    assert disks.info(root, b)["size_bytes"] == 2 * MIB and disks.info(root, a)["exists"]
    assert disks.rename(root, a, c) == {"path": str(tmp_path / "ganeti" / "c"), "renamed": True}
    assert not disks.info(root, a)["exists"] and disks.info(root, c)["size_bytes"] == 1 * MIB
    with pytest.raises(NoSuchDisk):
        disks.rename(root, a, check_disk_path("ganeti/d"))
    with pytest.raises(PathRefused, match="another folder"):
        disks.rename(root, c, DiskPath(("elsewhere",), "x"))
    assert names(tmp_path / "ganeti") == ["b", "c"]


def test_info_of_a_missing_disk_and_of_a_present_one(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert disks.info(root, D) == {"exists": False, "size_bytes": 0, "allocated_bytes": 0}
    disks.create(root, D, 3)
    info = disks.info(root, D)
    assert info["exists"] is True and info["size_bytes"] == 3 * MIB
    assert info["allocated_bytes"] == os.stat(tmp_path / "ganeti" / "i1.0").st_blocks * 512


@pytest.mark.parametrize(
    "path",
    [
        "../etc/passwd",
        "/etc/passwd",
        "ganeti/../x",
        "ganeti//x",
        "ganeti/x\0y",
        "",
        "ganeti/",
        "other/x",
        "ganeti/a/b",
        "ganeti/.",
        "ganeti/x\n",
    ],
)
def test_unsafe_paths_are_refused_before_any_file_system_call(path: str) -> None:
    with pytest.raises(PathRefused):
        check_disk_path(path)


def test_a_symlink_as_the_disk_is_refused_by_every_call_and_nothing_outside_changes(tmp_path: Path) -> None:
    root, outside = tmp_path / "volume", tmp_path / "outside"
    (root / "ganeti").mkdir(parents=True)
    outside.mkdir()
    target = outside / "target"
    target.write_bytes(b"outside")
    os.symlink(target, root / "ganeti" / "i1.0")
    calls: list[Any] = [
        lambda: disks.create(str(root), D, 1),
        lambda: disks.remove(str(root), D),
        lambda: disks.grow(str(root), D, 1),
        lambda: disks.info(str(root), D),
        lambda: disks.rename(str(root), D, OTHER),
    ]
    for call in calls:
        with pytest.raises(PathRefused, match="symlink"):
            call()
    assert target.read_bytes() == b"outside" and names(outside) == ["target"]
    assert os.path.islink(root / "ganeti" / "i1.0") and names(root / "ganeti") == ["i1.0"]


def test_a_symlinked_folder_is_refused_and_nothing_is_made_through_it(tmp_path: Path) -> None:
    root, outside = tmp_path / "volume", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "ganeti")
    calls: list[Any] = [lambda: disks.create(str(root), D, 1), lambda: disks.remove(str(root), D), lambda: disks.info(str(root), D)]
    for call in calls:
        with pytest.raises(PathRefused, match="symlink"):
            call()
    with pytest.raises(PathRefused):
        disks.settle_leftovers(str(root), ("ganeti",))
    assert names(outside) == []


def test_a_folder_that_is_a_file_and_a_disk_that_is_a_directory_are_refused(tmp_path: Path) -> None:
    (tmp_path / "ganeti").write_bytes(b"")
    with pytest.raises(PathRefused, match="not a directory"):
        disks.create(str(tmp_path), D, 1)
    (tmp_path / "ganeti").unlink()
    (tmp_path / "ganeti" / "i1.0").mkdir(parents=True)
    with pytest.raises(PathRefused, match="a directory"):
        disks.remove(str(tmp_path), D)
    assert (tmp_path / "ganeti" / "i1.0").is_dir()


def test_a_missing_volume_root_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open"):
        disks.create(str(tmp_path / "absent"), D, 1)


def test_settling_finishes_what_a_crash_cut_short_and_loses_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "ganeti"
    assert disks.settle_leftovers(str(tmp_path), ("ganeti",)) == [], "no folder yet"
    folder.mkdir()
    (private(folder, disks.CREATING) / "new.0").write_bytes(b"")  # a create cut short
    aside = private(folder, disks.REMOVING)
    (aside / "cut.0").write_bytes(b"a disk whose removal never answered")
    (folder / "renamed.0").write_bytes(b"a renamed disk")
    os.link(folder / "renamed.0", aside / "old.0")  # a rename cut short after its link
    (aside / "taken.0").write_bytes(b"kept")
    (folder / "taken.0").write_bytes(b"the name in use again")
    others = folder / disks.private_folder("another-node") / disks.REMOVING
    others.mkdir(parents=True)
    (others / "theirs.0").write_bytes(b"")
    done = disks.settle_leftovers(str(tmp_path), ("ganeti",))
    assert sorted(line.split(":")[0] for line in done) == ["cut.0", "new.0", "old.0", "taken.0"]
    assert (folder / "cut.0").read_bytes() == b"a disk whose removal never answered", "put back"
    assert (folder / "renamed.0").read_bytes() == b"a renamed disk" and os.stat(folder / "renamed.0").st_nlink == 1
    assert (aside / "taken.0").read_bytes() == b"kept" and (folder / "taken.0").read_bytes() == b"the name in use again"
    assert leftovers(folder) == [f"{disks.REMOVING}/taken.0"] and (others / "theirs.0").exists(), "another node's are not ours"
    assert names(folder) == sorted(["cut.0", "renamed.0", "taken.0", disks.private_folder("another-node")])


def test_the_private_folder_is_per_node_and_the_node_name_is_sanitised() -> None:
    assert disks.private_folder("n1") == ".gluster-mountd.n1" != disks.private_folder("n2")
    assert disks.NODE and all(ch.isalnum() or ch in "_.-" for ch in disks.NODE)


def test_storage_errors_name_the_cause_and_errno() -> None:
    e = disks.storage_error("grow", "ganeti/x", OSError(errno.EROFS, "ro"))
    assert e.data["errno"] == "EROFS" and "read-only" in e.message and "ganeti/x" in e.message
    assert "dead" in disks.storage_error("stat", "x", OSError(errno.ENOTCONN, "x")).message

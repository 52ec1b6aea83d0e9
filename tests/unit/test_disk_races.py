"""The tenant's races (``tests/support/tenant.py``) on a plain folder, and what the private folder and sizes guard."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from glusterd_mgr.core.errors import PathRefused, StorageError
from glusterd_mgr.core.policy import DiskPath
from glusterd_mgr.shell import disks
from glusterd_mgr.shell.statvfs import MIB
from tests.support import tenant


@pytest.fixture
def folder(tmp_path: Path) -> tenant.Folder:
    return tenant.Folder(tmp_path, "ganeti")


@pytest.mark.parametrize("scenario", sorted(tenant.SCENARIOS))
def test_a_swap_right_after_the_look_loses_nothing(scenario: str, folder: tenant.Folder, monkeypatch: pytest.MonkeyPatch) -> None:
    if scenario in tenant.NEEDS_ROOT and os.geteuid() != 0:
        pytest.skip("needs root: only root can make a device node")
    tenant.SCENARIOS[scenario](folder, monkeypatch)


def test_a_private_folder_others_may_write_is_refused_and_left_alone(folder: tenant.Folder) -> None:
    os.chmod(folder.path / disks.private_folder(), 0o777)  # opened up: anyone may have planted names in it
    root, new = str(folder.root), DiskPath(folder.own.folder, "new.0")
    calls: list[Callable[[], object]] = [
        lambda: disks.create(root, new, 1),
        lambda: disks.remove(root, folder.own),
        lambda: disks.rename(root, folder.own, new),
        lambda: disks.settle_leftovers(root, folder.own.folder),
    ]
    for call in calls:
        with pytest.raises(PathRefused, match=r"private folder, but it is owned by uid .* with mode 0777"):
            call()
    assert folder.files() == ["own.0", "victim.0"]


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    """A folder on tmpfs, where a sparse file can have the largest size there is (2**63 - 1 bytes)."""
    if not os.path.isdir("/dev/shm"):
        pytest.skip("needs /dev/shm (tmpfs) for a file of 8 EiB")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as path:
        yield Path(path)


def test_growing_past_the_largest_file_size_is_a_storage_error(tmpfs: Path) -> None:
    disk = DiskPath(("ganeti",), "own.0")
    disks.create(str(tmpfs), disk, 1)
    os.truncate(tmpfs / "ganeti" / "own.0", disks.MAX_FILE_BYTES - MIB // 2)
    for dryrun in (True, False):
        with pytest.raises(StorageError, match="a file can have at most") as caught:
            disks.grow(str(tmpfs), disk, 1, dryrun=dryrun)
        assert caught.value.data["errno"] == "EFBIG"
    assert os.stat(tmpfs / "ganeti" / "own.0").st_size == disks.MAX_FILE_BYTES - MIB // 2


def test_a_file_kept_from_an_earlier_call_is_never_replaced(folder: tenant.Folder) -> None:
    kept = folder.path / disks.private_folder() / disks.REMOVING / "own.0"
    kept.parent.mkdir(mode=0o700, exist_ok=True)
    kept.write_bytes(b"what an earlier call could not put back")
    with pytest.raises(PathRefused, match="is in the way, kept from an earlier call"):
        disks.remove(str(folder.root), folder.own)
    assert kept.read_bytes() == b"what an earlier call could not put back" and folder.files() == ["own.0", "victim.0"]

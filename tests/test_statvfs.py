"""Pure tests of Ganeti's space arithmetic on a statvfs result."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glusterd_mgr.shell.statvfs import MIB, space_info


def statvfs(frsize: int, blocks: int, bavail: int, bsize: int = 4096, files: int = 1000, favail: int = 900) -> os.statvfs_result:
    # (f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail, f_flag, f_namemax)
    return os.statvfs_result((bsize, frsize, blocks, bavail + 7, bavail, files, favail + 3, favail, 0, 255))


@pytest.mark.parametrize(
    "frsize, blocks, bavail, size_mib, free_mib",
    [
        (4096, 0, 0, 0, 0),
        (4096, 256, 256, 1, 1),  # exactly 1 MiB
        (4096, 255, 255, 0, 0),  # 1 MiB minus one block floors to 0
        (4096, 257, 1, 1, 0),
        (4096, 26214400, 13107199, 102400, 51199),  # 100 GiB; free just under 50 GiB
        (512, 2048, 2047, 1, 0),
        (131072, 8, 7, 1, 0),  # gluster reports a 128 KiB fragment size
        (131072, 819200, 409599, 102400, 51199),
        (1, MIB - 1, MIB - 1, 0, 0),
        (1, 3 * MIB + 1, 2 * MIB, 3, 2),
    ],
)
def test_space_info(frsize: int, blocks: int, bavail: int, size_mib: int, free_mib: int) -> None:
    info = space_info(statvfs(frsize, blocks, bavail))
    assert info == {
        "storage_size": size_mib,
        "storage_free": free_mib,
        "size_bytes": frsize * blocks,
        "avail_bytes": frsize * bavail,
        "files": 1000,
        "files_free": 900,
    }


def test_uses_frsize_and_bavail_not_bsize_and_bfree() -> None:
    st_ = os.statvfs_result((1048576, 4096, 512, 500, 256, 10, 9, 8, 0, 255))
    info = space_info(st_)
    assert info["storage_size"] == 2  # 4096 * 512 = 2 MiB (bsize would say 512 MiB)
    assert info["storage_free"] == 1  # bavail 256, not bfree 500
    assert info["files"] == 10 and info["files_free"] == 8  # favail, not ffree


@given(st.integers(1, 2**20), st.integers(0, 2**40), st.integers(0, 2**40))
def test_floor_division_law(frsize: int, blocks: int, bavail: int) -> None:
    info = space_info(statvfs(frsize, blocks, bavail))
    for mib, total in ((info["storage_size"], frsize * blocks), (info["storage_free"], frsize * bavail)):
        assert mib * MIB <= total < (mib + 1) * MIB
        assert isinstance(mib, int)

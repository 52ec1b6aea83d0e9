"""Space figures of a mounted volume, with Ganeti's arithmetic (``GetFileStorageSpaceInfo``)."""

from __future__ import annotations

import os

from ..core.results import Space

__all__ = ["MIB", "space_info"]

MIB = 1024 * 1024


def space_info(st: os.statvfs_result) -> Space:
    """MiB figures floor-divided exactly as Ganeti does, plus bytes and inodes."""
    size_bytes = st.f_frsize * st.f_blocks
    avail_bytes = st.f_frsize * st.f_bavail
    return {
        "storage_size": size_bytes // MIB,
        "storage_free": avail_bytes // MIB,
        "size_bytes": size_bytes,
        "avail_bytes": avail_bytes,
        "files": st.f_files,
        "files_free": st.f_favail,
    }

"""A volume that runs out of space: a clean storage error (-32008), and no partial disk left behind."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from glusterd_mgr.core import errors
from glusterd_mgr.core.volume import VolumeSpec

from ..support import glusterlab
from ..support.daemon_proc import DaemonProcess
from .conftest import env_int

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(180)]
SMALL = "gvsmall"
SIZE_MIB = 64
ROUNDS = env_int("GGMT_FAULT_FULL_ROUNDS", 5)
H1 = {"kind": "instance", "id": "full-1.0"}


@pytest.fixture
def small_volume(gluster: glusterlab.GlusterServer) -> Iterator[VolumeSpec]:
    brick = gluster.small_filesystem(SMALL, SIZE_MIB)
    gluster.create_volume(SMALL, brick=brick)
    yield VolumeSpec(host=gluster.address, port=24007, volume=SMALL)
    gluster.cli("volume", "stop", SMALL, "force", check=False)
    gluster.cli("volume", "delete", SMALL, check=False)
    gluster.volumes.remove(SMALL)
    gluster.drop_small_filesystem(SMALL)


def folder_names(daemon: DaemonProcess) -> set[str]:
    return set(os.listdir(os.path.join(daemon.storage_dir, "ganeti")))


def test_full_volume_gives_a_clean_storage_error_and_no_partial_disk(daemon: DaemonProcess, small_volume: VolumeSpec, figure: Any) -> None:
    c = daemon.client()
    vol = small_volume.to_json()
    c.acquire(vol, H1)
    space = c.statvfs(vol)
    assert 0 < space["storage_size"] <= SIZE_MIB, space
    free = space["storage_free"]
    keep = f"ganeti/full-keep-{uuid.uuid4()}.0"
    c.disk_create(vol, keep, 4, preallocate=True)
    names = folder_names(daemon)
    errnos = set()
    for n in range(ROUNDS):
        name = f"ganeti/full-{n}-{uuid.uuid4()}.0"
        with pytest.raises(errors.StorageError) as full:
            c.disk_create(vol, name, free + 32, preallocate=True)
        errnos.add(full.value.data.get("errno"))
        assert "full" in full.value.message or "space" in full.value.message, full.value.message
        assert folder_names(daemon) == names, "a failed create left a file behind (the disk or its temporary)"
        assert c.disk_info(vol, name)["exists"] is False
    assert errnos == {"ENOSPC"}, errnos
    after = c.statvfs(vol)["storage_free"]
    assert after >= free - 4 - 1, f"space leaked by failed creates: {free} MiB free before, {after} after"
    # Grow past the free space: either it succeeds exactly (a sparse grow, as Ganeti's) or it fails cleanly.
    info = c.disk_info(vol, keep)
    try:
        grown = c.disk_grow(vol, keep, free + 32)
        grow_outcome = "sparse-ok"
        assert grown["size_bytes"] == info["size_bytes"] + ((free + 32) << 20)
        assert c.disk_info(vol, keep)["size_bytes"] == grown["size_bytes"]
    except errors.StorageError as e:
        grow_outcome = "enospc"
        assert e.data.get("errno") == "ENOSPC"
        assert c.disk_info(vol, keep)["size_bytes"] == info["size_bytes"], "a failed grow changed the disk's size"
    # A preallocated grow past the free space says so now: -32008 ENOSPC, the disk's size and allocation unchanged.
    before_grow = c.disk_info(vol, keep)
    with pytest.raises(errors.StorageError) as grow_full:
        c.disk_grow(vol, keep, free + 32, preallocate=True)
    assert grow_full.value.data.get("errno") == "ENOSPC", grow_full.value
    after_grow = c.disk_info(vol, keep)
    assert after_grow["size_bytes"] == before_grow["size_bytes"], "a failed grow changed the disk's size"
    assert after_grow["allocated_bytes"] <= before_grow["allocated_bytes"] + (1 << 20), "a failed grow kept space"
    assert folder_names(daemon) == names, "a failed grow left a file behind"
    # Fill the volume to the last block, then check a create still fails cleanly.
    filler = f"ganeti/full-filler-{uuid.uuid4()}.0"
    left = c.statvfs(vol)["storage_free"]
    c.disk_create(vol, filler, max(1, left - 1), preallocate=True)
    names = folder_names(daemon)
    with pytest.raises(errors.StorageError):
        c.disk_create(vol, f"ganeti/full-last-{uuid.uuid4()}.0", 8, preallocate=True)
    assert folder_names(daemon) == names
    assert c.disk_remove(vol, filler)["removed"] is True
    assert c.disk_remove(vol, keep)["removed"] is True
    assert c.release(vol, H1)["unmounted"] is True
    figure(
        "disk_full",
        brick_mib=SIZE_MIB,
        enospc_creates=ROUNDS + 1,
        enospc_preallocated_grows=1,
        clean_errors=ROUNDS + 2,
        partial_disks_left=0,
        grow_past_free=grow_outcome,
    )

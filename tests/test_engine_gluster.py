"""The engine against a real GlusterFS server and real FUSE mounts."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import pytest
import pytest_twisted

from glusterd_mgr.core import errors
from glusterd_mgr.core.effects import Metric
from glusterd_mgr.core.holders import Holder
from glusterd_mgr.core.mounts import UnmountMode
from glusterd_mgr.core.requests import (
    AcquireParams,
    DiskCreateParams,
    DiskInfoParams,
    DiskRemoveParams,
    DiskRenameParams,
    ReleaseParams,
    StatvfsParams,
)
from glusterd_mgr.core.volume import VolumeSpec
from glusterd_mgr.shell import disks
from glusterd_mgr.shell.statvfs import MIB
from glusterd_mgr.testing import request

from .conftest import NodeFactory
from .support import glusterlab, kernel

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(180)]


def disk_name() -> str:
    return f"ganeti/{uuid.uuid4()}.0"


I1, I2, JOB = Holder("instance", "i1.0"), Holder("instance", "i2.0"), Holder("job", "j1")


@pytest_twisted.ensureDeferred
async def test_first_holder_mounts_last_unmounts(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node()
    await node.start()
    engine = node.engine
    first = await engine.call(AcquireParams(volume, I1))
    assert first == {"mountpoint": nodes.storage_dir, "holders": 1, "mounted_now": True}
    assert [f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)] == [f"fuse.glusterfs {volume.host}:/gv0"]
    again = await engine.call(AcquireParams(volume, I1))
    assert again["holders"] == 1 and not again["mounted_now"], "a retried acquire must not double count"
    second = await engine.call(AcquireParams(volume, I2))
    assert second["holders"] == 2 and not second["mounted_now"]
    assert len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1
    r1 = await engine.call(ReleaseParams(volume, I1))
    assert r1 == {"holders": 1, "known": True, "unmounted": False, "busy": False}
    assert len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1
    unknown = await engine.call(ReleaseParams(volume, Holder("job", "never-held")))
    assert unknown["known"] is False and unknown["holders"] == 1
    r2 = await engine.call(ReleaseParams(volume, I2))
    assert r2 == {"holders": 0, "known": True, "unmounted": True, "busy": False}
    assert [f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)] == []


@pytest_twisted.ensureDeferred
async def test_busy_unmount_keeps_mount_and_names_pids(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node()
    await node.start()
    await node.engine.call(AcquireParams(volume, I1))
    sleeper = subprocess.Popen(["sleep", "60"], cwd=nodes.storage_dir)
    try:
        result = await node.engine.call(ReleaseParams(volume, I1))
        assert result == {"holders": 0, "known": True, "unmounted": False, "busy": True}
        assert len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1
        [status] = node.engine.status()
        assert status["state"] == "busy"
        assert sleeper.pid in status["busy_pids"]
    finally:
        sleeper.kill()
        sleeper.wait()
    # The next holder adopts the busy mount; it is never mounted twice.
    again = await node.engine.call(AcquireParams(volume, I2))
    assert again["mounted_now"] is False
    assert len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1
    assert (await node.engine.call(ReleaseParams(volume, I2)))["unmounted"] is True


@pytest_twisted.ensureDeferred
async def test_lazy_unmount_mode_detaches_busy_mount(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node(unmount_mode=UnmountMode.LAZY)
    await node.start()
    await node.engine.call(AcquireParams(volume, I1))
    sleeper = subprocess.Popen(["sleep", "60"], cwd=nodes.storage_dir)
    try:
        result = await node.engine.call(ReleaseParams(volume, I1))
        assert result["unmounted"] is True and result["busy"] is False
        assert [f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)] == []
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest_twisted.ensureDeferred
async def test_adopts_existing_mount_and_never_stacks(nodes: NodeFactory, volume: VolumeSpec) -> None:
    os.makedirs(nodes.storage_dir)
    subprocess.run(["mount", "-t", "glusterfs", volume.mount_source, nodes.storage_dir], check=True, cwd=nodes.storage_dir)
    assert len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1
    node = nodes.node()
    await node.start()
    result = await node.engine.call(AcquireParams(volume, I1))
    assert result["mounted_now"] is False
    assert len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1
    assert (await node.engine.call(ReleaseParams(volume, I1)))["unmounted"] is True


@pytest_twisted.ensureDeferred
async def test_refuses_a_different_volume_on_the_mountpoint(nodes: NodeFactory, volume: VolumeSpec) -> None:
    os.makedirs(nodes.storage_dir)
    subprocess.run(["mount", "-t", "tmpfs", "decoy", nodes.storage_dir], check=True)
    node = nodes.node()
    await node.start()
    with pytest.raises(errors.VolumeConflict, match="decoy"):
        await node.engine.call(AcquireParams(volume, I1))
    assert [f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)] == ["tmpfs decoy"]
    assert all(v["holders"] == [] for v in node.engine.status())


@pytest_twisted.ensureDeferred
async def test_second_volume_conflicts_while_first_is_held(
    nodes: NodeFactory, gluster: glusterlab.GlusterServer, volume: VolumeSpec
) -> None:
    if "gv-other" not in gluster.volumes:
        gluster.create_volume("gv-other")
    node = nodes.node()
    await node.start()
    await node.engine.call(AcquireParams(volume, I1))
    other = VolumeSpec(volume.host, volume.port, "gv-other")
    with pytest.raises(errors.VolumeConflict):
        await node.engine.call(AcquireParams(other, I2))
    assert len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1
    await node.engine.call(ReleaseParams(volume, I1))


@pytest_twisted.ensureDeferred
async def test_recovers_dead_fuse_mount(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node()
    await node.start()
    await node.engine.call(AcquireParams(volume, I1))
    created = await node.engine.call(request("disk.create", volume=volume, path=(name := disk_name()), size=1))
    with open(created["path"], "r+b") as f:
        f.write(b"pattern!")
    os.kill(kernel.fuse_client_pid(nodes.storage_dir), signal.SIGKILL)
    glusterlab.poll("the mount to die", lambda: _enotconn(nodes.storage_dir))
    await node.engine.probe_all()
    [status] = node.engine.status()
    assert status["state"] == "mounted" and len(status["holders"]) == 1
    assert node.engine.count(Metric.RECOVERIES, volume.key) == 1
    assert len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1, (
        "the dead mount must be detached, not stacked under"
    )
    with open(created["path"], "rb") as f:
        assert f.read(8) == b"pattern!"
    await node.engine.call(DiskRemoveParams(volume, name))
    await node.engine.call(ReleaseParams(volume, I1))


@pytest_twisted.ensureDeferred
async def test_acquire_recovers_dead_mount_with_no_holders(nodes: NodeFactory, volume: VolumeSpec) -> None:
    os.makedirs(nodes.storage_dir)
    subprocess.run(["mount", "-t", "glusterfs", volume.mount_source, nodes.storage_dir], check=True, cwd=nodes.storage_dir)
    os.kill(kernel.fuse_client_pid(nodes.storage_dir), signal.SIGKILL)
    glusterlab.poll("the mount to die", lambda: _enotconn(nodes.storage_dir))
    node = nodes.node()
    await node.start()
    result = await node.engine.call(AcquireParams(volume, I1))
    assert result["mounted_now"] is True
    assert len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1
    os.statvfs(nodes.storage_dir)  # answers: the new mount is alive
    await node.engine.call(ReleaseParams(volume, I1))


def _enotconn(path: str) -> bool:
    try:
        os.stat(path)
    except OSError as e:
        return e.errno == 107
    return False


@pytest_twisted.ensureDeferred
async def test_disks_create_grow_info_remove(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node()
    await node.start()
    engine = node.engine
    name = disk_name()
    created = await engine.call(request("disk.create", volume=volume, path=name, size=10))
    assert created == {"path": os.path.join(nodes.storage_dir, name), "size_bytes": 10 * MIB}
    # The disk operation mounted the volume for itself and released it afterwards.
    assert [f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)] == []
    with pytest.raises(errors.DiskExists):
        await engine.call(request("disk.create", volume=volume, path=name, size=5))
    info = await engine.call(DiskInfoParams(volume, name))
    assert info["exists"] is True and info["size_bytes"] == 10 * MIB
    assert info["allocated_bytes"] < 10 * MIB, "sparse by default"
    assert info["uri"] == f"gluster://{volume.host}:24007/gv0/{name}"
    dry = await engine.call(request("disk.grow", volume=volume, path=name, amount=5, dryrun=True))
    assert dry["size_bytes"] == 15 * MIB
    assert (await engine.call(DiskInfoParams(volume, name)))["size_bytes"] == 10 * MIB
    grown = await engine.call(request("disk.grow", volume=volume, path=name, amount=5))
    assert grown["size_bytes"] == 15 * MIB
    assert (await engine.call(DiskInfoParams(volume, name)))["size_bytes"] == 15 * MIB
    assert (await engine.call(DiskRemoveParams(volume, name))) == {"removed": True}
    assert (await engine.call(DiskRemoveParams(volume, name))) == {"removed": False}
    assert (await engine.call(DiskInfoParams(volume, name)))["exists"] is False
    with pytest.raises(errors.NoSuchDisk):
        await engine.call(request("disk.grow", volume=volume, path=name, amount=1))
    assert [f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)] == []


@pytest_twisted.ensureDeferred
async def test_preallocated_disk_is_allocated(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node()
    await node.start()
    name = disk_name()
    await node.engine.call(request("disk.create", volume=volume, path=name, size=4, preallocate=True))
    info = await node.engine.call(DiskInfoParams(volume, name))
    assert info["allocated_bytes"] >= 4 * MIB
    await node.engine.call(DiskRemoveParams(volume, name))


@pytest_twisted.ensureDeferred
async def test_disk_op_on_held_volume_keeps_the_mount(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node()
    await node.start()
    await node.engine.call(AcquireParams(volume, I1))
    name = disk_name()
    await node.engine.call(request("disk.create", volume=volume, path=name, size=1))
    assert len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1
    await node.engine.call(DiskRemoveParams(volume, name))
    await node.engine.call(ReleaseParams(volume, I1))


@pytest.mark.parametrize(
    "path",
    ["../etc/passwd", "/etc/passwd", "ganeti/../x", "ganeti//x", "ganeti/x\0y", "", "ganeti/", "other/x", "ganeti/a/b", "ganeti/."],
)
@pytest_twisted.ensureDeferred
async def test_unsafe_paths_refused(nodes: NodeFactory, volume: VolumeSpec, path: str) -> None:
    node = nodes.node()
    await node.start()
    with pytest.raises(errors.PathRefused):  # the engine's own check, past the schema's (which refuses "" already)
        await node.engine.call(DiskCreateParams(volume, path, 1, preallocate=False))


@pytest_twisted.ensureDeferred
async def test_symlinks_refused_at_any_component(nodes: NodeFactory, volume: VolumeSpec, lab_base: str) -> None:
    node = nodes.node()
    await node.start()
    await node.engine.call(AcquireParams(volume, I1))
    outside = os.path.join(lab_base, "outside-" + uuid.uuid4().hex[:6])
    os.makedirs(outside)
    name = uuid.uuid4().hex
    link = os.path.join(nodes.storage_dir, "ganeti", name)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(os.path.join(outside, "target"), link)
    try:
        with pytest.raises(errors.PathRefused, match="symlink"):
            await node.engine.call(request("disk.create", volume=volume, path=f"ganeti/{name}", size=1))
        with pytest.raises(errors.PathRefused):
            await node.engine.call(DiskRemoveParams(volume, f"ganeti/{name}"))
        with pytest.raises(errors.PathRefused):
            await node.engine.call(request("disk.grow", volume=volume, path=f"ganeti/{name}", amount=1))
        assert os.listdir(outside) == []
        assert os.path.islink(link)
    finally:
        os.unlink(link)
    # A symlinked in-volume folder is refused too (the only engine on the node, as in real life).
    linked = os.path.join(nodes.storage_dir, "linked")
    os.symlink(outside, linked)
    await node.engine.call(ReleaseParams(volume, I1))
    nodes.stop(node)
    folder_node = nodes.node(disk_folder="linked")
    await folder_node.start()
    with pytest.raises(errors.PathRefused, match="symlink"):
        await folder_node.engine.call(request("disk.create", volume=volume, path="linked/x", size=1))
    assert os.listdir(outside) == []
    await folder_node.engine.call(AcquireParams(volume, I1))
    os.unlink(linked)
    await folder_node.engine.call(ReleaseParams(volume, I1))


@pytest_twisted.ensureDeferred
async def test_statvfs_only_when_mounted(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node()
    await node.start()
    with pytest.raises(errors.NotMounted):
        await node.engine.call(StatvfsParams(volume))
    assert [f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)] == [], "statvfs must not mount"
    await node.engine.call(AcquireParams(volume, I1))
    space = await node.engine.call(StatvfsParams(volume))
    st = os.statvfs(nodes.storage_dir)
    assert space["storage_size"] == st.f_frsize * st.f_blocks // MIB
    assert space["size_bytes"] == st.f_frsize * st.f_blocks
    await node.engine.call(ReleaseParams(volume, I1))


@pytest_twisted.ensureDeferred
async def test_whitelist_refusal_names_the_file(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node(whitelist=["/srv/elsewhere"])
    await node.start()
    with pytest.raises(errors.PathRefused, match="file-storage-paths"):
        await node.engine.call(AcquireParams(volume, I1))
    assert not os.path.exists(nodes.storage_dir)


@pytest_twisted.ensureDeferred
async def test_mount_failure_diagnosis(nodes: NodeFactory, gluster: glusterlab.GlusterServer, volume: VolumeSpec) -> None:
    node = nodes.node()
    await node.start()
    with pytest.raises(errors.MountFailed, match="does not exist"):
        await node.engine.call(AcquireParams(VolumeSpec(volume.host, 24007, "nosuchvol"), I1))
    with pytest.raises(errors.MountFailed, match="refused"):
        # Our own end of the veth: nothing listens there, so the connection is refused at once.
        await node.engine.call(AcquireParams(VolumeSpec(gluster.host_ip, 24007, "gv0"), I1))
    if "gv-stopped" not in gluster.volumes:
        gluster.create_volume("gv-stopped", start=False)
    with pytest.raises(errors.MountFailed, match="not started"):
        await node.engine.call(AcquireParams(VolumeSpec(volume.host, 24007, "gv-stopped"), I1))
    assert [f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)] == [], "a failed mount leaves nothing behind"
    assert all(v["holders"] == [] for v in node.engine.status())


@pytest_twisted.ensureDeferred
async def test_rename_never_overwrites(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node()
    await node.start()
    engine = node.engine
    a, b, c = disk_name(), disk_name(), disk_name()
    await engine.call(request("disk.create", volume=volume, path=a, size=1))
    await engine.call(request("disk.create", volume=volume, path=b, size=2))
    with pytest.raises(errors.DiskExists):
        await engine.call(DiskRenameParams(volume, a, b))
    assert (await engine.call(DiskInfoParams(volume, b)))["size_bytes"] == 2 * MIB, "the existing disk is untouched"
    moved = await engine.call(DiskRenameParams(volume, a, c))
    assert moved == {"path": os.path.join(nodes.storage_dir, c), "renamed": True}
    assert (await engine.call(DiskInfoParams(volume, a)))["exists"] is False
    assert (await engine.call(DiskInfoParams(volume, c)))["size_bytes"] == 1 * MIB
    with pytest.raises(errors.NoSuchDisk):
        await engine.call(DiskRenameParams(volume, a, disk_name()))
    with pytest.raises(errors.PathRefused):
        await engine.call(DiskRenameParams(volume, c, "elsewhere/x"))
    for name in (b, c):
        await engine.call(DiskRemoveParams(volume, name))


@pytest_twisted.ensureDeferred
async def test_mount_timeout_against_a_frozen_server_leaves_nothing(
    nodes: NodeFactory, gluster: glusterlab.GlusterServer, volume: VolumeSpec
) -> None:
    node = nodes.node(mount_timeout=3.0, probe_timeout=1.0)
    await node.start()
    gluster.freeze()
    try:
        with pytest.raises(errors.MountFailed, match="did not finish within 3 s"):
            await node.engine.call(AcquireParams(volume, I1))
        assert [f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)] == [], "no half-made mount is left behind"
        glusterlab.poll("the orphaned FUSE client to die", lambda: not _clients(nodes.storage_dir), deadline=10)
    finally:
        gluster.thaw()
    assert all(v["holders"] == [] for v in node.engine.status())
    result = await node.engine.call(AcquireParams(volume, I1))
    assert result["mounted_now"] is True and len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1
    await node.engine.call(ReleaseParams(volume, I1))


def _clients(mountpoint: str) -> list[int]:
    try:
        return [kernel.fuse_client_pid(mountpoint)]
    except AssertionError:
        return []


@pytest_twisted.ensureDeferred
async def test_restart_keeps_holders_and_remounts_a_missing_mount(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node()
    await node.start()
    await node.engine.call(AcquireParams(volume, I1))
    nodes.stop(node)
    subprocess.run(["umount", nodes.storage_dir], check=True)  # the mount vanished while we were down
    again = nodes.node()
    await again.start()
    [status] = again.engine.status()
    assert status["holders"] == [I1.to_json()] and status["state"] == "mounted"
    assert len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1
    await again.engine.call(ReleaseParams(volume, I1))


@pytest_twisted.ensureDeferred
async def test_reboot_voids_the_old_holders(nodes: NodeFactory, volume: VolumeSpec) -> None:
    boot = os.path.join(nodes.root, "boot_id")
    with open(boot, "w") as f:
        f.write("first-boot\n")
    node = nodes.node(boot_id_path=boot)
    await node.start()
    await node.engine.call(AcquireParams(volume, I1))
    nodes.stop(node)
    subprocess.run(["umount", nodes.storage_dir], check=True)  # a reboot takes every mount away
    with open(boot, "w") as f:
        f.write("second-boot\n")
    after = nodes.node(boot_id_path=boot)
    assert after.dropped == [(volume, I1)]
    await after.start()
    assert after.engine.status() == []
    assert [f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)] == [], "void holders are not remounted"


@pytest_twisted.ensureDeferred
async def test_two_nodes_cannot_share_a_state_dir(nodes: NodeFactory) -> None:
    nodes.node()
    with pytest.raises(errors.StateError, match="another ganeti-gluster-mountd"):
        nodes.node()


@pytest_twisted.ensureDeferred
async def test_disk_call_on_a_dead_mount_recovers_it(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node()
    await node.start()
    await node.engine.call(AcquireParams(volume, I1))
    name = disk_name()
    await node.engine.call(request("disk.create", volume=volume, path=name, size=1))
    os.kill(kernel.fuse_client_pid(nodes.storage_dir), signal.SIGKILL)
    glusterlab.poll("the mount to die", lambda: _enotconn(nodes.storage_dir))
    info = await node.engine.call(DiskInfoParams(volume, name))  # no probe ran: the call itself recovers
    assert info["exists"] is True
    assert len([f"{r.fstype} {r.source}" for r in kernel.stack(nodes.storage_dir)]) == 1
    assert node.engine.count(Metric.RECOVERIES, volume.key) == 1
    await node.engine.call(DiskRemoveParams(volume, name))
    await node.engine.call(ReleaseParams(volume, I1))


@pytest_twisted.ensureDeferred
async def test_create_never_truncates_through_a_stale_temp_link(nodes: NodeFactory, volume: VolumeSpec) -> None:
    """A crash between link and unlink leaves the temporary name as a hard link to a live disk."""
    node = nodes.node()
    await node.start()
    await node.engine.call(AcquireParams(volume, I1))
    live, other = disk_name(), disk_name()
    created = await node.engine.call(request("disk.create", volume=volume, path=live, size=2))
    with open(created["path"], "r+b") as f:
        f.write(b"live data")
    stale = os.path.join(nodes.storage_dir, "ganeti", disks.private_folder(), disks.CREATING, other.split("/")[1])
    os.link(created["path"], stale)
    await node.engine.call(request("disk.create", volume=volume, path=other, size=1))
    assert os.path.getsize(created["path"]) == 2 * MIB
    with open(created["path"], "rb") as f:
        assert f.read(9) == b"live data"
    assert not os.path.exists(stale)
    for name in (live, other):
        await node.engine.call(DiskRemoveParams(volume, name))
    await node.engine.call(ReleaseParams(volume, I1))

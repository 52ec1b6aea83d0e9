"""A dead FUSE client under a held mount: detected within one probe interval, remounted, nothing lost."""

from __future__ import annotations

import hashlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from glusterd_mgr.core.volume import VolumeSpec

from ..support import glusterlab
from ..support.daemon_proc import DaemonProcess
from ..support.kernel import fuse_client_pids, glusterfs_stack, mount_table, stack
from .helpers import metric

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(120)]
PROBE_INTERVAL = 1.0  # DaemonProcess's --probe-interval
HOLDERS = [{"kind": "instance", "id": f"dead-{n}.0"} for n in range(3)]


FUSECTL = "/sys/fs/fuse/connections"


@pytest.fixture
def fusectl() -> Iterator[str]:
    """The kernel's FUSE control file system, mounted for the test if the host has not (and then unmounted)."""
    mounted = not any(r.fstype == "fusectl" for r in mount_table())
    if mounted:
        glusterlab.sh("mount", "-t", "fusectl", "fusectl", FUSECTL)
    yield FUSECTL
    if mounted:
        glusterlab.sh("umount", FUSECTL, check=False)


def abort_connection(control: str, mountpoint: str) -> None:
    """Abort the kernel's FUSE connection of the mount (its device minor names it)."""
    [record] = [r for r in stack(mountpoint) if r.is_glusterfs]
    with open(f"{control}/{record.minor}/abort", "w") as f:
        f.write("1")


@pytest.mark.parametrize("how", ["sigkill", "abort"])
def test_a_dead_fuse_client_is_detected_and_remounted(
    daemon: DaemonProcess, volume: VolumeSpec, figure: Any, how: str, request: pytest.FixtureRequest
) -> None:
    """Killed, or its FUSE connection aborted (glusterfs then exits): dead either way, unlike a partition."""
    c = daemon.client()
    vol = volume.to_json()
    for h in HOLDERS:
        c.acquire(vol, h)
    name = f"ganeti/dead-{uuid.uuid4()}.0"
    c.disk_create(vol, name, 4)
    payload = os.urandom(1 << 20)
    path = os.path.join(daemon.storage_dir, name)
    with open(path, "r+b") as f:
        f.seek(1 << 20)
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    digest = hashlib.sha256(payload).hexdigest()
    holders_before = c.status()["mounts"][0]["holders"]
    [pid] = fuse_client_pids(daemon.storage_dir)
    assert len(glusterfs_stack(daemon.storage_dir)) == 1

    if how == "sigkill":
        os.kill(pid, signal.SIGKILL)
    else:
        abort_connection(request.getfixturevalue("fusectl"), daemon.storage_dir)
    killed = time.monotonic()
    seen: dict[str, float] = {}

    def observe() -> bool:
        now = time.monotonic() - killed
        [mount] = c.status()["mounts"]
        text = c.metrics()
        if mount["state"] == "dead":
            seen.setdefault("status_dead", now)
        if metric(text, "ganeti_gluster_mount_state", volume=volume.key, state="dead") == 1.0:
            seen.setdefault("metric_dead", now)
        if (metric(text, "ganeti_gluster_dead_mount_recoveries_total", volume=volume.key) or 0) >= 1:
            seen.setdefault("recovery_counted", now)
        if mount["state"] == "mounted" and "recovery_counted" in seen:
            # (mount ids are recycled, so a fresh mount is told by its new FUSE client process)
            pids = fuse_client_pids(daemon.storage_dir)
            if len(glusterfs_stack(daemon.storage_dir)) == 1 and pids and pid not in pids:
                seen.setdefault("remounted", now)
                return True
        return False

    try:
        glusterlab.poll("the dead mount to be detected and remounted", observe, deadline=30, interval=0.01)
    except AssertionError as e:
        raise AssertionError(f"{e}; seen {seen}; status {c.status()}; stack {glusterfs_stack(daemon.storage_dir)}") from None
    detected = min(seen.get("status_dead", 99), seen.get("metric_dead", 99), seen["recovery_counted"])
    # One probe interval, plus the probe itself (at most --probe-timeout) and a scrape's slack.
    assert detected <= PROBE_INTERVAL + 1.0 + 0.5, seen
    assert "status_dead" in seen and "metric_dead" in seen, f"status and metrics must both say dead: {seen}"
    assert c.status()["mounts"][0]["holders"] == holders_before
    broken = c.status()["mounts"][0]["broken_holders"]
    assert sorted(h["id"] for h in broken) == sorted(h["id"] for h in HOLDERS), "a dead client's guests are named"
    assert (metric(c.metrics(), "ganeti_gluster_mount_disconnections_total", volume=volume.key) or 0) == 0, "dead, not disconnected"
    assert len(glusterfs_stack(daemon.storage_dir)) == 1
    with open(path, "rb") as back:
        back.seek(1 << 20)
        assert hashlib.sha256(back.read(1 << 20)).hexdigest() == digest, "data written before the crash must be intact"
    assert c.disk_info(vol, name)["size_bytes"] == 4 << 20
    c.disk_remove(vol, name)
    for h in HOLDERS:
        c.release(vol, h)
    assert glusterfs_stack(daemon.storage_dir) == []
    figure(
        "dead_client" if how == "sigkill" else "aborted_fuse_connection",
        faults=1,
        detected_s=round(detected, 2),
        status_dead_s=round(seen["status_dead"], 2),
        metric_dead_s=round(seen["metric_dead"], 2),
        remounted_s=round(seen["remounted"], 2),
        holders_kept=len(holders_before),
        data_lost_bytes=0,
    )

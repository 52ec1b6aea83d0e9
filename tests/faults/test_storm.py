"""Concurrency storm: many clients acquiring and releasing at once keep exactly one mount."""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

import pytest

from glusterd_mgr.core.volume import VolumeSpec

from ..support import glusterlab
from ..support.daemon_proc import DaemonProcess
from ..support.kernel import glusterfs_stack
from .conftest import env_int
from .helpers import metric

CLIENTS = env_int("GGMT_FAULT_STORM_CLIENTS", 50)
PAIRS = env_int("GGMT_FAULT_STORM_PAIRS", 40)
HOLDERS = env_int("GGMT_FAULT_STORM_HOLDERS", 20)
ANCHOR = {"kind": "os-install", "id": "storm-anchor"}
CALL_TIMEOUT = 30.0  # the whole storm takes seconds; a call this slow means the daemon is stuck

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(300)]


def storm_holder(n: int) -> dict[str, str]:
    return {"kind": "instance", "id": f"storm-{n % HOLDERS}.0"}


def test_storm_keeps_one_mount_and_the_implied_holders(daemon: DaemonProcess, volume: VolumeSpec, figure: Any) -> None:
    """Every client ends each holder with a release, so the storm itself implies no holder; after a barrier,
    clients 0..HOLDERS-1 each acquire one distinct holder, so the final set is exactly those plus the anchor."""
    c = daemon.client()
    vol = volume.to_json()
    assert c.acquire(vol, ANCHOR)["mounted_now"] is True
    [mount] = glusterfs_stack(daemon.storage_dir)
    samples: list[int] = []
    sampling = threading.Event()
    errors_seen: list[str] = []
    barrier = threading.Barrier(CLIENTS)
    calls = [0] * CLIENTS

    def sampler() -> None:
        while not sampling.is_set():
            stack = glusterfs_stack(daemon.storage_dir)
            samples.append(len(stack))
            if stack != [mount]:
                errors_seen.append(f"mount table changed: {stack} instead of {[mount]}")
            time.sleep(0.002)  # sampling period

    def client(n: int) -> None:
        cl = daemon.client(timeout=CALL_TIMEOUT)
        try:
            for j in range(PAIRS):
                h = storm_holder(n + j)
                got = cl.acquire(vol, h)
                assert got["holders"] >= 2 and got["mounted_now"] is False and got["mountpoint"] == daemon.storage_dir, got
                rel = cl.release(vol, h)
                assert rel["unmounted"] is False and rel["holders"] >= 1, rel
                calls[n] += 2
            barrier.wait(timeout=CALL_TIMEOUT)
            if n < HOLDERS:
                cl.acquire(vol, storm_holder(n))
                calls[n] += 1
        except Exception as e:
            errors_seen.append(f"client {n}: {type(e).__name__}: {e}")
            barrier.abort()

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=2 * CALL_TIMEOUT)
        assert not t.is_alive(), "a client hung"
    took = time.monotonic() - started
    sampling.set()
    watcher.join()
    assert not errors_seen, errors_seen[:5]
    [state] = c.status()["mounts"]
    held = {(h["kind"], h["id"]) for h in state["holders"]}
    implied = {(ANCHOR["kind"], ANCHOR["id"])} | {("instance", f"storm-{n}.0") for n in range(HOLDERS)}
    assert held == implied
    assert state["state"] == "mounted"
    for kind, hid in sorted(held - {(ANCHOR["kind"], ANCHOR["id"])}):
        assert c.release(vol, {"kind": kind, "id": hid})["unmounted"] is False
    assert glusterfs_stack(daemon.storage_dir) == [mount]
    assert c.release(vol, ANCHOR)["unmounted"] is True
    assert glusterfs_stack(daemon.storage_dir) == []
    text = c.metrics()
    attempts = metric(text, "ganeti_gluster_mount_attempts_total", volume=volume.key)
    unmounts = metric(text, "ganeti_gluster_unmount_attempts_total", volume=volume.key)
    assert attempts == 1 and unmounts == 1, (attempts, unmounts)
    assert min(samples) == max(samples) == 1
    figure(
        "storm",
        clients=CLIENTS,
        pairs_each=PAIRS,
        holders=HOLDERS,
        calls=sum(calls) + 2 + len(implied),
        seconds=round(took, 1),
        mount_table_samples=len(samples),
        max_mounts_seen=max(samples),
        mounts=int(attempts),
        unmounts=int(unmounts),
        final_holders_wrong=0,
    )


def test_storm_without_anchor_never_stacks_mounts(daemon: DaemonProcess, volume: VolumeSpec, figure: Any) -> None:
    """The same storm with nobody keeping the volume mounted: mounts come and go, but never two at once."""
    c = daemon.client()
    vol = volume.to_json()
    samples: list[int] = []
    sampling = threading.Event()
    errors_seen: list[str] = []
    barrier = threading.Barrier(CLIENTS)

    def sampler() -> None:
        while not sampling.is_set():
            samples.append(len(glusterfs_stack(daemon.storage_dir)))
            time.sleep(0.002)  # sampling period

    def client(n: int) -> None:
        cl = daemon.client(timeout=CALL_TIMEOUT)
        try:
            for j in range(PAIRS):
                h = storm_holder(n + j)
                assert cl.acquire(vol, h)["holders"] >= 1
                cl.release(vol, h)
            barrier.wait(timeout=CALL_TIMEOUT)
            if n < HOLDERS:
                cl.acquire(vol, storm_holder(n))
        except Exception as e:
            errors_seen.append(f"client {n}: {type(e).__name__}: {e}")
            barrier.abort()

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=2 * CALL_TIMEOUT)
        assert not t.is_alive(), "a client hung"
    sampling.set()
    watcher.join()
    assert not errors_seen, errors_seen[:5]
    assert max(samples) == 1, "two mounts of the volume were stacked"
    [state] = c.status()["mounts"]
    assert {h["id"] for h in state["holders"]} == {f"storm-{n}.0" for n in range(HOLDERS)}
    assert state["state"] == "mounted" and len(glusterfs_stack(daemon.storage_dir)) == 1
    for n in range(HOLDERS):
        c.release(vol, storm_holder(n))
    assert glusterfs_stack(daemon.storage_dir) == []
    text = c.metrics()
    attempts = metric(text, "ganeti_gluster_mount_attempts_total", volume=volume.key) or 0
    unmounts = metric(text, "ganeti_gluster_unmount_attempts_total", volume=volume.key) or 0
    busy = metric(text, "ganeti_gluster_unmount_busy_total", volume=volume.key) or 0
    assert attempts >= 1 and unmounts - busy == attempts, "every mount made was unmounted exactly once"
    figure(
        "storm_churn",
        clients=CLIENTS,
        pairs_each=PAIRS,
        mount_table_samples=len(samples),
        max_mounts_seen=max(samples),
        mounts=int(attempts),
        unmounts=int(unmounts - busy),
        final_holders_wrong=0,
    )


RACE_ROUNDS = env_int("GGMT_FAULT_RACE_ROUNDS", 3)
SLOW_UMOUNT = """#!/bin/sh
# The real umount, then a pause before exiting: the window in which the daemon has not yet seen the unmount.
/usr/bin/umount "$@"
rc=$?
sleep 1
exit $rc
"""


def test_disk_call_during_the_last_release_lands_on_the_volume(
    make_daemon: Any, daemon_root: str, gluster: glusterlab.GlusterServer, volume: VolumeSpec, figure: Any
) -> None:
    """The last holder leaves and its unmount is under way (a slow umount helper) when a disk call arrives:
    the disk must be made on the volume, never in the bare mountpoint folder the unmount uncovered."""
    slowbin = os.path.join(daemon_root, "slowbin")
    os.makedirs(slowbin)
    with open(os.path.join(slowbin, "umount"), "w") as f:
        f.write(SLOW_UMOUNT)
    os.chmod(os.path.join(slowbin, "umount"), 0o755)
    d: DaemonProcess = make_daemon(env={"PATH": f"{slowbin}:{os.environ.get('PATH', '/usr/bin:/bin')}"})
    c = d.client()
    vol = volume.to_json()
    brick_folder = os.path.join(gluster.dir, "bricks", volume.volume, "ganeti")
    holder = {"kind": "instance", "id": "race-1.0"}
    made: list[str] = []
    stray: list[str] = []
    for n in range(RACE_ROUNDS):
        c.acquire(vol, holder)
        releasing = threading.Thread(target=lambda: d.client().release(vol, holder))
        releasing.start()
        glusterlab.poll("the kernel to drop the mount", lambda: glusterfs_stack(d.storage_dir) == [], deadline=10, interval=0.005)
        name = f"ganeti/race-{n}-{uuid.uuid4().hex[:6]}.0"
        c.disk_create(vol, name, 1)
        made.append(name)
        releasing.join(timeout=30)
        if glusterfs_stack(d.storage_dir) == []:
            stray += _listing(d)
            for path in _listing(d):
                os.unlink(path)
    missing = [name for name in made if not os.path.exists(os.path.join(brick_folder, os.path.basename(name)))]
    for name in made:
        c.disk_remove(vol, name)
    assert stray == [], f"acknowledged disks written into the bare mountpoint folder, not the volume: {stray}"
    assert missing == [], f"{len(missing)} of {len(made)} acknowledged disks are not on the volume"
    figure("unmount_race", rounds=RACE_ROUNDS, acked_creates=len(made), missing_on_volume=len(missing))


def _listing(daemon: DaemonProcess) -> list[str]:
    return [os.path.join(dp, f) for dp, _, fs in os.walk(daemon.storage_dir) for f in fs]

"""Frozen and absent servers: calls time out cleanly, the daemon keeps answering, the pool stays bounded."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from typing import Any

import psutil
import pytest

from glusterd_mgr.core import errors
from glusterd_mgr.core.volume import VolumeSpec

from ..support import glusterlab
from ..support.daemon_proc import DaemonProcess
from ..support.kernel import glusterfs_mounts_of, glusterfs_stack
from .conftest import env_int
from .helpers import metric, timed

FROZEN_SECONDS = env_int("GGMT_FAULT_FROZEN_SECONDS", 60)
FS_TIMEOUT = 3.0  # DaemonProcess's --fs-timeout
H1 = {"kind": "instance", "id": "frozen-1.0"}
H2 = {"kind": "instance", "id": "frozen-2.0"}

pytestmark = [pytest.mark.gluster]


def scrape_tcp(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


@pytest.mark.timeout(FROZEN_SECONDS + 150)
def test_frozen_server_times_out_calls_and_keeps_the_pool_bounded(
    daemon: DaemonProcess, gluster: glusterlab.GlusterServer, volume: VolumeSpec, figure: Any
) -> None:
    c = daemon.client(timeout=30)
    vol = volume.to_json()
    c.acquire(vol, H1)
    name = f"ganeti/frozen-{uuid.uuid4()}.0"
    c.disk_create(vol, name, 1)
    max_threads = metric(c.metrics(), "ganeti_gluster_fs_pool_max_threads")
    assert max_threads == 16
    outcomes: Counter[str] = Counter()
    slow: list[str] = []
    lock = threading.Lock()

    def disk_call(kind: str) -> None:
        client = daemon.client(timeout=30)
        start = time.monotonic()
        try:
            if kind == "info":
                client.disk_info(vol, name)
            elif kind == "statvfs":
                client.statvfs(vol)
            else:
                client.disk_create(vol, f"ganeti/frozen-{uuid.uuid4()}.0", 1)
            result = "answered"
        except errors.OperationTimeout:
            result = "timeout"
        except errors.MountdError as e:
            result = type(e).__name__
        took = time.monotonic() - start
        with lock:
            outcomes[result] += 1
            if took > FS_TIMEOUT + 1.0:
                slow.append(f"{kind} took {took:.1f} s")

    occupancy: list[tuple[float, float]] = []
    answers = 0
    worst = 0.0
    gluster.freeze()
    frozen_at = time.monotonic()
    callers: list[threading.Thread] = []
    try:
        while time.monotonic() - frozen_at < FROZEN_SECONDS:
            for kind in ("info", "statvfs", "create"):
                t = threading.Thread(target=disk_call, args=(kind,), daemon=True)
                t.start()
                callers.append(t)
            status, took_status = timed(c.status)
            text, took_metrics = timed(c.metrics)
            tcp_text, took_tcp = timed(lambda: scrape_tcp(daemon.metrics_port))
            worst = max(worst, took_status, took_metrics, took_tcp)
            assert max(took_status, took_metrics, took_tcp) < 1.0, (took_status, took_metrics, took_tcp)
            assert status["mounts"][0]["holders"][0] == H1
            busy = metric(text, "ganeti_gluster_fs_pool_busy_threads")
            assert busy is not None and metric(tcp_text, "ganeti_gluster_fs_pool_busy_threads") is not None
            occupancy.append((time.monotonic() - frozen_at, busy))
            answers += 3
            time.sleep(0.25)  # pacing of the load, not a wait for a condition
        hung_state = c.status()["mounts"][0]["state"]
        result, took = timed(lambda: c.acquire(vol, H2))
        assert took < 1.0 and result["holders"] == 2, "a new holder of a held mount needs no file-system call"
        for t in callers:
            t.join(timeout=FS_TIMEOUT + 10)
            assert not t.is_alive(), "a disk call did not end while the server was frozen"
        threads_now = len(psutil.Process(daemon.proc.pid).threads()) if daemon.proc else 0
    finally:
        gluster.thaw()
    assert hung_state == "hung"
    assert not slow, slow[:5]
    assert set(outcomes) == {"timeout"}, f"every disk call must fail with the timeout error: {outcomes}"
    peak = max(b for _, b in occupancy)
    glusterlab.poll("the mount to answer again", lambda: c.status()["mounts"][0]["state"] == "mounted", deadline=60)
    glusterlab.poll("the stuck calls to return", lambda: metric(c.metrics(), "ganeti_gluster_fs_pool_busy_threads") == 0, deadline=30)
    assert c.disk_info(vol, name)["exists"] is True
    c.disk_remove(vol, name)
    c.release(vol, H1)
    c.release(vol, H2)
    assert glusterfs_stack(daemon.storage_dir) == []
    # Last, so that every other check has run: a frozen mount must not take the pool's threads
    # (they serve every other volume too), however many calls arrive before the first one is overdue.
    assert peak <= max_threads // 2, f"the pool filled up behind one frozen mount: {[b for _, b in occupancy]}"
    figure(
        "frozen",
        frozen_s=FROZEN_SECONDS,
        disk_calls=sum(outcomes.values()),
        timeouts=outcomes["timeout"],
        status_and_metrics_answers=answers,
        worst_answer_s=round(worst, 3),
        pool_peak=int(peak),
        pool_max=int(max_threads),
        daemon_threads=threads_now,
        lost=0,
    )


def leftovers(daemon: DaemonProcess, volume: VolumeSpec) -> list[str]:
    """Mounts of the volume under the daemon's folder, and processes still working on its mountpoint."""
    found = [f"mount at {p}" for p in glusterfs_mounts_of(volume.volume, daemon.root)]
    for proc in glusterlab.lab_processes(daemon.storage_dir):
        if daemon.proc is not None and proc.pid == daemon.proc.pid:
            continue
        try:
            found.append(f"process {proc.pid}: {' '.join(proc.cmdline())}")
        except psutil.Error:
            pass
    return found


@pytest.mark.timeout(180)
def test_absent_or_frozen_server_at_mount_time_fails_cleanly(
    make_daemon: Any, gluster: glusterlab.GlusterServer, volume: VolumeSpec, figure: Any
) -> None:
    mount_timeout = 6.0
    d: DaemonProcess = make_daemon("--mount-timeout", str(mount_timeout))
    c = d.client(timeout=60)
    # Nobody listens on the port: glusterd is gone.
    gone = VolumeSpec(host=volume.host, port=24999, volume=volume.volume)
    start = time.monotonic()
    with pytest.raises(errors.MountFailed) as refused:
        c.acquire(gone.to_json(), H1)
    took_refused = time.monotonic() - start
    assert f"{volume.host}:24999" in refused.value.message and "refused" in refused.value.message, refused.value.message
    assert took_refused <= mount_timeout
    assert leftovers(d, volume) == []
    assert c.status()["mounts"][0]["holders"] == []
    # glusterd is there but frozen: the mount helper is killed at the mount timeout.
    gluster.freeze()
    try:
        start = time.monotonic()
        with pytest.raises(errors.MountdError) as frozen:
            c.acquire(volume.to_json(), H1)
        took_frozen = time.monotonic() - start
        mounts_left = glusterfs_mounts_of(volume.volume, d.root)
        stragglers = leftovers(d, volume)
    finally:
        gluster.thaw()
    message = frozen.value.message
    assert isinstance(frozen.value, (errors.MountFailed, errors.OperationTimeout)), message
    assert f"{volume.host}:24007" in message, message
    assert took_frozen <= mount_timeout + 5 + 2, f"acquire took {took_frozen:.1f} s (mount timeout {mount_timeout})"
    assert mounts_left == [], "a half-made mount was left behind"

    # A glusterfs client that daemonized before the helper was killed may linger until the server answers;
    # it must then go away without ever finishing the mount.
    def gone_quietly() -> bool:
        assert glusterfs_mounts_of(volume.volume, d.root) == [], "a straggling client finished the mount"
        return leftovers(d, volume) == []

    glusterlab.poll("straggling clients to exit after the thaw", gone_quietly, deadline=30, interval=0.05)
    state = c.status()["mounts"]
    assert all(not m["holders"] for m in state), state
    result = c.acquire(volume.to_json(), H1)
    assert result["mounted_now"] is True and len(glusterfs_stack(d.storage_dir)) == 1
    assert c.release(volume.to_json(), H1)["unmounted"] is True
    figure(
        "absent_server",
        faults=2,
        refused_failed_in_s=round(took_refused, 2),
        frozen_failed_in_s=round(took_frozen, 2),
        mount_timeout_s=mount_timeout,
        stray_clients_while_frozen=len(stragglers),
        half_made_mounts_left=0,
    )

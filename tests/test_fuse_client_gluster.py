"""The FUSE client with real mounts: its figures, its OOM score, its scope, and what its death breaks."""

from __future__ import annotations

import os
import signal
import stat
from typing import Any, cast

import psutil
import pytest
import pytest_twisted
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogPublisher

from glusterd_mgr.app.metrics import Metrics
from glusterd_mgr.app.schema import load, method_names
from glusterd_mgr.core import fuse_client
from glusterd_mgr.core.holders import Holder
from glusterd_mgr.core.requests import AcquireParams, ReleaseParams
from glusterd_mgr.core.volume import VolumeSpec

from .conftest import NodeFactory
from .support import glusterlab, kernel

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(180)]

I1, I2, JOB = Holder("instance", "i1.0"), Holder("instance", "i2.0"), Holder("job", "j1")


def _client_of(mountpoint: str) -> psutil.Process:
    """The one FUSE client of ``mountpoint``, waiting for it to appear."""
    [pid] = glusterlab.poll("one FUSE client", lambda: kernel.fuse_client_pids(mountpoint))
    return psutil.Process(pid)


def _metric(text: str, name: str, volume: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'{name}{{volume="{volume}"}}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} for {volume}")


@pytest_twisted.ensureDeferred
async def test_client_figures_and_oom_score(nodes: NodeFactory, volume: VolumeSpec) -> None:
    # The score is a setting. Lowering it needs CAP_SYS_RESOURCE, which this sandbox lacks (a node's root has it):
    # the test raises it, which any root may, to see the daemon apply and report it.
    node = nodes.node(client_memory_warn_bytes=1, client_oom_score_adj=300)  # any client crosses a 1-byte threshold
    await node.start()
    await node.engine.call(AcquireParams(volume, I1))
    client = _client_of(nodes.storage_dir)
    with open(f"/proc/{client.pid}/oom_score_adj") as f:
        assert int(f.read()) == 300, "set on the client the mount started"
    [status] = node.engine.status()
    seen = status["client"]
    assert seen is not None, status
    assert seen["pid"] == client.pid and seen["oom_score_adj"] == 300
    assert seen["resident_memory_bytes"] > 1 << 20 and seen["threads"] > 1 and seen["open_fds"] > 2
    assert abs(seen["start_time_seconds"] - client.create_time()) < 1
    text = Metrics(node.engine, node.fs_pool, method_names(load())).render().decode()
    assert _metric(text, "ganeti_gluster_client_resident_memory_bytes", volume.key) == seen["resident_memory_bytes"]
    assert _metric(text, "ganeti_gluster_client_oom_score_adj", volume.key) == 300
    assert _metric(text, "ganeti_gluster_client_memory_over_threshold", volume.key) == 1.0
    assert _metric(text, "ganeti_gluster_broken_holders", volume.key) == 0.0
    await node.engine.call(ReleaseParams(volume, I1))
    assert node.engine.status() == [] or node.engine.status()[0]["client"] is None


@pytest_twisted.ensureDeferred
async def test_a_dead_client_names_the_holders_whose_disks_broke(nodes: NodeFactory, volume: VolumeSpec) -> None:
    node = nodes.node()
    await node.start()
    for holder in (I1, I2, JOB):
        await node.engine.call(AcquireParams(volume, holder))
    dead = _client_of(nodes.storage_dir)
    dead.send_signal(signal.SIGKILL)
    dead.wait(10)
    logged: list[str] = []

    def observer(event: dict[str, Any]) -> None:
        if event.get("log_level") == LogLevel.error:
            logged.append(formatEvent(event))

    globalLogPublisher.addObserver(cast(ILogObserver, observer))
    try:
        await node.engine.probe_all()  # finds it dead, recovers the mount
    finally:
        globalLogPublisher.removeObserver(cast(ILogObserver, observer))
    assert any("failed under its holders" in s and "i1.0, i2.0" in s and "reboot --type=full" in s for s in logged), logged
    [status] = node.engine.status()
    assert status["state"] == "mounted" and _client_of(nodes.storage_dir).pid != dead.pid
    assert status["broken_holders"] == [I1.to_json(), I2.to_json()], "instances only: a job's call has ended"
    assert status["action"] and "gnt-instance reboot --type=full" in status["action"]
    text = Metrics(node.engine, node.fs_pool, method_names(load())).render().decode()
    assert _metric(text, "ganeti_gluster_broken_holders", volume.key) == 2.0
    await node.engine.call(AcquireParams(volume, I1))  # the instance restarted: Ganeti assembles its disk afresh
    await node.engine.call(ReleaseParams(volume, I2))
    [status] = node.engine.status()
    assert status["broken_holders"] == [] and status["action"] is None
    for holder in (I1, JOB):
        await node.engine.call(ReleaseParams(volume, holder))


@pytest_twisted.ensureDeferred
async def test_each_client_in_a_scope_of_its_own_where_systemd_runs(nodes: NodeFactory, volume: VolumeSpec) -> None:
    """systemd-run stand-in: records its arguments and runs the command after ``--`` (a real scope is the lab's job)."""
    fake_bin = os.path.join(nodes.root, "bin")
    record = os.path.join(nodes.root, "systemd-run.args")
    os.makedirs(fake_bin)
    with open(os.path.join(fake_bin, "systemd-run"), "w") as f:
        f.write(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n')
    os.chmod(os.path.join(fake_bin, "systemd-run"), stat.S_IRWXU)
    node = nodes.node()
    node.world.systemd_booted = True
    node.world.extra_env = {"PATH": f"{fake_bin}:{os.environ['PATH']}"}
    await node.start()
    assert (await node.engine.call(AcquireParams(volume, I1)))["mounted_now"] is True
    with open(record) as f:
        args = f.read().split("\n")
    assert args[:3] == ["--scope", "--quiet", "--collect"] and f"--slice={fuse_client.SLICE}" in args
    [unit] = [a.removeprefix("--unit=") for a in args if a.startswith("--unit=")]
    assert unit.startswith("ganeti-gluster-gv0-") and unit.endswith(".scope")
    assert args[args.index("--") + 1 : args.index("--") + 3] == ["glusterfs", "--process-name"], "the client itself, in the scope"
    await node.engine.call(ReleaseParams(volume, I1))

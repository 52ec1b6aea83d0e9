"""A node cut off from its Gluster server: a partition is not a dead client.

A server of its own in a namespace, with a short ``network.ping-timeout``; a
guest-like writer holds one ``O_DIRECT`` descriptor on a disk of the daemon's
mount (a 4 KiB write and read every 0.2 s); the server's traffic to and from the
host is dropped silently with nftables in the server's namespace, both ways,
then let through again.  Under the ping-timeout the writer only stalls; over it,
the living client answers ENOTCONN and the daemon must call the mount
disconnected (never dead), keep it and its client, refuse new holders and disk
calls naming the server, mark no holder broken, and see it mounted again when
the client reconnects — with the writer's descriptor working again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from glusterd_mgr.client import Client
from glusterd_mgr.core.errors import Disconnected
from glusterd_mgr.core.volume import VolumeSpec

from ..support import glusterlab
from ..support.daemon_proc import REPO, DaemonProcess
from ..support.kernel import fuse_client_pid, glusterfs_stack
from .helpers import metric

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(180)]
INDEX = 5  # glusterlab's address plan: apart from the session server (1), the node lab (9) and the replica (11-13)
VOLUME = "gvp"
PING_TIMEOUT = 10
UNDER = 4.0
"""The short cut: TCP retransmits at 0.2, 0.6, 1.4, 3.0, 6.2 s after a silent drop begins, so the first one after
a 4 s cut lands at 6.2 s, inside the ping-timeout (a 6 s timeout with a 3 s cut already loses the connection)."""
HOLDER = {"kind": "instance", "id": "partition.0"}


@pytest.fixture
def cut_server(gluster: glusterlab.GlusterServer, lab_base: str) -> Iterator[glusterlab.GlusterServer]:
    """A server of this test's own (a partition must not touch the session's), its volume at a short ping-timeout."""
    server = glusterlab.GlusterServer(base=lab_base, index=INDEX)

    def remove() -> None:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)

    remove()  # what a killed run left
    server.start()
    try:
        server.create_volume(VOLUME)
        server.cli("volume", "set", VOLUME, "network.ping-timeout", str(PING_TIMEOUT))
        yield server
    finally:
        remove()


@dataclass
class Writer:
    """The guest: ``tests/support/disk_writer.py`` in a process of its own, its rounds read as they come."""

    path: str
    errors: list[tuple[float, int]] = field(default_factory=list)
    done: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        argv = [sys.executable, "-m", "tests.support.disk_writer", self.path]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPO)
        self._thread = threading.Thread(target=self._read, name="writer-output", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            word, *values = line.split()
            if word == "ok":
                self.done.append(float(values[0]))
            else:
                self.errors.append((float(values[0]), int(values[1])))

    def works_since(self, moment: float) -> bool:
        return any(t > moment for t in self.done)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=PING_TIMEOUT * 3)  # a process stuck in FUSE I/O dies once the call returns


@dataclass
class Held:
    """The daemon holding the partitioned volume for one instance whose disk the writer uses."""

    daemon: DaemonProcess
    client: Client
    volume: dict[str, Any]
    spec: VolumeSpec
    writer: Writer
    pid: int
    mount: list[tuple[int, str]]

    def mount_status(self) -> dict[str, Any]:
        [status] = [m for m in self.client.status()["mounts"] if m["volume"]["volume"] == VOLUME]
        return dict(status)

    def counter(self, name: str) -> float:
        return metric(self.client.metrics(), f"ganeti_gluster_{name}_total", volume=self.spec.key) or 0.0

    def states_until(self, what: str, done: Callable[[dict[str, Any]], bool], deadline: float) -> set[str]:
        """Poll the status until ``done`` says so; the states seen on the way."""
        seen: set[str] = set()

        def look() -> bool:
            status = self.mount_status()
            seen.add(status["state"])
            return done(status)

        glusterlab.poll(what, look, deadline=deadline, interval=0.1)
        return seen


@pytest.fixture
def held(make_daemon: Callable[..., DaemonProcess], cut_server: glusterlab.GlusterServer) -> Iterator[Held]:
    daemon = make_daemon()
    client = daemon.client(timeout=PING_TIMEOUT * 4)
    spec = VolumeSpec(host=cut_server.address, port=24007, volume=VOLUME)
    volume = spec.to_json()
    client.acquire(volume, HOLDER)
    name = f"ganeti/partition-{uuid.uuid4().hex[:8]}.0"
    client.disk_create(volume, name, 4)
    writer = Writer(os.path.join(daemon.storage_dir, name))
    glusterlab.poll("the writer's first round", lambda: writer.done, deadline=10)
    try:
        yield Held(daemon, client, volume, spec, writer, fuse_client_pid(daemon.storage_dir), glusterfs_stack(daemon.storage_dir))
    finally:
        cut_server.heal()
        writer.close()


def assert_same_mount_and_nothing_broken(held: Held) -> None:
    assert fuse_client_pid(held.daemon.storage_dir) == held.pid, "the same FUSE client: never a second one"
    assert glusterfs_stack(held.daemon.storage_dir) == held.mount, "the same mount: never detached, never mounted again"
    status = held.mount_status()
    assert status["broken_holders"] == [] and status["action"] is None
    assert status["client"] is not None and status["client"]["pid"] == held.pid
    assert status["holders"] == [HOLDER]
    assert held.counter("mount_attempts") == 1.0 and held.counter("dead_mount_recoveries") == 0.0


def test_a_cut_under_the_ping_timeout_only_stalls_the_writer(held: Held, cut_server: glusterlab.GlusterServer, figure: Any) -> None:
    cut_server.cut()
    cut_at = time.monotonic()
    seen = held.states_until("the short cut to pass", lambda _: time.monotonic() - cut_at >= UNDER, PING_TIMEOUT)
    cut_server.heal()
    healed = time.monotonic()
    glusterlab.poll("the writer to work again", lambda: held.writer.works_since(healed), deadline=PING_TIMEOUT * 2)
    seen |= held.states_until("the mount to answer", lambda s: s["state"] == "mounted", PING_TIMEOUT * 2)
    assert held.writer.errors == [], "under the ping-timeout a guest sees no error"
    assert seen <= {"mounted", "hung"}, f"never dead, never disconnected: {seen}"
    assert_same_mount_and_nothing_broken(held)
    assert held.counter("mount_disconnections") == 0.0
    figure("partition_under_ping_timeout", ping_timeout_s=PING_TIMEOUT, cut_s=UNDER, writer_errors=0, states="+".join(sorted(seen)))


def test_a_cut_over_the_ping_timeout_is_disconnected_not_dead_and_heals_by_itself(
    held: Held, cut_server: glusterlab.GlusterServer, figure: Any
) -> None:
    second = {"kind": "instance", "id": "partition.1"}
    held.client.acquire(held.volume, second)
    cut_server.cut()
    cut_at = time.monotonic()
    seen = held.states_until("the daemon to find the mount disconnected", lambda s: s["state"] == "disconnected", PING_TIMEOUT * 4)
    found = time.monotonic() - cut_at
    status = held.mount_status()
    assert status["unreachable_servers"] == [cut_server.address], status
    assert isinstance(status["disconnected_since"], float) and "reconnects by itself" in (status["last_error"] or "")

    asked = time.monotonic()
    with pytest.raises(Disconnected) as refused:
        held.client.acquire(held.volume, {"kind": "instance", "id": "partition.new"})
    assert cut_server.address in refused.value.message and refused.value.data["servers"] == [cut_server.address]
    with pytest.raises(Disconnected):
        held.client.disk_info(held.volume, "ganeti/partition-none.0")
    refused_in = time.monotonic() - asked
    assert refused_in < PING_TIMEOUT, f"a refusal is fast ({refused_in:.1f} s), not a wait for the partition to end"
    assert held.client.release(held.volume, second)["known"] is True, "release works while disconnected"
    text = held.client.metrics()
    assert metric(text, "ganeti_gluster_mount_state", volume=held.spec.key, state="disconnected") == 1.0
    assert (metric(text, "ganeti_gluster_mount_disconnected_seconds", volume=held.spec.key) or 0.0) > 0.0
    seen |= held.states_until("a second probe round", lambda _: time.monotonic() - cut_at >= found + 2, 10)
    outage = time.monotonic() - cut_at

    cut_server.heal()
    healed = time.monotonic()
    seen |= held.states_until("the mount to be mounted again by itself", lambda s: s["state"] == "mounted", PING_TIMEOUT * 10)
    remounted = time.monotonic() - healed
    glusterlab.poll("the writer's descriptor to work again", lambda: held.writer.works_since(healed), deadline=PING_TIMEOUT * 10)
    resumed = min(t for t in held.writer.done if t > healed) - healed
    assert "dead" not in seen and "missing" not in seen, f"never dead: {seen}"
    assert held.writer.errors, "over the ping-timeout the writer does see ENOTCONN (a guest's disk error policy decides)"
    assert all(t < healed + PING_TIMEOUT * 10 for t, _ in held.writer.errors)
    assert_same_mount_and_nothing_broken(held)
    after = held.mount_status()
    assert after["disconnected_since"] is None and after["unreachable_servers"] == [] and after["last_error"] is None
    assert held.counter("mount_disconnections") == 1.0
    assert "is disconnected: its FUSE client" in held.daemon.log() and "reconnected after" in held.daemon.log()
    assert "detaching it" not in held.daemon.log()
    held.client.acquire(held.volume, second)
    held.client.release(held.volume, second)
    figure(
        "partition_over_ping_timeout",
        ping_timeout_s=PING_TIMEOUT,
        outage_s=round(outage, 1),
        disconnected_found_s=round(found, 1),
        refused_in_s=round(refused_in, 2),
        mounted_again_s=round(remounted, 1),
        writer_resumed_s=round(resumed, 1),
        writer_errors=len(held.writer.errors),
        states="+".join(sorted(seen)),
    )

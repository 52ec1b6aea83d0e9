"""Scenario: a node cut off from all three Gluster servers longer than the volume's ping-timeout.

The lab's volume runs with ``group virt`` (ping-timeout 20 s), as VM volumes are run.  node1's
traffic to and from the servers is dropped silently (nftables in its network namespace, both ways)
while a KVM guest on node1 writes and reads its Gluster disk, then let through again.  The FUSE
client lives throughout: the daemon must call the mount disconnected (never dead), keep the mount
and its client, mark no instance broken, and see it mounted again by itself; the guest, which met
I/O errors during the outage, goes on without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

import pytest

from lab import cluster, net
from lab.cluster import Lab
from lab.node import Node
from tests.support.glusterlab import poll

from .ganeti import UNIT, Ganeti

pytestmark = pytest.mark.timeout(900)
PING_TIMEOUT = 20  # `group virt`'s network.ping-timeout


@pytest.fixture(scope="module")
def cutk(lab: Lab, g: Ganeti) -> Iterator[str]:
    with g.kvm_instance("cutk", lab.nodes[0]) as name:
        yield name


def the_mount(node: Node) -> dict[str, Any]:
    [mount] = cast(list[dict[str, Any]], node.daemon_status()["mounts"])
    return mount


def test_a_partition_longer_than_the_ping_timeout_heals_without_an_instance_restart(lab: Lab, g: Ganeti, cutk: str) -> None:
    n1 = lab.nodes[0]
    start = g.guest_progress(cutk)
    g.assert_guest_io_ok(cutk, start)
    ids, client, holders, daemon = n1.gluster_mount_ids(), n1.client_pid(), sorted(n1.holders()), n1.main_pid(UNIT)
    since = n1.run("date", "+%s").stdout.strip()
    net.cut(n1.host, [s.host for s in lab.servers])
    cut_at = time.monotonic()
    try:
        found = poll(
            "node1's daemon to find its mount disconnected",
            lambda: (m := the_mount(n1))["state"] == "disconnected" and m,
            deadline=PING_TIMEOUT * 5,
            interval=1,
        )
        disconnected_after = time.monotonic() - cut_at
        assert found["unreachable_servers"] == sorted(s.address for s in lab.servers), found
        assert found["broken_holders"] == [] and found["client"]["pid"] == client, found
        said = n1.run("gluster-mountctl", "status", check=False)
        assert said.returncode == 1 and "cannot reach" in said.stdout and "reconnects by itself" in said.stdout, said.stdout
        refused = g.fails("gnt-instance", "add", "-t", "gluster", "-o", "noop", "--disk", "0:size=1G", "-B", "memory=128M",
                          "-H", "fake", "-n", n1.host.fqdn, "--no-name-check", "--no-ip-check", "--no-nics", "cutnew")  # fmt: skip
        assert "disconnected" in refused, refused
    finally:
        net.heal(n1.host)
    healed = time.monotonic()
    poll("node1's mount to be mounted again by itself", lambda: the_mount(n1)["state"] == "mounted", deadline=PING_TIMEOUT * 6, interval=1)
    mounted_after = time.monotonic() - healed
    resumed = guest_goes_on(g, cutk, start)
    resumed_after = time.monotonic() - healed
    assert n1.gluster_mount_ids() == ids, "the same mount: never detached, never mounted again"
    assert n1.client_pid() == client and n1.main_pid(UNIT) == daemon
    assert sorted(n1.holders()) == holders and the_mount(n1)["broken_holders"] == [], g.explain()
    journal = n1.run("journalctl", "-u", UNIT, "--since", f"@{since}", "--no-pager", "-o", "cat").stdout
    assert "is disconnected: its FUSE client" in journal and "reconnected after" in journal, journal[-3000:]
    assert "detaching" not in journal and "mounted 10." not in journal and "failed under its holders" not in journal, journal[-3000:]
    g.assert_only_primary_holds(cutk, n1)
    cluster.record(
        "partition_node1_all_servers",
        f"found disconnected after {disconnected_after:.0f} s, mounted again {mounted_after:.0f} s after the heal, "
        f"guest going on {resumed_after:.0f} s after it ({resumed[1] - start[1]} failed rounds during the outage), no restart",
    )


def guest_goes_on(g: Ganeti, name: str, before: tuple[int, int, str]) -> tuple[int, int, str]:
    """The guest, same boot, verifies rounds again: four reports in a row without a new error.

    (QEMU reports the outage's errors to the guest, whose rounds fail while it lasts; none may fail after.)
    """

    def steady() -> tuple[int, int, str] | None:
        reports = [r for r in g.console(name) if r[0] > before[0]]
        last = reports[-4:]
        if len(last) == 4 and len({r[1] for r in last}) == 1 and last[-1][0] >= last[0][0] + 3:
            return last[-1]
        return None

    try:
        last = poll(f"{name}'s guest to verify rounds again", steady, deadline=PING_TIMEOUT * 6, interval=1)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{g.guest_report(name, g.console(name), 'after the partition healed')}") from None
    assert last[2] == before[2], f"{name}'s guest rebooted: {before} -> {last}"
    return last

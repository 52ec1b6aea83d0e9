"""Scenario e: faults while a KVM guest does I/O on its Gluster disk."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab import gluster
from lab.cluster import Lab
from lab.node import Node
from tests.support.glusterlab import poll

from .ganeti import UNIT, Ganeti

pytestmark = pytest.mark.timeout(1200)


def wait_active(node: Node, not_pid: int) -> int:
    def ready() -> int | None:
        if node.run("systemctl", "is-active", UNIT, check=False).stdout.strip() != "active":
            return None
        pid = node.main_pid(UNIT)
        return pid if pid not in (0, not_pid) else None

    return poll(f"{node.name}'s daemon back under a new PID", ready, deadline=60, interval=0.3)


@pytest.fixture(scope="module")
def faultk(lab: Lab, g: Ganeti) -> Iterator[str]:
    with g.kvm_instance("faultk", lab.nodes[0]) as name:
        yield name


@pytest.mark.parametrize("how", ["systemctl restart", "kill -9"])
def test_daemon_restart_keeps_guest_io_and_mount(lab: Lab, g: Ganeti, faultk: str, how: str) -> None:
    n1 = lab.nodes[0]
    seen = g.guest_progress(faultk)
    before_ids, before_holders, pid = n1.gluster_mount_ids(), sorted(n1.holders()), n1.main_pid(UNIT)
    if how == "kill -9":
        n1.run("systemctl", "kill", "--kill-whom=main", "--signal=KILL", "ganeti-gluster-mountd")
    else:
        n1.run("systemctl", "restart", "ganeti-gluster-mountd")
    wait_active(n1, pid)
    assert n1.gluster_mount_ids() == before_ids, "the same mount must be adopted"
    assert sorted(n1.holders()) == before_holders, g.explain()
    g.assert_only_primary_holds(faultk, n1)
    g.assert_guest_io_ok(faultk, seen, figure=f"guest_io_after_daemon_{how.replace(' ', '_')}")


def test_named_server_down(lab: Lab, g: Ganeti, faultk: str) -> None:
    """Known bug 4: with the server named in the disk parameters down, a node with no mount could not mount."""
    n2 = lab.nodes[1]
    s1, s2 = lab.servers[0], lab.servers[1]
    assert not n2.gluster_mounts(), "node2 must start without a mount for this scenario"
    seen = g.guest_progress(faultk)
    gluster.stop_one(s1)
    try:
        seen = g.assert_guest_io_ok(faultk, seen, figure="guest_io_with_server1_down")
        try:
            g.add("faultnew", n2)
            g.assert_only_primary_holds("faultnew", n2)
        finally:
            if "faultnew" in g.instances():
                g.remove("faultnew")
        g.assert_guest_io_ok(faultk, seen)
    finally:
        gluster.restart_one(s1, s2)
    g.assert_guest_io_ok(faultk, g.guest_progress(faultk), figure="guest_io_after_server1_back")


def test_daemon_stopped_means_no_gluster_operation(lab: Lab, g: Ganeti, faultk: str) -> None:
    _, n2 = lab.nodes
    n2.run("systemctl", "stop", "ganeti-gluster-mountd")
    try:
        out = g.fails("gnt-instance", "add", "-t", "gluster", "-o", "noop", "--disk", "0:size=1G", "-B", "memory=128M",
                      "-H", "fake", "-n", n2.host.fqdn, "--no-name-check", "--no-ip-check", "--no-nics", "nodaemon")  # fmt: skip
        assert "ganeti-gluster-mountd is not running" in out, out
        assert not n2.gluster_mounts(), "nothing may be mounted behind the daemon's back"
        # Ganeti reports a node's storage failure as a warning and lists no row for it.
        out = g.run("gnt-node", "list-storage", "-t", "gluster", "--no-headers", n2.host.fqdn)
        assert "ganeti-gluster-mountd is not running" in out, out
        assert n2.host.fqdn not in out.replace(f"from node {n2.host.fqdn}", ""), f"no storage row for {n2.name}:\n{out}"
        assert not n2.gluster_mounts()
    finally:
        n2.run("systemctl", "start", "ganeti-gluster-mountd")
        if "nodaemon" in g.instances():
            g.remove("nodaemon")


def test_node_reboot_voids_holders_and_start_brings_instance_back(lab: Lab, g: Ganeti) -> None:
    _, n2 = lab.nodes
    g.add("bootk", n2, hv="kvm")
    try:
        first = g.guest_progress("bootk")
        holder = g.disk_holder(g.uuid("bootk"))
        old_boot = n2.boot_id()
        n2.reboot()
        assert n2.boot_id() != old_boot
        wait_active(n2, not_pid=0)  # any PID: the node booted anew

        def started() -> str | None:  # the daemon's start line follows READY=1, and journald lags a little
            text = n2.run("journalctl", "-b", "-u", UNIT, "--no-pager").stdout
            return text if "holder(s) restored" in text else None

        boot_log = poll("node2's daemon to log its start", started, deadline=30, interval=0.5)
        assert f"held by {holder}: dropping that void holder" in boot_log, f"holders of the old boot must be void\n{boot_log}"
        assert "0 holder(s) restored" in boot_log, boot_log
        # Ganeti's watcher (cron, every 5 minutes on the master) may restart the instance on its own at
        # any moment from here: then the holder is back, a new one of this boot.  While it is not
        # (read before and after the mount table), nothing may be mounted.
        held_before = holder in n2.holders()
        mounts = n2.gluster_mounts()
        if not held_before and holder not in n2.holders():
            assert mounts == [], f"nothing held on node2 after its reboot, yet {mounts} is mounted\n{g.explain()}"
        poll("Ganeti to see node2 again", lambda: g.lab.gnt("gnt-node", "list", check=False).returncode == 0, deadline=60)
        g.run("gnt-instance", "startup", "--force", "bootk")
        g.assert_only_primary_holds("bootk", n2)
        again = g.guest_progress("bootk")
        assert again[2] != first[2]
        g.assert_guest_io_ok("bootk", again)
    finally:
        g.remove("bootk")

"""Scenario a: the lifecycle of one -t gluster instance, fake hypervisor then kvm."""

from __future__ import annotations

import pytest

from lab import cluster, config
from lab.cluster import Lab

from .ganeti import MOUNTPOINT, SHUTDOWN_TIMEOUT, Ganeti, mountctl_disk_size

pytestmark = pytest.mark.timeout(900)
# Ganeti 3.0 checks the new name unless told not to, and asks first (--force); 3.1 checks nothing unless asked and has no --force.
RENAME_OPTIONS = ("--force", "--no-name-check", "--no-ip-check") if config.NODE_RELEASE.ganeti == "3.0" else ()


def test_lifecycle_fake(lab: Lab, g: Ganeti) -> None:
    n1, n2 = lab.nodes
    seconds = g.add("life1", n1)
    cluster.record("instance_add_to_running_fake_s", round(seconds, 1))
    uuid = g.uuid("life1")
    g.assert_only_primary_holds("life1", n1)
    assert not n2.gluster_mounts(), g.explain()
    assert len(g.brick_file(uuid)) == 3, "the disk must be on all three bricks"
    with open(g.brick_file(uuid)[0], "rb") as f:
        assert f.read(64).startswith(b"lab noop os: life1"), "the OS create script must have written the disk"

    g.run("gnt-instance", "reboot", "life1")
    assert g.status("life1") == "running"
    g.assert_only_primary_holds("life1", n1)

    info = g.run("gnt-instance", "info", "life1")
    assert "gluster" in info
    g.assert_only_primary_holds("life1", n1)

    g.run("gnt-instance", "shutdown", f"--timeout={SHUTDOWN_TIMEOUT}", "life1")
    assert g.status("life1") == "ADMIN_down"
    g.assert_nothing_for(uuid)


def test_info_of_stopped_instance_leaves_nothing(lab: Lab, g: Ganeti) -> None:
    """Known bug 6: gnt-instance info of a stopped instance mounted the volume and pinned it."""
    info = g.run("gnt-instance", "info", "life1")
    assert "life1" in info
    g.assert_nothing_for(g.uuid("life1"))


def test_grow_and_activate_disks(lab: Lab, g: Ganeti) -> None:
    n1, _ = lab.nodes
    uuid = g.uuid("life1")
    g.run("gnt-instance", "grow-disk", "life1", "0", "512M")
    assert "1536" in g.run("gnt-instance", "list", "--no-headers", "-o", "disk.sizes", "life1")
    assert mountctl_disk_size(n1, uuid) == 1536 << 20
    g.assert_nothing_for(uuid)

    out = g.run("gnt-instance", "activate-disks", "life1")
    assert f"{MOUNTPOINT.replace('/run', '/var/run')}/ganeti/{uuid}.0" in out or f"ganeti/{uuid}.0" in out, out
    g.assert_only_primary_holds("life1", n1)
    g.run("gnt-instance", "deactivate-disks", "life1")
    g.assert_nothing_for(uuid)


def test_rename(lab: Lab, g: Ganeti) -> None:
    uuid = g.uuid("life1")
    g.run("gnt-instance", "rename", *RENAME_OPTIONS, "life1", "life1b")
    assert g.uuid("life1b") == uuid
    assert len(g.brick_file(uuid)) == 3, "the disk is named by uuid: it stays"
    g.assert_nothing_for(uuid)


def test_start_info_running_and_list_storage(lab: Lab, g: Ganeti) -> None:
    n1, n2 = lab.nodes
    g.run("gnt-instance", "startup", "life1b")
    assert g.status("life1b") == "running"
    g.run("gnt-instance", "info", "life1b")
    g.assert_only_primary_holds("life1b", n1)

    # Known bug 3: on the node using the volume, list-storage must report it.
    out = g.run("gnt-node", "list-storage", "-t", "gluster", "--no-headers", "--units=m", "-o", "node,name,size,free", n1.host.fqdn)
    # A row with numbers, not a warning naming the same node and path (Ganeti's list-storage warns, and exits 0).
    rows = [line.split() for line in out.splitlines() if line.split()[:2] == [n1.host.fqdn, config.STORAGE_DIR]]
    assert len(rows) == 1 and len(rows[0]) == 4, out
    size, free = (float(v.rstrip("M")) for v in rows[0][2:])
    assert size > 0 and 0 < free <= size, out
    assert "not in use here" not in out and "rror" not in out, out
    # On a node not using it: no error for the cluster, and nothing mounted behind its back.
    r = lab.gnt("gnt-node", "list-storage", "-t", "gluster", "--no-headers", n2.host.fqdn, check=False)
    assert not n2.gluster_mounts() and not n2.holders(), g.explain()
    assert r.returncode == 0, f"list-storage on a node not using the volume must not fail:\n{r.stdout}{r.stderr}"


def test_cluster_verify_clean(lab: Lab, g: Ganeti) -> None:
    out = g.run("gnt-cluster", "verify", "--ignore-errors=ENODESETUP")
    assert "ERROR:" not in out, out
    out = g.run("gnt-cluster", "verify-disks")
    assert "ERROR" not in out and "not been activated" not in out, out


def test_remove(lab: Lab, g: Ganeti) -> None:
    uuid = g.uuid("life1b")
    g.remove("life1b")
    assert "life1b" not in g.instances()
    assert g.brick_file(uuid) == [], "the disk file must be gone from every brick"
    g.assert_nothing_for(uuid)


def test_lifecycle_kvm(lab: Lab, g: Ganeti) -> None:
    n2 = lab.nodes[1]
    seconds = g.add("kvm1", n2, hv="kvm")
    cluster.record("instance_add_to_running_kvm_s", round(seconds, 1))
    uuid = g.uuid("kvm1")
    g.assert_only_primary_holds("kvm1", n2)
    first = g.guest_progress("kvm1")
    g.assert_guest_io_ok("kvm1", first)
    g.run("gnt-instance", "shutdown", f"--timeout={SHUTDOWN_TIMEOUT}", "kvm1")
    g.assert_nothing_for(uuid)
    g.run("gnt-instance", "startup", "kvm1")
    g.assert_only_primary_holds("kvm1", n2)
    again = g.guest_progress("kvm1")
    assert again[2] != first[2], "a new boot of the guest after stop/start"
    g.assert_guest_io_ok("kvm1", again)
    g.remove("kvm1")
    g.assert_nothing_for(uuid)

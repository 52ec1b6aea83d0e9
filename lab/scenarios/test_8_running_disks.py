"""What Ganeti does to a running kvm guest's gluster disk, and what the daemon does with it.

Ganeti 3.1 changed three things here: QEMU attaches every disk with ``-blockdev``
(3.0: ``-drive``), ``grow-disk`` tells the running QEMU the new size (3.0 grows
only the file: the guest sees it at its next start), and ``gnt-instance modify
--disk add`` hotplugs the new disk into a running guest by default.  Through all
of it the daemon keeps one mount and one holder per disk.
"""

from __future__ import annotations

import pytest

from lab import config
from lab.cluster import Lab
from tests.support.glusterlab import poll

from .ganeti import MOUNTPOINT, Ganeti, kvm_fixture, mountctl_disk_size

pytestmark = pytest.mark.timeout(900)

GANETI = config.NODE_RELEASE.ganeti
MiB = 1 << 20


runk = kvm_fixture("runk")


def test_qemu_opens_the_disk_on_the_daemons_mount(lab: Lab, g: Ganeti, runk: str) -> None:
    n1 = lab.nodes[0]
    uuid = g.uuid(runk)
    cmdline = g.qemu_cmdline(runk)
    if GANETI == "3.0":
        assert "-drive file=" in cmdline, cmdline
    else:
        assert "-blockdev driver=raw," in cmdline and "file.driver=file," in cmdline and "-drive file=" not in cmdline, cmdline
    link = f"/var/run/ganeti/instance-disks/{runk}:0"
    assert link in cmdline, cmdline
    assert n1.run("readlink", "-f", link).stdout.strip() == f"{MOUNTPOINT}/ganeti/{uuid}.0"
    g.assert_only_primary_holds(runk, n1)


def test_grow_disk_of_a_running_guest(lab: Lab, g: Ganeti, runk: str) -> None:
    n1 = lab.nodes[0]
    uuid = g.uuid(runk)
    seen = g.guest_progress(runk)
    before = g.guest_sectors(runk)
    ids, holders = n1.gluster_mount_ids(), sorted(n1.holders())
    out = g.run("gnt-instance", "grow-disk", runk, "0", "256M")
    grown = mountctl_disk_size(n1, uuid)
    assert grown == before * 512 + 256 * MiB, f"the daemon grew the file: {grown}\n{out}"
    if GANETI == "3.0":  # the file only: QEMU keeps the size it opened
        assert g.guest_sectors(runk) == before
    else:  # QMP block_resize on the running QEMU: the guest's kernel sees the new size
        poll("the guest to see its grown disk", lambda: g.guest_sectors(runk) * 512 == grown, deadline=60)
    assert n1.gluster_mount_ids() == ids and sorted(n1.holders()) == holders, g.explain()
    g.assert_guest_io_ok(runk, seen, figure=f"guest_io_across_grow_disk_ganeti_{GANETI}")


@pytest.mark.skipif(GANETI == "3.0", reason="Ganeti 3.0 does not hotplug by default (its --hotplug is not what operators run)")
def test_hotplug_a_disk_into_a_running_guest_and_out(lab: Lab, g: Ganeti, runk: str) -> None:
    n1 = lab.nodes[0]
    uuid = g.uuid(runk)
    seen = g.guest_progress(runk)
    ids = n1.gluster_mount_ids()
    added = g.run("gnt-instance", "modify", "--disk", "add:size=1G", runk)
    second = g.disk_holder(uuid, 1)
    assert n1.holders().count(second) == 1, f"{added}\n{g.explain()}"
    assert n1.gluster_mount_ids() == ids, "the new disk on the same mount"
    assert len(g.brick_file(uuid, 1)) == 3
    seen = g.assert_guest_io_ok(runk, seen, figure="guest_io_across_disk_hotplug")
    removed = g.run("gnt-instance", "modify", "--disk", "1:remove", runk)
    assert second not in n1.holders(), f"{removed}\n{g.explain()}"
    assert g.brick_file(uuid, 1) == [], "the hot-removed disk's file is gone from every brick"
    assert n1.gluster_mount_ids() == ids and g.disk_holder(uuid, 0) in n1.holders()
    g.assert_guest_io_ok(runk, seen, figure="guest_io_across_disk_hot_remove")

"""Scenario d: access=userspace, a KVM guest whose QEMU opens the gluster:// URI itself.

Ganeti 3.0 hands QEMU the URI (``-drive file=gluster://...``).  Ganeti 3.1.0~rc2
cannot start such a guest at all: its ``-blockdev`` string for the gluster driver
carries the server list as Python's repr of a list (``file.server=[{'type':
'inet', ...}]``, ``hv_kvm/kvm_utils.py``'s FlattenDict flattens dicts only), which
QEMU refuses.  What the daemon does then: it holds the disk while Ganeti keeps it
assembled after the failed start, and gives it back when the instance goes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab import config
from lab.cluster import Lab

from .ganeti import Ganeti

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def userspace(g: Ganeti) -> Iterator[None]:
    g.run("gnt-cluster", "modify", "-D", "gluster:access=userspace")
    yield
    g.run("gnt-cluster", "modify", "-D", "gluster:access=kernelspace")


@pytest.mark.skipif(config.NODE_RELEASE.ganeti != "3.0", reason="Ganeti 3.1 cannot start a userspace gluster guest (below)")
def test_userspace_guest(lab: Lab, g: Ganeti, userspace: None) -> None:
    _, n2 = lab.nodes
    g.add("userk", n2, hv="kvm")
    try:
        uuid = g.uuid("userk")
        cmdline = g.qemu_cmdline("userk")
        uri = f"gluster://{config.SERVERS[0].address}:{config.GLUSTER_PORT}/{config.VOLUME}/ganeti/{uuid}.0"
        assert uri in cmdline, f"QEMU must open {uri}:\n{cmdline}"
        g.assert_guest_io_ok("userk", g.guest_progress("userk"))
        assert len(g.brick_file(uuid)) == 3
    finally:
        g.remove("userk")
    g.assert_nothing_for(uuid)


@pytest.mark.skipif(config.NODE_RELEASE.ganeti == "3.0", reason="Ganeti 3.0 passes QEMU the URI as it is")
def test_userspace_guest_refused_by_qemu_under_ganeti_31(lab: Lab, g: Ganeti, userspace: None) -> None:
    _, n2 = lab.nodes
    try:
        out = g.fails("gnt-instance", "add", "-t", "gluster", "-o", "noop", "--disk", "0:size=1G", "-B", "memory=128M,vcpus=1",
                      "-H", "kvm", "-n", n2.host.fqdn, "--no-nics", "userk")  # fmt: skip
        assert "file.driver=gluster,file.server=[{" in out, out
        uuid = g.uuid("userk")  # Ganeti keeps the instance, its disk created and still assembled on node2
        g.assert_only_primary_holds("userk", n2)
    finally:
        if "userk" in g.instances():
            g.remove("userk")
    g.assert_nothing_for(uuid)
    assert g.brick_file(uuid) == []

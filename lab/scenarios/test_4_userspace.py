"""Scenario d: access=userspace, a KVM guest whose QEMU opens the gluster:// URI itself."""

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

"""The project as installed on each node: daemon under the node's systemd, Ganeti's shim in place, unit ordering."""

from __future__ import annotations

import pytest

from lab.cluster import Lab
from lab.install import gluster_class_module

# The first scenario also pays for bringing the lab up (a cold build included).
pytestmark = pytest.mark.timeout(900)


def test_daemon_runs_under_each_nodes_systemd(lab: Lab) -> None:
    for n in lab.nodes:
        assert n.run("systemctl", "is-active", "ganeti-gluster-mountd").stdout.strip() == "active"
        assert n.daemon_status()["mounts"] == [], f"{n.name}: nothing mounted before any instance"


def test_ganeti_uses_the_shim(lab: Lab) -> None:
    for n in lab.nodes:
        assert gluster_class_module(n) == "glusterd_mgr.ganeti_storage"


def test_unit_starts_before_debians_ganeti_service(lab: Lab) -> None:
    """Known bug 5: Debian 12 and 13 have ganeti.service (no ganeti-noded.service); the unit must order before it."""
    for n in lab.nodes:
        assert n.run("systemctl", "cat", "ganeti.service", check=False).returncode == 0, "Debian runs Ganeti as ganeti.service"
        before = n.run("systemctl", "show", "-p", "Before", "--value", "ganeti-gluster-mountd").stdout.split()
        assert "ganeti.service" in before, f"{n.name}: ganeti-gluster-mountd is not ordered before ganeti.service: Before={before}"

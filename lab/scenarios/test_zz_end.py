"""Scenario f: with every instance removed, no node holds anything or has anything mounted."""

from __future__ import annotations

import pytest

from lab.cluster import Lab

from .ganeti import Ganeti

pytestmark = pytest.mark.timeout(600)


def test_every_instance_removed_nothing_left(lab: Lab, g: Ganeti) -> None:
    for name in g.instances():
        g.remove(name)
    assert g.instances() == []
    for n in lab.nodes:
        assert n.holders() == [], f"{n.name} still holds {n.holders()}\n{g.explain()}"
        assert n.gluster_mounts() == [], f"{n.name} still has {n.gluster_mounts()}\n{g.explain()}"

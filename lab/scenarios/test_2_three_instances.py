"""Scenario b: three instances on one node; removing one never unmounts the volume under the others."""

from __future__ import annotations

import pytest

from lab.cluster import Lab

from .ganeti import Ganeti

pytestmark = pytest.mark.timeout(900)


def test_remove_one_of_three_keeps_the_mount(lab: Lab, g: Ganeti) -> None:
    n1, _ = lab.nodes
    names = ("three1", "three2", "three3")
    for name in names:
        g.add(name, n1)
    uuids = {name: g.uuid(name) for name in names}
    mount_ids_before = n1.gluster_mount_ids()
    for name in names:
        g.assert_only_primary_holds(name, n1)

    g.remove("three2")
    g.assert_nothing_for(uuids["three2"])
    for name in ("three1", "three3"):
        g.assert_only_primary_holds(name, n1)
    mount_ids_after = n1.gluster_mount_ids()
    assert mount_ids_after == mount_ids_before, "the same mount must stay under the other instances"
    assert len(g.brick_file(uuids["three1"])) == 3 and len(g.brick_file(uuids["three3"])) == 3

    g.remove("three1")
    g.assert_only_primary_holds("three3", n1)
    g.remove("three3")
    for u in uuids.values():
        g.assert_nothing_for(u)

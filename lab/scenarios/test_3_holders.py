"""Scenario: holders last as long as Ganeti's use of the disk.

An instance added with ``--no-start`` (Ganeti creates, assembles and opens its
disk in the create request and never shuts it down) and a create that fails
(``recreate-disks`` over a disk file that exists) must leave nothing held or
mounted once their requests have ended; a start then holds the disk as usual.
"""

from __future__ import annotations

import pytest

from lab.cluster import Lab
from tests.support.glusterlab import poll

from .ganeti import Ganeti

pytestmark = pytest.mark.timeout(600)
PROBE = 10  # the daemon's --probe-interval: a process holder is let go at the first probe after its request


def test_an_instance_added_stopped_and_a_failed_create_hold_nothing(lab: Lab, g: Ganeti) -> None:
    n2 = lab.nodes[1]
    name = "nostart"
    g.add(name, n2, extra=("--no-start",))
    uuid = g.uuid(name)
    holder = g.disk_holder(uuid)
    try:
        poll("the create request's holders to be let go", g.no_request_holds, deadline=PROBE * 4, interval=1)
        g.assert_nothing_for(uuid)
        out = g.fails("gnt-instance", "recreate-disks", name)
        assert "exists" in out, out
        poll("the failed create's holders to be let go", g.no_request_holds, deadline=PROBE * 4, interval=1)
        g.assert_nothing_for(uuid)
        g.run("gnt-instance", "startup", name)
        g.assert_only_primary_holds(name, n2)
        assert holder in g.held(n2)
    finally:
        g.remove(name)
    poll("every request's holders to be let go", g.no_request_holds, deadline=PROBE * 4, interval=1)
    g.assert_nothing_for(uuid)

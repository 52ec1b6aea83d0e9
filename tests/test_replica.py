"""A replica-3 volume over three real servers: a mount still succeeds while the server Ganeti names is down.

Ganeti's disk parameters name one server.  The daemon learns the volume's other
servers from the graph of its first mount and offers them as
``backup-volfile-servers`` on every later one, across a restart of the daemon.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import psutil
import pytest
import pytest_twisted

from glusterd_mgr.core.holders import Holder
from glusterd_mgr.core.requests import AcquireParams, DiskRemoveParams, ReleaseParams
from glusterd_mgr.core.volfile_servers import FILE_NAME
from glusterd_mgr.core.volume import VolumeSpec
from glusterd_mgr.testing import request

from .conftest import NodeFactory
from .support import glusterlab, kernel

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(240)]

INDEXES = (11, 12, 13)  # glusterlab's address plan: far from the session server (1) and the node lab (9)
VOLUME = "gvr"
I1 = Holder("instance", "replica-test.0")


@pytest.fixture
def replica(gluster: glusterlab.GlusterServer, lab_base: str) -> Iterator[list[glusterlab.GlusterServer]]:
    """Three servers routed to each other through the host, one replica-3 volume over them."""
    with glusterlab.replica(lab_base, INDEXES, VOLUME) as servers:
        yield servers


@pytest_twisted.ensureDeferred
async def test_mount_while_the_named_server_is_down(replica: list[glusterlab.GlusterServer], nodes: NodeFactory) -> None:
    named, *others = replica
    spec = VolumeSpec(host=named.address, port=24007, volume=VOLUME)
    node = nodes.node()
    await node.start()
    assert (await node.engine.call(AcquireParams(spec, I1)))["mounted_now"] is True
    [status] = node.engine.status()
    assert status["volfile_servers"] == [s.address for s in others], "learned from the volume's own bricks"
    with open(os.path.join(nodes.state_dir, FILE_NAME)) as f:
        assert json.load(f) == {spec.key: [s.address for s in replica]}, "remembered across restarts"
    await node.engine.call(ReleaseParams(spec, I1))
    assert [source for _, source in kernel.glusterfs_stack(nodes.storage_dir)] == []
    nodes.stop(node)

    # Every process of the named server killed; its namespace stays, so its address refuses (as a crashed host
    # answers once it is back, and no packet leaves for a route the host does not have).
    for proc in glusterlab.lab_processes(named.dir):
        proc.kill()
    psutil.wait_procs(glusterlab.lab_processes(named.dir), timeout=10)
    restarted = nodes.node()
    await restarted.start()
    assert (await restarted.engine.call(AcquireParams(spec, I1)))["mounted_now"] is True, "mounted through a backup volfile server"
    assert [source for _, source in kernel.glusterfs_stack(nodes.storage_dir)] == [f"{named.address}:/{VOLUME}"]
    name = "ganeti/replica-test.0"
    created = await restarted.engine.call(request("disk.create", volume=spec, path=name, size=4))
    assert os.path.getsize(created["path"]) == 4 << 20, "the volume is usable through the other two servers"
    await restarted.engine.call(DiskRemoveParams(spec, name))
    await restarted.engine.call(ReleaseParams(spec, I1))
    assert [source for _, source in kernel.glusterfs_stack(nodes.storage_dir)] == []

"""Two nodes, one volume: a migration, then a failover of the node daemon.

Each node is its own network and mount namespace with its own daemon (see
tests/support/nodelab.py), both reaching one Gluster server over a bridge in a
namespace of its own; the host's network and mount table are never touched.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from .support import glusterlab, kernel, nodelab
from .support.glusterlab import sh

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(300)]
MiB = 1024 * 1024


def _gluster_available() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/fuse"):
        return "needs /dev/fuse"
    for tool in ("glusterd", "mount.glusterfs", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[nodelab.BridgedServer, nodelab.Node, nodelab.Node]]:
    why = _gluster_available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the two-node lab cannot run here: {why}")
        pytest.skip(why)
    nodelab.cleanup()
    nodes: list[nodelab.Node] = []
    try:
        nodelab.make_bridge()
        server = nodelab.BridgedServer().start()
        server.create_volume("gv0")
        nodes = [nodelab.Node(name).start() for name in nodelab.NODE_NAMES]
        yield server, nodes[0], nodes[1]
    finally:
        for node in nodes:
            if node.daemon is not None:
                print(f"--- node {node.name} daemon log (tail) ---\n{node.daemon.log()}")
        nodelab.cleanup()


def test_migration_then_daemon_failover(lab: tuple[nodelab.BridgedServer, nodelab.Node, nodelab.Node]) -> None:
    server, a, b = lab
    assert a.daemon is not None and b.daemon is not None
    vol = {"host": server.address, "port": 24007, "volume": "gv0"}
    instance = str(uuid.uuid4())
    path = f"ganeti/{instance}.0"
    holder = {"kind": "instance", "id": f"{instance}.0"}
    on_a = os.path.join(a.daemon.storage_dir, path)
    on_b = os.path.join(b.daemon.storage_dir, path)
    ca, cb = a.daemon.client(), b.daemon.client()

    # The nodes really are apart: separate mount namespaces, and no mount of theirs on the host.
    assert os.readlink(f"/proc/{a.daemon.pid}/ns/mnt") != os.readlink(f"/proc/{b.daemon.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    assert os.readlink(f"/proc/{a.daemon.pid}/ns/net") != os.readlink(f"/proc/{b.daemon.pid}/ns/net")
    for node in (a, b):
        assert node.daemon is not None
        assert os.readlink(f"/proc/{node.daemon.pid}/ns/mnt") == os.readlink(f"/proc/{node.init_pid}/ns/mnt"), "daemon in its node"

    # Node A: create the disk, take it for the instance, write a pattern through A's mount.
    assert ca.disk_create(vol, path, 16) == {"path": on_a, "size_bytes": 16 * MiB}
    assert ca.acquire(vol, holder)["mounted_now"] is True
    pattern = os.urandom(256 * 1024)
    a.run("dd", f"of={on_a}", "bs=64K", f"seek={MiB // (64 * 1024)}", "conv=notrunc,fsync", "status=none", stdin=pattern)
    assert len(kernel.glusterfs_stack(a.daemon.storage_dir, a.daemon.mountinfo_path)) == 1
    assert kernel.glusterfs_stack(b.daemon.storage_dir, b.daemon.mountinfo_path) == []
    assert kernel.glusterfs_stack(a.daemon.storage_dir) == [], "A's mount is private to node A"

    # Migrate: the target takes the disk, then the source lets go.
    assert cb.acquire(vol, holder)["mounted_now"] is True
    assert ca.release(vol, holder) == {"holders": 0, "known": True, "unmounted": True, "busy": False}
    assert kernel.glusterfs_stack(a.daemon.storage_dir, a.daemon.mountinfo_path) == [], "A unmounted"
    assert len(kernel.glusterfs_stack(b.daemon.storage_dir, b.daemon.mountinfo_path)) == 1, "B keeps its mount"
    assert {h["id"] for m in cb.status()["mounts"] for h in m["holders"]} == {holder["id"]}
    read = b.run("dd", f"if={on_b}", "bs=64K", f"skip={MiB // (64 * 1024)}", f"count={len(pattern) // (64 * 1024)}", "status=none")
    assert read == pattern, "the pattern written on A reads back intact on B"
    assert int(b.run("stat", "-c", "%s", on_b)) == 16 * MiB

    # Back to A, then A's daemon dies hard while it holds the volume; B is not affected.
    assert ca.acquire(vol, holder)["mounted_now"] is True
    before = kernel.glusterfs_stack(a.daemon.storage_dir, a.daemon.mountinfo_path)
    assert len(before) == 1
    assert cb.release(vol, holder)["unmounted"] is True
    a.daemon.kill()  # SIGKILL
    assert a.daemon.proc is not None and a.daemon.proc.returncode == -9
    assert kernel.glusterfs_stack(a.daemon.storage_dir, a.mountinfo_path) == before, "the mount outlives the daemon"
    a.daemon.start()  # in the same node namespaces
    [mount] = ca.status()["mounts"]
    assert mount["state"] == "mounted" and mount["mountpoint"] == a.daemon.storage_dir
    assert [h["id"] for h in mount["holders"]] == [holder["id"]], "holders come back from the journal"
    assert kernel.glusterfs_stack(a.daemon.storage_dir, a.daemon.mountinfo_path) == before, "the same single mount, adopted"
    attempts = [line for line in ca.metrics().splitlines() if line.startswith("ganeti_gluster_mount_attempts_total{")]
    assert all(line.endswith(" 0.0") for line in attempts), f"no mount after the restart: {attempts}"
    read = a.run("dd", f"if={on_a}", "bs=64K", f"skip={MiB // (64 * 1024)}", f"count={len(pattern) // (64 * 1024)}", "status=none")
    assert read == pattern

    # Clean end: the disk goes, the last holder leaves, A unmounts.
    assert ca.disk_remove(vol, path) == {"removed": True}
    assert ca.release(vol, holder)["unmounted"] is True
    assert kernel.glusterfs_stack(a.daemon.storage_dir, a.daemon.mountinfo_path) == []
    assert kernel.glusterfs_stack(b.daemon.storage_dir, b.daemon.mountinfo_path) == []
    # The nodes' only way out is the lab bridge: one connected route, no default route.
    for node in (a, b):
        routes = sh("ip", "-n", node.netns, "route", "show").stdout.split("\n")
        assert [r.split()[0] for r in routes if r.strip()] == [f"{glusterlab.SUBNET}.200/{nodelab.PREFIXLEN}"]

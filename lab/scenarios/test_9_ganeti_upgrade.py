"""The upgrade operators make: a running Debian 12 cluster from Ganeti 3.0 to 3.1, as Ganeti documents it.

Ganeti 3.1 (bookworm-backports' ``ganeti-3.1``, ``ganeti-haskell-3.1`` and
``ganeti-htools-3.1``, fetched on the host: a node has no network) is installed
beside 3.0 on every node, then ``gnt-cluster upgrade --to 3.1`` switches the
cluster, with a kvm guest doing I/O on a gluster disk all along; then back with
``--to 3.0``.  The Ganeti-side package's file trigger puts the shim into 3.1's
tree when it is installed; no holder may be lost, no second mount made, no I/O
error counted, and after the upgrade a grow-disk and a stop/start go through the
daemon under 3.1.  Debian 13 nodes start at 3.1: skipped there.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

from lab import config
from lab.cluster import Lab
from lab.install import gluster_class_module
from lab.node import Node
from tests.support import ganeti_env

from .ganeti import SHUTDOWN_TIMEOUT, Ganeti, kvm_fixture, mountctl_disk_size

pytestmark = [
    pytest.mark.timeout(1800),
    pytest.mark.skipif(config.RELEASE != "bookworm", reason="Debian 13 nodes start at Ganeti 3.1: nothing to upgrade from"),
]

PACKAGES = ("ganeti-3.1", "ganeti-haskell-3.1", "ganeti-htools-3.1")
INSIDE = "/root/lab-ganeti-3.1"

upk = kvm_fixture("upk")


def _backports_debs() -> list[str]:
    """Ganeti 3.1's packages from bookworm-backports, downloaded once into the lab's cache."""
    where = os.path.join(config.CACHE, "ganeti-3.1-backports")
    debs = sorted(glob.glob(os.path.join(where, "*.deb")))
    if len(debs) != len(PACKAGES):
        shutil.rmtree(where, ignore_errors=True)
        os.makedirs(where)
        debs = sorted(ganeti_env.download(p, "bookworm-backports", where) for p in PACKAGES)
    return debs


def _version(g: Ganeti) -> str:
    """The cluster's software version, as ``gnt-cluster version`` gives it."""
    out = g.run("gnt-cluster", "version")
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Software version"))


def _upgrade(lab: Lab, g: Ganeti, to: str) -> str:
    """``gnt-cluster upgrade --to``; its own closing ``gnt-cluster verify`` may fail only on the container's ENODESETUP.

    The lab verifies with ``--ignore-errors=ENODESETUP`` (a container has no ``/proc/sysrq-trigger``);
    the upgrade's own verify cannot be told so, and exits 1 after every step has been done.
    """
    r = lab.gnt("gnt-cluster", "upgrade", "--to", to, check=False, timeout=1200)
    out = r.stdout + r.stderr
    if r.returncode != 0:
        errors = [line for line in out.splitlines() if "ERROR:" in line]
        assert "Unpausing the watcher." in out and errors, f"gnt-cluster upgrade --to {to} stopped half-way:\n{out}"
        assert all("node setup error: The procfs filesystem" in line for line in errors), out
    assert _version(g).startswith(to), out
    return out


def _state(node: Node) -> tuple[list[int], list[str], int | None]:
    """What must not change on a node across the upgrade: its mounts' ids, its holders, its FUSE client."""
    holders = sorted(node.holders())
    return node.gluster_mount_ids(), holders, node.client_pid() if holders else None


def test_ganeti_31_installed_beside_30_gets_the_shim(lab: Lab, g: Ganeti, upk: str) -> None:
    seen = g.guest_progress(upk)
    before = [_state(n) for n in lab.nodes]
    debs = _backports_debs()
    for n in lab.nodes:
        os.makedirs(n.path(INSIDE), exist_ok=True)
        subprocess.run(["cp", *debs, n.path(INSIDE)], check=True)
        names = " ".join(f"{INSIDE}/{os.path.basename(d)}" for d in debs)
        n.sh(f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q {names}", timeout=600)
        for version in ("3.0", "3.1"):
            assert gluster_class_module(n, version) == "glusterd_mgr.ganeti_storage", f"{n.name}: Ganeti {version}'s class"
        assert n.run("readlink", "-f", "/usr/share/ganeti/default").stdout.strip() == "/usr/share/ganeti/3.0"
    assert [_state(n) for n in lab.nodes] == before, g.explain()
    g.assert_guest_io_ok(upk, seen, figure="guest_io_while_ganeti_3_1_is_installed")


def test_gnt_cluster_upgrade_to_31_keeps_holders_mounts_and_guest_io(lab: Lab, g: Ganeti, upk: str) -> None:
    n1 = lab.nodes[0]
    seen = g.guest_progress(upk)
    before = [_state(n) for n in lab.nodes]
    out = _upgrade(lab, g, "3.1")
    for n in lab.nodes:
        assert n.run("readlink", "-f", "/usr/share/ganeti/default").stdout.strip() == "/usr/share/ganeti/3.1"
    assert [_state(n) for n in lab.nodes] == before, f"{out}\n{g.explain()}"
    seen = g.assert_guest_io_ok(upk, seen, figure="guest_io_across_gnt_cluster_upgrade_to_3_1", context=out)
    # Under 3.1, every gluster operation still goes through the daemon: a grow, a stop and a start.
    uuid = g.uuid(upk)
    size = mountctl_disk_size(n1, uuid)
    g.run("gnt-instance", "grow-disk", upk, "0", "128M")
    assert mountctl_disk_size(n1, uuid) == size + (128 << 20)
    g.run("gnt-instance", "shutdown", f"--timeout={SHUTDOWN_TIMEOUT}", upk)
    g.assert_nothing_for(uuid)
    g.run("gnt-instance", "startup", upk)
    g.assert_only_primary_holds(upk, n1)
    g.assert_guest_io_ok(upk, g.guest_progress(upk), figure="guest_io_after_restart_under_ganeti_3_1")


def test_gnt_cluster_upgrade_back_to_30(lab: Lab, g: Ganeti, upk: str) -> None:
    seen = g.guest_progress(upk)
    before = [_state(n) for n in lab.nodes]
    out = _upgrade(lab, g, "3.0")
    assert [_state(n) for n in lab.nodes] == before, g.explain()
    g.assert_guest_io_ok(upk, seen, figure="guest_io_across_gnt_cluster_upgrade_back_to_3_0", context=out)

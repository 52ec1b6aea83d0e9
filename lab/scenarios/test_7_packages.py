"""Issue 12 on a real node: upgrading the packages under a running guest, removing and reinstalling them."""

from __future__ import annotations

import os
import subprocess

import pytest

from lab import config
from lab.cluster import Lab
from lab.install import build_debs, gluster_class_module
from lab.node import Node

from .ganeti import UNIT, Ganeti, kvm_fixture
from .test_5_faults import wait_active

pytestmark = pytest.mark.timeout(1200)

GANETI_MODULE = f"{config.NODE_RELEASE.ganeti_dir}/ganeti/storage/gluster.py"


def _newer_debs() -> list[str]:
    """The committed tree again as a newer version: what an upgrade installs."""
    return build_debs("debs-upgrade", "--version", "99.0+lab1")


def _apt(node: Node, *args: str) -> str:
    return node.sh("DEBIAN_FRONTEND=noninteractive apt-get -y -q " + " ".join(args)).stdout


pkgk = kvm_fixture("pkgk")


def test_upgrade_keeps_mount_holders_and_guest_io(lab: Lab, g: Ganeti, pkgk: str) -> None:
    n1 = lab.nodes[0]
    seen = g.guest_progress(pkgk)
    ids, holders, pid, client = n1.gluster_mount_ids(), sorted(n1.holders()), n1.main_pid(UNIT), n1.client_pid()
    inside = "/root/lab-upgrade"
    os.makedirs(n1.path(inside), exist_ok=True)
    names = []
    for deb in _newer_debs():
        subprocess.run(["cp", deb, n1.path(inside)], check=True)
        names.append(f"{inside}/{os.path.basename(deb)}")
    _apt(n1, "install", *names)
    assert "99.0+lab1" in n1.run("dpkg-query", "-W", "-f=${Version}", "ganeti-gluster-mountd").stdout
    wait_active(n1, pid)  # restarted after the upgrade, never stopped before the unpack
    assert n1.gluster_mount_ids() == ids, "the same mount, adopted by the new daemon"
    assert n1.client_pid() == client, "the same FUSE client"
    assert sorted(n1.holders()) == holders, g.explain()
    assert gluster_class_module(n1) == "glusterd_mgr.ganeti_storage"
    g.assert_guest_io_ok(pkgk, seen, figure="guest_io_across_package_upgrade")


def test_remove_leaves_mounts_restores_ganeti_and_reinstall_adopts(lab: Lab, g: Ganeti, pkgk: str) -> None:
    n1 = lab.nodes[0]
    seen = g.guest_progress(pkgk)
    ids, holders, client = n1.gluster_mount_ids(), sorted(n1.holders()), n1.client_pid()
    _apt(n1, "remove", "ganeti-gluster-mountd-ganeti", "ganeti-gluster-mountd")
    assert n1.run("systemctl", "is-active", "ganeti-gluster-mountd", check=False).stdout.strip() != "active"
    assert gluster_class_module(n1) == "ganeti.storage.gluster", "Ganeti's own class is back"
    assert "gluster.py" not in n1.run("dpkg-divert", "--list").stdout, "no diversion left"
    owner = n1.run("dpkg", "-S", GANETI_MODULE).stdout
    assert owner.startswith(f"ganeti-{config.NODE_RELEASE.ganeti}:"), f"Ganeti's file, owned by Ganeti again: {owner}"
    assert n1.gluster_mount_ids() == ids and n1.run("kill", "-0", str(client), check=False).returncode == 0, "removal left the mount"
    seen = g.assert_guest_io_ok(pkgk, seen, figure="guest_io_with_the_packages_removed")
    _apt(n1, "install", *[f"/root/lab-upgrade/{f}" for f in os.listdir(n1.path("/root/lab-upgrade"))])
    assert gluster_class_module(n1) == "glusterd_mgr.ganeti_storage"
    assert n1.gluster_mount_ids() == ids and n1.client_pid() == client, "reinstalled: the same mount adopted"
    assert sorted(n1.holders()) == holders, "holders kept in the state folder across remove and reinstall"
    g.assert_guest_io_ok(pkgk, seen, figure="guest_io_after_reinstall")

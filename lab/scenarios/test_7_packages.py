"""Issue 12 on a real node: upgrading the packages under a running guest, removing and reinstalling them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from lab import config
from lab.cluster import Lab
from lab.install import REPO
from lab.node import Node

from .ganeti import UNIT, Ganeti
from .test_5_faults import wait_active

pytestmark = pytest.mark.timeout(1200)

GANETI_MODULE = "/usr/share/ganeti/3.0/ganeti/storage/gluster.py"
DEV_MAP_MODULE = "cd /usr/share/ganeti/3.0 && python3 -c 'from ganeti.storage import bdev; print(bdev.DEV_MAP[\"gluster\"].__module__)'"


def _newer_debs() -> list[str]:
    """The committed tree again as a newer version: what an upgrade installs."""
    out = os.path.join(config.BASE, "debs-upgrade")
    r = subprocess.run(["bash", os.path.join(REPO, "scripts", "build-deb.sh"), "--version", "99.0+lab1", "--out", out],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return sorted(os.path.join(out, f) for f in os.listdir(out) if f.endswith(".deb"))


def _apt(node: Node, *args: str) -> str:
    return node.sh("DEBIAN_FRONTEND=noninteractive apt-get -y -q " + " ".join(args)).stdout


@pytest.fixture(scope="module")
def pkgk(lab: Lab, g: Ganeti) -> Iterator[str]:
    with g.kvm_instance("pkgk", lab.nodes[0]) as name:
        yield name


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
    assert n1.sh(DEV_MAP_MODULE).stdout.strip() == "glusterd_mgr.ganeti_storage"
    g.assert_guest_io_ok(pkgk, seen, figure="guest_io_across_package_upgrade")


def test_remove_leaves_mounts_restores_ganeti_and_reinstall_adopts(lab: Lab, g: Ganeti, pkgk: str) -> None:
    n1 = lab.nodes[0]
    seen = g.guest_progress(pkgk)
    ids, holders, client = n1.gluster_mount_ids(), sorted(n1.holders()), n1.client_pid()
    _apt(n1, "remove", "ganeti-gluster-mountd-ganeti", "ganeti-gluster-mountd")
    assert n1.run("systemctl", "is-active", "ganeti-gluster-mountd", check=False).stdout.strip() != "active"
    assert n1.sh(DEV_MAP_MODULE).stdout.strip() == "ganeti.storage.gluster", "Ganeti's own class is back"
    assert "gluster.py" not in n1.run("dpkg-divert", "--list").stdout, "no diversion left"
    assert n1.run("dpkg", "-S", GANETI_MODULE).stdout.startswith("ganeti-3.0"), "Ganeti's file, owned by Ganeti again"
    assert n1.gluster_mount_ids() == ids and n1.run("kill", "-0", str(client), check=False).returncode == 0, "removal left the mount"
    seen = g.assert_guest_io_ok(pkgk, seen, figure="guest_io_with_the_packages_removed")
    _apt(n1, "install", *[f"/root/lab-upgrade/{f}" for f in os.listdir(n1.path("/root/lab-upgrade"))])
    assert n1.sh(DEV_MAP_MODULE).stdout.strip() == "glusterd_mgr.ganeti_storage"
    assert n1.gluster_mount_ids() == ids and n1.client_pid() == client, "reinstalled: the same mount adopted"
    assert sorted(n1.holders()) == holders, "holders kept in the state folder across remove and reinstall"
    g.assert_guest_io_ok(pkgk, seen, figure="guest_io_after_reinstall")

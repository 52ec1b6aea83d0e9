"""The lab's network: a bridge inside a namespace of its own, and one veth from it into each host's namespace.

No end of any veth ever sits in the host's namespace, and no namespace has a
route out, so nothing the lab runs can reach anything but the lab.
"""

from __future__ import annotations

import subprocess

from tests.support import glusterlab

from . import config
from .config import BRIDGE_NS, Host


def sh(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout)


def namespaces() -> list[str]:
    """Every network namespace of this run's prefix that exists now."""
    out = sh("ip", "netns", "list", check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.split()]
    return [n for n in names if n.startswith(config.PREFIX + "-")]


def make_bridge() -> None:
    sh("ip", "netns", "add", BRIDGE_NS)
    sh("ip", "-n", BRIDGE_NS, "link", "set", "lo", "up")
    sh("ip", "-n", BRIDGE_NS, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", BRIDGE_NS, "link", "set", "br0", "up")


def plug(host: Host) -> None:
    """``host``'s namespace with ``eth0`` on the bridge and its address; created here."""
    sh("ip", "netns", "add", host.netns)
    port = f"p-{host.name}"
    sh("ip", "-n", BRIDGE_NS, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
    sh("ip", "-n", BRIDGE_NS, "link", "set", port, "master", "br0", "up")
    sh("ip", "-n", host.netns, "addr", "add", f"{host.address}/{config.PREFIXLEN}", "dev", "eth0")
    sh("ip", "-n", host.netns, "link", "set", "eth0", "up")
    sh("ip", "-n", host.netns, "link", "set", "lo", "up")


def local_bridge(host: Host, name: str = "xen-br0") -> None:
    """Ganeti's default NIC link, a bridge with no ports inside a node (cluster verify checks it exists)."""
    sh("ip", "-n", host.netns, "link", "add", name, "type", "bridge")
    sh("ip", "-n", host.netns, "link", "set", name, "up")


def cut(host: Host, peers: list[Host]) -> None:
    """A network partition between ``host`` and ``peers`` (``glusterlab.cut``)."""
    glusterlab.cut(host.netns, [p.address for p in peers])


def heal(host: Host) -> None:
    glusterlab.heal(host.netns)


def teardown() -> None:
    """Delete every namespace of this prefix, and what still runs in it; their veths and the bridge go with them."""
    for ns in namespaces():
        glusterlab.delete_netns(ns)

"""Every name, address and folder of one lab run, derived from a few environment variables.

Two runs can share a machine when they differ in ``GGL_PREFIX`` (namespace and
container names), ``GGL_SUBNET`` (the private /24) and ``GGL_BASE`` (folders).
The default subnet ``10.232.1`` never meets the test suite's ``10.231.x``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

PREFIX = os.environ.get("GGL_PREFIX", "ggl")
SUBNET = os.environ.get("GGL_SUBNET", "10.232.1")
BASE = os.environ.get("GGL_BASE", f"/var/tmp/{PREFIX}-lab")
CACHE = os.environ.get("GGL_CACHE", "/var/cache/ganeti-gluster-lab")
RELEASE = os.environ.get("GGL_RELEASE", "bookworm")
"""The nodes' Debian release: bookworm (Debian 12, Ganeti 3.0) or trixie (Debian 13, Ganeti 3.1)."""


@dataclass(frozen=True)
class Release:
    """What differs between the nodes of two Debian releases."""

    ganeti: str  # the Ganeti version its ``ganeti`` package installs
    unified_cgroups: bool  # its systemd needs nspawn's unified hierarchy (257 refuses the host's hybrid layout)

    @property
    def ganeti_dir(self) -> str:
        """Where that Ganeti version's Python package lives on a node."""
        return f"/usr/share/ganeti/{self.ganeti}"


RELEASES = {"bookworm": Release("3.0", unified_cgroups=False), "trixie": Release("3.1", unified_cgroups=True)}
NODE_RELEASE = RELEASES[RELEASE]
DOMAIN = f"{PREFIX}.test"  # .test is reserved: it can never resolve to anything real
PREFIXLEN = 24
BRIDGE_NS = f"{PREFIX}-br"
CLUSTER_NAME = f"cluster.{DOMAIN}"
CLUSTER_IP = f"{SUBNET}.10"
VOLUME = "gv0"
GLUSTER_PORT = 24007
STORAGE_DIR = "/var/run/ganeti/gluster"
CGROUP_ROOT = f"{PREFIX}-lab"  # subtree under /sys/fs/cgroup/{systemd,unified}


@dataclass(frozen=True)
class Host:
    """A node or a Gluster server: its short name, FQDN, address and network namespace."""

    name: str
    address: str

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{DOMAIN}"

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.name}"


NODES = (Host("node1", f"{SUBNET}.11"), Host("node2", f"{SUBNET}.12"))
SERVERS = (Host("gs1", f"{SUBNET}.21"), Host("gs2", f"{SUBNET}.22"), Host("gs3", f"{SUBNET}.23"))


def machine_name(node: Host) -> str:
    """The nspawn machine name of a node (unique per prefix)."""
    return f"{PREFIX}-{node.name}"


def node_root(node: Host) -> str:
    return os.path.join(BASE, "nodes", node.name)


def etc_hosts() -> str:
    """/etc/hosts of every node: each node, server and the cluster name."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines.append(f"{CLUSTER_IP}\t{CLUSTER_NAME} cluster")
    for h in (*NODES, *SERVERS):
        lines.append(f"{h.address}\t{h.fqdn} {h.name}")
    return "\n".join(lines) + "\n"


@contextmanager
def cache_lock(name: str) -> Iterator[None]:
    """Held while building the cache entry ``name``: two runs side by side (CI's two tracks) build it once."""
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, f"{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield

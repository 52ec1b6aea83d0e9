"""Two Ganeti "nodes" and a Gluster server on one machine, for the migration test.

Each node is a network namespace with its own mount namespace, held open by a
small init process, and runs its own daemon inside both (``nsenter``), with its
own socket, state and storage folders.  The server is glusterd in a third
network namespace.  The three are joined by a bridge that lives in a fourth
namespace, so nothing is added to the host's network: every packet stays in
namespaces this module made.  Names come from ``glusterlab.PREFIX``, addresses
from ``glusterlab.SUBNET`` and folders from ``glusterlab.DEFAULT_BASE``, so runs
with different prefixes can share the machine; ``cleanup`` removes only this
lab's namespaces and the processes under its own folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

import psutil

from . import glusterlab, kernel
from .daemon_proc import DaemonProcess
from .glusterlab import PREFIX, SUBNET, GlusterServer, poll, sh

BASE = os.path.join(glusterlab.DEFAULT_BASE, "twonode")
BRIDGE_NS = f"{PREFIX}br"
SERVER_INDEX = 9  # netns f"{PREFIX}9"; glusterlab's own servers use low indexes
NODE_NAMES = ("a", "b")
# A /29 of the run's subnet that glusterlab's veth pairs (4 * index, small indexes) never use.
SERVER_IP = f"{SUBNET}.201"
NODE_IPS = {"a": f"{SUBNET}.202", "b": f"{SUBNET}.203"}
PREFIXLEN = 29


def node_netns(name: str) -> str:
    return f"{PREFIX}n{name}"


def our_namespaces() -> list[str]:
    return [BRIDGE_NS, f"{PREFIX}{SERVER_INDEX}", *(node_netns(n) for n in NODE_NAMES)]


def cleanup(base: str = BASE) -> None:
    """Remove what this lab (or a killed run of it) left: its processes, namespaces and folder; nothing else."""
    for proc in glusterlab.lab_processes(base):
        try:
            proc.send_signal(9)
        except psutil.Error:
            pass
    psutil.wait_procs(glusterlab.lab_processes(base), timeout=10)
    glusterlab.detach_under(base)
    existing = {line.split()[0] for line in sh("ip", "netns", "list", check=False).stdout.splitlines() if line.split()}
    for ns in our_namespaces():
        if ns in existing:
            sh("ip", "netns", "del", ns, check=False)
    shutil.rmtree(base, ignore_errors=True)


def make_bridge() -> None:
    sh("ip", "netns", "add", BRIDGE_NS)
    sh("ip", "-n", BRIDGE_NS, "link", "set", "lo", "up")
    sh("ip", "-n", BRIDGE_NS, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", BRIDGE_NS, "link", "set", "br0", "up")


def plug(netns: str, port: str, address: str) -> None:
    """A veth pair made directly between the bridge namespace and ``netns``: no end ever sits on the host."""
    sh("ip", "-n", BRIDGE_NS, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", netns)
    sh("ip", "-n", BRIDGE_NS, "link", "set", port, "master", "br0", "up")
    sh("ip", "-n", netns, "addr", "add", f"{address}/{PREFIXLEN}", "dev", "eth0")
    sh("ip", "-n", netns, "link", "set", "eth0", "up")
    sh("ip", "-n", netns, "link", "set", "lo", "up")


@dataclass
class BridgedServer(GlusterServer):
    """glusterlab's server, reached over the lab bridge instead of a veth pair to the host."""

    base: str = BASE
    index: int = SERVER_INDEX

    @property
    def address(self) -> str:
        return SERVER_IP

    def plumb(self) -> None:
        sh("ip", "netns", "add", self.netns)
        plug(self.netns, f"s{self.index}", self.address)


@dataclass
class NodeDaemon(DaemonProcess):
    """The daemon started inside its node's network and mount namespaces."""

    init_pid: int = 0
    metrics_port: int = 0  # no TCP listener: nothing to reach from outside the node

    def argv(self) -> list[str]:
        return ["nsenter", "-t", str(self.init_pid), "-m", "-n", "--", *super().argv()]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid  # nsenter execs the daemon: same process

    @property
    def mountinfo_path(self) -> str:
        """The mount table as this daemon sees it."""
        return f"/proc/{self.pid}/mountinfo"


@dataclass
class Node:
    """One "Ganeti node": a network namespace, a private mount namespace held by an init process, a daemon."""

    name: str
    base: str = BASE
    init: subprocess.Popen[bytes] | None = None
    daemon: NodeDaemon | None = field(default=None, repr=False)

    @property
    def netns(self) -> str:
        return node_netns(self.name)

    @property
    def root(self) -> str:
        return os.path.join(self.base, f"node-{self.name}")

    @property
    def init_pid(self) -> int:
        assert self.init is not None
        return self.init.pid

    def start(self) -> Node:
        os.makedirs(self.root, exist_ok=True)
        sh("ip", "netns", "add", self.netns)
        plug(self.netns, f"n{self.name}", NODE_IPS[self.name])
        # ip netns exec and unshare both exec: the pid is the init's.  Its argv names the lab folder for cleanup.
        self.init = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "-m", "--propagation", "private",
             sys.executable, "-c", "import signal; signal.pause()", self.root],
        )  # fmt: skip
        poll(f"node {self.name}'s namespaces", self._init_ready, deadline=10)
        self._drop_foreign_mounts()
        self.daemon = NodeDaemon(os.path.join(self.root, "daemon"), init_pid=self.init_pid)
        self.daemon.start()
        return self

    def _init_ready(self) -> bool:
        """The init has exec'ed python, so both unshares (ip netns exec's and unshare's) are done.

        Its cmdline names "signal.pause" already while it is still ``unshare``:
        only argv[0] tells the two apart.
        """
        try:
            with open(f"/proc/{self.init_pid}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0", 1)[0]
        except OSError:
            return False
        return argv0 == os.fsencode(sys.executable)

    def _drop_foreign_mounts(self) -> None:
        """Detach, in this node's private copy of the mount table, Gluster mounts of other runs on the machine.

        The copy would otherwise keep their FUSE mounts alive after they unmount them on the host.
        """
        for record in kernel.mount_table(self.mountinfo_path):
            if record.is_glusterfs and not (record.path + "/").startswith(self.base + "/"):
                self.run("umount", "-l", record.path)

    def run(self, *argv: str, stdin: bytes | None = None) -> bytes:
        """Run a command in this node's mount namespace (where its mounts are)."""
        return subprocess.run(
            ["nsenter", "-t", str(self.init_pid), "-m", "--", *argv], input=stdin, capture_output=True, check=True, timeout=60
        ).stdout

    @property
    def mountinfo_path(self) -> str:
        """The node's mount table, as its processes see it."""
        return f"/proc/{self.init_pid}/mountinfo"

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.kill()
        if self.init is not None and self.init.poll() is None:
            self.init.kill()
            self.init.wait()

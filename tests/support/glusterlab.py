"""A throwaway GlusterFS server for tests and the demo: glusterd in a network namespace.

``gluster volume create`` refuses loopback bricks, so the server lives in a
network namespace of its own, reached over a veth pair with a private /24.
glusterd also gets a private mount namespace (its own /run, /var/lib/glusterd
and /var/log/glusterfs bound from the lab directory), so it never touches the
host's Gluster state.  Everything is named with ``PREFIX`` and lives under
``base``, so ``cleanup_leftovers`` can remove what a killed run left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Self, TypeVar

import psutil

from . import kernel

# Several runs can share a machine when each has its own prefix, base and subnet.
PREFIX = os.environ.get("GGMT_PREFIX", "ggmt")
DEFAULT_BASE = os.environ.get("GGMT_BASE", f"/tmp/{PREFIX}-lab")
SUBNET = os.environ.get("GGMT_SUBNET", "10.231.7")
T = TypeVar("T")


def beside(tag: str) -> dict[str, str]:
    """The environment of a second lab beside this run's (a benchmark inside the suite): its own names and subnet."""
    a, b, c = SUBNET.split(".")
    return {"GGMT_PREFIX": PREFIX + tag, "GGMT_SUBNET": f"{a}.{b}.{(int(c) + 3) % 256}"}
PARTITION_TABLE = "partition"
OPTION_GROUPS = "/var/lib/glusterd/groups"
"""The option groups glusterfs-server ships (``virt`` among them): a server's own state folder needs them."""


def sh(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout)


def poll(what: str, fn: Callable[[], T | None], deadline: float = 30.0, interval: float = 0.05) -> T:
    """Call ``fn`` until it returns something truthy; fail naming ``what`` at the deadline."""
    end = time.monotonic() + deadline
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline} s waiting for {what}")
        time.sleep(interval)


def lab_processes(base: str) -> list[psutil.Process]:
    """glusterd, bricks and clients whose command line names the lab directory."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if base in cmdline and proc.pid != os.getpid():
            found.append(proc)
    return found


def detach_under(base: str) -> None:
    """Lazily detach every mount at or below ``base``, deepest first."""
    for path in sorted(kernel.mounts_under(base), key=len, reverse=True):
        sh("umount", "-l", path, check=False)


@contextmanager
def scratch(base: str, tag: str) -> Iterator[str]:
    """A fresh folder under the lab for one test; at the end, every mount under it is detached and it goes."""
    root = os.path.join(base, f"{tag}-{uuid.uuid4().hex[:8]}")
    os.makedirs(root)
    try:
        yield root
    finally:
        detach_under(root)
        shutil.rmtree(root, ignore_errors=True)


def delete_netns(name: str) -> None:
    """Kill whatever still runs in a network namespace, then delete it.

    glusterd starts a self-heal daemon for a replicated volume whose command line names nothing of the
    lab's folder; killed by its namespace, it cannot outlive the test as a stray process.
    """
    pids = [int(p) for p in sh("ip", "netns", "pids", name, check=False).stdout.split()]
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            procs.append(proc)
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)
    sh("ip", "netns", "del", name, check=False)


def cleanup_leftovers(base: str = DEFAULT_BASE, prefix: str = PREFIX) -> None:
    """Remove what any earlier run left: processes, mounts, namespaces, links, files."""
    detach_under(base)
    for proc in lab_processes(base):
        try:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(lab_processes(base), timeout=10)
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(prefix):
            delete_netns(name)
    for line in sh("ip", "-o", "link", "show", check=False).stdout.splitlines():
        ifname = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if ifname.startswith(prefix):
            sh("ip", "link", "del", ifname, check=False)
    shutil.rmtree(base, ignore_errors=True)


def in_netns(netns: str) -> tuple[str, ...]:
    """Run a command in a network namespace only: ``ip netns exec`` also remounts /sys in a new mount
    namespace, which waits on a FUSE mount that hangs while its servers are cut off."""
    return ("nsenter", f"--net=/run/netns/{netns}")


def cut(netns: str, addresses: Sequence[str]) -> None:
    """Drop every packet between ``netns`` and ``addresses``, both ways and silently: a network partition.

    The rules are an nftables table of their own inside the namespace, so they go with it.
    """
    peers = ", ".join(addresses)
    rules = (
        f"table inet {PARTITION_TABLE} {{\n"
        f"  chain in {{ type filter hook input priority 0; policy accept; ip saddr {{ {peers} }} drop; }}\n"
        f"  chain out {{ type filter hook output priority 0; policy accept; ip daddr {{ {peers} }} drop; }}\n"
        "}\n"
    )
    subprocess.run([*in_netns(netns), "nft", "-f", "-"], input=rules, text=True, check=True, timeout=30, capture_output=True)


def heal(netns: str) -> None:
    """End the partition ``cut`` made (nothing to do when there is none)."""
    if PARTITION_TABLE in sh(*in_netns(netns), "nft", "list", "tables", check=False).stdout:
        sh(*in_netns(netns), "nft", "delete", "table", "inet", PARTITION_TABLE)


@dataclass
class GlusterServer:
    """One Gluster server "host" in its own network namespace."""

    base: str = DEFAULT_BASE
    index: int = 1
    prefix: str = PREFIX
    volumes: list[str] = field(default_factory=list)

    @property
    def netns(self) -> str:
        return f"{self.prefix}{self.index}"

    @property
    def host_if(self) -> str:
        return f"{self.prefix}{self.index}h"

    @property
    def ns_if(self) -> str:
        return f"{self.prefix}{self.index}n"

    @property
    def host_ip(self) -> str:
        return f"{SUBNET}.{4 * self.index + 1}"

    @property
    def address(self) -> str:
        """The server's address, reachable from the host over the veth pair."""
        return f"{SUBNET}.{4 * self.index + 2}"

    @property
    def dir(self) -> str:
        return os.path.join(self.base, f"server{self.index}")

    @property
    def pid(self) -> int:
        with open(os.path.join(self.dir, "glusterd.pid")) as f:
            return int(f.read().strip())

    def start(self) -> Self:
        for sub in ("lib", "log", "bricks"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.plumb()
        self.start_glusterd()
        return self

    def plumb(self) -> None:
        """The server's network namespace, joined to the host by a veth pair."""
        sh("ip", "netns", "add", self.netns)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        sh("ip", "link", "set", self.ns_if, "netns", self.netns)
        sh("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        sh("ip", "netns", "exec", self.netns, "ip", "addr", "add", f"{self.address}/30", "dev", self.ns_if)
        sh("ip", "netns", "exec", self.netns, "ip", "link", "set", self.ns_if, "up")
        sh("ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up")

    def start_glusterd(self) -> None:
        """glusterd in the network namespace, with a private mount namespace for its state."""
        d = self.dir
        shutil.copytree(OPTION_GROUPS, os.path.join(d, "lib", "groups"), dirs_exist_ok=True)
        script = (
            "mount -t tmpfs tmpfs /run && mkdir -p /run/gluster "
            f"&& mount --bind {d}/lib /var/lib/glusterd && mount --bind {d}/log /var/log/glusterfs "
            f"&& exec glusterd -p {d}/glusterd.pid"
        )
        sh("ip", "netns", "exec", self.netns, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
        poll("glusterd's pid file", lambda: os.path.exists(os.path.join(d, "glusterd.pid")))
        poll("glusterd to answer", lambda: self.cli("volume", "list", check=False).returncode == 0)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("nsenter", "-t", str(self.pid), "-m", "-n", "gluster", "--mode=script", *args, check=check)

    def create_volume(self, name: str, start: bool = True, brick: str | None = None) -> str:
        """Create (and start) a one-brick volume; ``brick`` defaults to a folder under the server's folder.

        A started volume is returned once its brick is online: a mount right after
        ``volume start`` can fail otherwise.
        """
        brick = brick or os.path.join(self.dir, "bricks", name)
        os.makedirs(brick, exist_ok=True)
        self.cli("volume", "create", name, f"{self.address}:{brick}", "force")
        if start:
            self.cli("volume", "start", name)
            poll(f"the brick of {name} to be online", lambda: self._brick_online(name), deadline=30)
        self.volumes.append(name)
        return brick

    def _brick_online(self, name: str) -> bool:
        out = self.cli("volume", "status", name, "detail", check=False).stdout
        return any(line.split(":", 1)[0].strip() == "Online" and line.split(":", 1)[1].strip() == "Y" for line in out.splitlines())

    def small_filesystem(self, name: str, size_mib: int) -> str:
        """An ext4 file system of ``size_mib`` on a loop device, mounted in glusterd's private mount namespace
        (so only the server sees it; it goes away with the server).  Returns a brick folder inside it."""
        image = os.path.join(self.dir, "images", f"{name}.img")
        mnt = os.path.join(self.dir, "fs", name)
        os.makedirs(os.path.dirname(image), exist_ok=True)
        os.makedirs(mnt, exist_ok=True)
        with open(image, "wb") as f:
            f.truncate(size_mib << 20)
        sh("mkfs.ext4", "-q", "-F", "-m", "0", image)
        sh("nsenter", "-t", str(self.pid), "-m", "mount", "-o", "loop", image, mnt)
        sh("nsenter", "-t", str(self.pid), "-m", "mkdir", "-p", os.path.join(mnt, "brick"))
        return os.path.join(mnt, "brick")

    def drop_small_filesystem(self, name: str) -> None:
        sh("nsenter", "-t", str(self.pid), "-m", "umount", "-l", os.path.join(self.dir, "fs", name), check=False)

    def brick_pids(self) -> list[int]:
        return [p.pid for p in lab_processes(self.dir) if p.name().startswith("glusterfsd")]

    def server_pids(self) -> list[int]:
        """glusterd and every brick: what a frozen or dead server means."""
        return [self.pid, *self.brick_pids()]

    def freeze(self) -> None:
        for pid in self.server_pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.server_pids():
            os.kill(pid, signal.SIGCONT)

    def cut(self) -> None:
        """A network partition between the host and this server (see ``cut``)."""
        cut(self.netns, [self.host_ip])

    def heal(self) -> None:
        heal(self.netns)

    def stop(self) -> None:
        for proc in lab_processes(self.dir):
            try:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(lab_processes(self.dir), timeout=10)
        delete_netns(self.netns)
        sh("ip", "link", "del", self.host_if, check=False)


@contextmanager
def replica(base: str, indexes: Sequence[int], volume: str, group: str | None = None) -> Iterator[list[GlusterServer]]:
    """Three (or more) servers routed to each other through the host, one replica volume over them, servable.

    ``group`` sets an option group on the volume before it starts (``virt``: how VM volumes are run).
    """
    servers = [GlusterServer(base=base, index=i) for i in indexes]
    forward = "/proc/sys/net/ipv4/ip_forward"
    with open(forward) as f:
        was = f.read().strip()
    try:
        for s in servers:
            for sub in ("lib", "log", "bricks"):
                os.makedirs(os.path.join(s.dir, sub), exist_ok=True)
            s.plumb()
            # Each namespace reaches the others through the host (routes only to the lab's subnet).
            sh("ip", "netns", "exec", s.netns, "ip", "route", "add", f"{SUBNET}.0/24", "via", s.host_ip)
            s.start_glusterd()
        # Forwarding on, but only inside the lab's /24: whatever has no veth of its own there is dropped here.
        sh("ip", "route", "replace", "blackhole", f"{SUBNET}.0/24")
        with open(forward, "w") as f:
            f.write("1\n")
        first = servers[0]
        for other in servers[1:]:
            first.cli("peer", "probe", other.address)
        joined = len(servers) - 1
        poll("the peers to join", lambda: first.cli("peer", "status").stdout.count("Peer in Cluster (Connected)") == joined, deadline=60)
        bricks = []
        for s in servers:
            brick = os.path.join(s.dir, "bricks", volume)
            os.makedirs(brick, exist_ok=True)
            bricks.append(f"{s.address}:{brick}")
        first.cli("volume", "create", volume, "replica", str(len(servers)), *bricks, "force")
        if group:
            first.cli("volume", "set", volume, "group", group)
        first.cli("volume", "start", volume)
        poll(
            "every brick online",
            lambda: first.cli("volume", "status", volume, "detail", check=False).stdout.count("Online               : Y") == len(servers),
            deadline=60,
        )
        # A volume just started can refuse its volume file for a moment: wait until a plain mount works.
        probe_dir = os.path.join(first.dir, "probe-mount")
        os.makedirs(probe_dir, exist_ok=True)

        def servable() -> bool:
            sh("mount", "-t", "glusterfs", f"{first.address}:/{volume}", probe_dir, check=False)
            mounted = bool(kernel.glusterfs_stack(probe_dir))
            sh("umount", "-l", probe_dir, check=False)
            return mounted

        poll("the volume to be servable", servable, deadline=60, interval=0.5)
        yield servers
    finally:
        for s in servers:
            s.stop()
        with open(forward, "w") as f:
            f.write(was + "\n")
        sh("ip", "route", "del", "blackhole", f"{SUBNET}.0/24", check=False)

"""Three Gluster servers on the lab bridge serving one replica-3 volume ``gv0``.

Each server is ``tests/support/glusterlab.py``'s ``GlusterServer`` (glusterd in its own
network and private mount namespace, state under its folder), plugged into the
lab bridge instead of a veth pair to the host.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from tests.support.glusterlab import GlusterServer, poll

from . import config, net
from .config import Host

GROUPS = "/var/lib/glusterd/groups"
"""The option groups glusterfs-server ships (``virt`` among them)."""


@dataclass
class LabServer(GlusterServer):
    """A glusterd reachable only over the lab bridge."""

    host: Host = config.SERVERS[0]

    @property
    def netns(self) -> str:
        return self.host.netns

    @property
    def address(self) -> str:
        return self.host.address

    @property
    def dir(self) -> str:
        return os.path.join(self.base, "servers", self.host.name)

    def plumb(self) -> None:
        net.plug(self.host)

    def brick(self) -> str:
        return os.path.join(self.dir, "bricks", config.VOLUME)

    def peers_connected(self, count: int) -> bool:
        out = self.cli("peer", "status", check=False).stdout
        return out.count("(Connected)") >= count


def servers() -> list[LabServer]:
    return [LabServer(base=config.BASE, index=i + 1, host=h) for i, h in enumerate(config.SERVERS)]


def start_all() -> list[LabServer]:
    """Start the three glusterds, join them and create and start the replica-3 volume."""
    all_ = servers()
    for s in all_:
        os.makedirs(s.brick(), exist_ok=True)
        # glusterd's state folder is the server's own: it needs the package's option groups for `group virt`.
        shutil.copytree(GROUPS, os.path.join(s.dir, "lib", "groups"), dirs_exist_ok=True)
        s.start()
    first = all_[0]
    for other in all_[1:]:
        first.cli("peer", "probe", other.address)
    poll("every peer connected", lambda: first.peers_connected(len(all_) - 1), deadline=60, interval=0.3)
    first.cli("volume", "create", config.VOLUME, "replica", "3", *(f"{s.address}:{s.brick()}" for s in all_), "force")
    # As operators run VM volumes: ping-timeout 20 s, client and server quorum, sharding, strict O_DIRECT.
    first.cli("volume", "set", config.VOLUME, "group", "virt")
    first.cli("volume", "start", config.VOLUME)
    poll("the three bricks online", lambda: bricks_online(first) == len(all_), deadline=60, interval=0.3)
    first.volumes.append(config.VOLUME)
    return all_


def bricks_online(server: LabServer) -> int:
    out = server.cli("volume", "status", config.VOLUME, "detail", check=False).stdout
    return sum(1 for line in out.splitlines() if line.split(":", 1)[0].strip() == "Online" and line.split(":", 1)[-1].strip() == "Y")


def stop_one(server: LabServer) -> None:
    """Kill every process of one server (glusterd and its brick); its namespace stays, so it can come back."""
    import psutil

    procs = []
    for pid in server.server_pids():
        try:
            p = psutil.Process(pid)
            p.kill()
            procs.append(p)
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)
    try:
        os.unlink(os.path.join(server.dir, "glusterd.pid"))
    except FileNotFoundError:
        pass


def restart_one(server: LabServer, peer: LabServer) -> None:
    """glusterd back in the existing namespace; it restarts its brick; wait until the volume sees it."""
    server.start_glusterd()
    poll(f"{server.host.name}'s brick online", lambda: bricks_online(peer) == len(config.SERVERS), deadline=90, interval=0.5)

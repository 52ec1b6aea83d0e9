"""What the scenarios ask: Ganeti (on the master), each node's mount table and each node's daemon.

Every check gathers all three views, so a failing assertion shows what Ganeti,
the kernel and the daemon each said, plus the tail of the daemon's log.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab import cluster, config, guest
from lab.cluster import Lab
from lab.node import Node, NodeCommandError
from tests.support.glusterlab import poll

MOUNTPOINT = "/run/ganeti/gluster"  # the kernel's name of config.STORAGE_DIR (/var/run is a symlink)
UNIT = "ganeti-gluster-mountd.service"
KVM_CTRL = "/var/run/ganeti/kvm-hypervisor/ctrl"  # Ganeti's kvm sockets: NAME.serial, NAME.monitor
QEMU_SOCKET_SCRIPT = (Path(__file__).parents[1] / "qemu_socket.py").read_text()
# The lab's guest (a busybox /init) does not act on ACPI power-down: Ganeti waits out the
# shutdown timeout, then kills QEMU.  Ganeti's 120 s default (20 s before) bought nothing but
# waiting: the daemon sees the same release at any timeout.
SHUTDOWN_TIMEOUT = "3"
VOLUME_ARGS = ("--host", config.SERVERS[0].address, "--port", str(config.GLUSTER_PORT), "--volume", config.VOLUME)


@dataclass
class Ganeti:
    lab: Lab

    # -- Ganeti ---------------------------------------------------------------
    def run(self, *argv: str, check: bool = True, timeout: float = 600) -> str:
        r = self.lab.gnt(*argv, check=False, timeout=timeout)
        if check and r.returncode != 0:
            raise NodeCommandError(f"{' '.join(argv)} -> exit {r.returncode}\n{r.stdout}\n{r.stderr}\n{self.explain()}")
        return r.stdout + r.stderr

    def fails(self, *argv: str, timeout: float = 600) -> str:
        """Run a Ganeti command that must fail; returns its output."""
        r = self.lab.gnt(*argv, check=False, timeout=timeout)
        assert r.returncode != 0, f"{' '.join(argv)} succeeded but must fail:\n{r.stdout}{r.stderr}"
        return r.stdout + r.stderr

    def fqdn(self, node: Node) -> str:
        return node.host.fqdn

    def add(self, name: str, node: Node, hv: str = "fake", size: str = "1G", extra: tuple[str, ...] = ()) -> float:
        """gnt-instance add -t gluster (OS create included) started on ``node``; returns seconds to running."""
        t = time.monotonic()
        self.run("gnt-instance", "add", "-t", "gluster", "-o", "noop", "--disk", f"0:size={size}",
                 "-B", "memory=128M,vcpus=1", "-H", hv, "-n", node.host.fqdn,
                 "--no-name-check", "--no-ip-check", "--no-nics", *extra, name)  # fmt: skip
        seconds = time.monotonic() - t
        assert self.status(name) == ("ADMIN_down" if "--no-start" in extra else "running"), self.explain()
        return seconds

    def field(self, name: str, field: str) -> str:
        return self.run("gnt-instance", "list", "--no-headers", "-o", field, name).strip()

    def status(self, name: str) -> str:
        return self.field(name, "status")

    def uuid(self, name: str) -> str:
        return self.field(name, "uuid")

    def primary(self, name: str) -> Node:
        return self.lab.node(self.field(name, "pnode"))

    def instances(self) -> list[str]:
        return self.run("gnt-instance", "list", "--no-headers", "-o", "name").split()

    @contextmanager
    def kvm_instance(self, name: str, node: Node) -> Iterator[str]:
        """A KVM guest doing I/O on ``node`` for a scenario; removed after it if it is still there."""
        self.add(name, node, hv="kvm")
        yield name
        if name in self.instances():
            self.remove(name)

    def remove(self, name: str) -> None:
        self.run("gnt-instance", "remove", "-f", f"--shutdown-timeout={SHUTDOWN_TIMEOUT}", name)

    def last_job_log(self) -> str:
        jobs = self.run("gnt-job", "list", "--no-headers", "-o", "id").split()
        return self.run("gnt-job", "info", jobs[-1]) if jobs else ""

    # -- the node's daemon and mount table ------------------------------------
    def held(self, node: Node) -> list[str]:
        return node.holders()

    def disk_holder(self, uuid: str, index: int = 0) -> str:
        return f"instance:{uuid}.{index}"

    def mounted(self, node: Node) -> bool:
        return MOUNTPOINT in node.gluster_mounts()

    def explain(self) -> str:
        """All three views on every node, and the daemon's last log lines."""
        out = []
        for n in self.lab.nodes:
            try:
                out.append(f"--- {n.name}: gluster mounts {n.gluster_mounts()}")
                r = n.run("gluster-mountctl", "status", check=False)
                out.append(r.stdout + r.stderr)
                out.append(n.run("journalctl", "-u", "ganeti-gluster-mountd", "-n", "15", "--no-pager", check=False).stdout)
            except Exception as e:
                out.append(f"--- {n.name}: {e}")
        return "\n".join(out)

    def assert_only_primary_holds(self, name: str, primary: Node) -> None:
        """The instance's disk is held and mounted on ``primary``; no other node holds it."""
        holder = self.disk_holder(self.uuid(name))
        for n in self.lab.nodes:
            held = self.held(n)
            if n is primary:
                assert held.count(holder) == 1, f"{n.name} must hold {holder} once, holds {held}\n{self.explain()}"
                assert self.mounted(n), f"{n.name} must have {MOUNTPOINT} mounted\n{self.explain()}"
            else:
                assert holder not in held, f"{n.name} must not hold {holder} (primary is {primary.name})\n{self.explain()}"

    def assert_unmounted_if_unheld(self, node: Node) -> None:
        """A node whose daemon holds nothing has no Gluster mount."""
        if not self.held(node):
            assert not node.gluster_mounts(), f"{node.name} holds nothing but has {node.gluster_mounts()}\n{self.explain()}"

    def no_request_holds(self) -> bool:
        """No node's daemon keeps a holder of a Ganeti request that has ended (let go within a probe)."""
        return not any(h.startswith("process:") for n in self.lab.nodes for h in self.held(n))

    def needed_holders(self) -> dict[str, set[str]]:
        """What Ganeti says each node needs held: every disk of each gluster instance whose disks are
        active (running, or ``activate-disks``), on its primary node."""
        needed: dict[str, set[str]] = {n.name: set() for n in self.lab.nodes}
        rows = self.run("gnt-instance", "list", "--no-headers", "--separator=|",
                        "-o", "uuid,pnode,disk_template,disks_active,disk.count").splitlines()  # fmt: skip
        for row in rows:
            uuid, pnode, template, active, count = row.split("|")
            if template == "gluster" and active == "Y":
                needed[self.lab.node(pnode).name] |= {self.disk_holder(uuid, i) for i in range(int(count))}
        return needed

    def assert_holders_match_ganeti(self) -> None:
        """Every node holds exactly what its active gluster disks need, and has the volume mounted only then."""
        needed = self.needed_holders()
        for n in self.lab.nodes:
            held = sorted(self.held(n))
            assert held == sorted(needed[n.name]), f"{n.name} holds {held}, Ganeti needs {sorted(needed[n.name])}\n{self.explain()}"
            mounts = n.gluster_mounts()
            assert mounts == ([MOUNTPOINT] if held else []), f"{n.name} holds {held} and has {mounts} mounted\n{self.explain()}"

    def assert_nothing_for(self, uuid: str) -> None:
        holder = self.disk_holder(uuid)
        for n in self.lab.nodes:
            assert holder not in self.held(n), f"{n.name} still holds {holder}\n{self.explain()}"
            self.assert_unmounted_if_unheld(n)

    # -- the disk as the servers store it --------------------------------------
    def brick_file(self, uuid: str, index: int = 0) -> list[str]:
        """The disk's file on every brick (replica 3: three copies), read on the host."""
        found = []
        for s in self.lab.servers or []:
            p = os.path.join(s.brick(), "ganeti", f"{uuid}.{index}")
            if os.path.exists(p):
                found.append(p)
        return found

    # -- the KVM guest's serial console ---------------------------------------
    def console(self, name: str, seconds: float = 3.0) -> list[tuple[int, int, str]]:
        """Read the guest's serial console for a moment on its primary node; its LABIO reports."""
        return guest.parse(self.console_text(name, seconds))

    def console_text(self, name: str, seconds: float = 3.0) -> str:
        """What the guest's serial console prints for a moment on its primary node (kernel messages too)."""
        return qemu_socket(self.primary(name), f"{KVM_CTRL}/{name}.serial", seconds)

    def guest_sectors(self, name: str) -> int:
        """The disk's size (512-byte sectors) the guest's kernel sees now, from its latest report."""
        return poll(f"{name}'s guest to report its disk size", lambda: guest.sectors(self.console_text(name))[-1:], deadline=60)[0]

    def qemu_cmdline(self, name: str) -> str:
        """The command line of the instance's QEMU on its primary node."""
        pidfile = f"/var/run/ganeti/kvm-hypervisor/pid/{name}"
        return self.primary(name).sh(f"tr '\\0' ' ' < /proc/$(cat {pidfile})/cmdline").stdout

    def guest_progress(self, name: str, deadline: float = 120) -> tuple[int, int, str]:
        """The latest report of a guest, waiting until it reports at all."""

        def latest() -> tuple[int, int, str] | None:
            reports = self.console(name)
            return reports[-1] if reports else None

        return poll(f"{name}'s guest to report on its console", latest, deadline=deadline, interval=1)

    def qemu_status(self, name: str) -> str:
        """What each node's QEMU of ``name`` says of itself (HMP ``info status``, ``info migrate``,
        ``info block``), and its process line: a guest that stopped reporting is then running,
        paused (and why) or gone."""
        out = []
        for n in self.lab.nodes:
            ps = n.run("pgrep", "-a", "-f", "--", f"-name {name} ", check=False).stdout
            monitor = qemu_socket(n, f"{KVM_CTRL}/{name}.monitor", 2.0, "info status", "info migrate", "info block")
            out.append(f"--- {n.name}: qemu of {name}\n{ps[:2000]}{monitor}")
        return "\n".join(out)

    def guest_report(self, name: str, seen: list[tuple[int, int, str]], context: str) -> str:
        """Everything that tells why a guest did not go on: its reports, its console, QEMU's own
        status on each node, the step before (``context``) and the three views."""
        raw = self.console_text(name, 5.0)[-3000:]
        return (
            f"reports read on {self.primary(name).name}: {seen[-5:]}\n--- its console now:\n{raw}\n"
            f"{self.qemu_status(name)}\n--- context:\n{context[-4000:]}\n{self.explain()}"
        )

    def assert_guest_io_ok(
        self, name: str, since: tuple[int, int, str], deadline: float = 60, figure: str | None = None, context: str = ""
    ) -> tuple[int, int, str]:
        """The guest went on (more verified rounds, same boot) and never counted an I/O error.

        ``context`` (what the step before printed, say) goes into a failure's message with the console's
        raw text, so a rare failure explains itself from CI's log alone.
        """

        seen: list[tuple[int, int, str]] = []

        def advanced() -> tuple[int, int, str] | None:
            reports = self.console(name)
            seen[:] = reports
            last = reports[-1] if reports else None
            return last if last and last[0] > since[0] else None

        try:
            last = poll(f"{name}'s guest to verify more rounds than {since[0]}", advanced, deadline=deadline, interval=1)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.guest_report(name, seen, context)}") from None
        if figure:
            cluster.record(figure, f"{last[1]} errors in {last[0]} rounds")
        if last[2] != since[2]:
            raise AssertionError(f"{name}'s guest rebooted: {since} -> {last}\n{self.guest_report(name, seen, context)}")
        assert last[1] == 0, f"{name}'s guest counted {last[1]} I/O errors by round {last[0]}\n{self.guest_report(name, seen, context)}"
        return last


def kvm_fixture(name: str) -> Any:
    """A module-scoped fixture ``name``: a KVM guest called ``name`` doing I/O on node1 for the module's scenarios."""

    @pytest.fixture(scope="module", name=name)
    def instance(lab: Lab, g: Ganeti) -> Iterator[str]:
        with g.kvm_instance(name, lab.nodes[0]) as started:
            yield started

    return instance


def qemu_socket(node: Node, path: str, seconds: float, *commands: str) -> str:
    """A QEMU socket of ``node`` read for ``seconds`` (or, given ``commands``, asked each in turn): lab/qemu_socket.py."""
    deadline = seconds * (1 + len(commands)) + 30
    r = node.run("python3", "-", path, str(seconds), *commands, input=QEMU_SOCKET_SCRIPT, check=False, timeout=deadline)
    return r.stdout + r.stderr


def mountctl_disk_size(node: Node, uuid: str) -> int:
    out = node.run("gluster-mountctl", "disk", "info", *VOLUME_ARGS, f"ganeti/{uuid}.0").stdout
    m = re.search(r"size_bytes:\s*(\d+)", out)
    assert m, out
    return int(m.group(1))

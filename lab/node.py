"""A Ganeti node: a ``systemd-nspawn --boot`` container with real systemd as PID 1, in the lab's network.

The host has no systemd, so nspawn runs with ``--register=no --keep-unit``,
and each container is moved into a cgroup subtree of its own in both the
``name=systemd`` and the ``unified`` hierarchies before nspawn starts (two
containers would otherwise collide at ``/payload``).  Commands run inside with
``nsenter`` into every namespace of the container's PID 1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

import psutil

from glusterd_mgr.core.mountinfo import MountRecord
from tests.support import kernel
from tests.support.glusterlab import poll

from . import config
from .config import Host

CGROUP_HIERARCHIES = ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified")
ENV = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"]
FILE_STORAGE_PATHS = ("/srv/ganeti/file-storage", "/srv/ganeti/shared-file-storage", config.STORAGE_DIR)


class _Adopted:
    """Enough of Popen for a process this run did not start."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._p = psutil.Process(pid)

    def poll(self) -> int | None:
        return None if self._p.is_running() and self._p.status() != psutil.STATUS_ZOMBIE else 0

    def wait(self, timeout: float | None = None) -> int:
        try:
            self._p.wait(timeout)
        except psutil.TimeoutExpired as e:
            raise subprocess.TimeoutExpired("nspawn", timeout or 0) from e
        return 0

    def kill(self) -> None:
        self._p.kill()


class NodeCommandError(AssertionError):
    """A command inside a node failed; carries its output so a scenario's failure says why."""


def cgroup_dirs(node: Host) -> list[str]:
    return [os.path.join(h, config.CGROUP_ROOT, node.name) for h in CGROUP_HIERARCHIES]


@dataclass
class Node:
    host: Host
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    boots: int = 0

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def root(self) -> str:
        return config.node_root(self.host)

    @property
    def log_path(self) -> str:
        return os.path.join(config.BASE, "logs", f"{self.name}-console.log")

    # -- preparing the tree -------------------------------------------------
    def prepare(self, rootfs: str, guest: tuple[str, str]) -> None:
        """A fresh copy of the cached tree, made into this node: names, keys, Ganeti's whitelist, the guest."""
        shutil.rmtree(self.root, ignore_errors=True)
        os.makedirs(os.path.dirname(self.root), exist_ok=True)
        subprocess.run(["cp", "-a", "--reflink=auto", rootfs, self.root], check=True)
        os.unlink(os.path.join(self.root, ".complete"))
        self.write("etc/hostname", self.host.fqdn + "\n")
        self.write("etc/hosts", config.etc_hosts())
        self.write("etc/machine-id", uuid.uuid4().hex + "\n")
        self.write("etc/ganeti/file-storage-paths", "".join(p + "\n" for p in FILE_STORAGE_PATHS))
        for p in FILE_STORAGE_PATHS:
            os.makedirs(self.path(p), exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-A", "-f", self.root], check=True)
        os.makedirs(self.path("/srv/lab-guest"), exist_ok=True)
        for src in guest:
            shutil.copy(src, self.path("/srv/lab-guest"))
        write_noop_os(self)
        self.write("etc/systemd/system/lab-netns-sysfs.service", SYSFS_UNIT)
        os.symlink("../lab-netns-sysfs.service", self.path("etc/systemd/system/multi-user.target.wants/lab-netns-sysfs.service"))

    def path(self, inside: str) -> str:
        return os.path.join(self.root, inside.lstrip("/"))

    def write(self, inside: str, text: str, mode: int = 0o644) -> None:
        p = self.path(inside)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)

    # -- running ------------------------------------------------------------
    def _enter_cgroups(self) -> None:
        """Runs in the child before exec: nspawn starts in this node's own subtrees."""
        for d in cgroup_dirs(self.host):
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    def start(self) -> None:
        """Launch the container; returns at once (``wait_booted`` waits). Start every node before waiting on any."""
        for d in cgroup_dirs(self.host):
            os.makedirs(d, exist_ok=True)
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        log = open(self.log_path, "ab")
        argv = [
            "systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--quiet",
            f"--directory={self.root}", f"--machine={config.machine_name(self.host)}",
            f"--hostname={self.host.fqdn}",
            f"--network-namespace-path=/run/netns/{self.host.netns}",
            "--bind=/dev/fuse", "--bind=/dev/kvm", "--bind=/dev/net/tun",
            # nspawn's own set lacks it with a network namespace given by path: a node's Ganeti
            # (started by systemd or over ssh) could not make the tap device of an instance's NIC.
            "--capability=CAP_NET_ADMIN",
            "--console=pipe", "--link-journal=no", "--resolv-conf=off", "--timezone=off",
        ]  # fmt: skip
        env = dict(os.environ)
        if config.NODE_RELEASE.unified_cgroups:  # the container's cgroup2 tree under the host's unified/ subtree
            env["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"] = "1"
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, preexec_fn=self._enter_cgroups)  # noqa: PLW1509 - no threads here
        log.close()
        self.boots += 1

    def attach(self) -> bool:
        """Adopt this node's running nspawn (a lab kept up by an earlier run)."""
        for p in psutil.process_iter(["cmdline"]):
            cmd = p.info["cmdline"] or []
            if cmd[:1] == ["systemd-nspawn"] and f"--machine={config.machine_name(self.host)}" in cmd:
                self.proc = _Adopted(p.pid)  # type: ignore[assignment]
                return True
        return False

    def leader(self) -> int | None:
        """PID (on the host) of the container's systemd, PID 1 inside."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                with open(f"/proc/{child.pid}/status") as f:
                    for line in f:
                        if line.startswith("NSpid:") and line.split()[-1] == "1" and len(line.split()) > 2:
                            return int(child.pid)
        except (psutil.Error, OSError):
            return None
        return None

    def wait_booted(self, deadline: float = 180) -> str:
        """Poll until systemd says running (or degraded: then name the failed units in the log)."""

        def state() -> str | None:
            if self.leader() is None:
                return None
            r = self.run("systemctl", "is-system-running", check=False, timeout=20)
            s = r.stdout.strip()
            return s if s in ("running", "degraded") else None

        s = poll(f"{self.name} to boot", state, deadline=deadline, interval=0.5)
        if s == "degraded":
            failed = self.run("systemctl", "--failed", "--no-legend", check=False).stdout
            with open(self.log_path, "a") as f:
                f.write(f"[lab] degraded; failed units:\n{failed}\n")
        return s

    def run(self, *argv: str, check: bool = True, timeout: float = 300, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside the node (every namespace of its PID 1, a clean environment)."""
        pid = self.leader()
        if pid is None:
            raise NodeCommandError(f"{self.name} is not running")
        r = subprocess.run([*ENV, "nsenter", "-a", "-t", str(pid), "--", *argv],
                           capture_output=True, text=True, timeout=timeout, input=input, check=False)  # fmt: skip
        if check and r.returncode != 0:
            raise NodeCommandError(f"on {self.name}: {' '.join(argv)} -> exit {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def sh(self, script: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.run("bash", "-c", script, check=check, timeout=timeout)

    def boot_id(self) -> str:
        return self.run("cat", "/proc/sys/kernel/random/boot_id").stdout.strip()

    def mount_table(self) -> list[MountRecord]:
        """The node's mount table, as its own processes see it."""
        pid = self.leader()
        assert pid is not None, f"{self.name} is not running"
        return kernel.mount_table(f"/proc/{pid}/mountinfo")

    def gluster_mounts(self) -> list[str]:
        """Mountpoints of glusterfs FUSE mounts in the node, as the kernel names them."""
        return [r.path for r in self.mount_table() if r.is_glusterfs]

    def gluster_mount_ids(self) -> list[int]:
        """The kernel's ids of the node's glusterfs mounts: the same ids mean the same mounts, adopted."""
        return [r.mount_id for r in self.mount_table() if r.is_glusterfs]

    def main_pid(self, unit: str) -> int:
        """The unit's main process in the node (0 when it has none)."""
        return int(self.run("systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip())

    def unit_pids(self, unit: str) -> list[int]:
        """Every process in the unit's cgroup."""
        group = self.run("systemctl", "show", "-p", "ControlGroup", "--value", unit).stdout.strip()
        procs = f"/sys/fs/cgroup{group}/cgroup.procs /sys/fs/cgroup/unified{group}/cgroup.procs"
        out = self.run("sh", "-c", f"cat {procs} 2>/dev/null", check=False)
        return sorted({int(p) for p in out.stdout.split()})

    def client_pid(self) -> int:
        """The FUSE client of the node's one mount, as its daemon reports it."""
        [mount] = cast(list[dict[str, Any]], self.daemon_status()["mounts"])
        return int(mount["client"]["pid"])

    def daemon_status(self) -> dict[str, object]:
        r = self.run("gluster-mountctl", "status", "--json", check=False)
        if r.returncode not in (0, 1):
            raise NodeCommandError(f"gluster-mountctl status on {self.name}: exit {r.returncode}: {r.stdout}{r.stderr}")
        status: dict[str, object] = json.loads(r.stdout)
        return status

    def holders(self) -> list[str]:
        """Every holder (``kind:id``) the node's daemon has, over all its mounts."""
        out: list[str] = []
        mounts: list[dict[str, Any]] = self.daemon_status()["mounts"]  # type: ignore[assignment]
        for m in mounts:
            for h in m.get("holders", []):
                out.append(h if isinstance(h, str) else f"{h['kind']}:{h['id']}")
        return out

    def stop(self, deadline: float = 60) -> None:
        """Power the container off (systemd shuts down) and wait; kill it at the deadline."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if self.leader() is not None:
                self.run("systemctl", "poweroff", "--no-block", check=False, timeout=30)
            try:
                self.proc.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def reboot(self, deadline: float = 180) -> None:
        """A reboot of the container: systemd shuts down, nspawn exits, the same tree boots again."""
        assert self.proc is not None
        self.run("systemctl", "reboot", "--no-block", check=False, timeout=30)
        try:
            self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            self.kill()
        self.start()
        self.wait_booted(deadline=deadline)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                try:
                    p.kill()
                except psutil.Error:
                    pass
            self.proc.kill()
            self.proc.wait(timeout=30)


# nspawn's /sys shows the host's network devices even in a network namespace of our own;
# Ganeti looks for bridges in /sys/class/net. A sysfs mounted inside shows this node's.
SYSFS_UNIT = """[Unit]
Description=Lab: /sys/class/net of this node's own network namespace
DefaultDependencies=no
Before=ganeti.service sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/mkdir -p /run/lab-sys
ExecStart=/bin/mount -t sysfs sysfs /run/lab-sys
ExecStart=/bin/mount --bind /run/lab-sys/class/net /sys/class/net
ExecStart=/bin/mount --bind /run/lab-sys/devices/virtual/net /sys/devices/virtual/net

[Install]
WantedBy=multi-user.target
"""

NOOP_CREATE = """#!/bin/sh
# OS "noop": the disk gets a signature and nothing else (the lab's guest boots from kernel_path).
set -e
printf 'lab noop os: %s\\n' "$INSTANCE_NAME" | dd of="$DISK_0_PATH" bs=512 conv=notrunc,fsync 2>/dev/null
"""


def write_noop_os(node: Node) -> None:
    """A trivial Ganeti OS definition (API 20) in /srv/ganeti/os/noop."""
    d = "/srv/ganeti/os/noop"
    node.write(f"{d}/ganeti_api_version", "20\n")
    node.write(f"{d}/parameters.list", "")
    node.write(f"{d}/create", NOOP_CREATE, 0o755)
    for script in ("import", "export", "rename", "verify"):
        node.write(f"{d}/{script}", "#!/bin/sh\nexit 0\n", 0o755)


def wait_all(nodes: list[Node], deadline: float = 180) -> None:
    start = time.monotonic()
    for n in nodes:
        n.wait_booted(deadline=max(5.0, deadline - (time.monotonic() - start)))

"""Ganeti's own QA suite (Debian's ``ganeti-testsuite``) run on the lab's master against the lab's cluster.

Ganeti's developers run ``qa/ganeti-qa.py`` on real clusters before a release;
nobody runs its gluster instance tests.  Here it runs against the lab's
existing cluster (never created or destroyed by QA) with the configuration in
``lab/qa/gluster.json``, once per hypervisor.  The suite is in every node's tree
(``lab/rootfs.py``: ``ganeti-testsuite`` of the node's release, and ``iptables``,
whose rules QA clears on every node before it starts).  What else QA needs is
made here and undone after: root's ssh to every node with known host keys, the
instance names in ``/etc/hosts``, and the cluster settings of the run (see
``session``).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import config
from .cluster import Lab
from .node import Node

TESTSUITE = "/usr/share/ganeti/testsuite"
CONFIG = Path(__file__).with_name("qa") / "gluster.json"
INSIDE = "/root/lab-qa"
INSTANCE_CHECK = f"{INSIDE}/instance-check"  # lab/qa_instance_check.py in the master
INSTANCES = (("qa1", 31), ("qa2", 32))  # QA's instance names (checked by DNS, so in /etc/hosts) and their address
METRICS = "http://127.0.0.1:9723/metrics"  # the daemon's /metrics in the node (examples/gluster-mountd.toml)
# A container has no /proc/sysrq-trigger (the host kernel lacks CONFIG_MAGIC_SYSRQ), which
# gnt-cluster verify reports as the error ENODESETUP.  QA runs a plain verify through ssh,
# whose PATH for root starts with /usr/local/sbin: this turns that one error into a warning.
VERIFY_WRAPPER = """#!/bin/sh
# Lab (Ganeti QA): a container cannot have /proc/sysrq-trigger; verify warns of it instead of failing.
if [ "$1" = verify ]; then shift; exec /usr/sbin/gnt-cluster verify --ignore-errors=ENODESETUP "$@"; fi
exec /usr/sbin/gnt-cluster "$@"
"""
WRAPPER_PATH = "/usr/local/sbin/gnt-cluster"
OS_PARAMETERS = "/srv/ganeti/os/noop/parameters.list"  # lab/node.py's OS for every instance


def instance_name(short: str) -> str:
    return f"{short}.{config.DOMAIN}"


def prepare_nodes(lab: Lab) -> None:
    """What QA takes for granted on every node beyond its tree: resolvable instance names, root's ssh, the OS parameter."""
    known = []
    for n in lab.nodes:
        for key in sorted(glob.glob(n.path("/etc/ssh/ssh_host_*_key.pub"))):
            kind, blob = open(key).read().split()[:2]
            known.append(f"{n.host.fqdn},{n.name},{n.host.address} {kind} {blob}\n")
    hosts = "".join(f"{config.SUBNET}.{last}\t{instance_name(s)} {s}\n" for s, last in INSTANCES)
    for n in lab.nodes:
        # QA's instance-modify sets the OS parameter os-image (and back); Ganeti validates it against the OS.
        if "os-image" not in open(n.path(OS_PARAMETERS)).read():
            with open(n.path(OS_PARAMETERS), "a") as f:
                f.write("os-image URL or path of an OS image (the lab's noop OS ignores it)\n")
        if instance_name(INSTANCES[0][0]) not in open(n.path("/etc/hosts")).read():
            with open(n.path("/etc/hosts"), "a") as f:
                f.write(hosts)
    lab.master.write("root/.ssh/known_hosts", "".join(known))
    lab.master.write(INSTANCE_CHECK.lstrip("/"), (Path(__file__).parent / "qa_instance_check.py").read_text(), 0o755)


def qa_config(lab: Lab, hv: str) -> dict[str, object]:
    """``lab/qa/gluster.json`` with this lab's names and the run's hypervisor filled in."""
    cfg: dict[str, object] = json.loads(CONFIG.read_text())
    cfg["name"] = config.CLUSTER_NAME
    # The master first: QA takes the first node for the master.  The secondary address is the
    # primary one, as in the cluster; QA's ping test runs "fping -e" with no address without it.
    cfg["nodes"] = [{"primary": n.host.fqdn, "secondary": n.host.address} for n in lab.nodes]
    cfg["instances"] = [{"name": instance_name(s)} for s, _ in INSTANCES]
    cfg["enabled-hypervisors"] = [hv]
    cfg["instance-check"] = INSTANCE_CHECK
    return cfg


@contextmanager
def session(lab: Lab, hv: str) -> Iterator[None]:
    """The cluster as QA needs it for one run, and back as it was after.

    QA adds instances without ``-H``, so the run's hypervisor is made the cluster's
    default (the first enabled).  For kvm, ``acpi=false``: the lab's busybox guest
    ignores ACPI power-down, so every shutdown QA asks for (it passes no timeout)
    would wait out Ganeti's 120 s before the kill; without ACPI Ganeti kills QEMU at
    once, and the daemon sees the same release either way."""
    m = lab.master
    for short, _ in INSTANCES:  # what an earlier run that failed left behind would fail this one's verify
        if m.run("gnt-instance", "list", instance_name(short), check=False).returncode == 0:
            m.run("gnt-instance", "remove", "-f", "--shutdown-timeout=3", instance_name(short))
    others = [h for h in ("fake", "kvm") if h != hv]
    m.run("gnt-cluster", "modify", f"--enabled-hypervisors={','.join([hv, *others])}", "-H", "kvm:acpi=false")
    m.write(WRAPPER_PATH.lstrip("/"), VERIFY_WRAPPER, 0o755)
    try:
        yield
    finally:
        os.unlink(m.path(WRAPPER_PATH))
        m.run("gnt-cluster", "modify", "--enabled-hypervisors=fake,kvm", "-H", "kvm:acpi=true")


@dataclass(frozen=True)
class QaRun:
    """One run of ganeti-qa.py: its exit status, time, and the tests it passed, failed and skipped."""

    returncode: int
    seconds: float
    log: str
    output: str

    def named(self, verdict: str) -> list[str]:
        """Test functions by QA's verdict line (``PASSED [TestX] ...``, ``FAILED [TestX] ...``)."""
        return re.findall(rf"^---- {verdict} \[(\w+)\]", self.output, re.M)

    @property
    def skipped(self) -> list[str]:
        return re.findall(r"^\*\*\*\* \S+ \S+ skipping (.+?), test\(s\)", self.output, re.M)

    def summary(self) -> str:
        passed, failed = self.named("PASSED"), self.named("FAILED")
        return f"{len(passed)} passed, {len(failed)} failed{' ' + str(failed) if failed else ''}, {len(self.skipped)} skipped"


def run(lab: Lab, hv: str, timeout: float = 3600) -> QaRun:
    """ganeti-qa.py on the master with the lab's configuration for ``hv``.  Its output goes, as it runs,
    to a file in the master (``tail -f`` it from the host under the node's tree); afterwards it is kept
    as ``/var/tmp/PREFIX-qa-HV.log``, outside the lab's folder, so it outlives the lab; so do each node's
    Ganeti logs of a failed run (``/var/tmp/PREFIX-qa-HV-NODE/``), where a step's traceback is."""
    m = lab.master
    prepare_nodes(lab)
    cfg, inside_log = f"{INSIDE}/{hv}.json", f"{INSIDE}/{hv}.log"
    m.write(cfg.lstrip("/"), json.dumps(qa_config(lab, hv), indent=1))
    with session(lab, hv):
        t = time.monotonic()
        r = m.sh(f"PYTHONPATH={TESTSUITE}:/usr/share/ganeti/default python3 -u {TESTSUITE}/qa/ganeti-qa.py --yes-do-it {cfg}"
                 f" > {inside_log} 2>&1", check=False, timeout=timeout)  # fmt: skip
        seconds = time.monotonic() - t
    log = os.path.abspath(os.path.join(config.BASE, "..", f"{config.PREFIX}-qa-{hv}.log"))
    shutil.copy(m.path(inside_log), log)
    if r.returncode != 0:
        for n in lab.nodes:
            kept = f"{log[: -len('.log')]}-{n.name}"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(n.path("/var/log/ganeti"), kept)
    with open(log) as f:
        return QaRun(r.returncode, seconds, log, f.read())


def mount_counts(node: Node) -> tuple[int, int]:
    """The node's daemon's mount and unmount attempts so far (its /metrics counters, every volume)."""
    text = node.run("curl", "-sf", METRICS).stdout

    def total(name: str) -> int:
        return int(sum(float(v) for v in re.findall(rf"^ganeti_gluster_{name}_attempts_total\{{[^}}]*\}} (\S+)$", text, re.M)))

    return total("mount"), total("unmount")

"""Issue 11 on real systemd: each FUSE client in a scope of its own, untouched by the daemon's unit, watched,
and its death explained."""

from __future__ import annotations

import functools
import json
import re
from typing import Any, cast

import pytest

from lab.cluster import Lab
from lab.node import Node
from tests.support.glusterlab import poll

from .ganeti import MOUNTPOINT, SHUTDOWN_TIMEOUT, UNIT, Ganeti

pytestmark = pytest.mark.timeout(900)


def _mount(node: Node) -> dict[str, Any]:
    mounts = cast(list[dict[str, Any]], node.daemon_status()["mounts"])
    [mount] = [m for m in mounts if m["mountpoint"] == MOUNTPOINT]
    return mount


def _client(node: Node) -> dict[str, Any]:
    client = _mount(node)["client"]
    assert isinstance(client, dict), f"no FUSE client in status: {_mount(node)}"
    return client


def _restarted(node: Node, old_pid: int) -> bool:
    active = node.run("systemctl", "is-active", UNIT, check=False).stdout.strip() == "active"
    return active and node.main_pid(UNIT) not in (0, old_pid)


def _fresh_report(g: Ganeti, old_boot: str) -> tuple[int, int, str] | None:
    """The guest's latest report once it comes from a new boot and has verified a few rounds."""
    reports = g.console("scope1")
    last = reports[-1] if reports else None
    return last if last and last[2] != old_boot and last[0] >= 3 else None


def test_client_in_its_own_scope_survives_the_daemons_unit(lab: Lab, g: Ganeti) -> None:
    n1, _ = lab.nodes
    g.add("scope1", n1, hv="kvm")
    seen = g.guest_progress("scope1")
    holder = g.disk_holder(g.uuid("scope1"))
    client = _client(n1)
    pid = int(client["pid"])
    unit = str(client["unit"])
    assert re.fullmatch(r"ganeti-gluster-gv0-run-ganeti-gluster-\d+\.scope", unit), client
    cgroup = n1.run("cat", f"/proc/{pid}/cgroup").stdout
    assert "ganeti-gluster.slice" in cgroup and UNIT not in cgroup, cgroup
    assert n1.run("systemctl", "is-active", unit).stdout.strip() == "active"
    assert n1.unit_pids(UNIT) == [n1.main_pid(UNIT)], "the daemon's unit holds the daemon only"
    assert client["oom_score_adj"] == int(n1.run("cat", f"/proc/{pid}/oom_score_adj").stdout), "status shows the real score"
    fetch = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9723/metrics', timeout=10).read().decode())"
    metrics = n1.run("python3", "-c", fetch).stdout
    assert re.search(r'ganeti_gluster_client_resident_memory_bytes\{volume="[^"]+"\} [1-9]', metrics), metrics[-2000:]
    mount = n1.gluster_mount_ids()

    for how in ("restart", "stop-start", "kill-9"):
        before = n1.main_pid(UNIT)
        if how == "restart":
            n1.run("systemctl", "restart", UNIT)
        elif how == "stop-start":
            n1.run("systemctl", "stop", UNIT)
            assert n1.gluster_mount_ids() == mount and n1.run("kill", "-0", str(pid), check=False).returncode == 0, "stop left the client"
            n1.run("systemctl", "start", UNIT)
        else:
            n1.run("kill", "-9", str(before))
            poll("systemd to restart the daemon", functools.partial(_restarted, n1, before), deadline=60, interval=0.5)
        assert n1.main_pid(UNIT) != before, how
        assert int(_client(n1)["pid"]) == pid, f"{how}: the same FUSE client"
        assert n1.gluster_mount_ids() == mount, f"{how}: the same mount, adopted"
        assert holder in n1.holders(), f"{how}: holders kept"
        assert n1.run("systemctl", "is-active", unit).stdout.strip() == "active", f"{how}: the scope is untouched"
        seen = g.assert_guest_io_ok("scope1", seen, figure=f"guest_io_scoped_client_daemon_{how.replace('-', '_')}")


def test_a_killed_client_names_the_broken_instance_until_a_full_restart(lab: Lab, g: Ganeti) -> None:
    n1, _ = lab.nodes
    uuid = g.uuid("scope1")
    holder = g.disk_holder(uuid)
    pid = int(_client(n1)["pid"])
    n1.run("kill", "-9", str(pid))

    def remounted() -> bool:
        mount = _mount(n1)
        client = mount["client"]
        return mount["state"] == "mounted" and isinstance(client, dict) and client["pid"] != pid

    poll("the daemon to remount with a new client", remounted, deadline=60, interval=1)
    mount = _mount(n1)
    assert [f"{h['kind']}:{h['id']}" for h in mount["broken_holders"]] == [holder], mount
    assert "gnt-instance reboot --type=full" in str(mount["action"])
    assert n1.run("gluster-mountctl", "status", check=False).returncode == 1, "a broken disk is a degraded node"
    journal = n1.run("journalctl", "-u", UNIT, "--no-pager", "-n", "50").stdout
    assert "failed under its holders" in journal and holder.split(":", 1)[1] in journal, journal
    booted = g.guest_progress("scope1")[2]
    g.run("gnt-instance", "reboot", "--type=full", f"--shutdown-timeout={SHUTDOWN_TIMEOUT}", "scope1")
    fresh = poll("the restarted guest to verify rounds", lambda: _fresh_report(g, booted), deadline=120, interval=1)
    assert fresh[1] == 0, f"the guest works again after the full restart: {fresh}"
    mount = _mount(n1)
    assert mount["broken_holders"] == [] and mount["action"] is None, json.dumps(mount)
    g.assert_only_primary_holds("scope1", n1)
    g.remove("scope1")
    g.assert_nothing_for(uuid)

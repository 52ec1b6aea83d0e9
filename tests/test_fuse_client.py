"""Pure tests: the FUSE client's scope, command lines, cgroup reading and memory threshold."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glusterd_mgr import rehome
from glusterd_mgr.core.fuse_client import (
    SLICE,
    ClientStats,
    adopt_argv,
    client_mount,
    over_threshold,
    scope_unit,
    scoped_argv,
    unit_of_cgroup,
)
from glusterd_mgr.core.mounts import client_argv
from glusterd_mgr.core.volume import VolumeSpec

SPEC = VolumeSpec(host="gs1", port=24007, volume="gv0")


def test_scope_named_after_volume_and_mountpoint() -> None:
    assert scope_unit("gv0", "/run/ganeti/gluster", 7) == "ganeti-gluster-gv0-run-ganeti-gluster-7.scope"
    odd = scope_unit("v_1", "/srv/my disks/ä", 1)
    assert odd == "ganeti-gluster-v_1-srv-my\\x20disks-\\xc3\\xa4-1.scope", "systemd-escape's rules"
    assert len(scope_unit("gv0", "/" + "x" * 400, 1)) <= 255


@given(st.text(min_size=1, max_size=60))
def test_scope_names_are_valid_unit_names(mountpoint: str) -> None:
    unit = scope_unit("gv0", "/" + mountpoint, 3)
    assert unit.endswith(".scope") and len(unit) <= 255
    assert all(c.isascii() and (c.isalnum() or c in ":_.\\-") for c in unit)


def test_mount_in_a_scope() -> None:
    argv = client_argv(SPEC, "/run/ganeti/gluster", "/var/log/glusterfs/run-ganeti-gluster.log")
    assert not any(a.startswith("--oom-score-adj") for a in argv), "the score is set after the mount"
    scoped = scoped_argv(argv, "u.scope", "GlusterFS client")
    assert scoped[:2] == ["systemd-run", "--scope"] and f"--slice={SLICE}" in scoped and "--unit=u.scope" in scoped
    assert scoped[scoped.index("--") + 1 :] == argv, "the client's command itself is unchanged"


def test_adopt_moves_one_pid_into_a_new_scope_in_the_slice() -> None:
    argv = adopt_argv(4242, "u.scope", "d")
    assert argv[:2] == ["busctl", "call"] and "StartTransientUnit" in argv
    assert argv[argv.index("PIDs") : argv.index("PIDs") + 4] == ["PIDs", "au", "1", "4242"]
    assert argv[argv.index("Slice") : argv.index("Slice") + 3] == ["Slice", "s", SLICE]


def test_unit_of_cgroup_v1_hybrid_and_v2() -> None:
    v2 = "0::/ganeti.slice/ganeti-gluster.slice/ganeti-gluster-gv0-x-1.scope\n"
    assert unit_of_cgroup(v2) == "ganeti-gluster-gv0-x-1.scope"
    hybrid = (
        "12:cpu,cpuacct:/\n1:name=systemd:/system.slice/ganeti-gluster-mountd.service\n0::/system.slice/ganeti-gluster-mountd.service\n"
    )
    assert unit_of_cgroup(hybrid) == "ganeti-gluster-mountd.service"
    assert unit_of_cgroup("0::/\n") == "" and unit_of_cgroup("") == ""
    unified_in_a_hybrid_host = "1:name=systemd:/\n0::/ganeti.slice/ganeti-gluster.slice/ganeti-gluster-gv0-x-1.scope\n"
    assert unit_of_cgroup(unified_in_a_hybrid_host) == "ganeti-gluster-gv0-x-1.scope", "a Debian 13 node in the lab"


def test_memory_threshold() -> None:
    stats = ClientStats(1, 300 << 20, 12, 40, 1000.0, -900, "")
    assert over_threshold(stats, 256 << 20) and not over_threshold(stats, 512 << 20)
    assert not over_threshold(stats, 0), "0 turns the warning off"
    assert not over_threshold(None, 1)
    assert stats.to_json()["start_time_seconds"] == 1000.0


def test_client_mount_from_a_real_command_line() -> None:
    argv = ["/usr/sbin/glusterfs", "--process-name", "fuse", "--volfile-server=gs1", "--volfile-id=/gv0", "/run/ganeti/gluster"]
    assert client_mount(argv) == ("gv0", "/run/ganeti/gluster")
    brick_helper = ["/usr/sbin/glusterfs", "-s", "localhost", "--volfile-id", "shd/gv0", "-p", "/run/x.pid"]
    assert client_mount(brick_helper) is None, "not a FUSE client"


def test_rehome_moves_only_fuse_clients_inside_the_service(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fuse = ["/usr/sbin/glusterfs", "--process-name", "fuse", "--volfile-id=/gv0"]
    procs = [(10, [*fuse, "/run/ganeti/gluster"]), (11, [*fuse, "/run/other"]), (12, ["/usr/sbin/glusterfs", "-s", "x"])]
    units = {10: rehome.SERVICE, 11: "ganeti-gluster-gv0-run-other-1.scope", 12: rehome.SERVICE}
    calls: list[list[str]] = []
    monkeypatch.setattr(os.path, "isdir", lambda path: path == "/run/systemd/system")
    monkeypatch.setattr(rehome, "glusterfs_processes", lambda: iter(procs))
    monkeypatch.setattr(rehome, "unit_of_pid", units.__getitem__)

    def moved(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(subprocess, "run", moved)
    assert rehome.main([]) == 0
    assert [c[c.index("PIDs") + 3] for c in calls] == ["10"], "only the FUSE client still inside the service"
    assert "moved the FUSE client 10 of /run/ganeti/gluster" in capsys.readouterr().out
    monkeypatch.setattr(subprocess, "run", lambda argv, **_: subprocess.CompletedProcess(argv, 1, "", "Access denied"))
    assert rehome.main([]) == 1
    assert "cannot move the FUSE client 10" in capsys.readouterr().err


def test_rehome_without_systemd_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os.path, "isdir", lambda path: False)
    monkeypatch.setattr(rehome, "glusterfs_processes", lambda: pytest.fail("must not look"))
    assert rehome.main([]) == 0

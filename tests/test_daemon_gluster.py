"""The daemon as a real process, over its Unix socket, against the real Gluster server."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
import uuid
from typing import Any

import psutil
import pytest

from glusterd_mgr.core import errors
from glusterd_mgr.core.volume import VolumeSpec

from .faults.helpers import metric, raw_post, timed
from .support import glusterlab
from .support.daemon_proc import DaemonProcess
from .support.kernel import fuse_client_pid, glusterfs_stack

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(240)]
I1 = {"kind": "instance", "id": "11111111-aaaa.0"}
I2 = {"kind": "instance", "id": "22222222-bbbb.0"}


def curl(*args: str) -> str:
    return subprocess.run(["curl", "-sS", "--max-time", "5", *args], check=True, capture_output=True, text=True).stdout


def post_json(sock: str, body: bytes) -> tuple[int, Any]:
    """A hand-made request (``faults.helpers.raw_post``), its reply decoded."""
    code, payload = raw_post(sock, body)
    return code, json.loads(payload) if payload else None


def test_every_method_over_the_socket(daemon: DaemonProcess, volume: VolumeSpec) -> None:
    c = daemon.client()
    vol = volume.to_json()
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o600
    acquired = c.acquire(vol, I1)
    assert acquired == {"mountpoint": daemon.storage_dir, "holders": 1, "mounted_now": True}
    assert len(glusterfs_stack(daemon.storage_dir)) == 1
    assert c.acquire(vol, I1)["holders"] == 1
    assert c.acquire(vol, I2) == {"mountpoint": daemon.storage_dir, "holders": 2, "mounted_now": False}
    space = c.statvfs(vol)
    st = os.statvfs(daemon.storage_dir)
    assert space["storage_size"] == st.f_frsize * st.f_blocks // (1024 * 1024)
    assert space["files"] == st.f_files
    name = f"ganeti/{uuid.uuid4()}.0"
    created = c.disk_create(vol, name, 8)
    assert created == {"path": os.path.join(daemon.storage_dir, name), "size_bytes": 8 << 20}
    assert os.path.getsize(created["path"]) == 8 << 20
    with pytest.raises(errors.DiskExists):
        c.disk_create(vol, name, 8)
    assert c.disk_grow(vol, name, 2)["size_bytes"] == 10 << 20
    assert os.path.getsize(created["path"]) == 10 << 20
    info = c.disk_info(vol, name)
    assert info["exists"] and info["size_bytes"] == 10 << 20 and info["uri"] == f"gluster://{volume.host}:24007/gv0/{name}"
    assert info["mountpoint"] == daemon.storage_dir
    with pytest.raises(errors.PathRefused):
        c.disk_create(vol, "../../etc/evil", 1)
    with pytest.raises(errors.NoSuchDisk):
        c.disk_grow(vol, f"ganeti/{uuid.uuid4()}.9", 1)
    assert c.disk_remove(vol, name) == {"removed": True}
    assert not os.path.exists(created["path"])
    assert c.disk_remove(vol, name) == {"removed": False}
    status = c.status()
    [mount] = status["mounts"]
    assert mount["state"] == "mounted" and {h["id"] for h in mount["holders"]} == {I1["id"], I2["id"]}
    assert c.release(vol, I1) == {"holders": 1, "known": True, "unmounted": False, "busy": False}
    assert c.release(vol, {"kind": "job", "x": 1} if False else {"kind": "job", "id": "nobody"})["known"] is False
    assert c.release(vol, I2) == {"holders": 0, "known": True, "unmounted": True, "busy": False}
    assert glusterfs_stack(daemon.storage_dir) == []
    with pytest.raises(errors.NotMounted):
        c.statvfs(vol)
    doc = c.call("rpc.discover")
    assert doc["openrpc"].startswith("1.") and {m["name"] for m in doc["methods"]} >= {"volume.acquire", "disk.grow", "status"}


def test_bad_input_gets_jsonrpc_errors(daemon: DaemonProcess, volume: VolumeSpec) -> None:
    c = daemon.client()
    with pytest.raises(errors.InvalidParams) as bad_port:
        c.acquire({**volume.to_json(), "port": 70000}, I1)
    assert bad_port.value.data.get("field") == "volume.port"
    with pytest.raises(errors.InvalidParams) as bad_size:
        c.disk_create(volume.to_json(), "ganeti/x.0", -5)
    assert bad_size.value.data.get("field") == "size"
    with pytest.raises(errors.InvalidParams):
        c.acquire(volume.to_json(), {"kind": "vm", "id": "x"})
    code, reply = post_json(daemon.socket, b"{not json")
    assert code == 200 and reply["error"]["code"] == -32700
    code, reply = post_json(daemon.socket, b"[]")
    assert reply["error"]["code"] == -32600
    code, reply = post_json(daemon.socket, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "no.such"}).encode())
    assert reply["error"]["code"] == -32601
    code, reply = post_json(daemon.socket, b'{"jsonrpc": "2.0", "method": "status"}')
    assert code == 204 and reply is None, "a notification gets no reply"
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "status"}, {"jsonrpc": "2.0", "method": "status"}, {"jsonrpc": "1.0", "id": 3}]
    code, reply = post_json(daemon.socket, json.dumps(batch).encode())
    assert [r["id"] for r in reply] == [1, 3] and reply[1]["error"]["code"] == -32600
    code, reply = post_json(daemon.socket, b"[" + b"1," * (2 * 1024 * 1024) + b"1]")
    assert code == 200 and reply["error"]["code"] == -32600 and "larger" in reply["error"]["message"]
    code, reply = post_json(daemon.socket, b"[" * 100000 + b"]" * 100000)
    assert code == 200 and reply["error"]["code"] in (-32700, -32600)
    assert c.status()["version"], "the daemon still answers"


def test_metrics_match_status_on_both_listeners(daemon: DaemonProcess, volume: VolumeSpec) -> None:
    c = daemon.client()
    c.acquire(volume.to_json(), I1)
    c.acquire(volume.to_json(), I2)
    [mount] = c.status()["mounts"]
    for text in (
        curl("--unix-socket", daemon.socket, "http://x/metrics"),
        curl(f"http://127.0.0.1:{daemon.metrics_port}/metrics"),
    ):
        assert metric(text, "ganeti_gluster_holders", volume=volume.key) == len(mount["holders"]) == 2
        assert metric(text, "ganeti_gluster_mount_state", volume=volume.key, state=mount["state"]) == 1.0
        assert metric(text, "ganeti_gluster_mount_up", volume=volume.key) == 1.0
        assert metric(text, "ganeti_gluster_mount_attempts_total", volume=volume.key) == 1.0
        assert metric(text, "ganeti_gluster_rpc_requests_total", method="volume.acquire", code="0") == 2.0
    # The TCP listener serves metrics only: no RPC there.
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-d", "{}", f"http://127.0.0.1:{daemon.metrics_port}/rpc"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.stdout == "404"
    c.release(volume.to_json(), I1)
    c.release(volume.to_json(), I2)


def test_frozen_server_keeps_the_daemon_answering(daemon: DaemonProcess, gluster: glusterlab.GlusterServer, volume: VolumeSpec) -> None:
    c = daemon.client(timeout=30)
    vol = volume.to_json()
    c.acquire(vol, I1)
    name = f"ganeti/{uuid.uuid4()}.0"
    c.disk_create(vol, name, 1)
    gluster.freeze()
    try:
        for _ in range(3):
            _, took = timed(c.status)
            assert took < 1.0, f"status took {took:.2f} s with the server frozen"
            text, took = timed(lambda: curl("--unix-socket", daemon.socket, "http://x/metrics"))
            assert took < 1.0 and metric(text, "ganeti_gluster_holders", volume=volume.key) == 1.0
            _, took = timed(lambda: curl(f"http://127.0.0.1:{daemon.metrics_port}/metrics"))
            assert took < 1.0
        result, took = timed(lambda: c.acquire(vol, I2))
        assert took < 1.0 and result["holders"] == 2
        with pytest.raises(errors.OperationTimeout):
            c.disk_info(vol, name)
        with pytest.raises(errors.OperationTimeout):
            c.statvfs(vol)
        glusterlab.poll("the probe to call the mount hung", lambda: c.status()["mounts"][0]["state"] == "hung", deadline=15)
        _, took = timed(c.status)
        assert took < 1.0
    finally:
        gluster.thaw()
    glusterlab.poll("the mount to answer again", lambda: c.status()["mounts"][0]["state"] == "mounted", deadline=60)
    assert c.disk_info(vol, name)["exists"] is True
    assert c.disk_remove(vol, name)["removed"] is True
    c.release(vol, I1)
    c.release(vol, I2)


def test_sigterm_then_start_keeps_holders_and_the_single_mount(daemon: DaemonProcess, volume: VolumeSpec) -> None:
    c = daemon.client()
    c.acquire(volume.to_json(), I1)
    c.acquire(volume.to_json(), I2)
    before = glusterfs_stack(daemon.storage_dir)
    assert len(before) == 1
    assert daemon.terminate() == 0
    assert glusterfs_stack(daemon.storage_dir) == before, "SIGTERM must leave the mount in place"
    daemon.start()
    [mount] = daemon.client().status()["mounts"]
    assert {h["id"] for h in mount["holders"]} == {I1["id"], I2["id"]}
    assert mount["state"] == "mounted"
    assert glusterfs_stack(daemon.storage_dir) == before, "same single mount, no remount"
    text = curl("--unix-socket", daemon.socket, "http://x/metrics")
    assert metric(text, "ganeti_gluster_mount_attempts_total", volume=volume.key) is None
    daemon.client().release(volume.to_json(), I1)
    assert daemon.client().release(volume.to_json(), I2)["unmounted"] is True


def test_whitelist_change_applies_without_restart(daemon: DaemonProcess, volume: VolumeSpec) -> None:
    c = daemon.client()
    tmp = daemon.whitelist + ".new"
    with open(tmp, "w") as f:
        f.write("/srv/somewhere-else\n")
    os.rename(tmp, daemon.whitelist)  # as Ganeti writes it: a new file renamed into place
    glusterlab.poll("the daemon to refuse the storage dir", lambda: _refused(c, volume), deadline=10)
    with open(tmp, "w") as f:
        f.write(f"# back\n{daemon.root}\n")
    os.rename(tmp, daemon.whitelist)
    glusterlab.poll("the daemon to accept the storage dir again", lambda: not _refused(c, volume), deadline=10)
    assert glusterfs_stack(daemon.storage_dir) == []


def _refused(c: Any, volume: VolumeSpec) -> bool:
    """Whether a first holder (which must mount) is refused; a granted one is released again."""
    try:
        c.acquire(volume.to_json(), I1)
    except errors.PathRefused as e:
        assert "file-storage-paths" in e.message
        return True
    assert c.release(volume.to_json(), I1)["unmounted"] is True
    return False


def test_second_daemon_on_the_same_socket_refuses_to_start(daemon: DaemonProcess) -> None:
    twin = subprocess.run(daemon.argv(), capture_output=True, text=True, timeout=30, check=False)
    assert twin.returncode != 0 and "already listening" in twin.stderr
    assert daemon.client().status()["version"]


def test_storage_dir_behind_a_symlink_is_compared_resolved(daemon_root: str, volume: VolumeSpec) -> None:
    """Ganeti's default /var/run/ganeti/gluster is /run/ganeti/gluster in the mount table (/var/run is a symlink)."""
    real = os.path.join(daemon_root, "run-real")
    os.makedirs(real)
    os.symlink(real, os.path.join(daemon_root, "var-run"))
    configured = os.path.join(daemon_root, "var-run", "gluster")
    d = DaemonProcess(daemon_root, extra=["--storage-dir", configured]).start()
    try:
        c = d.client()
        first = c.acquire(volume.to_json(), I1)
        resolved = os.path.join(real, "gluster")
        assert first == {"mountpoint": resolved, "holders": 1, "mounted_now": True}
        assert c.acquire(volume.to_json(), I2)["mounted_now"] is False
        assert len(glusterfs_stack(resolved)) == 1, "never stacked"
        assert c.statvfs(volume.to_json())["size_bytes"] > 0
        c.release(volume.to_json(), I1)
        assert c.release(volume.to_json(), I2)["unmounted"] is True
        assert glusterfs_stack(resolved) == []
    finally:
        d.kill()


def test_config_file_values_are_type_checked(daemon_root: str) -> None:
    config = os.path.join(daemon_root, "bad.toml")
    with open(config, "w") as f:
        f.write('backup_volfile_servers = "gs2"\n')
    argv = [sys.executable, "-m", "glusterd_mgr", "--config", config]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "backup_volfile_servers must be a list of strings" in result.stderr


def test_sd_notify_ready_after_listening_and_watchdog(daemon_root: str, volume: VolumeSpec) -> None:
    """Type=notify: READY=1 once the socket answers and state is loaded; WATCHDOG=1 while the loop turns."""
    notify_path = os.path.join(daemon_root, "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(notify_path)
    listener.settimeout(10)
    d = DaemonProcess(daemon_root, env={"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "400000"})
    try:
        d.start()
        messages: list[str] = []
        while not any("READY=1" in m for m in messages):
            messages.append(listener.recv(4096).decode())
        assert d.client().status()["version"], "READY=1 came once the socket answers"
        while sum("WATCHDOG=1" in m for m in messages) < 2:
            messages.append(listener.recv(4096).decode())
        assert d.terminate() == 0
        while not any("STOPPING=1" in m for m in messages):  # watchdog pings may come first
            messages.append(listener.recv(4096).decode())
    finally:
        d.kill()
        listener.close()


def test_gluster_mountctl_against_the_daemon(daemon: DaemonProcess, volume: VolumeSpec) -> None:
    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "glusterd_mgr.ctl", "--socket", daemon.socket, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    vol = ["--host", volume.host, "--volume", volume.volume]
    assert ctl("acquire", *vol, "--kind", "instance", "--id", "ctl.0").returncode == 0
    sleeper = subprocess.Popen(["sleep", "60"], cwd=daemon.storage_dir)
    try:
        released = ctl("release", *vol, "--kind", "instance", "--id", "ctl.0", "--json")
        assert released.returncode == 0 and json.loads(released.stdout)["busy"] is True
        status = ctl("status")
        assert status.returncode == 0, status.stderr
        assert "busy" in status.stdout and str(sleeper.pid) in status.stdout and "sleep" in status.stdout
        as_json = json.loads(ctl("status", "--json").stdout)
        assert as_json["mounts"][0]["busy_pids"] == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait()
    bad = ctl("disk", "create", *vol, "../escape", "1")
    assert bad.returncode == 1 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
    assert ctl("frobnicate").returncode == 2
    daemon.kill()
    down = ctl("status")
    assert down.returncode == 3 and "not running" in down.stderr and "Traceback" not in down.stderr


def test_an_unmount_grace_keeps_the_mount_for_a_look_and_then_unmounts_once(make_daemon: Any, volume: VolumeSpec) -> None:
    """Issue 17's churn: with a grace, a release and the looks after it share one mount; then one unmount."""
    daemon = make_daemon("--unmount-grace", "3")
    c = daemon.client()
    vol = volume.to_json()
    holder = {"kind": "instance", "id": "grace.0"}
    c.acquire(vol, holder)
    c.disk_create(vol, "ganeti/grace.0", 1)
    released = c.release(vol, holder)
    left = time.monotonic()
    assert released["unmounted"] is False and glusterfs_stack(daemon.storage_dir), "mounted through the grace"
    for _ in range(5):  # Ganeti's read-only looks right after (gnt-instance info, a FindDevice)
        assert c.disk_info(vol, "ganeti/grace.0")["exists"] is True
    glusterlab.poll("the one unmount after the grace", lambda: not glusterfs_stack(daemon.storage_dir), deadline=30)
    assert time.monotonic() - left >= 3 - 0.5
    text = c.metrics()
    assert metric(text, "ganeti_gluster_mount_attempts_total", volume=volume.key) == 1.0
    assert metric(text, "ganeti_gluster_unmount_attempts_total", volume=volume.key) == 1.0
    c.disk_remove(vol, "ganeti/grace.0")


def test_the_fuse_client_is_started_directly_with_the_chosen_options(make_daemon: Any, volume: VolumeSpec) -> None:
    """No mount.glusterfs: the daemon's own command line, its options in it, and they take effect in the client."""
    d: DaemonProcess = make_daemon("--client-reader-threads", "2", "--client-event-threads", "3")
    c = d.client()
    holder = {"kind": "job", "id": "options"}
    assert c.acquire(volume.to_json(), holder)["mounted_now"] is True
    pid = fuse_client_pid(d.storage_dir)
    argv = psutil.Process(pid).cmdline()
    names = [t.name() for t in map(psutil.Process, (t.id for t in psutil.Process(pid).threads()))]
    c.release(volume.to_json(), holder)
    assert argv[:3] == ["glusterfs", "--process-name", "fuse"] and argv[-1] == d.storage_dir, argv
    assert f"--volfile-server={volume.host}" in argv and f"--volfile-id=/{volume.volume}" in argv, argv
    assert "--reader-thread-count=2" in argv and "--xlator-option=*-client-*.event-threads=3" in argv, argv
    assert names.count("glfs_fuseproc") == 2, f"two threads read /dev/fuse: {sorted(names)}"
    assert sum(n.startswith("glfs_epoll") for n in names) == 3, f"three network threads: {sorted(names)}"


def test_a_process_holder_is_given_back_the_moment_its_process_ends(make_daemon: Any, volume: VolumeSpec) -> None:
    d: DaemonProcess = make_daemon("--probe-interval", "3600")  # no health round in this test: only the end itself can tell
    c = d.client()
    vol = volume.to_json()
    request = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        with open(f"/proc/{request.pid}/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        holder = {"kind": "process", "id": f"{request.pid}@{ticks}"}
        assert c.acquire(vol, holder)["mounted_now"] is True
        assert c.status()["mounts"][0]["holders"] == [holder]
    finally:
        assert request.stdin is not None
        request.stdin.close()
        request.wait(timeout=30)
    ended = time.monotonic()
    glusterlab.poll("the holder given back and the volume unmounted", lambda: c.status()["mounts"] == [] or None, deadline=15)
    assert glusterfs_stack(d.storage_dir) == []
    print(f"given back and unmounted {time.monotonic() - ended:.2f} s after the process ended")

"""The stdlib client and gluster-mountctl against a fake JSON-RPC daemon on a Unix socket."""

from __future__ import annotations

import http.server
import json
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from glusterd_mgr import ctl
from glusterd_mgr.client import DEFAULT_SOCKET, Client, DaemonNotRunning, RpcError
from glusterd_mgr.core import errors

REPO = Path(__file__).resolve().parent.parent

VOLUME = {"host": "gs1", "port": 24007, "volume": "gv0"}
HOLDER = {"kind": "instance", "id": "inst1.example.com"}


# -- the fake daemon -------------------------------------------------------


@dataclass
class Reply:
    """What the fake answers: a JSON-RPC result or error (its id echoed), or raw bytes."""

    result: Any = None
    error: dict[str, Any] | None = None
    raw: bytes | None = None
    status: int = 200
    content_type: str = "application/json"
    hang: bool = False


@dataclass
class Seen:
    http_method: str
    path: str
    content_type: str | None
    body: Any


@dataclass
class FakeDaemon:
    path: str
    replies: dict[str, Reply] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, method: str, result: Any) -> None:
        self.replies[method] = Reply(result=result)

    def fail(self, method: str, code: int, message: str, data: Any = None, status: int = 200) -> None:
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        self.replies[method] = Reply(error=error, status=status)

    def raw(self, method: str, body: bytes, status: int = 200, content_type: str = "text/plain") -> None:
        self.replies[method] = Reply(raw=body, status=status, content_type=content_type)

    def hang(self, method: str) -> None:
        self.replies[method] = Reply(hang=True)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True

    def __init__(self, fake: FakeDaemon) -> None:
        self.fake = fake
        super().__init__(fake.path, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # AF_UNIX has no client address to log
        pass

    @property
    def fake(self) -> FakeDaemon:
        server = self.server
        assert isinstance(server, _Server)
        return server.fake

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reply(self, key: str, request_id: Any) -> None:
        reply = self.fake.replies.get(key)
        if reply is None:
            reply = Reply(error={"code": -32601, "message": f"no canned reply for {key}"})
        if reply.hang:
            self.fake.release.wait(timeout=60)  # until the fixture lets go; the client gives up first
            self.close_connection = True
            return
        if reply.raw is not None:
            self._send(reply.status, reply.raw, reply.content_type)
            return
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if reply.error is not None:
            message["error"] = reply.error
        else:
            message["result"] = reply.result
        self._send(reply.status, json.dumps(message).encode(), reply.content_type)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        self.fake.seen.append(Seen("POST", self.path, self.headers.get("Content-Type"), body))
        self._reply(body.get("method", ""), body.get("id"))

    def do_GET(self) -> None:
        self.fake.seen.append(Seen("GET", self.path, self.headers.get("Content-Type"), None))
        self._reply(f"GET {self.path}", None)


def _socket_dir(tmp_path: Path) -> Path:
    """tmp_path, unless it would overflow AF_UNIX's 108-byte path limit."""
    if len(str(tmp_path / "rpc.sock")) < 100:
        return tmp_path
    return Path(tempfile.mkdtemp(prefix="ggm-"))


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[FakeDaemon]:
    fake = FakeDaemon(str(_socket_dir(tmp_path) / "rpc.sock"))
    server = _Server(fake)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), name="fake-mountd", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        os.unlink(fake.path)
    assert not thread.is_alive()


@pytest.fixture
def client(daemon: FakeDaemon) -> Client:
    return Client(daemon.path, timeout=5.0)


# -- client: success path --------------------------------------------------


def test_default_socket() -> None:
    assert DEFAULT_SOCKET == "/run/ganeti-gluster-mountd/rpc.sock"
    assert Client().socket_path == DEFAULT_SOCKET


def test_call_posts_jsonrpc_and_returns_result(daemon: FakeDaemon, client: Client) -> None:
    daemon.answer("volume.acquire", {"mountpoint": "/var/run/ganeti/gluster", "holders": 1})
    assert client.acquire(VOLUME, HOLDER) == {"mountpoint": "/var/run/ganeti/gluster", "holders": 1}
    [seen] = daemon.seen
    assert (seen.http_method, seen.path, seen.content_type) == ("POST", "/rpc", "application/json")
    assert seen.body["jsonrpc"] == "2.0"
    assert isinstance(seen.body["id"], int)
    assert seen.body["method"] == "volume.acquire"
    assert seen.body["params"] == {"volume": VOLUME, "holder": HOLDER}


def test_ids_increase_per_call(daemon: FakeDaemon, client: Client) -> None:
    daemon.answer("status", {"version": "1", "mounts": []})
    client.status()
    client.status()
    assert [s.body["id"] for s in daemon.seen] == [1, 2]


@pytest.mark.parametrize(
    ("call", "method", "params"),
    [
        (lambda c: c.release(VOLUME, HOLDER), "volume.release", {"volume": VOLUME, "holder": HOLDER}),
        (lambda c: c.statvfs(VOLUME), "volume.statvfs", {"volume": VOLUME}),
        (
            lambda c: c.disk_create(VOLUME, "ganeti/u.0", 1024),
            "disk.create",
            {"volume": VOLUME, "path": "ganeti/u.0", "size": 1024, "preallocate": False},
        ),
        (
            lambda c: c.disk_create(VOLUME, "ganeti/u.0", 1024, preallocate=True),
            "disk.create",
            {"volume": VOLUME, "path": "ganeti/u.0", "size": 1024, "preallocate": True},
        ),
        (lambda c: c.disk_remove(VOLUME, "ganeti/u.0"), "disk.remove", {"volume": VOLUME, "path": "ganeti/u.0"}),
        (
            lambda c: c.disk_grow(VOLUME, "ganeti/u.0", 512),
            "disk.grow",
            {"volume": VOLUME, "path": "ganeti/u.0", "amount": 512, "dryrun": False, "backingstore": True},
        ),
        (
            lambda c: c.disk_grow(VOLUME, "ganeti/u.0", 512, dryrun=True, backingstore=False),
            "disk.grow",
            {"volume": VOLUME, "path": "ganeti/u.0", "amount": 512, "dryrun": True, "backingstore": False},
        ),
        (lambda c: c.disk_info(VOLUME, "ganeti/u.0"), "disk.info", {"volume": VOLUME, "path": "ganeti/u.0"}),
        (lambda c: c.status(), "status", {}),
    ],
)
def test_helpers_send_method_and_params(daemon: FakeDaemon, client: Client, call: Any, method: str, params: dict[str, Any]) -> None:
    daemon.answer(method, {"ok": method})
    assert call(client) == {"ok": method}
    assert [(s.body["method"], s.body["params"]) for s in daemon.seen] == [(method, params)]


def test_metrics_gets_text(daemon: FakeDaemon, client: Client) -> None:
    daemon.raw("GET /metrics", b"# HELP x y\nx 1\n", content_type="text/plain; version=0.0.4")
    assert client.metrics() == "# HELP x y\nx 1\n"
    assert [(s.http_method, s.path) for s in daemon.seen] == [("GET", "/metrics")]


# -- client: errors --------------------------------------------------------


@pytest.mark.parametrize("code", sorted(errors.ERRORS_BY_CODE))
def test_error_code_maps_to_its_type(daemon: FakeDaemon, client: Client, code: int) -> None:
    cls = errors.ERRORS_BY_CODE[code]
    data = {"type": cls.name, "field": "volume.host"}
    daemon.fail("volume.acquire", code, f"daemon says {cls.name}", data)
    with pytest.raises(errors.MountdError) as info:
        client.acquire(VOLUME, HOLDER)
    assert type(info.value) is cls
    assert info.value.code == code
    assert info.value.message == f"daemon says {cls.name}"
    assert str(info.value) == f"daemon says {cls.name}"
    assert info.value.data == data


def test_error_data_with_a_message_key_does_not_clash(daemon: FakeDaemon, client: Client) -> None:
    daemon.fail("disk.create", errors.DiskExists.code, "disk exists", {"message": "inner", "path": "ganeti/u.0"})
    with pytest.raises(errors.DiskExists) as info:
        client.disk_create(VOLUME, "ganeti/u.0", 10)
    assert info.value.message == "disk exists"
    assert info.value.data == {"message": "inner", "path": "ganeti/u.0"}


def test_error_reply_in_http_500_still_maps(daemon: FakeDaemon, client: Client) -> None:
    daemon.fail("volume.acquire", errors.MountFailed.code, "Mounting glusterfs failed", status=500)
    with pytest.raises(errors.MountFailed, match="Mounting glusterfs failed"):
        client.acquire(VOLUME, HOLDER)


def test_unknown_code_raises_rpc_error_with_code(daemon: FakeDaemon, client: Client) -> None:
    daemon.fail("status", -32601, "Method not found")
    with pytest.raises(RpcError) as info:
        client.status()
    assert isinstance(info.value, errors.MountdError)
    assert info.value.code == -32601
    assert info.value.message == "Method not found"
    assert errors.MountdError.code == -32000  # the per-instance code did not leak into the class


def test_missing_socket_is_daemon_not_running(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.sock")
    with pytest.raises(DaemonNotRunning) as info:
        Client(path, timeout=1.0).status()
    assert str(info.value) == f"ganeti-gluster-mountd is not running (no socket at {path})"
    assert info.value.socket_path == path


def test_socket_without_listener_is_daemon_not_running(tmp_path: Path) -> None:
    path = str(_socket_dir(tmp_path) / "stale.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)  # the file exists, nobody listens: what a crashed daemon leaves behind
    sock.close()
    try:
        with pytest.raises(DaemonNotRunning) as info:
            Client(path, timeout=1.0).status()
        assert str(info.value).startswith("ganeti-gluster-mountd is not running")
        assert path in str(info.value)
    finally:
        os.unlink(path)


def test_no_answer_is_operation_timeout(daemon: FakeDaemon) -> None:
    daemon.hang("volume.acquire")
    started = time.monotonic()
    with pytest.raises(errors.OperationTimeout) as info:
        Client(daemon.path, timeout=0.5).acquire(VOLUME, HOLDER)
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 5.0
    assert "0.5 s" in info.value.message
    assert daemon.path in info.value.message


def test_non_json_reply_is_rpc_error(daemon: FakeDaemon, client: Client) -> None:
    daemon.raw("status", b"<html>Internal hiccup</html>")
    with pytest.raises(RpcError) as info:
        client.status()
    assert "not a JSON object" in info.value.message
    assert "Internal hiccup" in info.value.message


def test_non_200_reply_is_rpc_error(daemon: FakeDaemon, client: Client) -> None:
    daemon.raw("status", b"no such resource", status=404)
    with pytest.raises(RpcError) as info:
        client.status()
    assert "HTTP 404" in info.value.message
    assert "no such resource" in info.value.message
    assert info.value.data["http_status"] == 404


def test_json_that_is_not_jsonrpc_is_rpc_error(daemon: FakeDaemon, client: Client) -> None:
    daemon.raw("status", b'{"hello": "world"}', content_type="application/json")
    with pytest.raises(RpcError, match=r"not a JSON-RPC 2\.0 reply"):
        client.status()


def test_reply_to_another_id_is_rpc_error(daemon: FakeDaemon, client: Client) -> None:
    daemon.raw("status", b'{"jsonrpc": "2.0", "id": 999, "result": {}}', content_type="application/json")
    with pytest.raises(RpcError, match="request 999"):
        client.status()


def test_metrics_non_200_is_rpc_error(daemon: FakeDaemon, client: Client) -> None:
    daemon.raw("GET /metrics", b"gone", status=503)
    with pytest.raises(RpcError, match="HTTP 503"):
        client.metrics()


# -- gluster-mountctl ------------------------------------------------------


def _mount(state: str, *, last_error: str | None = None, busy_pids: list[int] | None = None, **more: Any) -> dict[str, Any]:
    return more | {
        "volume": {"host": "gs1", "port": 24007, "volume": f"vol-{state}"},
        "mountpoint": f"/var/run/ganeti/gluster/{state}",
        "state": state,
        "holders": [{"kind": "instance", "id": "inst1"}, {"kind": "job", "id": "job-7"}],
        "last_error": last_error,
        "busy_pids": busy_pids or [],
    }


def _run(daemon: FakeDaemon, *argv: str) -> int:
    return ctl.main(["--socket", daemon.path, "--timeout", "5", *argv])


def _gone_pid() -> int:
    with open("/proc/sys/kernel/pid_max") as f:
        return int(f.read()) + 1  # no process can have it


def test_status_table_healthy(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    gone = _gone_pid()
    daemon.answer(
        "status",
        {"version": "0.1.0", "mounts": [_mount("mounted"), _mount("busy", busy_pids=[os.getpid(), gone])]},
    )
    assert _run(daemon, "status") == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert "0.1.0" in lines[0]
    assert "gs1:24007/vol-mounted" in lines
    assert "gs1:24007/vol-busy" in lines
    assert "  mountpoint: /var/run/ganeti/gluster/busy" in lines
    assert "  holders:    2" in lines
    assert lines.count("    instance:inst1") == 2
    assert "    job:job-7" in lines
    with open(f"/proc/{os.getpid()}/comm") as f:
        comm = f.read().strip()
    assert f"    {os.getpid()} {comm}" in lines
    assert f"    {gone} (gone)" in lines
    assert "DEGRADED" not in out


def test_status_table_reads_comm_from_proc(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "comm").write_text("qemu-system-x86\n")
    monkeypatch.setattr(ctl, "PROC", str(tmp_path))
    daemon.answer("status", {"version": "0.1.0", "mounts": [_mount("busy", busy_pids=[4242, 4243])]})
    assert _run(daemon, "status") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "    4242 qemu-system-x86" in lines
    assert "    4243 (gone)" in lines


@pytest.mark.parametrize("state", ["dead", "disconnected", "hung", "missing", "failed"])
def test_status_degraded_state_exits_1(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], state: str) -> None:
    daemon.answer("status", {"version": "0.1.0", "mounts": [_mount("mounted"), _mount(state)]})
    assert _run(daemon, "status") == 1
    out = capsys.readouterr().out
    assert f"  state:      {state}  (DEGRADED)" in out.splitlines()


def test_status_names_what_a_disconnected_mount_cannot_reach_and_a_second_client(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    mount = _mount("disconnected", disconnected_since=time.time() - 30, unreachable_servers=["gs1", "gs2"], clients_claiming=[7, 9])
    daemon.answer("status", {"version": "0.1.0", "mounts": [mount]})
    assert _run(daemon, "status") == 1
    lines = capsys.readouterr().out.splitlines()
    [said] = [line for line in lines if line.startswith("  disconnected: ")]
    assert said.endswith("cannot reach gs1, gs2") and "for 3" in said
    assert any("reconnects by itself" in line for line in lines)
    assert "  WARNING:    2 FUSE clients claim this mountpoint: 7, 9" in lines


def test_status_last_error_exits_1(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.answer("status", {"version": "0.1.0", "mounts": [_mount("mounted", last_error="umount: target is busy")]})
    assert _run(daemon, "status") == 1
    assert "  last error: umount: target is busy" in capsys.readouterr().out.splitlines()


def test_status_json_is_the_daemon_result(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    result = {"version": "0.1.0", "mounts": [_mount("mounted"), _mount("busy", busy_pids=[1])]}
    daemon.answer("status", result)
    assert _run(daemon, "status", "--json") == 0
    assert json.loads(capsys.readouterr().out) == result


def test_status_json_degraded_still_exits_1(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    result = {"version": "0.1.0", "mounts": [_mount("dead")]}
    daemon.answer("status", result)
    assert _run(daemon, "status", "--json") == 1
    assert json.loads(capsys.readouterr().out) == result


def test_status_empty(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.answer("status", {"version": "0.1.0", "mounts": []})
    assert _run(daemon, "status") == 0
    assert capsys.readouterr().out.splitlines() == ["ganeti-gluster-mountd 0.1.0: 0 mount(s)"]


def test_acquire_sends_flags_and_prints_json(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.answer("volume.acquire", {"mountpoint": "/mnt/x", "holders": 3})
    argv = ["acquire", "--host", "10.0.0.2", "--port", "24008", "--volume", "vm", "--kind", "os-install", "--id", "i1"]
    assert _run(daemon, *argv, "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"mountpoint": "/mnt/x", "holders": 3}
    assert daemon.seen[0].body["params"] == {
        "volume": {"host": "10.0.0.2", "port": 24008, "volume": "vm"},
        "holder": {"kind": "os-install", "id": "i1"},
    }


def test_release_defaults_port_and_volume(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.answer("volume.release", {"holders": 0, "unmounted": True})
    assert _run(daemon, "release", "--host", "gs1", "--kind", "instance", "--id", "i1") == 0
    assert capsys.readouterr().out.splitlines() == ["holders:   0", "unmounted: yes"]
    assert daemon.seen[0].body["params"]["volume"] == VOLUME


def test_statvfs_table(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.answer("volume.statvfs", {"storage_size": 10240, "storage_free": 5120})
    assert _run(daemon, "statvfs", "--host", "gs1") == 0
    assert capsys.readouterr().out.splitlines() == ["storage_free: 5120", "storage_size: 10240"]


def test_disk_commands_send_params(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    for method in ("disk.create", "disk.grow", "disk.remove", "disk.info"):
        daemon.answer(method, {"path": "ganeti/u.0"})
    vol = ["--host", "gs1"]
    assert _run(daemon, "disk", "create", *vol, "ganeti/u.0", "1024", "--preallocate") == 0
    assert _run(daemon, "disk", "grow", *vol, "ganeti/u.0", "256", "--dryrun", "--no-backingstore") == 0
    assert _run(daemon, "disk", "remove", *vol, "ganeti/u.0") == 0
    assert _run(daemon, "disk", "info", *vol, "ganeti/u.0", "--json") == 0
    assert [(s.body["method"], {k: v for k, v in s.body["params"].items() if k != "volume"}) for s in daemon.seen] == [
        ("disk.create", {"path": "ganeti/u.0", "size": 1024, "preallocate": True}),
        ("disk.grow", {"path": "ganeti/u.0", "amount": 256, "dryrun": True, "backingstore": False}),
        ("disk.remove", {"path": "ganeti/u.0"}),
        ("disk.info", {"path": "ganeti/u.0"}),
    ]
    assert capsys.readouterr().out.splitlines()[-3:] == ["{", '  "path": "ganeti/u.0"', "}"]


def test_failed_call_exits_1_with_one_line(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.fail("volume.acquire", errors.MountFailed.code, "Mounting glusterfs on /mnt failed.\nsee the log")
    assert _run(daemon, "acquire", "--host", "gs1", "--kind", "job", "--id", "j") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: Mounting glusterfs on /mnt failed. see the log\n"


def test_timeout_exits_1(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.hang("status")
    assert ctl.main(["--socket", daemon.path, "--timeout", "0.5", "status"]) == 1
    assert capsys.readouterr().err.startswith("error: no answer from ganeti-gluster-mountd within 0.5 s")


def test_daemon_not_running_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "absent.sock")
    assert ctl.main(["--socket", path, "status"]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"ganeti-gluster-mountd is not running (no socket at {path})\n"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["acquire", "--kind", "instance", "--id", "x"],  # no --host
        ["acquire", "--host", "gs1", "--kind", "vm", "--id", "x"],  # unknown kind
        ["statvfs", "--host", "gs1", "--port", "70000"],
        ["disk", "create", "--host", "gs1", "ganeti/u.0", "big"],
        ["disk", "grow", "--host", "gs1", "ganeti/u.0", "0"],
        ["disk"],
        ["--timeout", "-1", "status"],
    ],
)
def test_usage_errors_exit_2(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert ctl.main(["--socket", daemon.path, *argv]) == 2
    assert "usage:" in capsys.readouterr().err
    assert daemon.seen == []  # nothing was sent


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl.main(["--help"]) == 0
    assert "gluster-mountctl" in capsys.readouterr().out


def test_unexpected_reply_shape_is_error_not_traceback(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.answer("status", {"version": "0.1.0", "mounts": 5})
    assert _run(daemon, "status") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_metrics_command(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.raw("GET /metrics", b"up 1")
    assert _run(daemon, "metrics") == 0
    assert capsys.readouterr().out == "up 1\n"


def test_python_dash_m_runs_main(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.sock")
    proc = subprocess.run(
        [sys.executable, "-m", "glusterd_mgr.ctl", "--socket", path, "status"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 3
    assert proc.stderr == f"ganeti-gluster-mountd is not running (no socket at {path})\n"


def test_status_names_broken_holders_and_the_client(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    mount = {
        **_mount("mounted"),
        "broken_holders": [{"kind": "instance", "id": "inst1"}],
        "action": "1 holder(s) lost their disks ...; restart each fully (gnt-instance reboot --type=full INSTANCE)",
        "client": {"pid": 4242, "resident_memory_bytes": 300 << 20, "threads": 12, "open_fds": 40,
                   "start_time_seconds": time.time() - 61, "oom_score_adj": -900, "unit": "ganeti-gluster-x-1.scope"},
    }  # fmt: skip
    daemon.answer("status", {"version": "0.1.0", "mounts": [mount]})
    assert _run(daemon, "status") == ctl.EXIT_FAILED, "broken disks are a degraded node"
    out = capsys.readouterr().out
    assert "(DEGRADED)" in out and "BROKEN:     1 holder(s)" in out and "    instance:inst1\n" in out
    assert "gnt-instance reboot --type=full" in out
    assert "client:     pid 4242, 300 MiB, 12 threads, 40 fds, up 6" in out and "oom_score_adj -900, unit ganeti-gluster-x-1.scope" in out


HOSTILE = "\x1b]0;owned\x07\x1b[2J\r\u202eend"
"""What a local user can put in a process name, a file name or a client log: a window title, a clear screen,
a carriage return that hides what came before, a right-to-left override."""
SHOWN = "\\x1b]0;owned\\x07\\x1b[2J\\r\\u202eend"


def _printable(text: str) -> bool:
    return all(line.isprintable() for line in text.splitlines())


def test_status_escapes_control_characters_in_what_others_named(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "comm").write_text(f"qemu{HOSTILE}\n")
    monkeypatch.setattr(ctl, "PROC", str(tmp_path))
    mount = {
        **_mount("busy", busy_pids=[4242], last_error=f"client log: {HOSTILE}"),
        "mountpoint": f"/mnt/{HOSTILE}",
        "holders": [{"kind": "process", "id": f"p{HOSTILE}"}],
    }
    daemon.answer("status", {"version": "0.1.0", "mounts": [mount]})
    _run(daemon, "status")
    out = capsys.readouterr().out
    assert _printable(out), out
    assert f"    4242 qemu{SHOWN}\n" in out and f"  mountpoint: /mnt/{SHOWN}\n" in out
    assert f"    process:p{SHOWN}\n" in out and f"  last error: client log: {SHOWN}\n" in out


def test_results_and_errors_escape_control_characters(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.answer("disk.info", {"path": f"ganeti/{HOSTILE}", "exists": True})
    assert _run(daemon, "disk", "info", "--host", "gs1", "ganeti/x") == 0
    out = capsys.readouterr().out
    assert _printable(out) and f"path:   ganeti/{SHOWN}\n" in out
    daemon.fail("status", errors.MountFailed.code, f"mounting failed; the client said: {HOSTILE}")
    assert _run(daemon, "status") == 1
    err = capsys.readouterr().err
    assert err == "error: mounting failed; the client said: \\x1b]0;owned\\x07\\x1b[2J \\u202eend\n", "on one line, the CR a space"

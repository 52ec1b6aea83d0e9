"""Who may connect: an unprivileged user gets nothing from the socket; the metrics listener is loopback and read-only."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from typing import Any

import psutil
import pytest

from glusterd_mgr.core.volume import VolumeSpec

from ..support.daemon_proc import DaemonProcess
from ..support.kernel import glusterfs_stack

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(120)]
H1 = {"kind": "instance", "id": "access-1.0"}
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--reset-env", "/usr/bin/python3", "-c"]

# Runs as nobody (system python, stdlib only): tries every way in, prints what happened to each.
PROBE = r"""
import json, socket, sys, http.client
sock_path, port, journal = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = {}
def attempt(name, fn):
    try:
        out[name] = fn()
    except OSError as e:
        out[name] = "errno:" + (__import__("errno").errorcode.get(e.errno, str(e.errno)))
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "volume.acquire", "params": json.loads(sys.argv[4])}).encode()
def unix():
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.sendall(b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    return "connected:" + s.recv(200).decode(errors="replace")
attempt("unix_socket", unix)
def tcp(method, path, data=None):
    def go():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        return r.status
    return go
for method, path in [("GET", "/metrics"), ("POST", "/metrics"), ("PUT", "/metrics"), ("DELETE", "/metrics"),
                     ("POST", "/rpc"), ("GET", "/rpc"), ("PUT", "/rpc"), ("POST", "/"), ("GET", "/")]:
    attempt(f"tcp {method} {path}", tcp(method, path, body if method != "GET" else None))
attempt("journal_write", lambda: open(journal, "ab").close() or "opened")
attempt("journal_read", lambda: open(journal, "rb").close() or "opened")
print(json.dumps(out))
"""


def as_nobody(daemon: DaemonProcess, params: dict[str, Any]) -> dict[str, Any]:
    journal = os.path.join(daemon.state_dir, "holders.journal")
    done = subprocess.run(
        [*NOBODY, PROBE, daemon.socket, str(daemon.metrics_port), journal, json.dumps(params)],
        check=False, capture_output=True, text=True, timeout=60, cwd="/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def fingerprint(daemon: DaemonProcess) -> tuple[Any, ...]:
    with open(os.path.join(daemon.state_dir, "holders.journal"), "rb") as f:
        journal = hashlib.sha256(f.read()).hexdigest()
    status = daemon.client().status()
    # A client's live figures (memory, descriptors, threads) move on their own: its PID is the state.
    mounts = [{**m, "client": m["client"]["pid"] if m["client"] else None} for m in status["mounts"]]
    return journal, json.dumps({**status, "mounts": mounts}, sort_keys=True), glusterfs_stack(daemon.storage_dir)


def test_nobody_cannot_connect_and_metrics_are_loopback_and_read_only(daemon: DaemonProcess, volume: VolumeSpec, figure: Any) -> None:
    c = daemon.client()
    vol = volume.to_json()
    c.acquire(vol, H1)
    params = {"volume": vol, "holder": {"kind": "instance", "id": "intruder.0"}}
    before = fingerprint(daemon)
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(daemon.socket)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(daemon.state_dir).st_mode) == 0o700

    seen = as_nobody(daemon, params)
    assert seen["unix_socket"] == "errno:EACCES", seen
    # Even with the socket's folder opened up, the socket's own mode keeps nobody out.
    run_dir = os.path.dirname(daemon.socket)
    os.chmod(run_dir, 0o755)
    try:
        opened = as_nobody(daemon, params)
    finally:
        os.chmod(run_dir, 0o700)
    assert opened["unix_socket"] == "errno:EACCES", opened
    for result in (seen, opened):
        assert result["tcp GET /metrics"] == 200, "metrics are readable by anyone on the node"
        for key, value in result.items():
            if key.startswith("tcp ") and key != "tcp GET /metrics":
                # 501 is twisted.web's answer to methods outside GET/HEAD/POST: refused all the same.
                assert value in (404, 405, 501), f"{key} answered {value}: the TCP listener must serve only GET /metrics"
        assert result["journal_write"] == "errno:EACCES" and result["journal_read"] == "errno:EACCES", result
    assert fingerprint(daemon) == before, "an unprivileged user changed the daemon's state"

    assert daemon.proc is not None
    proc = psutil.Process(daemon.proc.pid)
    connections = getattr(proc, "net_connections", None) or proc.connections  # psutil < 6.0 (Debian 12's 5.9.4) has only the old name
    listening = [conn.laddr for conn in connections(kind="inet") if conn.status == psutil.CONN_LISTEN]
    assert listening == [("127.0.0.1", daemon.metrics_port)], f"the daemon listens on {listening}; only loopback metrics expected"
    c.release(vol, H1)
    attempts = sum(1 for r in (seen, opened) for k in r)
    figure(
        "access",
        unprivileged_attempts=attempts,
        socket_refused=2,
        tcp_writes_refused=sum(1 for r in (seen, opened) for k, v in r.items() if k.startswith("tcp ") and v in (404, 405, 501)),
        tcp_listener=f"{listening[0][0]}:{listening[0][1]}",
        state_changed=0,
    )

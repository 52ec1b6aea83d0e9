"""Run ``ganeti-gluster-mountd`` as a real process for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field

from glusterd_mgr.client import Client

from .glusterlab import poll

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class DaemonProcess:
    """One daemon with its own socket, state and storage folders under ``root``."""

    root: str
    extra: list[str] = field(default_factory=list)
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the daemon (e.g. a PATH with a wrapped helper, for fault injection)."""

    @property
    def socket(self) -> str:
        return os.path.join(self.root, "run", "rpc.sock")

    @property
    def storage_dir(self) -> str:
        return os.path.join(self.root, "gluster")

    @property
    def state_dir(self) -> str:
        return os.path.join(self.root, "state")

    @property
    def whitelist(self) -> str:
        return os.path.join(self.root, "etc", "file-storage-paths")

    @property
    def log_path(self) -> str:
        return os.path.join(self.root, "daemon.log")

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "glusterd_mgr",
            "--socket", self.socket,
            "--state-dir", self.state_dir,
            "--storage-dir", self.storage_dir,
            "--file-storage-paths", self.whitelist,
            "--client-log-dir", os.path.join(self.root, "clientlog"),
            "--metrics-port", str(self.metrics_port),
            "--mount-timeout", "20",
            "--fs-timeout", "3",
            "--probe-timeout", "1",
            "--probe-interval", "1",
            *self.extra,
        ]  # fmt: skip

    def start(self) -> DaemonProcess:
        os.makedirs(os.path.dirname(self.whitelist), exist_ok=True)
        if not os.path.exists(self.whitelist):
            with open(self.whitelist, "w") as f:
                f.write(f"{self.root}\n")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, cwd=REPO, env={**os.environ, **self.env})
        log.close()
        poll(f"the daemon to listen on {self.socket} (log: {self.log_path})", self._ready, deadline=30)
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}: {self.log()}")
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(self.socket)
            except OSError:
                return False
        return True

    def client(self, timeout: float = 30.0) -> Client:
        return Client(self.socket, timeout=timeout)

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            text = f.read()
        return text if len(text) < 6000 else text[:2000] + "\n...\n" + text[-4000:]

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
